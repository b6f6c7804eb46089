//! Image intake: turn an `image_url` into RGB pixels within limits, plan its
//! tiles and price them. Pure code apart from fetching; no model needed to
//! test it, except for the projector's prices, which the engine measures.

pub mod budget;
pub mod decode;
mod decoded;
mod error;
pub mod fetch;
pub mod grid;
pub mod local;
pub mod native;
pub mod options;
pub mod pricing;
pub mod remote;
pub mod render;
pub mod shrink;
pub mod smart_resize;
pub mod tiling;
pub mod whole;

pub use decode::{Header, decode_image, decode_to, probe};
pub use decoded::DecodedImage;
pub use error::VisionError;
pub use fetch::{ImageSource, image_bytes, source};
pub use grid::TileLimits;
pub use grid::TilingPolicy;
pub use local::MediaRoot;
pub use native::NativeSlicing;
pub use options::{ImageOptions, PriceError};
pub use pricing::{PieceRule, PieceSize, ProjectorProfile};
pub use remote::RemotePolicy;
pub use tiling::{Detail, RequestedDetail, TilePlan};
pub use whole::plan_image;
