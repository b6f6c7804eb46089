//! Video intake's flags (`video/`): the decoder, sampling and limits.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct VideoArgs {
    /// The ffmpeg program that decodes video, out of process (ffprobe is
    /// looked for beside it). Without it the server runs and refuses video.
    #[arg(
        help_heading = "Video",
        long,
        env = "TESSERA_FFMPEG",
        default_value = "ffmpeg"
    )]
    pub ffmpeg: PathBuf,

    /// Frames per second sampled from a video (Qwen2-VL's default).
    #[arg(help_heading = "Video", long, env = "TESSERA_VIDEO_FPS", default_value_t = 2.0, value_parser = fps)]
    pub video_fps: f64,

    /// Most frames taken from one video; a longer video is covered uniformly.
    #[arg(help_heading = "Video", long, env = "TESSERA_MAX_VIDEO_FRAMES", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_video_frames: u32,

    /// Longest video accepted, in seconds (read from its header).
    #[arg(help_heading = "Video", long, env = "TESSERA_MAX_VIDEO_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub max_video_seconds: u32,

    /// Largest encoded video accepted, in bytes.
    #[arg(help_heading = "Video", long, env = "TESSERA_MAX_VIDEO_BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4_294_967_296), default_value_t = 64 * 1024 * 1024)]
    pub max_video_bytes: usize,

    /// Most pixels of one frame as the model sees it (frames are scaled down to it).
    #[arg(help_heading = "Video", long, env = "TESSERA_VIDEO_MAX_PIXELS", default_value_t = 448 * 448, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub video_max_pixels: u64,

    /// Seconds allowed to probe, and to decode, one video.
    #[arg(help_heading = "Video", long, env = "TESSERA_VIDEO_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub video_timeout: u64,

    /// MiB of address space one decoder process may use (Debian's ffmpeg
    /// maps about 300 MiB of libraries and needs about 600 for 720p).
    #[arg(help_heading = "Video", long, env = "TESSERA_VIDEO_DECODE_MEMORY", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(512..=1_048_576))]
    pub video_decode_memory: u64,

    /// Most videos in one request.
    #[arg(help_heading = "Video", long, env = "TESSERA_MAX_VIDEOS", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64), default_value_t = 2)]
    pub max_videos: usize,
}

fn fps(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 && f <= 60.0 => Ok(f),
        _ => Err(format!("{s} is not a frame rate above 0 and at most 60")),
    }
}

impl VideoArgs {
    pub fn settings(&self) -> crate::video::VideoSettings {
        crate::video::VideoSettings {
            ffmpeg: self.ffmpeg.clone(),
            fps: self.video_fps,
            max_frames: self.max_video_frames,
            max_seconds: f64::from(self.max_video_seconds),
            max_bytes: self.max_video_bytes,
            frame_pixels: self.video_max_pixels,
            timeout: std::time::Duration::from_secs(self.video_timeout),
            memory: self.video_decode_memory << 20,
            max_videos: self.max_videos,
        }
    }
}
