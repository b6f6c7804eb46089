//! A clip's samples: decoded by symphonia (pure Rust, no codec runs
//! outside the server's memory checks), mixed to mono, cut at the length
//! its header declared (the price was set from it), then resampled to the
//! model's rate. The caller holds the memory grant for `bytes_needed`.

use super::probe::{Header, open};
use super::{AudioError, resample};
use std::time::Instant;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymError;

/// A stream may end this much short of its header (container lengths
/// round; an encoder's last frame may be partial): the rest is silence.
const FORGIVEN_SECONDS: f64 = 0.1;
/// Undecodable packets in a row before the clip is refused.
const MAX_BAD_PACKETS: usize = 8;

/// Bytes the decode holds at its peak: the mono samples at the clip's
/// rate and the resampled ones.
pub fn bytes_needed(header: &Header, target: u32) -> usize {
    let out = super::samples_at(header.frames, header.rate, target);
    ((header.frames + out) as usize).saturating_mul(std::mem::size_of::<f32>())
}

/// The clip as mono samples at `target` Hz, exactly
/// `samples_at(header.frames, header.rate, target)` of them.
pub fn decode(
    bytes: std::sync::Arc<[u8]>,
    header: &Header,
    target: u32,
    deadline: Instant,
    timeout_secs: f32,
) -> Result<Vec<f32>, AudioError> {
    let mono = mono(bytes, header, deadline, timeout_secs)?;
    let want = super::samples_at(header.frames, header.rate, target) as usize;
    resample::to_rate(&mono, header.rate, target, want)
}

/// Mono samples at the clip's own rate, `header.frames` of them.
fn mono(
    bytes: std::sync::Arc<[u8]>,
    header: &Header,
    deadline: Instant,
    timeout_secs: f32,
) -> Result<Vec<f32>, AudioError> {
    let mut reader = open(bytes, header.format)?;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Invalid("it holds no audio track".into()))?;
    let id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| AudioError::Invalid(e.to_string()))?;
    let want = header.frames as usize;
    let mut out: Vec<f32> = Vec::with_capacity(want);
    let mut bad = 0;
    while out.len() < want {
        if Instant::now() > deadline {
            return Err(AudioError::TimedOut(timeout_secs));
        }
        let packet = match reader.next_packet() {
            Ok(p) if p.track_id() == id => p,
            Ok(_) => continue,
            Err(SymError::IoError(_)) => break,
            Err(e) => return Err(AudioError::Invalid(e.to_string())),
        };
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(SymError::DecodeError(e)) => {
                bad += 1;
                if bad > MAX_BAD_PACKETS {
                    return Err(AudioError::Invalid(e.to_string()));
                }
                continue;
            }
            Err(e) => return Err(AudioError::Invalid(e.to_string())),
        };
        bad = 0;
        let spec = *buf.spec();
        let channels = spec.channels.count();
        if channels == 0 || channels > super::MAX_CHANNELS {
            return Err(AudioError::Channels(channels));
        }
        let mut samples = SampleBuffer::<f32>::new(buf.capacity() as u64, spec);
        samples.copy_interleaved_ref(buf);
        mix_into(&mut out, samples.samples(), channels, want);
    }
    let short = want - out.len();
    if short as f64 > FORGIVEN_SECONDS * f64::from(header.rate) {
        return Err(AudioError::Truncated {
            got: out.len() as f64 / f64::from(header.rate),
            declared: header.seconds(),
        });
    }
    out.resize(want, 0.0);
    Ok(out)
}

/// Appends the mean of each frame's channels, up to `want` frames in all.
fn mix_into(out: &mut Vec<f32>, interleaved: &[f32], channels: usize, want: usize) {
    let room = want - out.len();
    let scale = 1.0 / channels as f32;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .take(room)
            .map(|frame| frame.iter().sum::<f32>() * scale),
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audio::probe::probe;

    /// A 16-bit PCM WAV of interleaved `samples` in -1..1.
    pub(crate) fn wav(rate: u32, channels: u16, samples: &[f32]) -> Vec<u8> {
        let data = (samples.len() * 2) as u32;
        let mut b = Vec::with_capacity(44 + data as usize);
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        b.extend_from_slice(&(channels * 2).to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&data.to_le_bytes());
        for s in samples {
            b.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
        }
        b
    }

    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(60)
    }

    #[test]
    fn stereo_is_mixed_to_mono_and_kept_at_its_rate() {
        let frames: Vec<f32> = (0..1000).flat_map(|_| [0.5, -0.25]).collect();
        let bytes: std::sync::Arc<[u8]> = wav(16_000, 2, &frames).into();
        let h = probe(bytes.clone(), 60.0).unwrap();
        let out = decode(bytes, &h, 16_000, far(), 30.0).unwrap();
        assert_eq!(out.len(), 1000);
        assert!(
            out.iter().all(|s| (s - 0.125).abs() < 1e-3),
            "{:?}",
            &out[..4]
        );
    }

    #[test]
    fn resampled_length_is_what_was_priced() {
        let tone: Vec<f32> = (0..44_100)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 44_100.0).sin() * 0.5)
            .collect();
        let bytes: std::sync::Arc<[u8]> = wav(44_100, 1, &tone).into();
        let h = probe(bytes.clone(), 60.0).unwrap();
        let out = decode(bytes, &h, 16_000, far(), 30.0).unwrap();
        assert_eq!(out.len(), 16_000);
        // The tone survives: its energy, not silence or noise.
        let rms = (out.iter().map(|s| s * s).sum::<f32>() / out.len() as f32).sqrt();
        assert!((rms - 0.5 / 2f32.sqrt()).abs() < 0.02, "rms {rms}");
    }

    #[test]
    fn a_stream_shorter_than_its_header_is_refused() {
        let mut bytes = wav(16_000, 1, &vec![0.1; 16_000]);
        bytes.truncate(44 + 8_000 * 2);
        let bytes: std::sync::Arc<[u8]> = bytes.into();
        let h = probe(bytes.clone(), 60.0).unwrap();
        assert_eq!(h.frames, 16_000);
        let err = decode(bytes, &h, 16_000, far(), 30.0).unwrap_err();
        assert!(matches!(err, AudioError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("0.50 s of the 1.00 s"), "{err}");
    }

    #[test]
    fn a_passed_deadline_stops_the_decode() {
        let bytes: std::sync::Arc<[u8]> = wav(16_000, 1, &vec![0.1; 16_000]).into();
        let h = probe(bytes.clone(), 60.0).unwrap();
        let past = Instant::now() - std::time::Duration::from_millis(1);
        let err = decode(bytes, &h, 16_000, past, 30.0).unwrap_err();
        assert!(matches!(err, AudioError::TimedOut(_)));
    }
}
