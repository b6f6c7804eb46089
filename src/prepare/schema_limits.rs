//! What a client's JSON schema may hold and cost before llama.cpp's
//! converter sees it, in one walk of the document. Keywords the converter
//! does not enforce are refused by name and place, never silently
//! ignored. The converter recurses through `$ref` chains on the caller's stack
//! (1,600 links overflowed a tokio worker) and takes cubic time in an
//! object's optional properties (800 took 1 s, 1,200 took 7 s), and the
//! grammar it writes is walked by the sampler at every step, so each of
//! these is capped here, in Rust, with a message naming the cap.
//!
//! The caps are per request: a request's tools are counted together.
//! OpenAI's structured outputs allow 5,000 properties and 1,000 enum
//! values in all; ours are no tighter for schemas a person writes.

use serde_json::Value;
use std::collections::HashMap;

/// A schema refused, and why (a message for the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

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

/// Schema objects in all (every property, item and branch is one).
pub const MAX_NODES: usize = 10_000;
/// Nesting, counting each `$ref` followed as one level.
pub const MAX_DEPTH: usize = 64;
/// Properties of one object.
pub const MAX_PROPERTIES: usize = 1_000;
/// Optional (not `required`) properties of one object: the converter's
/// time grows with the cube of this.
pub const MAX_OPTIONAL: usize = 100;
/// `enum` values and `const`s in all. The sampler's work per step grows
/// with the square of the values still open (fixture model: 8 tokens
/// took 61 ms at 1,000 values, 1.3 s at 5,000, 78 s at 40,000, and all of
/// it on the engine thread, between every client's tokens).
pub const MAX_ENUM_VALUES: usize = 1_000;
/// Characters of one `pattern`.
pub const MAX_PATTERN: usize = 1_000;
/// Bytes of the grammar the converter writes.
pub const MAX_GRAMMAR_BYTES: usize = 512 * 1024;

/// What a request's schemas have used of the caps so far.
#[derive(Debug, Default)]
pub struct Tally {
    nodes: usize,
    enum_values: usize,
}

impl Tally {
    /// Checks one schema document's keywords and counts it against the caps.
    pub fn add(&mut self, schema: &Value) -> Result<(), SchemaError> {
        self.walk(schema, "#", 0)?;
        Depth::new(schema).check()
    }

