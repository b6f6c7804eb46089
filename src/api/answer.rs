//! The model's text read as an answer: thoughts apart (when the template
//! thinks), then tool calls out of the rest (when tools are offered), each
//! call given an id in the shape its format's template accepts back.

use crate::engine::reasoning::{Part, Splitter};
use crate::engine::tools::ToolFormat;
use crate::engine::tools::parse::{Piece, ToolParser};
use crate::openai::{FunctionCall, ToolCall, ToolKind};

pub enum Out {
    Reasoning(String),
    Content(String),
    /// The call's index in this answer, and the call.
    Call(u32, ToolCall),
}

pub struct AnswerReader {
    think: Option<Splitter>,
    tools: Option<(ToolParser, ToolFormat)>,
    /// Calls read so far.
    pub calls: u32,
}

impl AnswerReader {
    /// `None` when there is nothing to read out: plain text passes as is.
    pub fn new(think: Option<Splitter>, tools: Option<ToolFormat>) -> Option<Self> {
        if think.is_none() && tools.is_none() {
            return None;
        }
        Some(AnswerReader {
            think,
            tools: tools.map(|f| (ToolParser::new(f), f)),
            calls: 0,
        })
    }

    pub fn push(&mut self, text: &str) -> Vec<Out> {
        let parts = match self.think.as_mut() {
            Some(s) => s.push(text),
            None => vec![Part::Content(text.to_string())],
        };
        let mut out = Vec::new();
        self.route(parts, &mut out, false);
        out
    }

    pub fn finish(&mut self) -> Vec<Out> {
        let parts = self
            .think
            .as_mut()
            .map(Splitter::finish)
            .unwrap_or_default();
        let mut out = Vec::new();
        self.route(parts, &mut out, true);
        out
    }

    fn route(&mut self, parts: Vec<Part>, out: &mut Vec<Out>, end: bool) {
        let mut pieces = Vec::new();
        for p in parts {
            match p {
                Part::Reasoning(r) => out.push(Out::Reasoning(r)),
                Part::Content(c) => match self.tools.as_mut() {
                    Some((parser, _)) => pieces.extend(parser.push(&c)),
                    None => out.push(Out::Content(c)),
                },
            }
        }
        if end && let Some((parser, _)) = self.tools.as_mut() {
            pieces.extend(parser.finish());
        }
        for p in pieces {
            match p {
                Piece::Content(c) => out.push(Out::Content(c)),
                Piece::Call(c) => {
                    let format = self.tools.as_ref().map_or(ToolFormat::Generic, |t| t.1);
                    let index = self.calls;
                    self.calls += 1;
                    out.push(Out::Call(
                        index,
                        ToolCall {
                            id: format.call_id(),
                            kind: ToolKind::Function,
                            function: FunctionCall {
                                name: c.name,
                                arguments: c.arguments,
                            },
                        },
                    ));
                }
            }
        }
    }
}
