//! A request's videos before any work: the parts' settings merged and
//! checked, and a video planned and priced from its container's header by
//! mtmd's own count (`video_path.rs` does the fetching and decoding).

use super::error::PrepareError;
use crate::engine::pieces::{PieceInput, Preprocessor};
use crate::openai::{MmProcessorKwargs, VideoOptions, VideoUsage};
use crate::video::probe::VideoHeader;
use crate::video::sample::{FramePlan, Sampling, plan};
use crate::video::{VideoError, VideoSettings, frame_size};
use crate::vision::budget::Grant;

/// A video part, with its options merged under the request's.
pub(super) struct VideoRef {
    pub(super) url: String,
    pub(super) options: VideoOptions,
    pub(super) param: String,
}

/// A video made ready: its pieces, the text replacing its marker, its
/// usage, and its share of the decode budget (held until the engine is
/// done with its pieces).
pub(super) struct PreparedVideo {
    pub(super) pieces: Vec<PieceInput>,
    pub(super) expansion: String,
    pub(super) usage: VideoUsage,
    pub(super) hold: Grant,
}

/// Bytes of encoder input per byte of a frame's RGB (one f32 per channel),
/// as for image pieces.
pub(super) const TENSOR_PER_RGB_BYTE: u64 = 4;

/// `mm_processor_kwargs`' video fields, for every video of the request.
pub(super) fn request_options(k: Option<&MmProcessorKwargs>) -> VideoOptions {
    k.map(|k| VideoOptions {
        fps: k.fps,
        max_frames: k.max_frames,
        max_tokens: k.video_max_tokens,
        max_pixels: k.frame_max_pixels,
    })
    .unwrap_or_default()
}

/// A zero or non-finite setting is a client's mistake.
pub(super) fn check_options(o: &VideoOptions, param: &str) -> Result<(), PrepareError> {
    let bad_fps = o
        .fps
        .is_some_and(|f| !(f.is_finite() && f > 0.0 && f <= 60.0));
    let zero = o.max_frames == Some(0) || o.max_tokens == Some(0) || o.max_pixels == Some(0);
    if bad_fps || zero {
        return Err(PrepareError::invalid(format!(
            "{param}: fps must be above 0 and at most 60; max_frames, max_tokens and max_pixels at least 1"
        ))
        .param(param.to_string()));
    }
    Ok(())
}

pub(super) fn video_error(e: VideoError, param: &str) -> PrepareError {
    let code = match e {
        VideoError::NoDecoder(_) => "videos_not_supported",
        VideoError::TooManyPixels { .. } | VideoError::TooLong { .. } => "video_too_large",
        _ => "invalid_video",
    };
    PrepareError::invalid(format!("{param}: {e}"))
        .param(param.to_string())
        .code(code)
}

/// A video's frames planned and priced from its header alone.
pub(super) struct Priced {
    pub(super) plan: FramePlan,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) merge: u32,
    piece_tokens: u32,
}

/// Why a video cannot be priced: the client's to fix.
pub(super) struct PriceError {
    message: String,
    code: &'static str,
}

impl PriceError {
    pub(super) fn param_at(self, param: &str) -> PrepareError {
        PrepareError::invalid(format!("{param}: {}", self.message))
            .param(param.to_string())
            .code(self.code)
    }
}

impl Priced {
    pub(super) fn rgb_bytes(&self) -> u64 {
        u64::from(self.plan.frames) * u64::from(self.width) * u64::from(self.height) * 3
    }

    pub(super) fn usage(&self, header: &VideoHeader) -> VideoUsage {
        let merge = self.merge.max(1);
        let pieces = self.plan.frames / merge;
        let timestamps = (0..pieces)
            .map(|p| {
                let first = p * merge;
                let sum: f64 = (first..first + merge).map(|i| self.plan.time(i)).sum();
                sum / f64::from(merge)
            })
            .collect();
        VideoUsage {
            duration: header.duration,
            width: header.width,
            height: header.height,
            frames: self.plan.frames,
            fps: self.plan.rate,
            frame_width: self.width,
            frame_height: self.height,
            frames_per_piece: merge,
            piece_tokens: self.piece_tokens,
            timestamps,
            tokens: pieces * self.piece_tokens,
        }
    }
}

/// Plans and prices a video: each frame's size by the family's rule, the
/// projector's temporal merge and a piece's price read off mtmd's count,
/// and the frames sampled within the video's token budget.
pub(super) fn price(
    header: &VideoHeader,
    o: &VideoOptions,
    s: &VideoSettings,
    profile: &crate::vision::ProjectorProfile,
    pre: &Preprocessor,
) -> Result<Priced, PriceError> {
    let (width, height) = frame_size(
        header.width,
        header.height,
        profile,
        // A request may ask for less than the server's caps, never more.
        o.max_pixels
            .map_or(s.frame_pixels, |p| p.min(s.frame_pixels)),
    );
    let unpriced = || PriceError {
        message: format!("the projector cannot take {width}x{height} frames"),
        code: "invalid_video",
    };
    let one = pre.count_frames(width, height, 1).ok_or_else(unpriced)?;
    let two = pre.count_frames(width, height, 2).ok_or_else(unpriced)?;
    // A projector that merges frames in time charges two as one.
    let (merge, piece_tokens) = if two == one { (2, one) } else { (1, one) };
    let mut max_frames = o.max_frames.map_or(s.max_frames, |f| f.min(s.max_frames));
    if let Some(budget) = o.max_tokens {
        let pieces = budget / piece_tokens.max(1);
        if pieces == 0 {
            return Err(PriceError {
                message: format!(
                    "max_tokens {budget} is below the price of one piece of this video ({piece_tokens} tokens for {merge} frame(s) at {width}x{height}); raise it or lower max_pixels"
                ),
                code: "video_budget_too_small",
            });
        }
        max_frames = max_frames.min(pieces.saturating_mul(merge));
    }
    let sampling = Sampling {
        fps: o.fps.unwrap_or(s.fps),
        max_frames,
        merge,
    };
    let plan = plan(header.duration, sampling).ok_or_else(|| PriceError {
        message: format!("max_frames must be at least {merge} for this model"),
        code: "invalid_video",
    })?;
    Ok(Priced {
        plan,
        width,
        height,
        merge,
        piece_tokens,
    })
}
