//! What can go wrong with an image.

/// What can go wrong with one image. Every variant is the client's to fix.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error(
        "image_url must be a data URL (data:image/png;base64,...), an https:// URL, or a file:// URL under --media-path"
    )]
    UnsupportedUrl,
    #[error("the image URL is refused: {0}")]
    RemoteRefused(String),
    #[error("the file:// image URL is refused: {0}")]
    LocalRefused(String),
    #[error("the image could not be fetched: {0}")]
    Fetch(String),
    #[error("the data URL is malformed: expected data:<mime>;base64,<data>")]
    MalformedDataUrl,
    #[error("the image data is not valid base64: {0}")]
    Base64(String),
    #[error("the image data is empty")]
    Empty,
    #[error("the bytes are not an image in a supported format (PNG, JPEG, WebP, GIF)")]
    NotAnImage,
    #[error(
        "the image is {width}x{height} = {pixels} pixels, above the limit of {limit} pixels (--max-image-pixels)"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("the image is {bytes} bytes, above the limit of {limit} bytes (--max-image-bytes)")]
    TooManyBytes { bytes: usize, limit: usize },
    #[error(
        "the request's images are more than {limit} bytes in all (--max-request-image-bytes); send fewer or smaller images"
    )]
    RequestTooManyBytes { limit: usize },
    #[error("the image could not be decoded: {0}")]
    Corrupt(String),
}
