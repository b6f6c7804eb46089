//! What one piece of an image (a tile or the thumbnail) costs in tokens
//! (KV-cache cells), known before anything is encoded. The engine measures the
//! projector once at start-up and fills a [`ProjectorProfile`]; from then on
//! pricing is pure arithmetic.

use super::grid::TilingPolicy;
use serde::Serialize;

/// How a projector charges for a piece of a given pixel size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PieceRule {
    /// The projector resizes every image to its native size and charges a
    /// fixed count: every piece is `tile_size` square and costs `tile_tokens`.
    Fixed,
    /// Dynamic resolution (e.g. Qwen2-VL, Pixtral): a piece of (a*unit) x
    /// (b*unit) pixels costs a*b + b*per_row + overhead tokens, provided
    /// min_tokens <= a*b <= max_tokens (the projector resizes the rest).
    Dynamic {
        unit: u32,
        overhead: u32,
        /// Tokens each row of units adds (Pixtral's `[IMG_BREAK]`).
        per_row: u32,
        min_tokens: u32,
        max_tokens: u32,
    },
    /// The projector slices each image itself by the longest-edge rule
    /// (Idefics3 / SmolVLM): the image is sent whole and priced by its grid.
    NativeSlices(super::native::NativeSlicing),
}

/// The loaded projector's prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProjectorProfile {
    /// Side of a square tile, in pixels.
    pub tile_size: u32,
    /// Tokens (KV cells) one tile takes (wrapper tokens included).
    pub tile_tokens: u32,
    pub rule: PieceRule,
    /// Most tokens a thumbnail may take (dynamic projectors).
    pub thumbnail_budget: u32,
    /// How `high` detail cuts images for this projector (`--tiling`, or
    /// the family's default).
    pub tiling: TilingPolicy,
    /// The projector cuts a whole image into slices of its own (InternVL,
    /// LFM2, MiniCPM-V): `native` then means tiles under its grid rule.
    pub slices_itself: bool,
}

/// How far a thumbnail's aspect ratio may stray from the image's (x1.3)
/// to gain area within the budget.
const MAX_THUMBNAIL_DISTORTION: f64 = 1.3;

/// A piece's pixel size and price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PieceSize {
    pub width: u32,
    pub height: u32,
    pub tokens: u32,
}

impl ProjectorProfile {
    /// What a Qwen2-VL projector (14 px patches, 2x2 merge) measures to at
    /// the default settings: 448 px tiles of 16x16 tokens plus the
    /// `<|vision_start|>`/`<|vision_end|>` pair. For docs, benches and tests.
    pub const QWEN2VL_448: ProjectorProfile = ProjectorProfile {
        tile_size: 448,
        tile_tokens: 258,
        rule: PieceRule::Dynamic {
            unit: 28,
            overhead: 2,
            per_row: 0,
            min_tokens: 8,
            max_tokens: 4096,
        },
        thumbnail_budget: 75,
        tiling: TilingPolicy::Fit,
        slices_itself: false,
    };

    /// What a Pixtral 12B projector measures to in the pinned mtmd: 16 px
    /// patches, one `[IMG_BREAK]` (the last `[IMG_END]`) per row of tokens,
    /// 8..1,024 image tokens, 256 px tiles (16 x 16 units) and its family's
    /// `native` policy. For docs and tests.
    pub const PIXTRAL_16: ProjectorProfile = ProjectorProfile {
        tile_size: 256,
        tile_tokens: 16 * 16 + 16,
        rule: PieceRule::Dynamic {
            unit: 16,
            overhead: 0,
            per_row: 1,
            min_tokens: 8,
            max_tokens: 1024,
        },
        thumbnail_budget: 75,
        tiling: TilingPolicy::Native,
        slices_itself: false,
    };

