//! Chat prompt rendering. The template comes from the GGUF
//! (`tokenizer.chat_template`) and is rendered with minijinja, as
//! text-generation-inference does; ChatML is the fallback when a model has
//! none or when its template does not compile.

use minijinja::{Environment, ErrorKind, context};
use serde::Serialize;

/// One message as the template sees it: images already replaced by the
/// media marker, so `content` is always a string.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateMessage {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the chat template failed: {0}")]
pub struct TemplateError(pub String);

pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    /// True when the GGUF template could not be used.
    pub is_fallback: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("is_fallback", &self.is_fallback)
            .finish()
    }
}

impl ChatTemplate {
    /// Compiles `source`; on failure (or `None`) falls back to ChatML.
    pub fn new(source: Option<String>, bos: String, eos: String) -> Self {
        if let Some(src) = source {
            match Self::compile(src) {
                Ok(env) => {
                    return ChatTemplate {
                        env,
                        bos,
                        eos,
                        is_fallback: false,
                    };
                }
                Err(e) => tracing::warn!("chat template does not compile ({e}); using ChatML"),
            }
        }
        let env = Self::compile(CHATML.to_string()).unwrap_or_else(|_| Environment::new());
        ChatTemplate {
            env,
            bos,
            eos,
            is_fallback: true,
        }
    }

    fn compile(source: String) -> Result<Environment<'static>, minijinja::Error> {
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, _> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source)?;
        Ok(env)
    }

    pub fn render(&self, messages: &[TemplateMessage]) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| TemplateError(e.to_string()))?;
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => self.bos,
            eos_token => self.eos,
        })
        .map_err(|e| TemplateError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_chatml() {
        let t = ChatTemplate::new(Some(CHATML.into()), String::new(), String::new());
        let out = t
            .render(&[TemplateMessage {
                role: "user",
                content: "hi".into(),
            }])
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(!t.is_fallback);
    }

    #[test]
    fn broken_template_falls_back() {
        let t = ChatTemplate::new(Some("{% for %}".into()), String::new(), String::new());
        assert!(t.is_fallback);
    }

    #[test]
    fn python_methods_and_raise_exception() {
        let src = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}{{ messages[0]['content'].strip() }}";
        let t = ChatTemplate::new(Some(src.into()), String::new(), String::new());
        let ok = t.render(&[TemplateMessage {
            role: "user",
            content: "  x ".into(),
        }]);
        assert_eq!(ok.unwrap(), "x");
        let err = t.render(&[TemplateMessage {
            role: "system",
            content: "x".into(),
        }]);
        assert!(err.unwrap_err().0.contains("user first"));
    }
}
