//! What can go wrong with an audio clip: all of it the client's to fix.

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error(
        "the audio is not a format this server reads (send WAV, MP3, FLAC, Ogg Vorbis or M4A/AAC)"
    )]
    Unsupported,
    #[error("the audio could not be read: {0}")]
    Invalid(String),
    #[error("the audio is empty (no samples)")]
    Empty,
    #[error("the audio lasts {seconds:.1} s, above the limit of {limit} s (--max-audio-seconds)")]
    TooLong { seconds: f64, limit: f64 },
    #[error("the audio's sample rate of {0} Hz is outside 8000-192000 Hz")]
    Rate(u32),
    #[error("the audio has {0} channels, above the limit of 8")]
    Channels(usize),
    #[error(
        "the audio ended after {got:.2} s of the {declared:.2} s its header declares (is the file truncated?)"
    )]
    Truncated { got: f64, declared: f64 },
    #[error("the audio took longer than {0} s to decode (--audio-timeout); send a shorter clip")]
    TimedOut(f32),
}
