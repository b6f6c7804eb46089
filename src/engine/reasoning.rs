//! Thinking apart from the answer. Reasoning models write their thoughts
//! between tags (`<think>…</think>`, Magistral's `[THINK]…[/THINK]`) before
//! the answer; some templates open the tag themselves at the end of the
//! prompt. The splitter sends the thoughts to `reasoning_content` and the
//! rest to `content`, holding back only what may be the start of a tag.

/// A pair of thinking tags a template uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinkTags {
    pub open: &'static str,
    pub close: &'static str,
}

const TAGS: &[ThinkTags] = &[
    ThinkTags {
        open: "<think>",
        close: "</think>",
    },
    ThinkTags {
        open: "[THINK]",
        close: "[/THINK]",
    },
];

impl ThinkTags {
    /// The tags a chat template's source uses, if any.
    pub fn detect(template_source: &str) -> Option<Self> {
        TAGS.iter()
            .copied()
            .find(|t| template_source.contains(t.close))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Reasoning(String),
    Content(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before anything but whitespace: the tag may open here.
    Start,
    Thinking,
    /// Just after the thoughts: the blank line before the answer is dropped.
    AfterThought,
    Answer,
}

#[derive(Debug, Clone)]
pub struct Splitter {
    tags: ThinkTags,
    state: State,
    buf: String,
}

impl Splitter {
    /// `prompt_opened`: the rendered prompt ends inside an open tag, so
    /// the answer starts as thoughts.
    pub fn new(tags: ThinkTags, prompt_opened: bool) -> Self {
        Splitter {
            tags,
            state: if prompt_opened {
                State::Thinking
            } else {
                State::Start
            },
            buf: String::new(),
        }
    }

    /// Whether the text so far ends inside the thoughts (or the blank line
    /// after them): the token that produced it was thought.
    pub fn in_thought(&self) -> bool {
        matches!(self.state, State::Thinking | State::AfterThought)
    }

    /// Whether the answer proper has begun: nothing after this is thought.
    pub fn answering(&self) -> bool {
        self.state == State::Answer
    }

    /// Whether a rendered prompt leaves a thinking tag open.
    pub fn opened_by(tags: ThinkTags, prompt: &str) -> bool {
        match (prompt.rfind(tags.open), prompt.rfind(tags.close)) {
            (Some(o), Some(c)) => o > c,
            (Some(_), None) => true,
            _ => false,
        }
    }

    pub fn push(&mut self, text: &str) -> Vec<Part> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        self.drain(&mut out, false);
        out
    }

    pub fn finish(&mut self) -> Vec<Part> {
        let mut out = Vec::new();
        self.drain(&mut out, true);
        out
    }

    fn drain(&mut self, out: &mut Vec<Part>, end: bool) {
        loop {
            match self.state {
                State::Start => {
                    let t = self.buf.trim_start();
                    if t.starts_with(self.tags.open) {
                        let skip = self.buf.len() - t.len() + self.tags.open.len();
                        self.buf.drain(..skip);
                        self.state = State::Thinking;
                    } else if !end && self.tags.open.starts_with(t) {
                        return; // empty, or the tag still arriving
                    } else {
                        self.state = State::Answer;
                    }
                }
                State::Thinking => {
                    if let Some(at) = self.buf.find(self.tags.close) {
                        let thought: String = self.buf.drain(..at).collect();
                        self.buf.drain(..self.tags.close.len());
                        emit(out, Part::Reasoning(thought));
                        self.state = State::AfterThought;
                        continue;
                    }
                    let keep = if end {
                        0
                    } else {
                        crate::engine::text::partial_marker(&self.buf, self.tags.close)
                    };
                    let cut = self.buf.len() - keep;
                    let thought: String = self.buf.drain(..cut).collect();
                    emit(out, Part::Reasoning(thought));
                    return;
                }
                State::AfterThought => {
                    let rest = self.buf.trim_start().to_string();
                    self.buf = rest;
                    if self.buf.is_empty() {
                        return;
                    }
                    self.state = State::Answer;
                }
                State::Answer => {
                    let text = std::mem::take(&mut self.buf);
                    emit(out, Part::Content(text));
                    return;
                }
            }
        }
    }
}

fn emit(out: &mut Vec<Part>, p: Part) {
    let empty = match &p {
        Part::Reasoning(s) | Part::Content(s) => s.is_empty(),
    };
    if !empty {
        out.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THINK: ThinkTags = TAGS[0];

    fn run(text: &str, opened: bool, step: usize) -> (String, String) {
        let mut s = Splitter::new(THINK, opened);
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let mut n = step.min(rest.len());
            while !rest.is_char_boundary(n) {
                n += 1;
            }
            parts.extend(s.push(&rest[..n]));
            rest = &rest[n..];
        }
        parts.extend(s.finish());
        let (mut r, mut c) = (String::new(), String::new());
        for p in parts {
            match p {
                Part::Reasoning(t) => r.push_str(&t),
                Part::Content(t) => c.push_str(&t),
            }
        }
        (r, c)
    }

    #[test]
    fn thoughts_and_answer_in_any_split() {
        for step in [1, 3, 100] {
            assert_eq!(
                run("<think>\nhmm, é\n</think>\n\nThe answer.", false, step),
                ("\nhmm, é\n".into(), "The answer.".into())
            );
            assert_eq!(
                run("no thinking <think>x", false, step),
                ("".into(), "no thinking <think>x".into())
            );
            assert_eq!(
                run("still thinking</thi", true, step),
                ("still thinking</thi".into(), "".into())
            );
            assert_eq!(run("a</think>b", true, step), ("a".into(), "b".into()));
        }
    }

    #[test]
    fn each_token_is_thought_or_answer() {
        let mut s = Splitter::new(THINK, false);
        let thought: Vec<bool> = ["<think>", "a", "</thi", "nk>", "\n\n", "b", "</think>"]
            .iter()
            .map(|t| {
                s.push(t);
                s.in_thought()
            })
            .collect();
        assert_eq!(thought, [true, true, true, true, true, false, false]);
        assert!(s.answering());
        let mut s = Splitter::new(THINK, false);
        s.push("  ");
        assert!(!s.in_thought() && !s.answering(), "a tag may still open");
        s.push("Hello");
        assert!(!s.in_thought() && s.answering());
    }

    #[test]
    fn templates_and_prompts_are_read() {
        assert_eq!(ThinkTags::detect("x </think> y"), Some(THINK));
        assert_eq!(
            ThinkTags::detect("[THINK]a[/THINK]").map(|t| t.open),
            Some("[THINK]")
        );
        assert_eq!(ThinkTags::detect("plain"), None);
        assert!(Splitter::opened_by(
            THINK,
            "<|im_start|>assistant\n<think>\n"
        ));
        assert!(!Splitter::opened_by(
            THINK,
            "assistant\n<think>\n\n</think>\n\n"
        ));
        assert!(!Splitter::opened_by(THINK, "assistant\n"));
    }
}
