//! What can go wrong in the engine, as its clients see it.

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("the model is still loading; retry shortly")]
    Loading,
    #[error("the model failed to load: {0}")]
    Unavailable(String),
    #[error("the inference engine stopped ({0}); the server must be restarted")]
    Dead(String),
    #[error("the server is busy: {0} requests are already queued; retry shortly")]
    QueueFull(usize),
    #[error(
        "the prompt takes {prompt_tokens} tokens but the context holds {n_ctx}; shorten the conversation, send fewer or smaller images, or start the server with a larger --ctx-size"
    )]
    PromptTooLong { prompt_tokens: u32, n_ctx: u32 },
    /// Known from the byte length alone, before tokenizing.
    #[error(
        "the prompt takes at least {at_least} tokens but the context holds {n_ctx}; shorten the conversation or start the server with a larger --ctx-size"
    )]
    PromptFarTooLong { at_least: u32, n_ctx: u32 },
    #[error("the image could not be processed by the vision encoder: {0}")]
    Image(String),
    #[error("the response_format grammar was rejected by llama.cpp: {0}")]
    Grammar(String),
    #[error("the request timed out (--request-timeout) before it could finish")]
    Timeout,
    #[error("internal engine error: {0}")]
    Internal(String),
    /// The vision encoder gave NaN or infinity: the engine may load the
    /// projector again and retry once before reporting it.
    #[error(
        "internal engine error: the vision encoder produced non-finite output (NaN or infinity) for this image; a llama.cpp fault of some projectors (see the README, \"Non-finite output\"); retrying on a restarted server may help"
    )]
    NonFiniteEncoderOutput,
}
