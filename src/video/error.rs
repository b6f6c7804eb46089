//! What can go wrong with a video.

/// What can go wrong with one video. All but `NoDecoder` are the client's
/// to fix.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error(
        "this server cannot decode video: {0} was not found (install ffmpeg, or point --ffmpeg at it)"
    )]
    NoDecoder(String),
    #[error("the video decoder failed: {0}")]
    Decoder(String),
    #[error("the video could not be read: {0}")]
    Invalid(String),
    #[error(
        "the video took longer than {0} s to read (--video-timeout); send a shorter or smaller video"
    )]
    TimedOut(f32),
    #[error(
        "the video is {width}x{height}, above the limit of {limit} pixels per frame (--max-image-pixels)"
    )]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("the video lasts {seconds:.1} s, above the limit of {limit} s (--max-video-seconds)")]
    TooLong { seconds: f64, limit: f64 },
}
