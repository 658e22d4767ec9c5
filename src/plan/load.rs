//! Reading a plan file: YAML → [`Plan`], with diagnostics that name file, line and column.
//! Only parsing and type checks; cross-field checks belong to validation.

use std::fmt;
use std::path::{Path, PathBuf};

use super::model::Plan;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a plan file, located in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based; 0 when the position is unknown.
    pub line: usize,
    /// 1-based; 0 when the position is unknown.
    pub column: usize,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    /// Renders `path:line:col: error: message`, then the source line and a caret under the column.
    pub fn render(&self, source: &str) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
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
    pub diagnostics: Vec<Diagnostic>,
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

/// Parses plan text; `path` only names the source in diagnostics.
pub fn parse(path: &Path, text: &str) -> Result<Plan, LoadError> {
    serde_saphyr::from_str::<Plan>(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        LoadError {
            diagnostics: vec![Diagnostic {
                path: path.to_path_buf(),
                line,
                column,
                severity: Severity::Error,
                message: first_line(&e.without_snippet().to_string()),
            }],
            source_text: text.to_string(),
        }
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
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
}
