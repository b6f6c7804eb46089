//! The model's output back into content and calls, incrementally: text is
//! passed on as it comes, except what may still turn into a call (the
//! start of a call marker is held back, a call is held until complete).
//! The same parser serves streaming and whole answers.

use super::ToolFormat;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Content(String),
    Call(ParsedCall),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCall {
    pub name: String,
    /// The arguments as JSON text (what OpenAI's `arguments` string holds).
    pub arguments: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before anything but whitespace (JSON formats decide here).
    Start,
    Text,
    /// Inside a call (or, for JSON formats, the whole answer).
    Call,
    /// The answer's calls are complete; the rest is ignored whitespace.
    Done,
}

pub struct ToolParser {
    format: ToolFormat,
    state: State,
    buf: String,
    calls: usize,
    /// Whitespace-only text, held until it is known whether it touches a
    /// call (then it is dropped: OpenAI sends no text around calls) or
    /// more text (then it goes out with it).
    blank: String,
}

const HERMES_OPEN: &str = "<tool_call>";
const HERMES_CLOSE: &str = "</tool_call>";
const MISTRAL_OPEN: &str = "[TOOL_CALLS]";
const PYTHON_TAG: &str = "<|python_tag|>";

impl ToolParser {
    pub fn new(format: ToolFormat) -> Self {
        ToolParser {
            format,
            state: State::Start,
            buf: String::new(),
            calls: 0,
            blank: String::new(),
        }
    }

