//! The model's answer text (thoughts already split off by the engine) read
//! for tool calls when tools are offered, each call given an id in the
//! shape its format's template accepts back.

use crate::openai::{FunctionCall, ToolCall, ToolKind};
use crate::prepare::tools::ToolFormat;
use crate::prepare::tools::parse::{Piece, ToolParser};

pub enum Out {
    Reasoning(String),
    Content(String),
    /// The call's index in this answer, and the call.
    Call(u32, ToolCall),
}

pub struct AnswerReader {
    tools: (ToolParser, ToolFormat),
    /// Calls read so far.
    pub calls: u32,
}

/// Answer text as outputs: read for tool calls when tools are offered,
/// passed on as content when not.
pub fn read(reader: Option<&mut AnswerReader>, text: String) -> Vec<Out> {
    match reader {
        Some(r) => r.push(&text),
        None => vec![Out::Content(text)],
    }
}

impl AnswerReader {
    /// `None` when no tools are offered: the text passes as it is.
    pub fn new(tools: Option<ToolFormat>) -> Option<Self> {
        tools.map(|f| AnswerReader {
            tools: (ToolParser::new(f), f),
            calls: 0,
        })
    }

    pub fn push(&mut self, text: &str) -> Vec<Out> {
        let pieces = self.tools.0.push(text);
        self.route(pieces)
    }

    /// The end of the answer; `cut`: the token limit ended it.
    pub fn finish(&mut self, cut: bool) -> Vec<Out> {
        let pieces = self.tools.0.finish(cut);
        self.route(pieces)
    }

    fn route(&mut self, pieces: Vec<Piece>) -> Vec<Out> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Content(c) => out.push(Out::Content(c)),
                Piece::Call(c) => {
                    let format = self.tools.1;
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
        out
    }
}
