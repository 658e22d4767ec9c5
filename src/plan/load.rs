//! Reading a plan file: YAML → [`Plan`], with diagnostics that name file, line and column.
//! [`parse`] is types only; [`check`] adds every shape and validation finding. No cluster IO.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::locate::{self, Doc};
use super::model::Plan;
use super::{recover, schema, shape, validate};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The plan must not run.
    Error,
    /// The plan may run, but a person should look.
    Warning,
}

impl Severity {
    /// `error` or `warning`, as printed.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding about a plan file, located in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The plan file.
    pub path: PathBuf,
    /// 1-based; 0 when the position is unknown.
    pub line: usize,
    /// 1-based; 0 when the position is unknown.
    pub column: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong and what to do.
    pub message: String,
}

impl Diagnostic {
    /// Renders `path:line:col: error: message`, then the source line and a caret under the column.
    pub fn render(&self, source: &str) -> String {
        let level = self.severity.label();
        let mut out = format!(
            "{}:{}:{}: {level}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        );
        if let Some(text) = self.line.checked_sub(1).and_then(|i| source.lines().nth(i)) {
            let caret_at = self.column.saturating_sub(1).min(text.chars().count());
            out.push_str(&format!("\n  {text}\n  {}^", " ".repeat(caret_at)));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// A plan that could not be loaded; the diagnostics say why.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_all(.diagnostics, .source_text))]
pub struct LoadError {
    /// Why, located.
    pub diagnostics: Vec<Diagnostic>,
    /// The plan text, for rendering source lines.
    pub source_text: String,
}

fn render_all(diagnostics: &[Diagnostic], source: &str) -> String {
    diagnostics
        .iter()
        .map(|d| d.render(source))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and parses a plan file.
pub fn load_file(path: &Path) -> Result<Plan, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        diagnostics: vec![Diagnostic {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            severity: Severity::Error,
            message: format!("cannot read plan: {e}"),
        }],
        source_text: String::new(),
    })?;
    parse(path, &text)
}

/// Parses plan text into types (no validation); `path` only names the source in diagnostics.
pub fn parse(path: &Path, text: &str) -> Result<Plan, LoadError> {
    serde_saphyr::from_str::<Plan>(text).map_err(|e| {
        let d = type_error(path, &e);
        let tabs = tabs_behind(path, text, d.line, &d.message);
        LoadError {
            diagnostics: if tabs.is_empty() { vec![d] } else { tabs },
            source_text: text.to_string(),
        }
    })
}

/// Tabs in indentation that explain a YAML syntax error at `line`, one diagnostic per tab from
/// the first at or after that line; empty when the error is not about a tab. The parser blames
/// the start of the scalar it was reading (often the line above) or the column after the tab,
/// so the tab is found by scanning the text.
fn tabs_behind(path: &Path, text: &str, line: usize, message: &str) -> Vec<Diagnostic> {
    let tabs: Vec<_> = locate::indentation_tabs(text)
        .into_iter()
        .filter(|t| t.line >= line)
        .collect();
    let about_tabs = message.to_lowercase().contains("tab");
    if !tabs.first().is_some_and(|t| about_tabs || t.line == line) {
        return Vec::new();
    }
    tabs.into_iter()
        .map(|t| Diagnostic {
            path: path.to_path_buf(),
            line: t.line,
            column: t.column,
            severity: Severity::Error,
            message: "tab used for indentation; YAML indents with spaces".to_string(),
        })
        .collect()
}

fn type_error(path: &Path, e: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = e
        .location()
        .map(|l| (to_usize(l.line()), to_usize(l.column())))
        .unwrap_or((0, 0));
    Diagnostic {
        path: path.to_path_buf(),
        line,
        column,
        severity: Severity::Error,
        message: first_line(&e.without_snippet().to_string()),
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A plan checked in full: the plan when it parsed, and every diagnostic in source order.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The typed plan, when the text parsed into types (it may still have errors).
    pub plan: Option<Plan>,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// The plan text, for rendering source lines.
    pub source_text: String,
}

impl Checked {
    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// Every diagnostic rendered with its source line and caret, one after another.
    pub fn render(&self) -> String {
        render_all(&self.diagnostics, &self.source_text)
    }

    /// The plan if it has no errors, else the errors and warnings as a [`LoadError`].
    pub fn into_result(self) -> Result<Plan, LoadError> {
        match self.plan {
            Some(plan) if !self.has_errors() => Ok(plan),
            _ => Err(LoadError {
                diagnostics: self.diagnostics,
                source_text: self.source_text,
            }),
        }
    }
}

fn plan_schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(schema::schema)
}

/// Checks plan text in full: YAML syntax, unknown keys and values (all of them, with hints),
/// types, then validation. Never panics, whatever the text.
pub fn check(path: &Path, text: &str) -> Checked {
    let at = |line: usize, column: usize, severity: Severity, message: String| Diagnostic {
        path: path.to_path_buf(),
        line,
        column,
        severity,
        message,
    };
    let mut diagnostics = Vec::new();
    let doc = Doc::parse(text);
    // When tabs broke the YAML they replace the parser's error, which points elsewhere.
    let mut syntax = Vec::new();
    let mut shape_errors = Vec::new();
    match &doc {
        Ok(doc) => {
            shape_errors = shape::check(doc, plan_schema());
            for e in &shape_errors {
                diagnostics.push(at(
                    e.pos.line,
                    e.pos.column,
                    Severity::Error,
                    e.message.clone(),
                ));
            }
        }
        Err(e) => {
            syntax = tabs_behind(path, text, e.pos.line, &e.message);
            if syntax.is_empty() {
                syntax.push(at(
                    e.pos.line,
                    e.pos.column,
                    Severity::Error,
                    e.message.clone(),
                ));
            }
        }
    }
    let tabs_broke_it = syntax.iter().any(|d| d.message.starts_with("tab used"));
    let plan = match serde_saphyr::from_str::<Plan>(text) {
        Ok(plan) => {
            match &doc {
                Ok(doc) => {
                    for f in validate::validate(&plan, doc) {
                        diagnostics.push(at(f.pos.line, f.pos.column, f.severity, f.message));
                    }
                }
                Err(_) => diagnostics.append(&mut syntax),
            }
            Some(plan)
        }
        Err(e) => {
            // The typed parse stops at its first error, which is often an unknown key or value
            // already reported above with a better hint.
            let d = type_error(path, &e);
            if tabs_broke_it {
                diagnostics.append(&mut syntax);
            }
            let covered = tabs_broke_it
                || diagnostics.iter().any(|x| x.line == d.line)
                || (!diagnostics.is_empty() && is_shape_message(&d.message));
            if !covered {
                diagnostics.push(d);
            }
            // The cross-field checks run on what did parse, so one run shows every finding.
            if let Ok(doc) = &doc
                && let Some((plan, skipped)) = recover::recover(doc, &shape_errors)
            {
                for f in validate::validate_recovered(&plan, doc, &skipped) {
                    diagnostics.push(at(f.pos.line, f.pos.column, f.severity, f.message));
                }
            }
            None
        }
    };
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Checked {
        plan,
        diagnostics,
        source_text: text.to_string(),
    }
}

/// Type errors that the shape check reports too, better located (the typed parse reports a
/// missing key at the end of its mapping, for instance).
fn is_shape_message(message: &str) -> bool {
    [
        "missing field",
        "unknown field",
        "unknown variant",
        "expected mapping",
        "expected sequence",
    ]
    .iter()
    .any(|p| message.starts_with(p))
}

/// Reads a plan file and checks it in full.
pub fn check_file(path: &Path) -> Checked {
    match std::fs::read_to_string(path) {
        Ok(text) => check(path, &text),
        Err(e) => Checked {
            plan: None,
            diagnostics: vec![Diagnostic {
                path: path.to_path_buf(),
                line: 0,
                column: 0,
                severity: Severity::Error,
                message: format!("cannot read plan: {e}"),
            }],
            source_text: String::new(),
        },
    }
}

/// The message's first line, without the ` at line N, column M` the position already says.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default().trim();
    match line.rfind(" at line ") {
        Some(i) if line[i..].contains(", column ") => line[..i].to_string(),
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"version: 1
name: checkout 2.4.0
service: checkout
strategy: canary
environments:
  dev: { namespace: shop }
workload: { name: checkout, canary: checkout-canary }
traffic: { router: gateway-api, route: checkout, step: 10 }
phases:
  - name: Dev
    environment: dev
    steps:
      - check: Terraform plan reviewed
      - weight: 10
      - hold: 2m
      - run: { cmd: "helm upgrade --dry-run", timeout: 5m }
      - pause: Look at the dashboards
rollback:
  immediate:
    target: 5m
    actions:
      - weight: 0
"#;

    #[test]
    fn short_and_long_step_forms_parse() {
        let plan = parse(Path::new("p.yaml"), MINIMAL).expect("minimal plan parses");
        use crate::plan::model::{RunStep, Step};
        let steps = &plan.phases[0].steps;
        assert_eq!(steps[0], Step::Check("Terraform plan reviewed".into()));
        assert!(matches!(&steps[1], Step::Weight(w) if w.target().percent() == 10));
        assert!(matches!(&steps[2], Step::Hold(d) if d.get().as_secs() == 120));
        assert!(matches!(&steps[3], Step::Run(RunStep::Long { cmd, .. }) if cmd.contains("helm")));
    }

    #[test]
    fn unknown_key_is_an_error_with_its_position() {
        let text = MINIMAL.replace("service: checkout", "service: checkout\nservce: x");
        let err = parse(Path::new("p.yaml"), &text).expect_err("unknown key refused");
        let d = &err.diagnostics[0];
        assert_eq!(d.line, 4, "{d}");
        assert!(d.message.contains("servce"), "{}", d.message);
        let rendered = d.render(&text);
        assert!(rendered.starts_with("p.yaml:4:"), "{rendered}");
        assert!(rendered.contains("servce: x"), "{rendered}");
    }

    #[test]
    fn weight_above_100_is_refused() {
        let text = MINIMAL.replace("- weight: 10", "- weight: 110");
        let err = parse(Path::new("p.yaml"), &text).expect_err("weight 110 refused");
        assert_eq!(err.diagnostics[0].line, 14, "{}", err.diagnostics[0]);
    }

    #[test]
    fn a_tab_in_indentation_is_reported_at_the_tab_by_parse_and_check() {
        let text = MINIMAL.replace("  dev: { namespace: shop }", "\tdev: { namespace: shop }");
        let err = parse(Path::new("p.yaml"), &text).expect_err("tab refused");
        let checked = check(Path::new("p.yaml"), &text);
        for d in [&err.diagnostics[..], &checked.diagnostics[..]] {
            let found: Vec<_> = d
                .iter()
                .map(|d| (d.line, d.column, d.message.as_str()))
                .collect();
            assert_eq!(
                found,
                vec![(6, 1, "tab used for indentation; YAML indents with spaces")],
                "{d:?}"
            );
        }
    }

    fn findings(text: &str) -> Vec<(usize, usize, String)> {
        check(Path::new("p.yaml"), text)
            .diagnostics
            .into_iter()
            .map(|d| (d.line, d.column, d.message))
            .collect()
    }

    #[test]
    fn cross_field_checks_run_past_a_step_that_does_not_parse() {
        let text = MINIMAL
            .replace("- hold: 2m", "- hold: 2 minutes")
            .replace("environment: dev", "environment: nowhere");
        let found = findings(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].0, found[0].1), (11, 18), "{found:?}");
        assert!(
            found[0].2.contains("unknown environment `nowhere`"),
            "{found:?}"
        );
        assert_eq!((found[1].0, found[1].1), (15, 15), "{found:?}");
    }

    #[test]
    fn cross_field_checks_run_past_unknown_keys_that_misspell_nothing() {
        let text = MINIMAL
            .replace("service: checkout", "service: checkout\ncolour: blue")
            .replace("environment: dev", "environment: nowhere");
        let found = findings(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].2.starts_with("unknown key `colour`"), "{found:?}");
        assert!(found[1].2.contains("unknown environment"), "{found:?}");
    }

    #[test]
    fn a_misspelt_key_stops_the_cross_field_checks_it_would_mislead() {
        // `imgae` is probably `image`: checking without it would blame the image step.
        let text = MINIMAL
            .replace(
                "canary: checkout-canary }",
                "canary: checkout-canary, imgae: reg/checkout:2 }",
            )
            .replace("- check: Terraform plan reviewed", "- image: canary");
        let found = findings(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].2.starts_with("unknown key `imgae`"), "{found:?}");
    }

    #[test]
    fn a_step_that_does_not_parse_may_have_been_the_approval_gate() {
        let text = MINIMAL
            .replace("environment: dev", "environment: dev\n    risk: high")
            .replace(
                "- pause: Look at the dashboards",
                "- approve: { who: carol }",
            );
        let found = findings(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, 18, "{found:?}");
    }
}
