//! Audio intake's flags (`audio/`): its limits.

use clap::Args;

#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct AudioArgs {
    /// Longest audio clip accepted, in seconds (read from its header).
    #[arg(help_heading = "Audio", long, env = "TESSERA_MAX_AUDIO_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub max_audio_seconds: u32,

    /// Largest encoded audio clip accepted, in bytes (OpenAI's upload limit).
    #[arg(help_heading = "Audio", long, env = "TESSERA_MAX_AUDIO_BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_073_741_824), default_value_t = 25 * 1024 * 1024)]
    pub max_audio_bytes: usize,

    /// Seconds allowed to decode one clip.
    #[arg(help_heading = "Audio", long, env = "TESSERA_AUDIO_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub audio_timeout: u64,

    /// Most audio clips in one request.
    #[arg(help_heading = "Audio", long, env = "TESSERA_MAX_AUDIOS", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64), default_value_t = 4)]
    pub max_audios: usize,
}

impl AudioArgs {
    pub fn settings(&self) -> crate::audio::AudioSettings {
        crate::audio::AudioSettings {
            max_seconds: f64::from(self.max_audio_seconds),
            max_bytes: self.max_audio_bytes,
            timeout: std::time::Duration::from_secs(self.audio_timeout),
            max_clips: self.max_audios,
        }
    }
}
