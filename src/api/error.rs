//! The one place where errors become HTTP responses in OpenAI's envelope.

use crate::engine::EngineError;
use crate::openai::{ErrorBody, ErrorEnvelope};
use crate::prepare::PrepareError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message).code("not_found")
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                message: self.message.clone(),
                kind: self.kind.to_string(),
                param: self.param.clone(),
                code: self.code.map(str::to_string),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.envelope())).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        match e {
            EngineError::Dead(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
                    .code("engine_stopped")
            }
            EngineError::Loading | EngineError::Unavailable(_) => {
                let mut err =
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
                        .code("model_not_ready");
                err.retry_after = Some(1);
                err
            }
            EngineError::QueueFull(_) => {
                let mut err =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message)
                        .code("rate_limit_exceeded");
                err.retry_after = Some(1);
                err
            }
            EngineError::PromptTooLong { .. } | EngineError::PromptFarTooLong { .. } => {
                ApiError::invalid(message)
                    .param("messages")
                    .code("context_length_exceeded")
            }
            EngineError::Image(_) => ApiError::invalid(message).code("invalid_image"),
            EngineError::Grammar(_) => ApiError::invalid(message).param("response_format"),
            EngineError::Timeout => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
                    .code("timeout")
            }
            EngineError::Internal(_) | EngineError::NonFiniteEncoderOutput => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
            }
        }
    }
}

impl From<PrepareError> for ApiError {
    fn from(e: PrepareError) -> Self {
        match e {
            PrepareError::Invalid {
                message,
                param,
                code,
            } => {
                let mut err = ApiError::invalid(message);
                err.param = param;
                err.code = code;
                err
            }
            PrepareError::Engine(e) => e.into(),
        }
    }
}
