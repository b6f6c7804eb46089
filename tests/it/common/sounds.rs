//! Test sounds, made here: WAVs written by the tests themselves (tones,
//! noise, silence) and, through ffmpeg, the same sounds as MP3, FLAC, Ogg
//! Vorbis and M4A/AAC. Nothing is downloaded.

use super::clips::clip;
use serde_json::{Value, json};

/// A 16-bit PCM WAV of `seconds` of `what` at `rate` Hz on `channels`.
pub fn wav(rate: u32, channels: u16, seconds: f64, what: Sound) -> Vec<u8> {
    let frames = (seconds * f64::from(rate)).round() as usize;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let samples: Vec<f32> = (0..frames * usize::from(channels))
        .map(|i| {
            let t = (i / usize::from(channels)) as f32 / rate as f32;
            match what {
                Sound::Tone(hz) => (t * hz * std::f32::consts::TAU).sin() * 0.5,
                Sound::Noise => {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                }
                Sound::Silence => 0.0,
            }
        })
        .collect();
    wav_of(rate, channels, &samples, None)
}

/// What a test clip holds.
#[derive(Debug, Clone, Copy)]
pub enum Sound {
    Tone(f32),
    Noise,
    Silence,
}

/// A WAV of interleaved `samples`; `declared` overrides the data size its
/// header states (a header that lies).
pub fn wav_of(rate: u32, channels: u16, samples: &[f32], declared: Option<u32>) -> Vec<u8> {
    let data = declared.unwrap_or((samples.len() * 2) as u32);
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&data.saturating_add(36).to_le_bytes());
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

/// A one-second 440 Hz tone at 44.1 kHz stereo, encoded by ffmpeg as
/// `ext` (`mp3`, `flac`, `ogg`, `m4a`).
pub fn encoded_tone(ext: &str) -> Vec<u8> {
    let codec: &[&str] = match ext {
        "ogg" => &["-c:a", "libvorbis"],
        "m4a" => &["-c:a", "aac"],
        _ => &[],
    };
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100:duration=1",
        "-ac",
        "2",
    ];
    args.extend_from_slice(codec);
    clip(&format!("tone-1s.{ext}"), &args)
}

/// OpenAI's `input_audio` part.
pub fn audio_part(bytes: &[u8], format: &str) -> Value {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    json!({"type": "input_audio", "input_audio": {"data": data, "format": format}})
}
