//! The tile planner: InternVL's dynamic high-resolution grid plus one global
//! thumbnail, decided before any pixel is touched.
//!
//! Worked example (tile size S = 448, 1..=12 tiles): a 1000x600 photo has
//! aspect 1.67. 5x3 would match exactly but has 15 tiles, over the limit;
//! of the candidates, 3x2 (1.5, off by 0.17) beats 2x1 (2.0, off by 0.33).
//! The image is resized to 1344x896 and cut into 6 tiles of 448x448, plus
//! the thumbnail.
//! Ties (e.g. a square image: 1x1, 2x2 and 3x3 all match exactly) go to the
//! larger grid only when the image has more than half the pixels of that
//! grid: W*H > 0.5 * S*S * cols*rows.

use super::native::NativeSlicing;
use super::pricing::{PieceRule, PieceSize, ProjectorProfile};
use serde::Serialize;

/// `detail` after `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Detail {
    Low,
    High,
}

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestedDetail {
    #[default]
    Auto,
    Low,
    High,
}

/// Grid bounds, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileLimits {
    pub min_tiles: u32,
    pub max_tiles: u32,
}

impl Default for TileLimits {
    fn default() -> Self {
        TileLimits {
            min_tiles: 1,
            max_tiles: 12,
        }
    }
}

/// The plan for one image: what gets encoded and what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TilePlan {
    pub detail: Detail,
    pub width: u32,
    pub height: u32,
    /// Grid of full-resolution tiles; 0x0 for `low`.
    pub cols: u32,
    pub rows: u32,
    pub tile: PieceSize,
    /// The global view; present for `low` and for grids of 2+ tiles.
    pub thumbnail: Option<PieceSize>,
    /// Projectors that slice images themselves: the image is sent whole at
    /// this size, and this is its whole price. `cols` x `rows` are then the
    /// projector's slices and the thumbnail its overview (wrappers included).
    pub whole: Option<PieceSize>,
}

impl TilePlan {
    pub fn tiles(&self) -> u32 {
        self.cols * self.rows
    }

    /// Total tokens (KV cells) the image takes.
    pub fn tokens(&self) -> u32 {
        if let Some(whole) = self.whole {
            return whole.tokens;
        }
        self.tiles() * self.tile.tokens + self.thumbnail.map_or(0, |t| t.tokens)
    }

    /// The smallest source that every resize of this plan shrinks (or
    /// keeps): what a decoder must deliver, per side.
    pub fn needed_size(&self) -> (u32, u32) {
        let mut need = (1, 1);
        let mut take = |w: u32, h: u32| need = (need.0.max(w), need.1.max(h));
        if let Some(w) = self.whole {
            take(w.width, w.height);
            return need;
        }
        if self.tiles() > 0 {
            take(self.tile.width * self.cols, self.tile.height * self.rows);
        }
        if let Some(t) = self.thumbnail {
            take(t.width, t.height);
        }
        need
    }

    /// Bytes of the RGB pieces this plan hands to the encoder.
    pub fn pieces_bytes(&self) -> u64 {
        let px = |w: u32, h: u32| u64::from(w) * u64::from(h) * 3;
        if let Some(w) = self.whole {
            return px(w.width, w.height);
        }
        px(self.tile.width * self.cols, self.tile.height * self.rows)
            + self.thumbnail.map_or(0, |t| px(t.width, t.height))
    }

    /// Pieces sent to the encoder: tiles (row-major), then the thumbnail;
    /// one when the projector slices the image itself.
    pub fn pieces(&self) -> u32 {
        if self.whole.is_some() {
            return 1;
        }
        self.tiles() + u32::from(self.thumbnail.is_some())
    }
}

