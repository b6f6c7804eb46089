//! Structured output: `response_format` -> a GBNF grammar for llama.cpp's
//! grammar sampler, via llama.cpp's own JSON-schema converter. Schemas are
//! checked first (`schema_limits.rs`: keywords the converter cannot honour
//! are refused by name instead of being silently ignored, and what a
//! schema may cost is capped).

use super::schema_limits::MAX_GRAMMAR_BYTES;

pub use super::schema_limits::SchemaError;

/// The grammar for a JSON schema that the request's
/// [`Tally`](super::schema_limits::Tally) has checked. CPU work that grows
/// with the schema: run it off the async runtime.
pub fn from_schema(schema: &serde_json::Value) -> Result<String, SchemaError> {
    let grammar = llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| {
        SchemaError(format!(
            "the JSON schema could not be turned into a grammar ({e}); check that it is a valid JSON schema"
        ))
    })?;
    if grammar.len() > MAX_GRAMMAR_BYTES {
        return Err(SchemaError(format!(
            "the JSON schema makes a grammar of {} KiB, above the limit of {} KiB; simplify it",
            grammar.len() / 1024,
            MAX_GRAMMAR_BYTES / 1024
        )));
    }
    Ok(grammar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_schema(s: &serde_json::Value) -> Result<(), SchemaError> {
        super::super::schema_limits::Tally::default().add(s)
    }

    #[test]
    fn names_unsupported_keywords_with_their_place() {
        let s = json!({"type": "object", "properties": {"a": {"type": "string", "not": {"const": "x"}}}});
        let e = check_schema(&s).unwrap_err();
        assert!(
            e.0.contains("`not`") && e.0.contains("#/properties/a/not"),
            "{e}"
        );
        let s = json!({"anyOf": [{"type": "integer", "multipleOf": 3}]});
        assert!(check_schema(&s).unwrap_err().0.contains("multipleOf"));
        let s = json!({"$ref": "https://example.com/s.json"});
        assert!(check_schema(&s).unwrap_err().0.contains("local"));
        // A property *named* like a keyword is fine.
        let s = json!({"type": "object", "properties": {"not": {"type": "boolean"}}});
        assert!(check_schema(&s).is_ok());
    }

    #[test]
    fn converts_supported_schemas() {
        let g = from_schema(&json!({
            "type": "object",
            "properties": {"colour": {"enum": ["red", "blue"]}, "n": {"type": "integer", "minimum": 0, "maximum": 9}},
            "required": ["colour", "n"],
            "additionalProperties": false
        }))
        .unwrap();
        assert!(g.contains("root ::="), "{g}");
        assert!(
            from_schema(&json!({"type": "object"}))
                .unwrap()
                .contains("root ::=")
        );
    }
}
