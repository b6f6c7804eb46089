//! A request's videos, from their URLs to the pieces the encoder gets:
//! bytes fetched under the image fetch policy, the container probed and
//! checked, the frames planned and priced by mtmd's own count, then
//! decoded by ffmpeg out of process within the decode budget.

use super::Preparer;
use super::error::PrepareError;
use crate::engine::ModelInfo;
use crate::engine::pieces::{PieceInput, Preprocessor};
use crate::openai::{MmProcessorKwargs, VideoOptions, VideoUsage};
use crate::video::decode::{FrameRequest, frames};
use crate::video::probe::{HeaderLimits, VideoHeader, probe};
use crate::video::sample::{FramePlan, Sampling, plan};
use crate::video::{VideoError, VideoSettings, frame_size, prompt};
use crate::vision::budget::Grant;
use crate::vision::{ImageSource, VisionError, remote, source};

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
const TENSOR_PER_RGB_BYTE: u64 = 4;

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

fn video_error(e: VideoError, param: &str) -> PrepareError {
    let code = match e {
        VideoError::NoDecoder(_) => "videos_not_supported",
        VideoError::TooManyPixels { .. } | VideoError::TooLong { .. } => "video_too_large",
        _ => "invalid_video",
    };
    PrepareError::invalid(format!("{param}: {e}"))
        .param(param.to_string())
        .code(code)
}

/// The fetch policy's errors speak of images; these are a video's.
fn source_error(e: VisionError, param: &str) -> PrepareError {
    let text = e
        .to_string()
        .replace("image_url", "video_url")
        .replace("image", "video");
    PrepareError::invalid(format!("{param}: {text}"))
        .param(param.to_string())
        .code("invalid_video")
}

impl Preparer {
    /// Every video of a request, in order.
    pub(super) async fn videos(
        &self,
        info: &ModelInfo,
        refs: Vec<VideoRef>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Vec<PreparedVideo>, PrepareError> {
        let Some(first) = refs.first() else {
            return Ok(Vec::new());
        };
        let (Some(profile), Some(pre)) = (info.profile.filter(|_| info.vision), &info.preprocessor)
        else {
            return Err(PrepareError::invalid(
                "this model cannot see videos: it was started without a vision projector (--mmproj)",
            )
            .param(first.param.clone())
            .code("videos_not_supported"));
        };
        let settings = &self.limits.video;
        if refs.len() > settings.max_videos {
            return Err(PrepareError::invalid(format!(
                "the request has {} videos, above the limit of {} (--max-videos)",
                refs.len(),
                settings.max_videos
            ))
            .param("messages"));
        }
        let rule = prompt::frame_text(info.projector.as_deref());
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let v = self.video(&r, &profile, pre, deadline).await?;
            let (pieces, usage, hold) = v;
            let expansion = prompt::expansion(rule, &info.media_marker, &usage.timestamps);
            out.push(PreparedVideo {
                pieces,
                expansion,
                usage,
                hold,
            });
        }
        Ok(out)
    }

    async fn video(
        &self,
        r: &VideoRef,
        profile: &crate::vision::ProjectorProfile,
        pre: &Preprocessor,
        deadline: Option<std::time::Instant>,
    ) -> Result<(Vec<PieceInput>, VideoUsage, Grant), PrepareError> {
        let s = &self.limits.video;
        let param = r.param.as_str();
        let file = self.video_file(r).await?;
        let header_limits = HeaderLimits {
            max_seconds: s.max_seconds,
            max_pixels: self.limits.max_image_pixels,
        };
        let header = probe(&s.ffprobe(), file.path(), s.child_limits(), header_limits)
            .await
            .map_err(|e| video_error(e, param))?;
        let priced = price(&header, &r.options, s, profile, pre).map_err(|e| e.param_at(param))?;
        let bytes = priced.rgb_bytes() * (1 + TENSOR_PER_RGB_BYTE);
        let mut grant = self
            .decode_budget
            .acquire(bytes, deadline)
            .await
            .map_err(super::image_path::budget_error)?;
        let request = FrameRequest {
            plan: priced.plan.clone(),
            width: priced.width,
            height: priced.height,
        };
        let decoded = frames(&s.ffmpeg, file.path(), &request, s.child_limits())
            .await
            .map_err(|e| video_error(e, param))?;
        drop(file);
        let hold = grant.keep(bytes);
        let merge = priced.merge as usize;
        let pieces: Vec<PieceInput> = if merge > 1 {
            decoded
                .chunks(merge)
                .map(|c| PieceInput::Frames(c.to_vec()))
                .collect()
        } else {
            decoded.into_iter().map(PieceInput::Image).collect()
        };
        let usage = priced.usage(&header);
        Ok((pieces, usage, hold))
    }

