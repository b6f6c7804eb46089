//! OpenAI wire types: exactly what crosses HTTP, nothing more. Serde shapes
//! follow OpenAI's Chat Completions API; unknown request fields are ignored,
//! as OpenAI does.

pub mod audio_part;
pub mod completions;
pub mod embeddings;
pub mod error;
pub mod image_part;
mod media_usage;
pub mod request;
pub mod response;
pub mod responses;
pub mod unsupported;
pub mod video_part;

pub use audio_part::{AudioUrl, InputAudio};
pub use error::{ErrorBody, ErrorEnvelope};
pub use image_part::*;
pub use media_usage::{AudioUsage, VideoUsage};
pub use request::*;
pub use response::*;
pub use video_part::{InputVideo, VideoOptions, VideoUrl};
