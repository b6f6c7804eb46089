//! Chat prompt rendering. The template comes from `--chat-template-file` or
//! the GGUF (`tokenizer.chat_template`) and is rendered with minijinja made
//! compatible with Hugging Face's runtime (`engine/jinja.rs`), as
//! text-generation-inference does. A template that exists but does not
//! compile is never silently replaced: start-up logs an error, `/v1/models`
//! names the fallback in use, and `--chat-template-file` is the way out.

use super::jinja;
use minijinja::value::Value;
use minijinja::{Environment, context};
use serde::Serialize;

/// One message as the template sees it: images already replaced by the
/// media marker, so `content` is a string (or absent on an assistant turn
/// that only calls tools).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TemplateMessage {
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// OpenAI-shaped calls of an assistant turn, arguments as parsed JSON
    /// (as transformers passes them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl TemplateMessage {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        TemplateMessage {
            role: role.to_string(),
            content: Some(content.into()),
            ..Default::default()
        }
    }
}

/// What a request may add to the template's context beyond `messages`.
#[derive(Debug, Clone, Default)]
pub struct TemplateExtras {
    /// Function definitions, in OpenAI's `tools` shape.
    pub tools: Option<serde_json::Value>,
    pub documents: Option<serde_json::Value>,
    /// `chat_template_kwargs` (e.g. `enable_thinking`), as llama-server takes them.
    pub kwargs: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("the chat template failed: {0}")]
pub struct TemplateError(pub String, pub bool);

impl TemplateError {
    fn failed(msg: String) -> Self {
        TemplateError(msg, false)
    }

    /// The rendering went past its [`RenderLimits`].
    pub fn too_big(&self) -> bool {
        self.1
    }
}

/// What one rendering may spend, from the context it must fit: a prompt
/// the context cannot hold is refused as soon as its rendering shows it,
/// not after it has taken gigabytes (a 7 MB body of short tool-call
/// strings rendered to 1 GB before).
#[derive(Debug, Clone, Copy)]
pub struct RenderLimits {
    /// minijinja's fuel: template instructions.
    pub fuel: u64,
    /// Bytes of the rendered prompt, fences and markers included.
    pub max_bytes: usize,
}

impl RenderLimits {
    /// A token is rarely more than 16 bytes of text, a fence under 100:
    /// 256 bytes a token, plus room for image markers.
    pub fn for_context(n_ctx: u32) -> Self {
        RenderLimits {
            fuel: 2_000_000 + 2_000 * u64::from(n_ctx),
            max_bytes: (4 << 20) + 256 * n_ctx as usize,
        }
    }
}

pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Where the template in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// `tokenizer.chat_template` of the model file.
    Gguf,
    /// `--chat-template-file`.
    File(String),
    /// ChatML, because the model has no template (`None`) or because its
    /// template does not compile (the error).
    ChatmlFallback(Option<String>),
}

impl TemplateOrigin {
    /// Short name for `/v1/models` and logs.
    pub fn name(&self) -> &'static str {
        match self {
            TemplateOrigin::Gguf => "gguf",
            TemplateOrigin::File(_) => "file",
            TemplateOrigin::ChatmlFallback(_) => "chatml_fallback",
        }
    }
}

pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    pub origin: TemplateOrigin,
    /// The template reads `content` only as a list of typed parts (as
    /// SmolVLM's does): string content is then passed as one text part,
    /// as llama.cpp's template runtime does.
    pub typed_content: bool,
    /// The tool-call format the template shows the model was trained on.
    pub tool_format: super::tools::ToolFormat,
    /// Whether the template renders `tools` at all; when it does not, the
    /// generic format's instructions go into the system message.
    pub renders_tools: bool,
    /// The thinking tags the template knows, if it is a reasoning model's.
    pub think: Option<crate::engine::reasoning::ThinkTags>,
    /// Whether thinking can be switched (the template reads `enable_thinking`).
    pub thinking_switch: bool,
    limits: RenderLimits,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .finish()
    }
}

