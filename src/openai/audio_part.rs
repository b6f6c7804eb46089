//! An audio part's wire types: OpenAI's `input_audio` (base64 `data` and
//! a `format`) and vLLM's `audio_url`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// OpenAI's `input_audio`: the clip as base64 and its format.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InputAudio {
    /// The clip, base64-encoded (a data URL is accepted too).
    pub data: String,
    /// `wav`, `mp3`, `flac`, `ogg` or `m4a`: informative only, the bytes
    /// are sniffed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

impl InputAudio {
    /// The clip as a data URL.
    pub fn as_url(&self) -> String {
        let d = self.data.trim_start();
        if d.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) {
            return d.to_string();
        }
        let format = self
            .format
            .as_deref()
            .filter(|f| f.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or("unknown");
        format!("data:audio/{format};base64,{d}")
    }
}

/// vLLM's `audio_url`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AudioUrl {
    /// A data URL (`data:audio/wav;base64,...`), an `https://` URL, or a
    /// `file://` URL under `--media-path`.
    #[schema(pattern = "^(data:[a-z0-9.+/-]+;base64,|https?://|file://)")]
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_audio_becomes_a_data_url() {
        let a = InputAudio {
            data: "UklGRg==".into(),
            format: Some("wav".into()),
        };
        assert_eq!(a.as_url(), "data:audio/wav;base64,UklGRg==");
        let odd = InputAudio {
            data: "AAAA".into(),
            format: Some("x;y".into()),
        };
        assert_eq!(odd.as_url(), "data:audio/unknown;base64,AAAA");
        let url = InputAudio {
            data: "data:audio/mpeg;base64,AAAA".into(),
            format: None,
        };
        assert_eq!(url.as_url(), "data:audio/mpeg;base64,AAAA");
    }
}
