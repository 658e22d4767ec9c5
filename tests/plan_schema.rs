//! The committed plans/plan.schema.json is what `warroom schema` prints, every plan in plans/
//! points editors at it and is valid against it, and every plan checks clean.

use std::path::{Path, PathBuf};

use warroom::plan;

fn plans_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plans")
}

fn plan_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(plans_dir())
        .expect("plans/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn committed_schema_file_equals_generated_schema() {
    let committed =
        std::fs::read_to_string(plans_dir().join("plan.schema.json")).expect("plan.schema.json");
    assert!(
        committed == plan::schema::schema_text(),
        "plans/plan.schema.json is stale: run `cargo run -- schema > plans/plan.schema.json`"
    );
}

#[test]
fn every_plan_names_the_schema_for_yaml_language_server() {
    for file in plan_files() {
        let text = std::fs::read_to_string(&file).expect("read plan");
        assert_eq!(
            text.lines().next(),
            Some("# yaml-language-server: $schema=plan.schema.json"),
            "{}",
            file.display()
        );
    }
}

#[test]
fn every_plan_is_valid_against_the_json_schema() {
    let schema = plan::schema::schema();
    let validator = jsonschema::draft202012::new(&schema).expect("schema compiles");
    let files = plan_files();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read plan");
        let instance: serde_json::Value =
            serde_saphyr::from_str(&text).expect("plan is YAML that maps to JSON");
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
}

#[test]
fn schema_rejects_what_the_loader_rejects() {
    let schema = plan::schema::schema();
    let validator = jsonschema::draft202012::new(&schema).expect("schema compiles");
    let text = std::fs::read_to_string(plans_dir().join("demo.yaml")).expect("demo");
    for (from, to) in [
        ("risk: high", "risk: severe"),
        ("- weight: 10", "- weight: 110"),
        ("- hold: 20s", "- hold: 20 seconds"),
        ("service: checkout", "service: checkout\nservce: x"),
        ("- weight: 10", "- weight: { to: 10, stp: 5 }"),
        ("- hold: 20s", "- wait: { for: ready, timout: 5m }"),
    ] {
        let bad = text.replacen(from, to, 1);
        let instance: serde_json::Value = serde_saphyr::from_str(&bad).expect("still YAML");
        assert!(!validator.is_valid(&instance), "schema accepted `{to}`");
        assert!(
            plan::check(Path::new("demo.yaml"), &bad).has_errors(),
            "loader accepted `{to}`"
        );
    }
}

#[test]
fn every_example_plan_checks_without_errors_or_warnings() {
    for file in plan_files() {
        let checked = plan::check_file(&file);
        assert!(
            checked.diagnostics.is_empty(),
            "{}:\n{}",
            file.display(),
            checked.render()
        );
    }
}
