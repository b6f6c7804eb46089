//! What a client may say about one image's cost and shape, merged from the
//! server's flags, the request (`mm_processor_kwargs`) and the image part
//! itself (the closest wins), and the error when a budget cannot be met.

use super::grid::TilingPolicy;
use super::tiling::RequestedDetail;

/// Client-set limits on one image. Token counts are the image's own tokens
/// as llama-server counts them (for dynamic-resolution projectors, the units
/// of the resized image; elsewhere the image's price); pixels bound the
/// resized area, as Hugging Face's `min_pixels` / `max_pixels` do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageOptions {
    pub detail: RequestedDetail,
    pub tiling: Option<TilingPolicy>,
    pub min_tokens: Option<u32>,
    pub max_tokens: Option<u32>,
    pub min_pixels: Option<u64>,
    pub max_pixels: Option<u64>,
}

impl ImageOptions {
    /// `self`'s settings, each falling back to `outer`'s (an image's part
    /// over its request's, a request's over the server's).
    pub fn or(self, outer: ImageOptions) -> ImageOptions {
        ImageOptions {
            detail: if self.detail == RequestedDetail::Auto {
                outer.detail
            } else {
                self.detail
            },
            tiling: self.tiling.or(outer.tiling),
            min_tokens: self.min_tokens.or(outer.min_tokens),
            max_tokens: self.max_tokens.or(outer.max_tokens),
            min_pixels: self.min_pixels.or(outer.min_pixels),
            max_pixels: self.max_pixels.or(outer.max_pixels),
        }
    }

    /// The tighter of the two forms of the upper bound, in pixels, given the
    /// pixels one token covers.
    pub fn max_area(&self, per_token: u64) -> Option<u64> {
        let tokens = self.max_tokens.map(|t| u64::from(t) * per_token);
        match (tokens, self.max_pixels) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The tighter of the two forms of the lower bound, in pixels.
    pub fn min_area(&self, per_token: u64) -> Option<u64> {
        let tokens = self.min_tokens.map(|t| u64::from(t) * per_token);
        match (tokens, self.min_pixels) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the client set an upper bound at all.
    pub fn has_max(&self) -> bool {
        self.max_tokens.is_some() || self.max_pixels.is_some()
    }
}

/// A client's budget that this projector cannot meet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this image cannot cost less than {smallest} tokens on this model (its smallest geometry); raise max_tokens / max_pixels or leave them out"
)]
pub struct PriceError {
    /// The cheapest price the image can have here.
    pub smallest: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_setting_wins_and_forms_combine_tightly() {
        let server = ImageOptions {
            min_tokens: Some(1024),
            ..Default::default()
        };
        let request = ImageOptions {
            max_pixels: Some(100 * 784),
            tiling: Some(TilingPolicy::Fit),
            ..Default::default()
        };
        let image = ImageOptions {
            detail: RequestedDetail::Low,
            max_tokens: Some(64),
            ..Default::default()
        };
        let o = image.or(request.or(server));
        assert_eq!(o.detail, RequestedDetail::Low);
        assert_eq!(o.tiling, Some(TilingPolicy::Fit));
        assert_eq!(o.min_tokens, Some(1024));
        assert_eq!(o.max_area(784), Some(64 * 784));
        assert_eq!(o.min_area(784), Some(1024 * 784));
        assert!(o.has_max());
        assert!(!ImageOptions::default().has_max());
    }
}
