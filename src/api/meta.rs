//! What every dialect's answer says about a request, in OpenAI's names:
//! the response's identity, finish reasons, log-probabilities and usage.
//! Shared by the whole answers (`choices.rs`) and the streams (`sse.rs`,
//! `responses_stream.rs`).

use crate::engine::logprobs::TokenLogprob;
use crate::engine::{FinishReason, PromptUsage};
use crate::openai::{
    ChoiceLogprobs, CompletionTokensDetails, FinishReason as WireFinish, MediaUsage,
    PromptTokensDetails, TopLogprob, Usage,
};
use crate::prepare::tools::ToolFormat;

pub struct ResponseMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
    /// Per-image, per-video and per-clip breakdown for `usage`.
    pub media: MediaUsage,
    /// The client asked for `logprobs`.
    pub logprobs: bool,
    /// Tools are offered: read calls out of the answer in this format.
    pub tools: Option<ToolFormat>,
    pub log: super::log::RequestLog,
}

impl ResponseMeta {
    /// The request's end logged, and its usage: what the one-choice streams
    /// (Responses, Messages) do when their answer finishes.
    pub(super) fn finished(
        &self,
        reason: FinishReason,
        prompt: PromptUsage,
        (completion_tokens, reasoning_tokens): (u32, u32),
    ) -> Usage {
        self.log.finish(finish_name(reason), completion_tokens);
        usage(prompt, completion_tokens, reasoning_tokens, &self.media)
    }
}

pub(super) fn finish_name(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

pub(super) fn wire_finish(r: FinishReason) -> WireFinish {
    match r {
        FinishReason::Stop => WireFinish::Stop,
        FinishReason::Length => WireFinish::Length,
    }
}

fn wire_logprob(t: TokenLogprob) -> crate::openai::TokenLogprob {
    crate::openai::TokenLogprob {
        token: t.token,
        logprob: t.logprob,
        bytes: t.bytes,
        top_logprobs: t
            .top
            .into_iter()
            .map(|t| TopLogprob {
                token: t.token,
                logprob: t.logprob,
                bytes: t.bytes,
            })
            .collect(),
    }
}

/// `choices[].logprobs`: present (possibly empty) when asked, else null.
pub(super) fn choice_logprobs(
    asked: bool,
    tokens: &mut Vec<TokenLogprob>,
) -> Option<ChoiceLogprobs> {
    asked.then(|| ChoiceLogprobs {
        content: tokens.drain(..).map(wire_logprob).collect(),
        refusal: None,
    })
}

pub(super) fn usage(
    p: PromptUsage,
    completion_tokens: u32,
    reasoning_tokens: u32,
    media: &MediaUsage,
) -> Usage {
    // The engine counts every media piece's cells; videos' and clips' are
    // told apart by their plans.
    let (video_tokens, audio_tokens) = (media.video_tokens(), media.audio_tokens());
    Usage {
        images: media.images.clone(),
        videos: media.videos.clone(),
        audio: media.audio.clone(),
        prompt_tokens: p.prompt_tokens,
        completion_tokens,
        completion_tokens_details: CompletionTokensDetails { reasoning_tokens },
        total_tokens: p.prompt_tokens + completion_tokens,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: p.cached_tokens,
            image_tokens: p.image_tokens.saturating_sub(video_tokens + audio_tokens),
            video_tokens,
            audio_tokens,
        },
    }
}
