//! A clip's header: what format it is (sniffed from its first bytes), its
//! rate, channels and length in frames, checked against the limits before
//! any sample is decoded. Where the header does not state its length (an
//! MP3 without a Xing/Info frame, an Ogg stream), the packets are counted
//! by demuxing alone, which reads no sample.

use super::{AudioError, MAX_CHANNELS, RATES};
use symphonia::core::codecs::CODEC_TYPE_NULL;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::{Limit, MetadataOptions};
use symphonia::core::probe::Hint;

/// What the header says, once checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// `wav`, `mp3`, `flac`, `ogg` or `m4a`: what the bytes are.
    pub format: &'static str,
    pub rate: u32,
    pub channels: usize,
    /// Frames (one sample per channel) the clip holds.
    pub frames: u64,
}

impl Header {
    pub fn seconds(&self) -> f64 {
        self.frames as f64 / f64::from(self.rate)
    }
}

/// The format the first bytes announce, if it is one this server reads.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let at = |i: usize, magic: &[u8]| bytes.get(i..i + magic.len()) == Some(magic);
    if at(0, b"RIFF") && at(8, b"WAVE") {
        Some("wav")
    } else if at(0, b"fLaC") {
        Some("flac")
    } else if at(0, b"OggS") {
        Some("ogg")
    } else if at(4, b"ftyp") {
        Some("m4a")
    } else if at(0, b"ID3") || mp3_sync(bytes) {
        Some("mp3")
    } else {
        None
    }
}

/// An MPEG audio frame header at the start: 11 sync bits, layer III.
fn mp3_sync(bytes: &[u8]) -> bool {
    matches!(bytes, [0xFF, b, ..] if b & 0xE0 == 0xE0 && (b >> 1) & 0x3 == 0x1)
}

/// Opens the container (no sample decoded). Metadata (tags, cover art)
/// is bounded: a tag may not make the server allocate what it claims.
pub(super) fn open(
    bytes: std::sync::Arc<[u8]>,
    format: &'static str,
) -> Result<Box<dyn FormatReader>, AudioError> {
    let source = std::io::Cursor::new(bytes);
    let stream = MediaSourceStream::new(Box::new(source), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(format);
    let metadata = MetadataOptions {
        limit_metadata_bytes: Limit::Maximum(64 << 10),
        limit_visual_bytes: Limit::Maximum(0),
    };
    let options = FormatOptions {
        enable_gapless: true,
        ..FormatOptions::default()
    };
    symphonia::default::get_probe()
        .format(&hint, stream, &options, &metadata)
        .map(|p| p.format)
        .map_err(|e| AudioError::Invalid(e.to_string()))
}

/// Reads and checks the header of `bytes`.
pub fn probe(bytes: std::sync::Arc<[u8]>, max_seconds: f64) -> Result<Header, AudioError> {
    let format = sniff(&bytes).ok_or(AudioError::Unsupported)?;
    let mut reader = open(bytes, format)?;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Invalid("it holds no audio track".into()))?;
    let params = track.codec_params.clone();
    let id = track.id;
    // A container this server reads may still hold a codec it cannot
    // decode (Opus in Ogg, ALAC in M4A): refused before any pricing.
    symphonia::default::get_codecs()
        .make(&params, &Default::default())
        .map_err(|_| AudioError::Unsupported)?;
    let rate = params
        .sample_rate
        .ok_or_else(|| AudioError::Invalid("its header states no sample rate".into()))?;
    if !RATES.contains(&rate) {
        return Err(AudioError::Rate(rate));
    }
    let channels = params.channels.map_or(1, |c| c.count());
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(AudioError::Channels(channels));
    }
    let max_frames = (max_seconds * f64::from(rate)).ceil() as u64;
    let frames = match params.n_frames {
        Some(n) => n,
        None => count_frames(reader.as_mut(), id, rate, params.time_base, max_frames)?,
    };
    let header = Header {
        format,
        rate,
        channels,
        frames,
    };
    if frames > max_frames {
        return Err(AudioError::TooLong {
            seconds: header.seconds(),
            limit: max_seconds,
        });
    }
    if frames == 0 {
        return Err(AudioError::Empty);
    }
    Ok(header)
}

/// Frames of track `id`, summed over its packets' durations; stops past
/// `max_frames` (the clip is too long whatever the rest holds).
fn count_frames(
    reader: &mut dyn FormatReader,
    id: u32,
    rate: u32,
    time_base: Option<symphonia::core::units::TimeBase>,
    max_frames: u64,
) -> Result<u64, AudioError> {
    let mut ticks = 0u64;
    let to_frames = |ticks: u64| match time_base {
        Some(tb) => {
            let t = tb.calc_time(ticks);
            t.seconds * u64::from(rate) + (t.frac * f64::from(rate)).round() as u64
        }
        None => ticks,
    };
    loop {
        match reader.next_packet() {
            Ok(p) if p.track_id() == id => {
                ticks = ticks.saturating_add(p.dur);
                if to_frames(ticks) > max_frames {
                    break;
                }
            }
            Ok(_) => {}
            Err(symphonia::core::errors::Error::IoError(_)) => break,
            Err(e) => return Err(AudioError::Invalid(e.to_string())),
        }
    }
    Ok(to_frames(ticks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::decode::tests::wav;

    #[test]
    fn formats_are_sniffed_from_the_bytes() {
        assert_eq!(sniff(&wav(16_000, 1, &[0.0; 10])), Some("wav"));
        assert_eq!(sniff(b"fLaC\0\0\0"), Some("flac"));
        assert_eq!(sniff(b"OggS\0\x02"), Some("ogg"));
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A "), Some("m4a"));
        assert_eq!(sniff(b"ID3\x04\0"), Some("mp3"));
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x00]), Some("mp3"));
        assert_eq!(sniff(b"{\"not\": \"audio\"}"), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn a_wav_header_gives_rate_channels_and_frames() {
        let bytes = wav(22_050, 2, &vec![0.25; 2 * 22_050]);
        let h = probe(bytes.into(), 600.0).unwrap();
        assert_eq!(
            h,
            Header {
                format: "wav",
                rate: 22_050,
                channels: 2,
                frames: 22_050
            }
        );
        assert!((h.seconds() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn limits_are_checked_on_the_header() {
        let long = wav(8_000, 1, &vec![0.0; 8_000 * 3]);
        assert!(matches!(
            probe(long.into(), 2.0),
            Err(AudioError::TooLong { .. })
        ));
        assert!(matches!(
            probe(wav(4_000, 1, &[0.0; 100]).into(), 600.0),
            Err(AudioError::Rate(4_000))
        ));
        assert!(matches!(
            probe(wav(16_000, 1, &[]).into(), 600.0),
            Err(AudioError::Empty)
        ));
        assert!(matches!(
            probe(b"RIFF\0\0\0\0WAVEjunk".to_vec().into(), 600.0),
            Err(AudioError::Invalid(_))
        ));
        assert!(matches!(
            probe(b"<html>".to_vec().into(), 600.0),
            Err(AudioError::Unsupported)
        ));
    }
}
