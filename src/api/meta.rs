//! What every dialect's answer says about a request, in OpenAI's names:
//! the response's identity, finish reasons, log-probabilities and usage.
//! Shared by the whole answers (`choices.rs`) and the streams (`sse.rs`,
//! `responses_stream.rs`).

use crate::engine::logprobs::TokenLogprob;
use crate::engine::{FinishReason, PromptUsage};
use crate::openai::{
    ChoiceLogprobs, CompletionTokensDetails, FinishReason as WireFinish, ImageUsage,
    PromptTokensDetails, TopLogprob, Usage, VideoUsage,
};
use crate::prepare::tools::ToolFormat;

pub struct ResponseMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
    /// Per-image breakdown for `usage.images`.
    pub images: Vec<ImageUsage>,
    /// Per-video breakdown for `usage.videos`.
    pub videos: Vec<VideoUsage>,
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
        usage(prompt, completion_tokens, reasoning_tokens, self.media())
    }

    /// The request's images and videos, for its usage.
    pub(super) fn media(&self) -> (&[ImageUsage], &[VideoUsage]) {
        (&self.images, &self.videos)
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
    (images, videos): (&[ImageUsage], &[VideoUsage]),
) -> Usage {
    // The engine counts every media piece's cells; videos' are told apart
    // by their plan.
    let video_tokens: u32 = videos.iter().map(|v| v.tokens).sum();
    Usage {
        images: images.to_vec(),
        videos: videos.to_vec(),
        prompt_tokens: p.prompt_tokens,
        completion_tokens,
        completion_tokens_details: CompletionTokensDetails { reasoning_tokens },
        total_tokens: p.prompt_tokens + completion_tokens,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: p.cached_tokens,
            image_tokens: p.image_tokens.saturating_sub(video_tokens),
            video_tokens,
        },
    }
}
