//! Tool calling: which call format a model was trained on (read off its
//! chat template), the grammar that makes its calls valid JSON matching
//! each function's schema, and the parser that turns its output back into
//! OpenAI's `tool_calls` (`parse.rs`). Pure code, tested without a model.
//!
//! | format | written by the model | families |
//! | --- | --- | --- |
//! | `hermes` | `<tool_call>{"name":…,"arguments":…}</tool_call>` per call | Qwen2.5, Qwen3, Hermes |
//! | `llama3` | `{"name":…,"parameters":…}` as the whole answer | Llama 3.1–3.3 |
//! | `mistral` | `[TOOL_CALLS][{"name":…,"arguments":…}, …]` | Mistral, Pixtral |
//! | `generic` | `{"tool_calls":[…]}` or `{"response":"…"}` | any other template |

pub mod parse;

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    Hermes,
    Llama3,
    Mistral,
    Generic,
}

impl ToolFormat {
    /// The format a chat template's source shows it was trained on.
    pub fn detect(template_source: &str) -> Self {
        if template_source.contains("<tool_call>") {
            ToolFormat::Hermes
        } else if template_source.contains("[TOOL_CALLS]") {
            ToolFormat::Mistral
        } else if template_source.contains("<|python_tag|>")
            || (template_source.contains("<|start_header_id|>")
                && template_source.contains("\"parameters\""))
        {
            ToolFormat::Llama3
        } else {
            ToolFormat::Generic
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ToolFormat::Hermes => "hermes",
            ToolFormat::Llama3 => "llama3",
            ToolFormat::Mistral => "mistral",
            ToolFormat::Generic => "generic",
        }
    }

    /// The key holding a call's arguments in what the model writes.
    fn arguments_key(self) -> &'static str {
        match self {
            ToolFormat::Llama3 => "parameters",
            _ => "arguments",
        }
    }

    /// A call id in the shape the family's template accepts back: Mistral's
    /// templates insist on nine alphanumerics.
    pub fn call_id(self) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match self {
            ToolFormat::Mistral => id[..9].to_string(),
            _ => format!("call_{}", &id[..24]),
        }
    }
}

/// One function the client offers.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    /// JSON schema of the arguments (an object schema).
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model may answer in text or call tools.
    Auto,
    /// The model must call at least one tool.
    Required,
    /// The model must call this one.
    Named(String),
}

/// What the sampler needs: the grammar, its start rule, and for `auto` the
/// words that switch it on (a lazy grammar); none means it holds from the
/// first token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolGrammar {
    pub grammar: String,
    pub root: String,
    pub triggers: Vec<String>,
}

/// The start rule added on top of the schema converter's `root`.
const CALLS_RULE: &str = "tool-calls";

