//! Expansion of `{{name}}` placeholders in metric queries.
//! Pure string work; which variables exist is decided by the caller.

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown template variable `{{{{{0}}}}}`; known: {1}")]
    Unknown(String, String),
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
    fn unclosed_placeholder_is_an_error() {
        assert_eq!(expand("x{{y", &[]), Err(TemplateError::Unclosed));
    }
}