impl ChatTemplate {
    /// The model's own template; ChatML when it has none or when it does
    /// not compile (logged as an error: the model then gets a prompt format
    /// it was not trained on).
    pub fn new(source: Option<String>, bos: String, eos: String) -> Self {
        let origin = match source {
            None => {
                tracing::warn!("the model has no chat template; using ChatML");
                TemplateOrigin::ChatmlFallback(None)
            }
            Some(src) => match jinja::environment(&src) {
                Ok(env) => return Self::with(env, bos, eos, TemplateOrigin::Gguf, &src),
                Err(e) => {
                    let e = error_chain(&e);
                    tracing::error!(
                        "the model's chat template does not compile ({e}); FALLING BACK TO ChatML, \
                         which this model was probably not trained on. Supply a working template \
                         with --chat-template-file"
                    );
                    TemplateOrigin::ChatmlFallback(Some(e))
                }
            },
        };
        let env = jinja::environment(CHATML).unwrap_or_else(|_| Environment::new());
        Self::with(env, bos, eos, origin, CHATML)
    }

    fn with(
        env: Environment<'static>,
        bos: String,
        eos: String,
        origin: TemplateOrigin,
        source: &str,
    ) -> Self {
        let mut t = ChatTemplate {
            env,
            bos,
            eos,
            origin,
            typed_content: false,
            tool_format: super::tools::ToolFormat::detect(source),
            renders_tools: false,
            think: crate::engine::reasoning::ThinkTags::detect(source),
            thinking_switch: source.contains("enable_thinking"),
            limits: RenderLimits::for_context(131_072),
        };
        t.env.set_fuel(Some(t.limits.fuel));
        t.typed_content = t.needs_typed_content();
        t.renders_tools = t.shows_tools();
        t
    }

    /// Bounds every rendering from now on.
    pub fn set_limits(&mut self, limits: RenderLimits) {
        self.limits = limits;
        self.env.set_fuel(Some(limits.fuel));
    }

    /// Renders a probe tool: does its name reach the prompt?
    fn shows_tools(&self) -> bool {
        const PROBE: &str = "tessera_probe_tool";
        let extras = TemplateExtras {
            tools: Some(serde_json::json!([{"type": "function", "function": {
                "name": PROBE, "description": "probe",
                "parameters": {"type": "object", "properties": {}}}}])),
            ..Default::default()
        };
        self.render_with(&[TemplateMessage::new("user", "hi")], &extras)
            .is_ok_and(|out| out.contains(PROBE))
    }

    /// Renders a probe both ways: typed when only the typed form shows it.
    fn needs_typed_content(&self) -> bool {
        const PROBE: &str = "tessera-probe-text";
        let shows = |content: serde_json::Value| {
            let messages = serde_json::json!([{"role": "user", "content": content}]);
            self.render_json(messages, &TemplateExtras::default())
                .is_ok_and(|out| out.contains(PROBE))
        };
        !shows(PROBE.into()) && shows(serde_json::json!([{"type": "text", "text": PROBE}]))
    }

    /// A user-supplied template: it must compile.
    pub fn from_file(path: &str, source: &str, bos: String, eos: String) -> Result<Self, String> {
        let env = jinja::environment(source).map_err(|e| {
            format!(
                "--chat-template-file {path} does not compile: {}",
                error_chain(&e)
            )
        })?;
        Ok(Self::with(
            env,
            bos,
            eos,
            TemplateOrigin::File(path.to_string()),
            source,
        ))
    }

    pub fn is_fallback(&self) -> bool {
        matches!(self.origin, TemplateOrigin::ChatmlFallback(_))
    }

    pub fn render(&self, messages: &[TemplateMessage]) -> Result<String, TemplateError> {
        self.render_with(messages, &TemplateExtras::default())
    }

