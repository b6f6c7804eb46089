use serde::Serialize;
use utoipa::ToSchema;

/// OpenAI's error envelope: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and how to fix it.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, `server_error`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, when there is one (e.g. `messages[0].content[1]`).
    pub param: Option<String>,
    /// A machine-readable code, when there is one.
    pub code: Option<String>,
}