/// The grid (cols, rows) whose aspect ratio is closest to `w`/`h`, among
/// `min_tiles <= cols*rows <= max_tiles`, with InternVL's tie rule.
pub fn choose_grid(w: u32, h: u32, tile_size: u32, limits: TileLimits) -> (u32, u32) {
    let min = limits.min_tiles.max(1);
    let max = limits.max_tiles.max(min);
    let mut candidates: Vec<(u32, u32)> = (1..=max)
        .flat_map(|c| (1..=max).map(move |r| (c, r)))
        .filter(|(c, r)| (min..=max).contains(&(c * r)))
        .collect();
    // InternVL iterates candidates by tile count, then as generated.
    candidates.sort_by_key(|(c, r)| (c * r, *c));
    let aspect = w as f64 / h.max(1) as f64;
    let area = w as f64 * h as f64;
    let s2 = tile_size as f64 * tile_size as f64;
    let mut best = candidates.first().copied().unwrap_or((1, 1));
    let mut best_diff = f64::INFINITY;
    for (c, r) in candidates {
        let diff = (aspect - c as f64 / r as f64).abs();
        if diff < best_diff - 1e-12 {
            best_diff = diff;
            best = (c, r);
        } else if (diff - best_diff).abs() <= 1e-12 && area > 0.5 * s2 * (c * r) as f64 {
            best = (c, r);
        }
    }
    best
}

/// Plans one image. `auto` is `low` when the image fits in one tile
/// (both sides <= the tile size), `high` otherwise.
pub fn plan(
    w: u32,
    h: u32,
    detail: RequestedDetail,
    profile: &ProjectorProfile,
    limits: TileLimits,
) -> TilePlan {
    if let PieceRule::NativeSlices(n) = profile.rule {
        return native_plan(w, h, &n);
    }
    let s = profile.tile_size;
    let detail = match detail {
        RequestedDetail::Low => Detail::Low,
        RequestedDetail::High => Detail::High,
        RequestedDetail::Auto if w <= s && h <= s => Detail::Low,
        RequestedDetail::Auto => Detail::High,
    };
    let tile = profile.tile();
    let (cols, rows) = match detail {
        Detail::Low => (0, 0),
        Detail::High => choose_grid(w, h, s, limits),
    };
    let thumbnail = (detail == Detail::Low || cols * rows > 1).then(|| profile.thumbnail(w, h));
    TilePlan {
        detail,
        width: w,
        height: h,
        cols,
        rows,
        tile,
        thumbnail,
        whole: None,
    }
}