    /// Calls parsed so far.
    pub fn calls(&self) -> usize {
        self.calls
    }

    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        self.drain(&mut out, false);
        self.tidy(out, false)
    }

    /// The end of the answer: whatever is held is resolved. `cut`: the
    /// token limit ended it, so a call still open is dropped, never
    /// returned as the template's markup.
    pub fn finish(&mut self, cut: bool) -> Vec<Piece> {
        if cut {
            self.drop_open_marker();
        }
        let mut out = Vec::new();
        self.drain(&mut out, true);
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            if self.state == State::Call {
                if !cut {
                    self.resolve(&rest, &mut out);
                }
            } else if self.state != State::Done {
                out.push(Piece::Content(rest));
            }
        }
        self.tidy(out, true)
    }

    /// The beginning of a call marker the limit cut off (`<to` of
    /// `<tool_call>`): the start of a call, not text.
    fn drop_open_marker(&mut self) {
        let open = match (self.state, self.format) {
            (State::Start | State::Text, ToolFormat::Hermes) => HERMES_OPEN,
            (State::Start | State::Text, ToolFormat::Mistral) => MISTRAL_OPEN,
            (State::Start, ToolFormat::Llama3 | ToolFormat::Generic) => PYTHON_TAG,
            _ => return,
        };
        let keep = crate::engine::text::partial_marker(&self.buf, open);
        self.buf.truncate(self.buf.len() - keep);
    }

    /// Drops whitespace-only text next to calls; other text keeps its
    /// whitespace. At the end, held whitespace stays only in an answer
    /// without calls.
    fn tidy(&mut self, pieces: Vec<Piece>, end: bool) -> Vec<Piece> {
        let mut out = Vec::with_capacity(pieces.len());
        for p in pieces {
            match p {
                Piece::Content(t) if t.trim().is_empty() => self.blank.push_str(&t),
                Piece::Content(t) => {
                    let mut text = std::mem::take(&mut self.blank);
                    text.push_str(&t);
                    out.push(Piece::Content(text));
                }
                call => {
                    self.blank.clear();
                    out.push(call);
                }
            }
        }
        if end && !self.blank.is_empty() {
            let blank = std::mem::take(&mut self.blank);
            if self.calls == 0 {
                out.push(Piece::Content(blank));
            }
        }
        out
    }

    fn drain(&mut self, out: &mut Vec<Piece>, end: bool) {
        loop {
            match self.state {
                State::Start => {
                    let t = self.buf.trim_start();
                    if t.is_empty() {
                        return;
                    }
                    let json_whole =
                        matches!(self.format, ToolFormat::Llama3 | ToolFormat::Generic);
                    if json_whole && (t.starts_with('{') || t.starts_with(PYTHON_TAG)) {
                        self.buf = t.trim_start_matches(PYTHON_TAG).to_string();
                        self.state = State::Call;
                    } else if json_whole && PYTHON_TAG.starts_with(t) && !end {
                        return; // maybe the tag, still arriving
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Text => {
                    let open = match self.format {
                        ToolFormat::Hermes => HERMES_OPEN,
                        ToolFormat::Mistral => MISTRAL_OPEN,
                        // A JSON answer decides at its first character.
                        _ => {
                            let all = std::mem::take(&mut self.buf);
                            push_content(out, all);
                            return;
                        }
                    };
                    if let Some(at) = self.buf.find(open) {
                        let before: String = self.buf.drain(..at + open.len()).collect();
                        push_content(out, before[..at].to_string());
                        self.state = State::Call;
                        continue;
                    }
                    // Hold back a tail that may be the marker's beginning.
                    let keep = if end {
                        0
                    } else {
                        crate::engine::text::partial_marker(&self.buf, open)
                    };
                    let cut = self.buf.len() - keep;
                    let text: String = self.buf.drain(..cut).collect();
                    push_content(out, text);
                    return;
                }
                State::Call => match self.format {
                    ToolFormat::Hermes => {
                        let Some(at) = self.buf.find(HERMES_CLOSE) else {
                            return;
                        };
                        let body: String = self.buf.drain(..at + HERMES_CLOSE.len()).collect();
                        self.resolve_hermes(&body[..at], out);
                        // Text between calls is whitespace in practice; keep
                        // anything else as content.
                        self.state = State::Text;
                    }
                    _ => {
                        let body = self.buf.trim();
                        if complete_json(body) {
                            let body = std::mem::take(&mut self.buf);
                            self.resolve(&body, out);
                            self.state = State::Done;
                        }
                        return;
                    }
                },
                State::Done => {
                    self.buf.clear();
                    return;
                }
            }
        }
    }

    fn resolve_hermes(&mut self, body: &str, out: &mut Vec<Piece>) {
        match call_from(body, "arguments") {
            Some(c) => {
                self.calls += 1;
                out.push(Piece::Call(c));
            }
            None => out.push(Piece::Content(format!("{HERMES_OPEN}{body}{HERMES_CLOSE}"))),
        }
    }

    /// A held call body, at its end or the answer's.
    fn resolve(&mut self, body: &str, out: &mut Vec<Piece>) {
        let calls = match self.format {
            ToolFormat::Hermes => {
                let body = body.trim_end_matches(HERMES_CLOSE);
                call_from(body, "arguments").map(|c| vec![c])
            }
            ToolFormat::Mistral => mistral_calls(body),
            ToolFormat::Llama3 => call_from(body, "parameters")
                .or_else(|| call_from(body, "arguments"))
                .map(|c| vec![c]),
            ToolFormat::Generic => match serde_json::from_str::<Value>(body.trim()) {
                Ok(Value::Object(o)) if o.contains_key("tool_calls") => {
                    o["tool_calls"].as_array().map(|a| {
                        a.iter()
                            .filter_map(|c| call_value(c, "arguments"))
                            .collect()
                    })
                }
                // A text answer; under a `response_format`, JSON written as text.
                Ok(Value::Object(o)) if o.contains_key("response") => {
                    let text = match &o["response"] {
                        Value::String(t) => t.clone(),
                        v => v.to_string(),
                    };
                    out.push(Piece::Content(text));
                    return;
                }
                _ => None,
            },
        };
        match calls {
            Some(calls) if !calls.is_empty() => {
                self.calls += calls.len();
                out.extend(calls.into_iter().map(Piece::Call));
            }
            // Not a call after all: the model's text, as written.
            _ => {
                let marker = match self.format {
                    ToolFormat::Hermes => HERMES_OPEN,
                    ToolFormat::Mistral => MISTRAL_OPEN,
                    _ => "",
                };
                out.push(Piece::Content(format!("{marker}{body}")));
            }
        }
    }
}

fn push_content(out: &mut Vec<Piece>, text: String) {
    if !text.is_empty() {
        out.push(Piece::Content(text));
    }
}

/// Whether `s` is one complete JSON value (an object or an array).
fn complete_json(s: &str) -> bool {
    (s.starts_with('{') || s.starts_with('[')) && serde_json::from_str::<Value>(s).is_ok()
}

fn call_from(body: &str, key: &str) -> Option<ParsedCall> {
    serde_json::from_str::<Value>(body.trim())
        .ok()
        .and_then(|v| call_value(&v, key))
}

/// `{"name": …, key: …}`; arguments given as an object or as JSON text.
fn call_value(v: &Value, key: &str) -> Option<ParsedCall> {
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = match v.get(key).or_else(|| v.get("arguments")) {
        None => "{}".to_string(),
        Some(Value::String(s)) if serde_json::from_str::<Value>(s).is_ok() => s.clone(),
        Some(a @ Value::Object(_)) => a.to_string(),
        Some(_) => return None,
    };
    Some(ParsedCall { name, arguments })
}

/// `[{"name":…,"arguments":…}, …]`, or the newer `name[ARGS]{…}` form.
fn mistral_calls(body: &str) -> Option<Vec<ParsedCall>> {
    let body = body.trim();
    if let Ok(Value::Array(list)) = serde_json::from_str::<Value>(body) {
        return list.iter().map(|c| call_value(c, "arguments")).collect();
    }
    let mut calls = Vec::new();
    for part in body.split(MISTRAL_OPEN) {
        let (name, args) = part.split_once("[ARGS]")?;
        let args: Value = serde_json::from_str(args.trim()).ok()?;
        calls.push(ParsedCall {
            name: name.trim().to_string(),
            arguments: args.to_string(),
        });
    }
    Some(calls)
}

#[cfg(test)]
mod tests;
