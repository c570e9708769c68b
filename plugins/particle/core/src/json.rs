//! JSON templates: a JSON value whose object keys and string values are
//! mustache templates (the object form of `json` and `responseTemplate`).

use serde_json::{Map, Value};

use crate::error::DefinitionError;
use crate::template::{RenderLimit, Template};

/// A JSON value with templates in it, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsonTemplate {
    /// A number, boolean or null, kept as is.
    Literal(Value),
    /// A string: a template.
    Text(Template),
    /// An array of JSON templates.
    Array(Vec<JsonTemplate>),
    /// An object: key templates and value templates.
    Object(Vec<(Template, JsonTemplate)>),
}

impl JsonTemplate {
    /// Parses every string of `value`; an error names the path of the bad
    /// template under `field` (`json.coordinates.lat`).
    pub(crate) fn parse(value: &Value, field: &str) -> Result<Self, DefinitionError> {
        Ok(match value {
            Value::String(source) => Self::Text(parse_template(source, field)?),
            Value::Array(items) => Self::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Self::parse(item, &format!("{field}.{i}")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Self::Object(
                map.iter()
                    .map(|(key, item)| {
                        let path = format!("{field}.{key}");
                        Ok((parse_template(key, &path)?, Self::parse(item, &path)?))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            literal => Self::Literal(literal.clone()),
        })
    }

    /// Renders every template; a key that renders like an earlier one
    /// replaces it.
    pub(crate) fn render(&self, stack: &[&Value]) -> Result<Value, RenderLimit> {
        Ok(match self {
            Self::Literal(value) => value.clone(),
            Self::Text(template) => Value::String(template.try_render_stack(stack)?),
            Self::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.render(stack))
                    .collect::<Result<_, _>>()?,
            ),
            Self::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, item)| Ok((key.try_render_stack(stack)?, item.render(stack)?)))
                    .collect::<Result<Map<_, _>, _>>()?,
            ),
        })
    }

    /// Whether any template inside looks `name` up.
    pub(crate) fn mentions(&self, name: &str) -> bool {
        match self {
            Self::Literal(_) => false,
            Self::Text(template) => template.mentions(name),
            Self::Array(items) => items.iter().any(|i| i.mentions(name)),
            Self::Object(fields) => fields
                .iter()
                .any(|(key, item)| key.mentions(name) || item.mentions(name)),
        }
    }
}

/// Parses one template of the definition, naming `field` if it is bad.
/// Webhooks have no partials to include, so `{{> name}}` is an error.
pub(crate) fn parse_template(source: &str, field: &str) -> Result<Template, DefinitionError> {
    Template::parse_without_partials(source).map_err(|e| DefinitionError::new(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_and_string_values_are_templates() {
        let template = JsonTemplate::parse(
            &json!({"{{k}}": "{{{v}}}", "n": [1.5, true, null, "{{k}}"], "o": {"x": "{{v}}"}}),
            "json",
        )
        .unwrap();
        let ctx = json!({"k": "key", "v": "<v>"});
        assert_eq!(
            template.render(&[&ctx]).unwrap(),
            json!({"key": "<v>", "n": [1.5, true, null, "key"], "o": {"x": "&lt;v&gt;"}})
        );
        assert!(template.mentions("v"));
        assert!(!template.mentions("w"));
    }

    #[test]
    fn a_bad_template_is_named_by_its_path() {
        let err = JsonTemplate::parse(&json!({"a": [{"b": "{{#x}}"}]}), "json").unwrap_err();
        assert_eq!(err.field, "json.a.0.b");
        assert!(err.reason.contains("unclosed section"), "{err}");
        let err = JsonTemplate::parse(&json!({"{{": 1}), "responseTemplate").unwrap_err();
        assert_eq!(err.field, "responseTemplate.{{");
        let err = JsonTemplate::parse(&json!({"a": ["x", "{{>p}}"]}), "json").unwrap_err();
        assert_eq!(err.field, "json.a.1");
        assert!(
            err.reason
                .contains("partials (`{{>p}}`) are not supported in webhooks"),
            "{err}"
        );
        let err = JsonTemplate::parse(&json!({"{{> k}}": 1}), "json").unwrap_err();
        assert_eq!(err.field, "json.{{> k}}");
    }
}