    /// The video's bytes in a private temporary file (ffmpeg seeks in it).
    async fn video_file(&self, r: &VideoRef) -> Result<tempfile::NamedTempFile, PrepareError> {
        let s = &self.limits.video;
        let param = r.param.clone();
        let bytes = match source(&r.url).map_err(|e| source_error(e, &param))? {
            ImageSource::Data(_) => None,
            ImageSource::Local(path) => {
                let (path, media, max) = (path.to_string(), self.limits.media.clone(), s.max_bytes);
                let read = tokio::task::spawn_blocking(move || {
                    crate::vision::local::read(&path, media.as_ref(), max)
                });
                Some(
                    read.await
                        .map_err(super::blocking_failed)?
                        .map_err(|e| source_error(e, &param))?,
                )
            }
            ImageSource::Remote(url) => {
                let allowance = remote::Allowance::new(s.max_bytes);
                let fetch = remote::fetch(url, s.max_bytes, &allowance, &self.limits.remote);
                let fetched = tokio::time::timeout(self.limits.remote.timeout, fetch)
                    .await
                    .map_err(|_| {
                        source_error(VisionError::Fetch("it took too long".into()), &param)
                    })?;
                Some(fetched.map_err(|e| source_error(e, &param))?)
            }
        };
        let (url, max) = (r.url.clone(), s.max_bytes);
        self.images
            .run(move || {
                let bytes = match bytes {
                    Some(b) => b,
                    None => crate::vision::image_bytes(&url, max)
                        .map_err(|e| source_error(e, &param))?,
                };
                write_temp(&bytes).map_err(|e| {
                    PrepareError::from(crate::engine::EngineError::Internal(format!(
                        "could not keep the video for its decoder: {e}"
                    )))
                })
            })
            .await
            .map_err(super::blocking_failed)?
    }
}

fn write_temp(bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    use std::io::Write;
    let mut f = tempfile::Builder::new()
        .prefix(".tessera-video-")
        .tempfile()?;
    f.write_all(bytes)?;
    f.flush()?;
    Ok(f)
}

/// A video's frames planned and priced from its header alone.
struct Priced {
    plan: FramePlan,
    width: u32,
    height: u32,
    merge: u32,
    piece_tokens: u32,
}

/// Why a video cannot be priced: the client's to fix.
struct PriceError {
    message: String,
    code: &'static str,
}

impl PriceError {
    fn param_at(self, param: &str) -> PrepareError {
        PrepareError::invalid(format!("{param}: {}", self.message))
            .param(param.to_string())
            .code(self.code)
    }
}

impl Priced {
    fn rgb_bytes(&self) -> u64 {
        u64::from(self.plan.frames) * u64::from(self.width) * u64::from(self.height) * 3
    }

    fn usage(&self, header: &VideoHeader) -> VideoUsage {
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
fn price(
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
        o.max_pixels.unwrap_or(s.frame_pixels),
    );
    let unpriced = || PriceError {
        message: format!("the projector cannot take {width}x{height} frames"),
        code: "invalid_video",
    };
    let one = pre.count_frames(width, height, 1).ok_or_else(unpriced)?;
    let two = pre.count_frames(width, height, 2).ok_or_else(unpriced)?;
    // A projector that merges frames in time charges two as one.
    let (merge, piece_tokens) = if two == one { (2, one) } else { (1, one) };
    let mut max_frames = o.max_frames.unwrap_or(s.max_frames);
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
