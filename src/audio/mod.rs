//! Audio intake, beside `vision/` and `video/`: a clip's bytes become the
//! samples the model hears. The format is sniffed from the bytes (never
//! from a MIME type or `format` field), the header read and checked, the
//! length at the model's rate known (and so the price) before a sample is
//! decoded; then symphonia decodes, the channels are mixed to mono and
//! rubato resamples, within a memory grant and a time limit.

pub mod decode;
mod error;
pub mod probe;
pub mod resample;

pub use error::AudioError;
use std::time::Duration;

/// The server's audio settings (flags).
#[derive(Debug, Clone)]
pub struct AudioSettings {
    /// `--max-audio-seconds`.
    pub max_seconds: f64,
    /// `--max-audio-bytes`.
    pub max_bytes: usize,
    /// `--audio-timeout`: wall clock for decoding one clip.
    pub timeout: Duration,
    /// `--max-audios`: clips per request.
    pub max_clips: usize,
}

impl Default for AudioSettings {
    fn default() -> Self {
        AudioSettings {
            max_seconds: 600.0,
            max_bytes: 25 << 20,
            timeout: Duration::from_secs(30),
            max_clips: 4,
        }
    }
}

/// Sample rates a clip may have: telephone speech to studio masters.
pub const RATES: std::ops::RangeInclusive<u32> = 8_000..=192_000;
/// Channels a clip may have (7.1 surround at most).
pub const MAX_CHANNELS: usize = 8;

/// Samples at `target` Hz of `frames` frames at `rate` Hz, rounded to the
/// nearest: what the resampler delivers and what the price counts.
pub fn samples_at(frames: u64, rate: u32, target: u32) -> u64 {
    if rate == target {
        return frames;
    }
    (frames * u64::from(target) + u64::from(rate) / 2) / u64::from(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_at_rounds_to_the_nearest() {
        assert_eq!(samples_at(44_100, 44_100, 16_000), 16_000);
        assert_eq!(samples_at(48_000, 48_000, 16_000), 16_000);
        assert_eq!(samples_at(16_000, 16_000, 16_000), 16_000);
        assert_eq!(samples_at(1, 48_000, 16_000), 0);
        assert_eq!(samples_at(2, 48_000, 16_000), 1);
        assert_eq!(samples_at(8_000, 8_000, 16_000), 16_000);
        assert_eq!(samples_at(3, 44_100, 16_000), 1);
    }
}