    /// The document as written (no `$ref` followed); `level` is bounded by
    /// the parser's nesting limit, so the recursion is.
    fn walk(&mut self, v: &Value, at: &str, level: usize) -> Result<(), SchemaError> {
        if level > MAX_DEPTH {
            return Err(too_deep(at));
        }
        let Some(obj) = v.as_object() else {
            return Ok(());
        };
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SchemaError(format!(
                "the JSON schemas of this request have more than {MAX_NODES} schema objects (at {at}); simplify them"
            )));
        }
        self.enum_values += obj
            .get("enum")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        self.enum_values += usize::from(obj.contains_key("const"));
        if self.enum_values > MAX_ENUM_VALUES {
            return Err(SchemaError(format!(
                "the JSON schemas of this request have more than {MAX_ENUM_VALUES} `enum` and `const` values (at {at}); use fewer"
            )));
        }
        if let Some(p) = obj.get("pattern").and_then(Value::as_str)
            && p.chars().count() > MAX_PATTERN
        {
            return Err(SchemaError(format!(
                "the `pattern` at {at} is longer than {MAX_PATTERN} characters; shorten it"
            )));
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            properties(obj, props.len(), at)?;
        }
        for (k, child) in obj {
            let here = format!("{at}/{k}");
            supported(k, child, &here)?;
            match child {
                Value::Object(m) if is_map(k) => {
                    for (name, sub) in m {
                        self.walk(sub, &format!("{here}/{name}"), level + 1)?;
                    }
                }
                Value::Array(list) if is_list(k) => {
                    for (i, sub) in list.iter().enumerate() {
                        self.walk(sub, &format!("{here}/{i}"), level + 1)?;
                    }
                }
                Value::Object(_) if is_one(k) => self.walk(child, &here, level + 1)?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Refuses a keyword the grammar cannot enforce, and a remote `$ref`,
/// naming where it is (a JSON pointer).
fn supported(k: &str, v: &Value, here: &str) -> Result<(), SchemaError> {
    if UNSUPPORTED.contains(&k) {
        return Err(SchemaError(format!(
            "the JSON schema keyword `{k}` (at {here}) is not supported by constrained decoding; remove it"
        )));
    }
    if k == "$ref"
        && let Some(r) = v.as_str()
        && !r.starts_with('#')
    {
        return Err(SchemaError(format!(
            "only local `$ref`s (\"#/...\") are supported, not `{r}` (at {here})"
        )));
    }
    Ok(())
}

fn properties(obj: &serde_json::Map<String, Value>, n: usize, at: &str) -> Result<(), SchemaError> {
    if n > MAX_PROPERTIES {
        return Err(SchemaError(format!(
            "the object at {at} has {n} properties, above the limit of {MAX_PROPERTIES}"
        )));
    }
    let required = obj
        .get("required")
        .and_then(Value::as_array)
        .map_or(0, |r| r.iter().filter(|x| x.is_string()).count());
    let optional = n.saturating_sub(required);
    if optional > MAX_OPTIONAL {
        return Err(SchemaError(format!(
            "the object at {at} has {optional} optional properties, above the limit of {MAX_OPTIONAL}; list more of them in `required`"
        )));
    }
    Ok(())
}

fn is_map(k: &str) -> bool {
    matches!(k, "properties" | "$defs" | "definitions")
}
fn is_one(k: &str) -> bool {
    matches!(k, "items" | "additionalProperties" | "additionalItems")
}
fn is_list(k: &str) -> bool {
    matches!(k, "oneOf" | "anyOf" | "allOf" | "prefixItems")
}

fn too_deep(at: &str) -> SchemaError {
    SchemaError(format!(
        "the JSON schema nests deeper than {MAX_DEPTH} levels (at {at}, counting each `$ref` followed); flatten it"
    ))
}

/// The deepest path through a schema with its local `$ref`s followed, as
/// the converter walks it. Each target's depth is computed once, so a
/// diamond of references costs its size, not its paths; a reference back
/// into its own chain (a recursive type) ends the path there.
struct Depth<'a> {
    root: &'a Value,
    memo: HashMap<&'a str, usize>,
    open: Vec<&'a str>,
}

impl<'a> Depth<'a> {
    fn new(root: &'a Value) -> Self {
        Depth {
            root,
            memo: HashMap::new(),
            open: Vec::new(),
        }
    }

    fn check(mut self) -> Result<(), SchemaError> {
        self.depth(self.root, 0).map(drop)
    }

    /// The levels below `v`, failing once `level` plus them passes the cap.
    fn depth(&mut self, v: &'a Value, level: usize) -> Result<usize, SchemaError> {
        if level > MAX_DEPTH {
            return Err(too_deep(self.open.last().copied().unwrap_or("#")));
        }
        let Some(obj) = v.as_object() else {
            return Ok(0);
        };
        let mut below = 0;
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            below = self.follow(r, level)?;
        }
        for (k, child) in obj {
            let subs: Box<dyn Iterator<Item = &'a Value>> = match child {
                Value::Object(m) if k == "properties" => Box::new(m.values()),
                Value::Array(list) if is_list(k) => Box::new(list.iter()),
                Value::Object(_) if is_one(k) => Box::new(std::iter::once(child)),
                _ => continue,
            };
            for sub in subs {
                below = below.max(self.depth(sub, level + 1)? + 1);
            }
        }
        Ok(below)
    }

    fn follow(&mut self, r: &'a str, level: usize) -> Result<usize, SchemaError> {
        if let Some(&d) = self.memo.get(r) {
            if level + 1 + d > MAX_DEPTH {
                return Err(too_deep(r));
            }
            return Ok(d + 1);
        }
        if self.open.contains(&r) {
            return Ok(0);
        }
        let Some(target) = r.strip_prefix('#').and_then(|p| self.root.pointer(p)) else {
            return Ok(0);
        };
        self.open.push(r);
        let d = self.depth(target, level + 1);
        self.open.pop();
        let d = d?;
        self.memo.insert(r, d);
        Ok(d + 1)
    }
}

