//! Expansion of `{{name}}` placeholders in metric queries, and the variables queries may use.
//! Pure string work.

/// The variables a metric query may use.
pub const QUERY_VARIABLES: [&str; 4] = ["namespace", "service", "track", "rate"];

/// The values of [`QUERY_VARIABLES`] for one expansion: validation and the sampler both expand
/// through this, so they cannot disagree on what a query may use.
pub fn query_vars<'a>(
    namespace: &'a str,
    service: &'a str,
    track: &'a str,
    rate: &'a str,
) -> [(&'static str, &'a str); 4] {
    let [n, s, t, r] = QUERY_VARIABLES;
    [(n, namespace), (s, service), (t, track), (r, rate)]
}

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{{name}}` the caller did not provide; the known names follow.
    #[error("unknown template variable `{{{{{0}}}}}`; known: {1}")]
    Unknown(String, String),
    /// A `{{` without its `}}`.
    #[error("unclosed `{{{{` in template")]
    Unclosed,
}

/// Replaces every `{{name}}` by its value from `vars`.
pub fn expand(template: &str, vars: &[(&str, &str)]) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or(TemplateError::Unclosed)?;
        let name = after[..close].trim();
        let value = vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let known: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
                TemplateError::Unknown(name.to_string(), known.join(", "))
            })?;
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every `{{name}}` in `template`: byte offset of its `{{` and the trimmed name. An unclosed
/// `{{` ends the list (expansion reports it).
pub fn placeholders(template: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = template.get(from..).and_then(|r| r.find("{{")) {
        let start = from + open;
        let Some(close) = template[start + 2..].find("}}") else {
            break;
        };
        out.push((
            start,
            template[start + 2..start + 2 + close].trim().to_string(),
        ));
        from = start + 2 + close + 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced() {
        let q = expand(
            "rate(x{ns=\"{{namespace}}\",t=\"{{ track }}\"}[{{rate}}])",
            &[("namespace", "shop"), ("track", "canary"), ("rate", "30s")],
        );
        assert_eq!(q.as_deref(), Ok("rate(x{ns=\"shop\",t=\"canary\"}[30s])"));
    }

    #[test]
    fn unknown_variable_names_the_known_ones() {
        let err = expand("{{nope}}", &[("namespace", "shop")]).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown template variable `{{nope}}`; known: namespace"
        );
    }

    #[test]
    fn placeholders_are_listed_in_order() {
        let p = placeholders("a{{x}}b{{ y }}{{z");
        assert_eq!(p, vec![(1, "x".to_string()), (7, "y".to_string())]);
    }

    #[test]
    fn unclosed_placeholder_is_an_error() {
        assert_eq!(expand("x{{y", &[]), Err(TemplateError::Unclosed));
    }
}
