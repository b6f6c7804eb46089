//! Usage's breakdown of a request's videos and audio clips: what each was
//! read as and cost (images' usage stays beside its tile plan, and the
//! request's media together, in `response.rs`).

use serde::Serialize;
use utoipa::ToSchema;

/// Extension: one audio clip's reading and price.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AudioUsage {
    /// What the bytes are: `wav`, `mp3`, `flac`, `ogg` or `m4a`.
    pub format: String,
    /// Seconds, from the header (or the counted packets).
    pub duration: f64,
    /// The clip's own sample rate and channels (mixed to mono).
    pub sample_rate: u32,
    pub channels: u32,
    /// Samples the encoder got, at its rate (`model_sample_rate`).
    pub samples: u64,
    pub model_sample_rate: u32,
    /// The encoder's windows (30 s each for Whisper-style encoders; a
    /// clip is padded to whole windows).
    pub windows: u32,
    /// Tokens (KV cells) the clip takes, its wrapper tokens included.
    pub tokens: u32,
}

/// Extension: one video's sampling and price.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VideoUsage {
    /// Seconds, as the container's header gives them.
    pub duration: f64,
    /// The video's frame size.
    pub width: u32,
    pub height: u32,
    /// Frames sampled, and the rate they were sampled at (frames per second).
    pub frames: u32,
    pub fps: f64,
    /// The size each frame was sent at.
    pub frame_width: u32,
    pub frame_height: u32,
    /// Frames per piece: 2 where the projector merges consecutive frames in
    /// time (Qwen-VL), else 1.
    pub frames_per_piece: u32,
    /// Tokens (KV cells) of one piece, wrapper tokens included.
    pub piece_tokens: u32,
    /// Each piece's time in seconds from the start (the mean of its frames').
    pub timestamps: Vec<f64>,
    /// Tokens (KV cells) the frames take: pieces x piece_tokens. Timestamp
    /// text the family's prompt puts between frames is counted in
    /// `prompt_tokens` as text.
    pub tokens: u32,
}
