//! The OpenAPI document, derived by utoipa from the real handlers and wire
//! types. `tessera openapi` prints it; `openapi/openapi.json` is the
//! committed copy, and a test fails when the two drift apart.

use crate::openai::*;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "OpenAI-compatible vision-language inference server on llama.cpp. Images are tiled and priced before they run; see usage.images.",
    ),
    paths(
        super::chat::chat_completions,
        super::chat::input_tokens,
        super::responses::responses,
        super::stored::get_response,
        super::stored::delete_response,
        super::stored::input_items,
        super::completions::completions,
        super::embeddings::embeddings,
        super::messages::messages,
        super::messages::count_tokens,
        super::transcriptions::transcriptions,
        super::transcriptions::translations,
        super::server::list_models,
        super::server::get_model,
        super::server::health,
        super::server::metrics,
    ),
    components(schemas(
        ChatCompletionRequest, MessageSchema, InstructionMessage, UserMessage, AssistantTurn,
        InstructionRole, UserRole, AssistantRole, TextContent, TextPart,
        MessageContent, ContentPart, ImageUrl, crate::openai::InputAudio, crate::openai::AudioUrl, crate::openai::AudioUsage,
        ResponseFormat, JsonSchemaFormat,
        ImageDetail, StopSequences, StreamOptions, ChatCompletion, Choice, AssistantMessage,
        FinishReason, Usage, PromptTokensDetails, CompletionTokensDetails, ImageUsage, ThumbnailUsage,
        ChatCompletionChunk, ChunkChoice, Delta, InputTokens, ModelList, Model,
        ModelCapabilities, EmbeddingsInfo, KvCacheWire, Architecture, ImagePricing, ChatTemplateInfo, BackendInfo, ErrorEnvelope, ErrorBody,
        SamplingDefaultsInfo, ChoiceLogprobs, TokenLogprob, TopLogprob,
        Tool, ToolKind, FunctionDef, ToolChoice, ToolChoiceMode, NamedToolChoice, FunctionName,
        ToolCall, FunctionCall, ToolMessage, ToolRole, ToolCallDelta, FunctionDelta,
        responses::ResponsesRequest, responses::ResponseInput, responses::ResponseObject, responses::OutputItem,
        responses::OutputText, responses::ReasoningText, responses::ResponseUsage,
        responses::InputTokensDetails, responses::OutputTokensDetails,
        responses::IncompleteDetails, responses::ResponseEvent,
        completions::CompletionRequest, completions::Completion, completions::CompletionChoice,
        completions::CompletionLogprobs,
        embeddings::EmbeddingsRequest, embeddings::EmbeddingList, embeddings::Embedding,
        embeddings::EmbeddingUsage,
        crate::anthropic::MessagesRequest, crate::anthropic::Message, crate::anthropic::MessageUsage,
        crate::anthropic::TokenCount, crate::anthropic::ErrorEnvelope, crate::anthropic::ErrorBody,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document this server serves: without any API key configured, no
/// route needs one, and the document says so (an empty security
/// requirement), so that clients and schema checkers do not expect a 401.
pub fn served(auth: bool) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if !auth {
        doc.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::default(),
        ]);
    }
    doc
}

/// The document as pretty JSON, newline-terminated (what the file holds).
pub fn json() -> String {
    let mut s = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
