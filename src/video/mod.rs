//! Video intake, beside `vision/`: a video's bytes become the frames the
//! model sees, out of harm's way. The container is probed by ffprobe and
//! checked, the frames to take are planned and priced from the header
//! alone, and only then does ffmpeg decode them, sampled and scaled in the
//! child process (`child`), streamed back as RGB.

pub mod child;
pub mod decode;
mod error;
pub mod probe;
pub mod prompt;
pub mod sample;

use crate::vision::smart_resize::{AreaBounds, smart_resize};
use crate::vision::{PieceRule, ProjectorProfile};
pub use error::VideoError;
use std::path::PathBuf;
use std::time::Duration;

/// The server's video settings (flags).
#[derive(Debug, Clone)]
pub struct VideoSettings {
    /// `--ffmpeg`: the ffmpeg program; ffprobe is looked for beside it.
    pub ffmpeg: PathBuf,
    /// `--video-fps`.
    pub fps: f64,
    /// `--max-video-frames`.
    pub max_frames: u32,
    /// `--max-video-seconds`.
    pub max_seconds: f64,
    /// `--max-video-bytes`.
    pub max_bytes: usize,
    /// `--video-max-pixels`: most pixels of one frame as the model sees it.
    pub frame_pixels: u64,
    /// `--video-timeout`: wall clock for probing and for decoding one video.
    pub timeout: Duration,
    /// `--video-decode-memory`: address space of one decoder process.
    pub memory: u64,
    /// `--max-videos`: videos per request.
    pub max_videos: usize,
}

impl Default for VideoSettings {
    fn default() -> Self {
        VideoSettings {
            ffmpeg: "ffmpeg".into(),
            fps: 2.0,
            max_frames: 32,
            max_seconds: 600.0,
            max_bytes: 64 << 20,
            frame_pixels: 448 * 448,
            timeout: Duration::from_secs(60),
            memory: 2 << 30,
            max_videos: 2,
        }
    }
}

impl VideoSettings {
    /// ffprobe, beside `--ffmpeg` (or on the PATH when that is a bare name).
    pub fn ffprobe(&self) -> PathBuf {
        let name = self
            .ffmpeg
            .file_name()
            .map(|n| n.to_string_lossy().replacen("ffmpeg", "ffprobe", 1))
            .unwrap_or_else(|| "ffprobe".into());
        self.ffmpeg.with_file_name(name)
    }

    /// Whether ffprobe and ffmpeg run here, asked once per server (a
    /// missing decoder is logged at start and refused per request).
    pub fn available(&self) -> bool {
        use std::collections::HashMap;
        use std::sync::{Mutex, OnceLock};
        static FOUND: OnceLock<Mutex<HashMap<PathBuf, bool>>> = OnceLock::new();
        let mut found = FOUND
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *found.entry(self.ffmpeg.clone()).or_insert_with(|| {
            let runs = |p: &std::path::Path| {
                std::process::Command::new(p)
                    .arg("-version")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let found = runs(&self.ffmpeg) && runs(&self.ffprobe());
            if !found {
                tracing::warn!(
                    "video is refused: {} or its ffprobe was not found (install ffmpeg, or point --ffmpeg at it)",
                    self.ffmpeg.display()
                );
            }
            found
        })
    }

    pub fn child_limits(&self) -> child::ChildLimits {
        child::ChildLimits {
            timeout: self.timeout,
            memory: self.memory,
        }
    }
}

/// The size each frame of a `w` x `h` video is sent at, at most
/// `max_pixels`: a dynamic-resolution projector's own resize rule (Qwen's
/// `smart_resize`, within its token range), else the frame fitted in one
/// native tile, so that every frame is one image slot.
pub fn frame_size(w: u32, h: u32, profile: &ProjectorProfile, max_pixels: u64) -> (u32, u32) {
    if let PieceRule::Dynamic {
        unit,
        min_tokens,
        max_tokens,
        ..
    } = profile.rule
    {
        let area = u64::from(unit) * u64::from(unit);
        let bounds = AreaBounds {
            min_pixels: u64::from(min_tokens) * area,
            max_pixels: (u64::from(max_tokens) * area).min(max_pixels.max(area)),
        };
        return smart_resize(w, h, unit, bounds);
    }
    let side = f64::from(profile.tile_size.max(1));
    let by_side = (side / f64::from(w.max(1))).min(side / f64::from(h.max(1)));
    let by_area = (max_pixels as f64 / (f64::from(w.max(1)) * f64::from(h.max(1)))).sqrt();
    let scale = by_side.min(by_area).min(1.0);
    let fit = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
    (fit(w), fit(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::TilingPolicy;

    fn profile(rule: PieceRule) -> ProjectorProfile {
        ProjectorProfile {
            tile_size: 384,
            tile_tokens: 64,
            rule,
            thumbnail_budget: 0,
            tiling: TilingPolicy::Native,
            slices_itself: false,
        }
    }

    #[test]
    fn qwen_frames_follow_smart_resize_under_the_frame_budget() {
        let qwen = profile(PieceRule::Dynamic {
            unit: 28,
            overhead: 2,
            per_row: 0,
            min_tokens: 8,
            max_tokens: 4096,
        });
        let (w, h) = frame_size(1280, 720, &qwen, 448 * 448);
        assert_eq!((w % 28, h % 28), (0, 0));
        assert!(u64::from(w) * u64::from(h) <= 448 * 448);
        assert_eq!((w, h), (588, 336));
        // A small clip keeps its size, to the unit.
        assert_eq!(frame_size(320, 240, &qwen, 448 * 448), (308, 252));
    }

    #[test]
    fn other_frames_fit_one_tile_and_never_grow() {
        let fixed = profile(PieceRule::Fixed);
        assert_eq!(frame_size(1280, 720, &fixed, 448 * 448), (384, 216));
        assert_eq!(frame_size(160, 120, &fixed, 448 * 448), (160, 120));
        assert_eq!(frame_size(1000, 1000, &fixed, 100 * 100), (100, 100));
    }

    #[test]
    fn ffprobe_sits_beside_ffmpeg() {
        let mut s = VideoSettings::default();
        assert_eq!(s.ffprobe(), PathBuf::from("ffprobe"));
        s.ffmpeg = "/opt/ff/bin/ffmpeg".into();
        assert_eq!(s.ffprobe(), PathBuf::from("/opt/ff/bin/ffprobe"));
    }
}
