use super::*;

/// Feeds `text` in pieces of `step` bytes (on char boundaries).
fn run(format: ToolFormat, text: &str, step: usize) -> (String, Vec<ParsedCall>) {
    run_to(format, text, step, false)
}

/// As [`run`]; `cut`: the token limit ended the answer.
fn run_to(format: ToolFormat, text: &str, step: usize, cut: bool) -> (String, Vec<ParsedCall>) {
    let mut p = ToolParser::new(format);
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut n = step.min(rest.len());
        while !rest.is_char_boundary(n) {
            n += 1;
        }
        pieces.extend(p.push(&rest[..n]));
        rest = &rest[n..];
    }
    pieces.extend(p.finish(cut));
    let mut content = String::new();
    let mut calls = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Content(c) => content.push_str(&c),
            Piece::Call(c) => calls.push(c),
        }
    }
    (content, calls)
}

fn call(name: &str, args: &str) -> ParsedCall {
    ParsedCall {
        name: name.into(),
        arguments: args.into(),
    }
}

#[test]
fn hermes_calls_between_text_in_any_split() {
    let text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
    for step in [1, 2, 5, 1000] {
        let (content, calls) = run(ToolFormat::Hermes, text, step);
        assert_eq!(content.trim(), "Let me check.", "step {step}");
        assert_eq!(
            calls,
            vec![
                call("get_weather", r#"{"city":"Paris"}"#),
                call("get_time", "{}")
            ]
        );
    }
    // A marker that never completes is text; so is a malformed call.
    assert_eq!(run(ToolFormat::Hermes, "a <tool_", 1).0, "a <tool_");
    let (c, calls) = run(ToolFormat::Hermes, "<tool_call>not json</tool_call>", 3);
    assert!(calls.is_empty());
    assert_eq!(c, "<tool_call>not json</tool_call>");
    // An answer that ends inside a call without the limit: the text as
    // written. Cut off by max_tokens: the open call is dropped, no markup.
    let open = "<tool_call>{\"name\": \"f\", \"argu";
    let (c, calls) = run(ToolFormat::Hermes, open, 4);
    assert!(calls.is_empty() && c.starts_with("<tool_call>{"));
    let two =
        format!("<tool_call>\n{{\"name\": \"f\", \"arguments\": {{}}}}\n</tool_call>\n{open}");
    for step in [1, 3, 1000] {
        assert_eq!(
            run_to(ToolFormat::Hermes, open, step, true),
            (String::new(), vec![])
        );
        let (c, calls) = run_to(ToolFormat::Hermes, &two, step, true);
        assert_eq!(
            (c.as_str(), calls),
            ("", vec![call("f", "{}")]),
            "step {step}"
        );
    }
}

#[test]
fn whitespace_next_to_calls_is_not_text() {
    let text = "\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n\n<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>\n";
    for step in [1, 2, 7, 1000] {
        let mut p = ToolParser::new(ToolFormat::Hermes);
        let mut pieces = Vec::new();
        for chunk in text.as_bytes().chunks(step) {
            pieces.extend(p.push(std::str::from_utf8(chunk).unwrap()));
        }
        pieces.extend(p.finish(false));
        assert_eq!(
            pieces,
            vec![Piece::Call(call("a", "{}")), Piece::Call(call("b", "{}"))],
            "step {step}"
        );
    }
    // Text keeps its own whitespace; an answer of only whitespace stays.
    assert_eq!(run(ToolFormat::Hermes, "a\n\nb", 1).0, "a\n\nb");
    assert_eq!(run(ToolFormat::Hermes, " \n", 1).0, " \n");
}

#[test]
fn mistral_both_forms() {
    let (c, calls) = run(
        ToolFormat::Mistral,
        "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]",
        3,
    );
    assert_eq!(c, "");
    assert_eq!(calls, vec![call("a", r#"{"x":1}"#), call("b", "{}")]);
    let (_, calls) = run(ToolFormat::Mistral, "[TOOL_CALLS]a[ARGS]{\"x\": 1}", 2);
    assert_eq!(calls, vec![call("a", r#"{"x":1}"#)]);
    assert_eq!(
        run(ToolFormat::Mistral, "just text [TOOL", 2).0,
        "just text [TOOL"
    );
}

#[test]
fn json_formats_decide_on_the_first_character() {
    let (c, calls) = run(
        ToolFormat::Llama3,
        " {\"name\": \"get_time\", \"parameters\": {\"tz\": \"UTC\"}}",
        2,
    );
    assert_eq!(
        (c.as_str(), calls),
        ("", vec![call("get_time", r#"{"tz":"UTC"}"#)])
    );
    let (c, calls) = run(
        ToolFormat::Llama3,
        "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}",
        3,
    );
    assert_eq!((c.as_str(), calls), ("", vec![call("f", "{}")]));
    assert_eq!(
        run(ToolFormat::Llama3, "Hello {there}", 1).0,
        "Hello {there}"
    );
    let (c, calls) = run(
        ToolFormat::Generic,
        "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\": [1]}}]}",
        4,
    );
    assert_eq!((c.as_str(), calls), ("", vec![call("f", r#"{"a":[1]}"#)]));
    let (c, calls) = run(ToolFormat::Generic, "{\"response\": \"hi there\"}", 4);
    assert_eq!((c.as_str(), calls.len()), ("hi there", 0));
    // String-encoded arguments pass through as they are.
    let (_, calls) = run(
        ToolFormat::Generic,
        r#"{"tool_calls": [{"name": "f", "arguments": "{\"a\": 1}"}]}"#,
        1000,
    );
    assert_eq!(calls, vec![call("f", r#"{"a": 1}"#)]);
}
