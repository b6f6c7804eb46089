//! What can stop a request before the engine sees it. The room knows no
//! HTTP: `api/error.rs` maps this to a dialect's envelope, once.

use super::template::TemplateError;
use crate::engine::EngineError;
use crate::vision::VisionError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PrepareError {
    /// The client can fix it: a 400 naming the field (`param`) and, where
    /// OpenAI has one, a machine-readable `code`.
    #[error("{message}")]
    Invalid {
        message: String,
        param: Option<String>,
        code: Option<&'static str>,
    },
    /// The engine refused or is not there (loading, full, timed out, ...).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl PrepareError {
    pub fn invalid(message: impl Into<String>) -> Self {
        PrepareError::Invalid {
            message: message.into(),
            param: None,
            code: None,
        }
    }

    /// Names the request field at fault (invalid requests only).
    pub fn param(mut self, at: impl Into<String>) -> Self {
        if let PrepareError::Invalid { param, .. } = &mut self {
            *param = Some(at.into());
        }
        self
    }

    pub fn code(mut self, c: &'static str) -> Self {
        if let PrepareError::Invalid { code, .. } = &mut self {
            *code = Some(c);
        }
        self
    }
}

impl From<TemplateError> for PrepareError {
    fn from(e: TemplateError) -> Self {
        if e.too_big() {
            return PrepareError::invalid(format!("the prompt is too long: {}", e.0))
                .param("messages")
                .code("context_length_exceeded");
        }
        PrepareError::invalid(format!("{e}; check the order and roles of `messages`"))
            .param("messages")
    }
}

/// An image error, located at the part that caused it.
pub fn image_error(e: VisionError, param: String) -> PrepareError {
    PrepareError::invalid(format!("{param}: {e}"))
        .param(param)
        .code("invalid_image")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_and_code_only_mark_invalid_requests() {
        let e = PrepareError::invalid("bad").param("n").code("x");
        assert!(matches!(
            e,
            PrepareError::Invalid { param: Some(ref p), code: Some("x"), .. } if p == "n"
        ));
        let e = PrepareError::from(EngineError::Timeout).param("n");
        assert!(matches!(e, PrepareError::Engine(EngineError::Timeout)));
    }
}
