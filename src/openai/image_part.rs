//! An image part's wire types (`image_url` with `detail` and Tessera's
//! budget extensions) and the request-wide `mm_processor_kwargs`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageUrl {
    /// A data URL (`data:image/png;base64,...`) or an `https://` URL.
    #[schema(pattern = "^(data:image/[a-z0-9.+-]+;base64,|https?://)")]
    pub url: String,
    #[serde(default)]
    pub detail: Option<ImageDetail>,
    /// Extension: fewest tokens this image should get (dynamic-resolution
    /// models; as `--image-min-tokens`).
    #[serde(default)]
    pub min_tokens: Option<u32>,
    /// Extension: most tokens this image may take; a cap the model cannot
    /// meet is a 400 that names its smallest price.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Extension: the tiling policy for this image.
    #[serde(default)]
    pub tiling: Option<ImageTiling>,
}

/// `mm_processor_kwargs`: vLLM's per-request processor settings, with the
/// token forms of llama-server's flags and Tessera's tiling policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MmProcessorKwargs {
    /// Fewest pixels of the resized image (Hugging Face's `min_pixels`).
    #[serde(default)]
    pub min_pixels: Option<u64>,
    /// Most pixels of the resized image (Hugging Face's `max_pixels`).
    #[serde(default)]
    pub max_pixels: Option<u64>,
    #[serde(default)]
    pub min_tokens: Option<u32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub tiling: Option<ImageTiling>,
    /// Video: frames per second to sample (`--video-fps`).
    #[serde(default)]
    pub fps: Option<f64>,
    /// Video: most frames per video (`--max-video-frames`).
    #[serde(default)]
    pub max_frames: Option<u32>,
    /// Video: most tokens one video may take.
    #[serde(default)]
    pub video_max_tokens: Option<u32>,
    /// Video: most pixels of one frame (`--video-max-pixels`).
    #[serde(default)]
    pub frame_max_pixels: Option<u64>,
}

/// `mm_processor_kwargs` as an object or null only: serde would also take a
/// struct from a JSON array (`[]` as all defaults), which the schema forbids.
pub(super) fn kwargs_object<'de, D>(d: D) -> Result<Option<MmProcessorKwargs>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v @ serde_json::Value::Object(_)) => serde_json::from_value(v)
            .map(Some)
            .map_err(D::Error::custom),
        Some(_) => Err(D::Error::custom("mm_processor_kwargs must be an object")),
    }
}

/// A tiling policy a request may choose (`--tiling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageTiling {
    Native,
    Fit,
    Internvl,
    Openai,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageDetail {
    #[default]
    Auto,
    Low,
    High,
}
