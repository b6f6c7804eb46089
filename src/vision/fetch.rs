//! Getting the encoded bytes of an image out of its URL.

use super::error::VisionError;
use base64::Engine as _;

/// Where an image's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource<'a> {
    /// The part after `data:`.
    Data(&'a str),
    Remote(&'a str),
    /// The part after `file://` (read from `--media-path` only).
    Local(&'a str),
}

pub fn source(url: &str) -> Result<ImageSource<'_>, VisionError> {
    let url = url.trim();
    if let Some(rest) = strip_prefix_ci(url, "data:") {
        return Ok(ImageSource::Data(rest));
    }
    if strip_prefix_ci(url, "https://").is_some() || strip_prefix_ci(url, "http://").is_some() {
        return Ok(ImageSource::Remote(url));
    }
    if let Some(rest) = strip_prefix_ci(url, "file://") {
        return Ok(ImageSource::Local(rest));
    }
    Err(VisionError::UnsupportedUrl)
}

/// The encoded bytes of a data URL (remote URLs go through [`super::remote`]).
pub fn image_bytes(url: &str, max_bytes: usize) -> Result<Vec<u8>, VisionError> {
    match source(url)? {
        ImageSource::Data(rest) => data_url(rest, max_bytes),
        ImageSource::Remote(_) | ImageSource::Local(_) => Err(VisionError::UnsupportedUrl),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn data_url(rest: &str, max_bytes: usize) -> Result<Vec<u8>, VisionError> {
    let (meta, payload) = rest.split_once(',').ok_or(VisionError::MalformedDataUrl)?;
    if !meta
        .split(';')
        .any(|p| p.trim().eq_ignore_ascii_case("base64"))
    {
        return Err(VisionError::MalformedDataUrl);
    }
    // Reject before decoding: base64 is 4 chars per 3 bytes.
    let estimate = payload.len() / 4 * 3;
    if estimate > max_bytes.saturating_add(3) {
        return Err(VisionError::TooManyBytes {
            bytes: estimate,
            limit: max_bytes,
        });
    }
    let cleaned: String = payload.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| VisionError::Base64(e.to_string()))?;
    if bytes.is_empty() {
        return Err(VisionError::Empty);
    }
    if bytes.len() > max_bytes {
        return Err(VisionError::TooManyBytes {
            bytes: bytes.len(),
            limit: max_bytes,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_data_url() {
        let b = image_bytes("data:image/png;base64,AAEC", 100).unwrap();
        assert_eq!(b, vec![0, 1, 2]);
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(matches!(
            image_bytes("data:image/png;base64,!!!", 100),
            Err(VisionError::Base64(_))
        ));
        assert!(matches!(
            image_bytes("data:image/png,AAEC", 100),
            Err(VisionError::MalformedDataUrl)
        ));
        assert_eq!(
            source("HTTPS://example.com/a.png").unwrap(),
            ImageSource::Remote("HTTPS://example.com/a.png")
        );
        assert!(matches!(
            image_bytes("ftp://x", 100),
            Err(VisionError::UnsupportedUrl)
        ));
        assert!(matches!(
            image_bytes("data:image/png;base64,AAECAAECAAEC", 4),
            Err(VisionError::TooManyBytes { .. })
        ));
    }
}
