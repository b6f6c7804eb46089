//! A request's audio clips before any work: the parts, what a clip
//! becomes (its piece, usage and hold), and how its errors read
//! (`audio_path.rs` does the fetching, pricing and decoding).

use super::error::PrepareError;
use crate::audio::AudioError;
use crate::audio::probe::Header;
use crate::engine::pieces::PieceInput;
use crate::openai::AudioUsage;
use crate::vision::budget::Grant;

/// An audio part.
pub(super) struct AudioRef {
    pub(super) url: String,
    pub(super) param: String,
}

/// A clip made ready: its one piece, its usage, and its share of the
/// decode budget (held until the engine is done with it).
pub(super) struct PreparedAudio {
    pub(super) piece: PieceInput,
    pub(super) usage: AudioUsage,
    pub(super) hold: Grant,
}

pub(super) fn usage(
    header: &Header,
    samples: u64,
    rate: u32,
    windows: u32,
    tokens: u32,
) -> AudioUsage {
    AudioUsage {
        format: header.format.into(),
        duration: header.seconds(),
        sample_rate: header.rate,
        channels: header.channels as u32,
        samples,
        model_sample_rate: rate,
        windows,
        tokens,
    }
}

pub(super) fn audio_error(e: AudioError, param: &str) -> PrepareError {
    let code = match e {
        AudioError::TooLong { .. } => "audio_too_long",
        _ => "invalid_audio",
    };
    PrepareError::invalid(format!("{param}: {e}"))
        .param(param.to_string())
        .code(code)
}
