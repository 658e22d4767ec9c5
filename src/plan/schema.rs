//! The plan format as JSON Schema (draft 2020-12), generated from the model types, so editors
//! with yaml-language-server complete and check plans. Generation only; no IO.

use schemars::generate::SchemaSettings;

use super::model::Plan;

/// The JSON Schema of a plan.
pub fn schema() -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut root = generator.into_root_schema_for::<Plan>();
    root.insert(
        "title".to_string(),
        serde_json::Value::String("warroom deployment plan (version 1)".to_string()),
    );
    root.to_value()
}

/// The schema as pretty JSON with a final newline: what `warroom schema` prints and
/// `plans/plan.schema.json` holds.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_draft_2020_12_and_closed() {
        let s = schema();
        assert_eq!(
            s["$schema"].as_str(),
            Some("https://json-schema.org/draft/2020-12/schema")
        );
        assert_eq!(s["additionalProperties"], serde_json::Value::Bool(false));
        assert!(s["$defs"]["Step"].is_object(), "{s}");
    }
}