    pub fn render_with(
        &self,
        messages: &[TemplateMessage],
        extras: &TemplateExtras,
    ) -> Result<String, TemplateError> {
        let mut json =
            serde_json::to_value(messages).map_err(|e| TemplateError::failed(e.to_string()))?;
        if self.typed_content
            && let Some(list) = json.as_array_mut()
        {
            for m in list {
                if let Some(c) = m.get_mut("content")
                    && let Some(text) = c.as_str()
                {
                    *c = serde_json::json!([{"type": "text", "text": text}]);
                }
            }
        }
        self.render_json(json, extras)
    }

    fn render_json(
        &self,
        messages: serde_json::Value,
        extras: &TemplateExtras,
    ) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| TemplateError::failed(error_chain(&e)))?;
        let base = context! {
            messages => Value::from_serialize(&messages),
            add_generation_prompt => true,
            bos_token => self.bos,
            eos_token => self.eos,
            tools => extras.tools.as_ref().map(Value::from_serialize),
            documents => extras.documents.as_ref().map(Value::from_serialize),
        };
        // Left wins: request kwargs add variables but never replace
        // `messages`, the special tokens or the generation prompt.
        let ctx = context! { ..base, ..Value::from_serialize(&extras.kwargs) };
        let max = self.limits.max_bytes;
        let mut out = Capped {
            bytes: Vec::new(),
            max,
            hit: false,
        };
        let rendered =
            jinja::with_output_limit(max, || tmpl.render_captured_to(ctx, &mut out).map(drop));
        match rendered {
            Ok(_) => String::from_utf8(out.bytes).map_err(|e| TemplateError::failed(e.to_string())),
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(TemplateError(
                "rendering it took more steps than a prompt that fits the context can need; shorten the conversation".into(),
                true,
            )),
            Err(_) if out.hit || jinja::output_limit_hit() => Err(TemplateError(
                format!("the rendered prompt passed {max} bytes: it takes at least more tokens than the context holds; shorten the conversation or the tools"),
                true,
            )),
            Err(e) => Err(TemplateError::failed(error_chain(&e))),
        }
    }
}

/// The rendered prompt, refusing to grow past `max` bytes.
struct Capped {
    bytes: Vec<u8>,
    max: usize,
    hit: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            self.hit = true;
            return Err(std::io::Error::other("the rendered prompt is too long"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// minijinja's error with its causes, on one line.
fn error_chain(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_chatml() {
        let t = ChatTemplate::new(Some(CHATML.into()), String::new(), String::new());
        let out = t.render(&[TemplateMessage::new("user", "hi")]).unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(t.origin, TemplateOrigin::Gguf);
    }

    #[test]
    fn broken_template_falls_back_and_says_why() {
        let t = ChatTemplate::new(Some("{% for %}".into()), String::new(), String::new());
        assert!(t.is_fallback());
        assert!(
            matches!(&t.origin, TemplateOrigin::ChatmlFallback(Some(e)) if e.contains("syntax"))
        );
        assert!(
            ChatTemplate::from_file("x.jinja", "{% for %}", String::new(), String::new()).is_err()
        );
    }

    #[test]
    fn kwargs_and_tools_reach_the_template() {
        let src = "{% if enable_thinking is defined and not enable_thinking %}no-think{% endif %}{% for t in tools %}{{ t.function.name }}{% endfor %}{{ add_generation_prompt }}";
        let t = ChatTemplate::new(Some(src.into()), String::new(), String::new());
        let mut extras = TemplateExtras {
            tools: Some(serde_json::json!([{"type": "function", "function": {"name": "f"}}])),
            ..Default::default()
        };
        extras.kwargs.insert("enable_thinking".into(), false.into());
        let out = t
            .render_with(&[TemplateMessage::new("user", "x")], &extras)
            .unwrap();
        assert_eq!(out, "no-thinkfTrue"); // Python prints booleans capitalised
    }
}
