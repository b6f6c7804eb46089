//! Structured output: `response_format` -> a GBNF grammar for llama.cpp's
//! grammar sampler, via llama.cpp's own JSON-schema converter. Schemas are
//! checked first, so that a feature the converter cannot honour is refused
//! by name instead of being silently ignored.

use super::schema_limits::MAX_GRAMMAR_BYTES;

/// Keywords the converter does not enforce.
const UNSUPPORTED: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
    "multipleOf",
    "minProperties",
    "maxProperties",
];

/// Keys whose value is a map of name -> schema.
const SCHEMA_MAPS: &[&str] = &["properties", "$defs", "definitions"];
/// Keys whose value is one schema.
const SCHEMA_ONE: &[&str] = &["items", "additionalProperties", "additionalItems"];
/// Keys whose value is a list of schemas.
const SCHEMA_LISTS: &[&str] = &["oneOf", "anyOf", "allOf", "prefixItems"];

pub use super::schema_limits::SchemaError;

/// Refuses schemas using a keyword the grammar cannot enforce, naming it
/// and where it is (a JSON pointer).
pub fn check_schema(schema: &serde_json::Value) -> Result<(), SchemaError> {
    fn walk(v: &serde_json::Value, at: &str) -> Result<(), SchemaError> {
        let Some(obj) = v.as_object() else {
            return Ok(());
        };
        for (k, val) in obj {
            let here = format!("{at}/{k}");
            if UNSUPPORTED.contains(&k.as_str()) {
                return Err(SchemaError(format!(
                    "the JSON schema keyword `{k}` (at {here}) is not supported by constrained decoding; remove it"
                )));
            }
            if k == "$ref"
                && let Some(r) = val.as_str()
                && !r.starts_with('#')
            {
                return Err(SchemaError(format!(
                    "only local `$ref`s (\"#/...\") are supported, not `{r}` (at {here})"
                )));
            }
            if SCHEMA_MAPS.contains(&k.as_str())
                && let Some(m) = val.as_object()
            {
                for (name, sub) in m {
                    walk(sub, &format!("{here}/{name}"))?;
                }
            } else if SCHEMA_ONE.contains(&k.as_str()) {
                walk(val, &here)?;
            } else if SCHEMA_LISTS.contains(&k.as_str())
                && let Some(list) = val.as_array()
            {
                for (i, sub) in list.iter().enumerate() {
                    walk(sub, &format!("{here}/{i}"))?;
                }
            }
        }
        Ok(())
    }
    walk(schema, "#")
}

/// The grammar for a JSON schema (after [`check_schema`] and the request's
/// [`Tally`](super::schema_limits::Tally)). CPU work that grows with the
/// schema: run it off the async runtime.
pub fn from_schema(schema: &serde_json::Value) -> Result<String, SchemaError> {
    check_schema(schema)?;
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

/// Any JSON object (`response_format: {"type": "json_object"}`).
pub fn any_object() -> Result<String, SchemaError> {
    from_schema(&serde_json::json!({"type": "object"}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert!(any_object().unwrap().contains("root ::="));
    }
}
