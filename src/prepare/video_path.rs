//! A request's videos from their URLs to the pieces the encoder gets:
//! bytes fetched under the image fetch policy, the container probed and
//! checked, the frames planned and priced (`video_parts.rs`), then decoded
//! by ffmpeg out of process within the decode budget.

use super::Preparer;
use super::error::PrepareError;
use super::images::VIDEO_WORDS;
use super::video_parts::{PreparedVideo, TENSOR_PER_RGB_BYTE, VideoRef, price, video_error};
use crate::engine::ModelInfo;
use crate::engine::pieces::{PieceInput, Preprocessor};
use crate::openai::VideoUsage;
use crate::video::decode::{FrameRequest, frames};
use crate::video::probe::{HeaderLimits, probe};
use crate::video::prompt;
use crate::vision::budget::Grant;

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
        // Held whole until the engine is done with the pieces: the frames
        // are all the decode keeps.
        let hold = self
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
        let max = self.limits.video.max_bytes;
        let bytes = self
            .media_bytes(&r.url, &r.param, max, &VIDEO_WORDS)
            .await?;
        self.images
            .run(move || {
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