/// The projector's own grid; `detail` cannot change it (it always slices).
fn native_plan(w: u32, h: u32, n: &NativeSlicing) -> TilePlan {
    let (cols, rows) = n.grid(w, h);
    let (sw, sh) = n.sent_size(w, h);
    let total = n.price(w, h);
    let slices = cols * rows * n.slice_tokens;
    TilePlan {
        detail: Detail::High,
        width: w,
        height: h,
        cols,
        rows,
        tile: PieceSize {
            width: n.slice,
            height: n.slice,
            tokens: n.slice_tokens,
        },
        thumbnail: Some(PieceSize {
            width: n.slice,
            height: n.slice,
            tokens: total.saturating_sub(slices),
        }),
        whole: Some(PieceSize {
            width: sw,
            height: sh,
            tokens: total,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const L: TileLimits = TileLimits {
        min_tiles: 1,
        max_tiles: 12,
    };

    fn qwen() -> ProjectorProfile {
        ProjectorProfile::QWEN2VL_448
    }

    fn fixed() -> ProjectorProfile {
        ProjectorProfile {
            tile_size: 40,
            tile_tokens: 25,
            rule: PieceRule::Fixed,
            thumbnail_budget: 75,
        }
    }

    #[test]
    fn worked_example_from_the_doc_comment() {
        assert_eq!(choose_grid(1000, 600, 448, L), (3, 2));
        let p = plan(1000, 600, RequestedDetail::Auto, &qwen(), L);
        assert_eq!(p.detail, Detail::High);
        assert_eq!(p.tiles(), 6);
        assert_eq!(p.tokens(), 6 * 258 + p.thumbnail.unwrap().tokens);
    }

    #[test]
    fn tie_rule_prefers_larger_grid_only_for_large_images() {
        // Square: 1x1, 2x2, 3x3 tie. 2x2 needs W*H > 0.5*448^2*4 = 401,408.
        assert_eq!(choose_grid(600, 600, 448, L), (1, 1)); // 360,000
        assert_eq!(choose_grid(700, 700, 448, L), (2, 2)); // 490,000
        // 3x3 needs > 903,168.
        assert_eq!(choose_grid(950, 950, 448, L), (2, 2)); // 902,500
        assert_eq!(choose_grid(951, 951, 448, L), (3, 3)); // 904,401
    }

    #[test]
    fn panoramas_and_limits() {
        assert_eq!(choose_grid(4000, 400, 448, L), (10, 1));
        assert_eq!(choose_grid(400, 4000, 448, L), (1, 10));
        let few = TileLimits {
            min_tiles: 1,
            max_tiles: 4,
        };
        assert_eq!(choose_grid(4000, 400, 448, few), (4, 1));
        let many = TileLimits {
            min_tiles: 2,
            max_tiles: 6,
        };
        assert_eq!(choose_grid(100, 100, 448, many), (2, 2));
    }

    #[test]
    fn auto_low_and_high() {
        let small = plan(300, 200, RequestedDetail::Auto, &qwen(), L);
        assert_eq!((small.detail, small.tiles()), (Detail::Low, 0));
        assert_eq!(small.tokens(), small.thumbnail.unwrap().tokens);
        // `high` follows the aspect ratio even for small images: 3x2 is exact.
        let forced = plan(300, 200, RequestedDetail::High, &qwen(), L);
        assert_eq!((forced.cols, forced.rows), (3, 2));
        let square = plan(300, 300, RequestedDetail::High, &qwen(), L);
        assert_eq!((square.tiles(), square.thumbnail), (1, None));
        assert_eq!(square.tokens(), 258);
        let low = plan(4000, 3000, RequestedDetail::Low, &qwen(), L);
        assert_eq!(low.pieces(), 1);
        // Fixed projectors: the thumbnail costs the fixed count.
        let f = plan(100, 50, RequestedDetail::Auto, &fixed(), L);
        assert_eq!(f.tokens(), 2 * 25 + 25);
    }

    proptest! {
        #[test]
        fn plans_cover_the_image_and_respect_limits(
            w in 1u32..5000, h in 1u32..5000, min in 1u32..4, extra in 0u32..12
        ) {
            let limits = TileLimits { min_tiles: min, max_tiles: min + extra };
            for profile in [qwen(), fixed()] {
                let p = plan(w, h, RequestedDetail::High, &profile, limits);
                let s = profile.tile_size;
                prop_assert!(p.tiles() >= limits.min_tiles && p.tiles() <= limits.max_tiles);
                // The resized canvas is exactly cols x rows tiles of S: it covers the image.
                prop_assert_eq!(p.tile.width, s);
                prop_assert_eq!(p.tile.height, s);
                // A thumbnail exactly when there is more than one tile.
                prop_assert_eq!(p.thumbnail.is_some(), p.tiles() > 1);
                if let Some(t) = p.thumbnail {
                    prop_assert!(t.width > 0 && t.height > 0);
                    prop_assert!(t.tokens <= profile.thumbnail_budget.max(profile.tile_tokens));
                }
                prop_assert_eq!(p.tokens(), p.tiles() * profile.tile_tokens + p.thumbnail.map_or(0, |t| t.tokens));
            }
        }

        #[test]
        fn price_is_monotone_in_size(w in 1u32..2500, h in 1u32..2500, k in 2u32..4) {
            for profile in [qwen(), fixed()] {
                for detail in [RequestedDetail::Auto, RequestedDetail::High, RequestedDetail::Low] {
                    let small = plan(w, h, detail, &profile, L).tokens();
                    let big = plan(w * k, h * k, detail, &profile, L).tokens();
                    prop_assert!(big >= small, "{}x{} -> {} but x{} -> {}", w, h, small, k, big);
                }
            }
        }
    }
}