/// A grammar for the calls the model may write in `format`.
pub fn grammar(
    format: ToolFormat,
    tools: &[ToolSpec],
    choice: &ToolChoice,
    parallel: bool,
    answer: Option<&Value>,
) -> Result<ToolGrammar, crate::prepare::grammar::SchemaError> {
    let offered: Vec<&ToolSpec> = match choice {
        ToolChoice::Named(n) => tools.iter().filter(|t| &t.name == n).collect(),
        _ => tools.iter().collect(),
    };
    let key = format.arguments_key();
    let calls: Vec<Value> = offered
        .iter()
        .map(|t| {
            let mut props = serde_json::Map::new();
            props.insert("name".into(), json!({"const": t.name}));
            props.insert(key.into(), t.parameters.clone());
            json!({"type": "object", "properties": props, "required": ["name", key],
                   "additionalProperties": false})
        })
        .collect();
    let call = if calls.len() == 1 {
        calls[0].clone()
    } else {
        json!({"anyOf": calls})
    };
    let lazy = *choice == ToolChoice::Auto;
    // A typed answer (`response_format`) binds text answers; a forced
    // call is a call, so the format only matters when the model may choose.
    let answer = answer.filter(|_| lazy);
    if let Some(answer) = answer
        && format != ToolFormat::Generic
    {
        return with_answer(format, &call, answer, parallel);
    }
    if format == ToolFormat::Generic {
        let mut list = json!({"type": "array", "items": call, "minItems": 1});
        if !parallel {
            list["maxItems"] = json!(1);
        }
        let with_calls = json!({"type": "object", "properties": {"tool_calls": list},
                                "required": ["tool_calls"], "additionalProperties": false});
        let schema = if lazy {
            let text = answer.cloned().unwrap_or_else(|| json!({"type": "string"}));
            let (text, defs) = take_defs(text);
            let mut s = json!({"anyOf": [with_calls, {"type": "object", "properties": {"response": text},
                   "required": ["response"], "additionalProperties": false}]});
            if !defs.is_empty() {
                s["$defs"] = Value::Object(defs);
            }
            s
        } else {
            with_calls
        };
        // The whole answer is JSON, so the grammar holds from the start.
        return Ok(ToolGrammar {
            grammar: crate::prepare::grammar::from_schema(&schema)?,
            root: "root".into(),
            triggers: Vec::new(),
        });
    }
    let calls_grammar = crate::prepare::grammar::from_schema(&call)?;
    let (top, trigger) = match format {
        ToolFormat::Hermes => {
            let one = r#""<tool_call>\n" root "\n</tool_call>""#;
            let more = if parallel {
                r#" ( "\n" "<tool_call>\n" root "\n</tool_call>" )*"#
            } else {
                ""
            };
            (format!("{one}{more}"), "<tool_call>")
        }
        ToolFormat::Mistral => {
            let more = if parallel { r#" ( "," root )*"# } else { "" };
            (
                format!(r#""[TOOL_CALLS]" "[" root{more} "]""#),
                "[TOOL_CALLS]",
            )
        }
        // One call, the whole answer.
        _ => ("root".to_string(), "{\"name\""),
    };
    Ok(ToolGrammar {
        grammar: format!("{CALLS_RULE} ::= {top}\n{calls_grammar}"),
        root: CALLS_RULE.into(),
        triggers: if lazy {
            vec![trigger.to_string()]
        } else {
            Vec::new()
        },
    })
}

/// Calls in `format`, or else an answer matching `answer`: one strict
/// grammar, from the first token. Both schemas go into one document as
/// `$defs` (the answer's own definitions hoisted beside them), so the
/// converter names their rules after the definitions and the call
/// markers can wrap one of them.
fn with_answer(
    format: ToolFormat,
    call: &Value,
    answer: &Value,
    parallel: bool,
) -> Result<ToolGrammar, crate::prepare::grammar::SchemaError> {
    let (answer, mut defs) = take_defs(answer.clone());
    let (call, call_defs) = take_defs(call.clone());
    for (k, v) in call_defs {
        if defs.get(&k).is_some_and(|d| *d != v) {
            return Err(crate::prepare::grammar::SchemaError(format!(
                "`$defs/{k}` means one thing in response_format and another in a tool's parameters; rename one"
            )));
        }
        defs.insert(k, v);
    }
    defs.insert(CALL_DEF.into(), call);
    defs.insert(ANSWER_DEF.into(), answer);
    let doc = json!({"anyOf": [{"$ref": format!("#/$defs/{CALL_DEF}")},
                               {"$ref": format!("#/$defs/{ANSWER_DEF}")}],
                     "$defs": defs});
    let rules = crate::prepare::grammar::from_schema(&doc)?;
    // The converter's `root` is the union of the two definitions' rules;
    // their names vary by version, so they are read off it. A bare
    // primitive answer (a plain string) is inlined, not named: refused.
    let union = rules
        .lines()
        .find_map(|l| l.strip_prefix("root ::= "))
        .map(|r| r.split(" | ").collect::<Vec<_>>());
    let named =
        |n: &&str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let (call_rule, answer_rule) = match union.as_deref() {
        Some([c, a]) if named(c) && named(a) => (c.to_string(), a.to_string()),
        _ => {
            return Err(crate::prepare::grammar::SchemaError(
                "with tools, a response_format schema must describe an object or an array".into(),
            ));
        }
    };
    let calls = match format {
        ToolFormat::Hermes => {
            let one = format!(r#""<tool_call>\n" {call_rule} "\n</tool_call>""#);
            let more = if parallel {
                format!(r#" ( "\n" {one} )*"#)
            } else {
                String::new()
            };
            format!("{one}{more}")
        }
        ToolFormat::Mistral => {
            let more = if parallel {
                format!(r#" ( "," {call_rule} )*"#)
            } else {
                String::new()
            };
            format!(r#""[TOOL_CALLS]" "[" {call_rule}{more} "]""#)
        }
        _ => call_rule,
    };
    Ok(ToolGrammar {
        grammar: format!("{CALLS_RULE} ::= {calls} | {answer_rule}\n{rules}"),
        root: CALLS_RULE.into(),
        triggers: Vec::new(),
    })
}

const CALL_DEF: &str = "tessera-call";
const ANSWER_DEF: &str = "tessera-answer";

/// A schema without its `$defs` (or `definitions`), and those definitions.
fn take_defs(mut schema: Value) -> (Value, serde_json::Map<String, Value>) {
    let mut defs = serde_json::Map::new();
    if let Value::Object(o) = &mut schema {
        for key in ["$defs", "definitions"] {
            if let Some(Value::Object(d)) = o.remove(key) {
                defs.extend(d);
            }
        }
    }
    (schema, defs)
}

/// The system text that teaches a template without tool support the
/// generic format (as llama.cpp's generic handler does).
pub fn generic_instructions(tools: &[ToolSpec]) -> String {
    let list: Vec<Value> = tools
        .iter()
        .map(|t| json!({"name": t.name, "parameters": t.parameters}))
        .collect();
    format!(
        "You can call these tools:\n{}\nTo call tools, answer with JSON only: \
         {{\"tool_calls\": [{{\"name\": <tool name>, \"arguments\": <arguments object>}}]}}. \
         To answer in text, answer with {{\"response\": <your answer>}}.",
        serde_json::to_string_pretty(&list).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> Vec<ToolSpec> {
        vec![
            ToolSpec {
                name: "get_weather".into(),
                parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
            },
            ToolSpec {
                name: "get_time".into(),
                parameters: json!({"type": "object", "properties": {}}),
            },
        ]
    }

    #[test]
    fn formats_are_read_off_templates() {
        assert_eq!(
            ToolFormat::detect("{{ '<tool_call>' }}"),
            ToolFormat::Hermes
        );
        assert_eq!(ToolFormat::detect("[TOOL_CALLS]"), ToolFormat::Mistral);
        assert_eq!(ToolFormat::detect("<|python_tag|>"), ToolFormat::Llama3);
        assert_eq!(
            ToolFormat::detect(crate::prepare::template::CHATML),
            ToolFormat::Generic
        );
        assert_eq!(ToolFormat::Mistral.call_id().len(), 9);
        assert!(ToolFormat::Hermes.call_id().starts_with("call_"));
    }

    #[test]
    fn grammars_wrap_the_schema_converter() {
        let tools = weather();
        let g = grammar(ToolFormat::Hermes, &tools, &ToolChoice::Auto, true, None).unwrap();
        assert_eq!(g.root, "tool-calls");
        assert_eq!(g.triggers, vec!["<tool_call>"]);
        assert!(
            g.grammar
                .starts_with("tool-calls ::= \"<tool_call>\\n\" root")
        );
        assert!(g.grammar.contains("get_weather") && g.grammar.contains("get_time"));
        let g = grammar(
            ToolFormat::Mistral,
            &tools,
            &ToolChoice::Named("get_time".into()),
            false,
            None,
        )
        .unwrap();
        assert!(g.triggers.is_empty());
        assert!(!g.grammar.contains("get_weather"));
        let g = grammar(
            ToolFormat::Generic,
            &tools,
            &ToolChoice::Required,
            true,
            None,
        )
        .unwrap();
        assert_eq!(g.root, "root");
        assert!(g.grammar.contains("tool_calls") && !g.grammar.contains("response"));
    }

    #[test]
    fn a_typed_answer_joins_the_calls_unless_a_call_is_forced() {
        let tools = weather();
        // pydantic-style: the answer's own `$defs`, referenced from inside.
        let answer = json!({"type": "object", "properties": {"city": {"$ref": "#/$defs/City"}},
            "required": ["city"], "$defs": {"City": {"type": "object",
            "properties": {"name": {"type": "string"}}, "required": ["name"]}}});
        for format in [ToolFormat::Hermes, ToolFormat::Mistral, ToolFormat::Llama3] {
            let g = grammar(format, &tools, &ToolChoice::Auto, true, Some(&answer)).unwrap();
            assert!(
                g.triggers.is_empty(),
                "{format:?}: strict from the first token"
            );
            let top = g.grammar.lines().next().unwrap();
            assert!(
                top.starts_with("tool-calls ::= ") && top.contains(" | "),
                "{top}"
            );
            assert!(g.grammar.contains("tessera-answer") && g.grammar.contains("City"));
        }
        let g = grammar(
            ToolFormat::Generic,
            &tools,
            &ToolChoice::Auto,
            true,
            Some(&answer),
        )
        .unwrap();
        assert!(g.grammar.contains("response") && g.grammar.contains("City"));
        // A forced call ignores the answer's format.
        let g = grammar(
            ToolFormat::Hermes,
            &tools,
            &ToolChoice::Required,
            true,
            Some(&answer),
        )
        .unwrap();
        assert!(!g.grammar.contains("tessera-answer"));
        // A bare primitive answer works too (the converter names it).
        let g = grammar(
            ToolFormat::Hermes,
            &tools,
            &ToolChoice::Auto,
            true,
            Some(&json!({"type": "string"})),
        );
        assert!(g.unwrap().grammar.lines().next().unwrap().contains(" | "));
    }
}
