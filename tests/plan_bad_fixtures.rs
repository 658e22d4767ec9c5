//! Every malformed plan in tests/fixtures/bad-plans/ produces the diagnostic its header promises.
//! Header lines read `# expect: error|warning LINE:COL message fragment`.

use std::path::Path;

use warroom::plan::{self, Severity};

struct Expect {
    severity: Severity,
    line: usize,
    column: usize,
    fragment: String,
}

fn expectations(text: &str) -> Vec<Expect> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let mut parts = rest.splitn(3, ' ');
            let severity = match parts.next() {
                Some("error") => Severity::Error,
                Some("warning") => Severity::Warning,
                other => panic!("bad severity {other:?} in `{rest}`"),
            };
            let (line, column) = parts
                .next()
                .and_then(|p| p.split_once(':'))
                .map(|(l, c)| (l.parse().expect("line"), c.parse().expect("column")))
                .expect("LINE:COL");
            Expect {
                severity,
                line,
                column,
                fragment: parts.next().expect("message fragment").to_string(),
            }
        })
        .collect()
}

#[test]
fn every_bad_plan_reports_its_expected_diagnostic_at_its_position() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-plans");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} bad plans", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read fixture");
        let expects = expectations(&text);
        assert!(
            !expects.is_empty(),
            "{} has no `# expect:` line",
            file.display()
        );
        let checked = plan::check(file, &text);
        for e in &expects {
            let hit = checked.diagnostics.iter().any(|d| {
                d.severity == e.severity
                    && d.line == e.line
                    && d.column == e.column
                    && d.message.contains(&e.fragment)
            });
            if !hit {
                failures.push(format!(
                    "{}: expected {:?} at {}:{} containing `{}`, got:\n{}",
                    file.display(),
                    e.severity,
                    e.line,
                    e.column,
                    e.fragment,
                    checked.render()
                ));
            }
        }
        if expects.iter().any(|e| e.severity == Severity::Error) {
            assert!(checked.has_errors(), "{} must have errors", file.display());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn all_unknown_keys_of_one_file_are_reported_together() {
    let text = "version: 1\nnme: x\nservice: s\nstrategy: rolling\nenvironments: {}\nworkload: { name: s, imgae: x }\nphases: []\nrolback: {}\n";
    let checked = plan::check(Path::new("p.yaml"), text);
    let positions: Vec<(usize, usize)> = checked
        .diagnostics
        .iter()
        .filter(|d| d.message.starts_with("unknown key"))
        .map(|d| (d.line, d.column))
        .collect();
    assert_eq!(
        positions,
        vec![(2, 1), (6, 22), (8, 1)],
        "{}",
        checked.render()
    );
}