    /// The global thumbnail of a `w` x `h` image.
    ///
    /// Dynamic projectors: the largest a x b grid of units whose cost fits
    /// the budget and whose aspect ratio is within 30% of the image's (ties:
    /// less distortion). When even the projector's minimum exceeds the
    /// budget, the minimum is used.
    /// Fixed projectors: the native square, at the fixed count.
    pub fn thumbnail(&self, w: u32, h: u32) -> PieceSize {
        let PieceRule::Dynamic {
            unit,
            overhead,
            per_row,
            min_tokens,
            ..
        } = self.rule
        else {
            return self.tile();
        };
        let avail = self
            .thumbnail_budget
            .saturating_sub(overhead)
            .max(min_tokens.max(1));
        let (long_px, short_px) = (w.max(h).max(1) as f64, w.min(h).max(1) as f64);
        let ratio = long_px / short_px;
        // Units along the long side that fit with `short` along the other,
        // row tokens included (rows run along the short side of a landscape).
        let longest = |short: u32| {
            if w >= h {
                avail.saturating_sub(short * per_row) / short
            } else {
                avail / (short + per_row)
            }
        };
        let mut candidates = Vec::new();
        let mut short = 1u32;
        while longest(short) >= short {
            let long = ((short as f64 * ratio).round() as u32).clamp(short, longest(short));
            let distortion = ((long as f64 / short as f64) / ratio).ln().abs();
            candidates.push((long, short, distortion));
            short += 1;
        }
        // Largest area among shapes within 30% of the image's aspect ratio
        // (or the least distorted, when none is); ties: less distortion.
        let tolerance = MAX_THUMBNAIL_DISTORTION.ln();
        let least = candidates.iter().map(|c| c.2).fold(f64::INFINITY, f64::min);
        let best = candidates
            .into_iter()
            .filter(|c| c.2 <= tolerance.max(least))
            .max_by(|a, b| {
                (a.0 * a.1)
                    .cmp(&(b.0 * b.1))
                    .then(b.2.partial_cmp(&a.2).unwrap_or(std::cmp::Ordering::Equal))
            });
        let (mut long, mut short, _) = best.unwrap_or((1, 1, 0.0));
        // Never below the projector's minimum (it would upscale and charge more).
        while long * short < min_tokens {
            if (long as f64 / short as f64) < ratio {
                long += 1;
            } else {
                short += 1;
            }
        }
        let (a, b) = if w >= h { (long, short) } else { (short, long) };
        PieceSize {
            width: a * unit,
            height: b * unit,
            tokens: a * b + b * per_row + overhead,
        }
    }

    /// Tokens a whole `w` x `h` piece costs on a dynamic projector, when
    /// both sides are whole units and the projector keeps it as it is.
    pub fn dynamic_price(&self, w: u32, h: u32) -> Option<u32> {
        let PieceRule::Dynamic {
            unit,
            overhead,
            per_row,
            min_tokens,
            max_tokens,
        } = self.rule
        else {
            return None;
        };
        let unit = unit.max(1);
        let (a, b) = (w / unit, h / unit);
        let tokens = a.saturating_mul(b);
        let kept = w.is_multiple_of(unit)
            && h.is_multiple_of(unit)
            && (min_tokens..=max_tokens).contains(&tokens);
        kept.then(|| tokens + b * per_row + overhead)
    }

    /// One full tile.
    pub fn tile(&self) -> PieceSize {
        PieceSize {
            width: self.tile_size,
            height: self.tile_size,
            tokens: self.tile_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen() -> ProjectorProfile {
        ProjectorProfile::QWEN2VL_448
    }

    #[test]
    fn dynamic_thumbnail_fits_the_budget() {
        let p = qwen();
        // Square: 8 x 8 units = 64 + 2 = 66 <= 75.
        assert_eq!(
            p.thumbnail(1000, 1000),
            PieceSize {
                width: 224,
                height: 224,
                tokens: 66
            }
        );
        // 10:1 panorama: 24 x 3 = 72 + 2 = 74.
        let t = p.thumbnail(4000, 400);
        assert_eq!((t.width, t.height, t.tokens), (24 * 28, 3 * 28, 74));
        // 1:10 is the transpose.
        let t = p.thumbnail(400, 4000);
        assert_eq!((t.width, t.height, t.tokens), (3 * 28, 24 * 28, 74));
        // 4:3: 9 x 8 = 72 (aspect 1.125, within 30% of 1.33).
        let t = p.thumbnail(4032, 3024);
        assert_eq!((t.width, t.height, t.tokens), (9 * 28, 8 * 28, 74));
        // 5:3: 9 x 8 strays too far; 10 x 7 = 70 + 2.
        let t = p.thumbnail(1000, 600);
        assert_eq!((t.width, t.height, t.tokens), (10 * 28, 7 * 28, 72));
    }

    #[test]
    fn budget_below_minimum_uses_the_minimum() {
        let mut p = qwen();
        p.thumbnail_budget = 3;
        let t = p.thumbnail(100, 100);
        assert_eq!(
            t.tokens,
            9 + 2,
            "3 x 3 is the smallest square with >= 8 tokens"
        );
    }

    #[test]
    fn fixed_thumbnail_is_the_native_square() {
        let p = ProjectorProfile {
            tile_size: 336,
            tile_tokens: 576,
            rule: PieceRule::Fixed,
            thumbnail_budget: 75,
            tiling: TilingPolicy::Fit,
            slices_itself: false,
        };
        assert_eq!(p.thumbnail(10, 4000), p.tile());
    }
}