/// `$defs.a0` -> `a1` -> ... -> `a{n}`, a string: the shape of the chain
/// that overflowed a worker's stack at 1,600 links (tests, fuzz seeds).
#[cfg(any(test, feature = "testing"))]
pub fn ref_chain(n: usize) -> Value {
    let mut defs = serde_json::Map::new();
    for i in 0..n {
        let next = serde_json::json!({"$ref": format!("#/$defs/a{}", i + 1)});
        defs.insert(format!("a{i}"), next);
    }
    defs.insert(format!("a{n}"), serde_json::json!({"type": "string"}));
    serde_json::json!({"$ref": "#/$defs/a0", "$defs": defs})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(s: &Value) -> Result<(), SchemaError> {
        Tally::default().add(s)
    }

    #[test]
    fn a_long_reference_chain_is_refused_by_name() {
        assert!(check(&ref_chain(MAX_DEPTH - 2)).is_ok());
        let e = check(&ref_chain(1_600)).unwrap_err();
        assert!(
            e.0.contains("deeper than 64") && e.0.contains("$ref"),
            "{e}"
        );
    }

    #[test]
    fn a_diamond_of_references_costs_its_size_not_its_paths() {
        // Each level refers to the next twice: 2^30 paths, 61 levels.
        let mut defs = serde_json::Map::new();
        for i in 0..30 {
            let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
            defs.insert(format!("d{i}"), json!({"anyOf": [next, next]}));
        }
        defs.insert("d30".into(), json!({"type": "integer"}));
        assert!(check(&json!({"$ref": "#/$defs/d0", "$defs": defs})).is_ok());
    }

    #[test]
    fn recursive_types_are_allowed() {
        let tree = json!({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}});
        assert!(check(&tree).is_ok());
    }

    #[test]
    fn optional_properties_enums_patterns_and_nodes_are_capped() {
        let props = |n: usize| -> serde_json::Map<String, Value> {
            (0..n)
                .map(|i| (format!("p{i}"), json!({"type": "string"})))
                .collect()
        };
        let names: Vec<String> = (0..800).map(|i| format!("p{i}")).collect();
        assert!(
            check(&json!({"type": "object", "properties": props(800), "required": names})).is_ok()
        );
        let e = check(&json!({"type": "object", "properties": props(800)})).unwrap_err();
        assert!(e.0.contains("800 optional properties"), "{e}");
        let e = check(&json!({"type": "object", "properties": props(1_001)})).unwrap_err();
        assert!(e.0.contains("1001 properties"), "{e}");
        let values: Vec<String> = (0..40_000).map(|i| format!("v{i}")).collect();
        let e = check(&json!({"enum": values})).unwrap_err();
        assert!(e.0.contains("1000 `enum`"), "{e}");
        let e = check(&json!({"type": "string", "pattern": "a".repeat(2_000)})).unwrap_err();
        assert!(e.0.contains("pattern"), "{e}");
        // The caps are per request: many small schemas add up.
        let mut tally = Tally::default();
        let one = json!({"type": "object", "properties": props(50), "required": names[..50]});
        let e = (0..300).try_for_each(|_| tally.add(&one)).unwrap_err();
        assert!(e.0.contains("more than 10000 schema objects"), "{e}");
    }
}
