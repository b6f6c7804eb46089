//! A video part's wire types: vLLM's `video_url` and llama-server's
//! `input_video`, with Tessera's sampling and budget extensions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct VideoUrl {
    /// A data URL (`data:video/mp4;base64,...`), an `https://` URL, or a
    /// `file://` URL under `--media-path`.
    #[schema(pattern = "^(data:[a-z0-9.+/-]+;base64,|https?://|file://)")]
    pub url: String,
    #[serde(flatten)]
    pub options: VideoOptions,
}

/// How one video is sampled and budgeted (each unset field falls back to
/// `mm_processor_kwargs`, then to the server's flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VideoOptions {
    /// Frames per second to sample (`--video-fps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Most frames to take; a longer video is covered uniformly (`--max-video-frames`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frames: Option<u32>,
    /// Most tokens the whole video may take: fewer frames are sampled to fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Most pixels of one frame as the model sees it (`--video-max-pixels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pixels: Option<u64>,
}

impl VideoOptions {
    /// Each field of `self`, else of `other`.
    pub fn or(self, other: VideoOptions) -> VideoOptions {
        VideoOptions {
            fps: self.fps.or(other.fps),
            max_frames: self.max_frames.or(other.max_frames),
            max_tokens: self.max_tokens.or(other.max_tokens),
            max_pixels: self.max_pixels.or(other.max_pixels),
        }
    }
}

/// llama-server's `input_video`: raw base64 (or a data URL) in `data`, or
/// a `url`; older llama-server builds sent the base64 string alone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum InputVideo {
    Object {
        #[serde(default)]
        data: Option<String>,
        #[serde(default)]
        url: Option<String>,
        /// The container (`mp4`, `webm`, ...): informative only, the bytes
        /// are probed.
        #[serde(default)]
        format: Option<String>,
        #[serde(flatten)]
        options: VideoOptions,
    },
    Base64(String),
}

impl InputVideo {
    /// The part as a URL (raw base64 becomes a data URL) and its options;
    /// `None` when it holds neither data nor a URL.
    pub fn as_url(&self) -> Option<(String, VideoOptions)> {
        let data_url = |d: &str| {
            if d.trim_start()
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("data:"))
            {
                d.to_string()
            } else {
                format!("data:video/unknown;base64,{d}")
            }
        };
        match self {
            InputVideo::Base64(d) => Some((data_url(d), VideoOptions::default())),
            InputVideo::Object {
                data: Some(d),
                options,
                ..
            } => Some((data_url(d), *options)),
            InputVideo::Object {
                url: Some(u),
                options,
                ..
            } => Some((u.clone(), *options)),
            InputVideo::Object { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_form_of_input_video_becomes_a_url() {
        let v: InputVideo = serde_json::from_value(json!("AAAA")).unwrap();
        assert_eq!(v.as_url().unwrap().0, "data:video/unknown;base64,AAAA");
        let v: InputVideo =
            serde_json::from_value(json!({"data": "AAAA", "format": "mp4", "fps": 1.0})).unwrap();
        let (url, o) = v.as_url().unwrap();
        assert_eq!(
            (url.as_str(), o.fps),
            ("data:video/unknown;base64,AAAA", Some(1.0))
        );
        let v: InputVideo = serde_json::from_value(json!({"url": "https://x/v.mp4"})).unwrap();
        assert_eq!(v.as_url().unwrap().0, "https://x/v.mp4");
        let v: InputVideo = serde_json::from_value(json!({"format": "mp4"})).unwrap();
        assert!(v.as_url().is_none());
    }
}
