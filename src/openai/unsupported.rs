//! Fields of OpenAI's Chat Completions API that Tessera does not implement
//! yet. A client that sends one expects it to act, so each is refused with a
//! 400 naming it, unless its value asks for nothing (e.g. `tools: []`,
//! `presence_penalty: 0`). Never silently ignored.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Accepted only with a value that asks for nothing; otherwise a 400.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct NotImplemented {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub functions: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub function_call: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub audio: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub modalities: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub prediction: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub web_search_options: Option<Value>,
}

/// A value that asks for nothing: absent, null, false, 0, "", [], {},
/// "none", or `["text"]` (the only modality there is).
fn asks_for_nothing(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == "none",
        Value::Array(a) => a.is_empty() || a == &[Value::String("text".into())],
        Value::Object(o) => o.is_empty(),
        Value::Bool(true) => false,
    }
}

impl NotImplemented {
    /// The first field that asks for something Tessera cannot do yet.
    pub fn first_requested(&self) -> Option<&'static str> {
        let fields: [(&'static str, &Option<Value>); 6] = [
            ("functions", &self.functions),
            ("function_call", &self.function_call),
            ("audio", &self.audio),
            ("modalities", &self.modalities),
            ("prediction", &self.prediction),
            ("web_search_options", &self.web_search_options),
        ];
        fields
            .into_iter()
            .find(|(_, v)| v.as_ref().is_some_and(|v| !asks_for_nothing(v)))
            .map(|(name, _)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> NotImplemented {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn no_op_values_pass_and_real_requests_are_named() {
        let quiet =
            parse(json!({"functions": [], "function_call": "none", "modalities": ["text"]}));
        assert_eq!(quiet.first_requested(), None);
        assert_eq!(
            parse(json!({"functions": [{"name": "f"}]})).first_requested(),
            Some("functions")
        );
        assert_eq!(
            parse(json!({"modalities": ["text", "audio"]})).first_requested(),
            Some("modalities")
        );
    }
}
