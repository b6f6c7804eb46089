//! The tile plan: a grid of full-resolution tiles (its shape set by the
//! projector's tiling policy, `grid.rs`) plus one global thumbnail, decided
//! before any pixel is touched.
//!
//! `low` is the thumbnail alone; `auto` is `low` when the image fits one
//! tile (both sides <= S), `high` otherwise. A thumbnail joins the tiles
//! when there is more than one tile.

use super::grid::{TileLimits, TilingPolicy, grid};
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

/// The plan for one image: what gets encoded and what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TilePlan {
    pub detail: Detail,
    /// The policy that made this plan.
    pub policy: TilingPolicy,
    pub width: u32,
    pub height: u32,
    /// Grid of full-resolution tiles; 0x0 for `low`.
    pub cols: u32,
    pub rows: u32,
    /// The size the image is resized to for the grid, anchored top-left:
    /// at most `cols*S` x `rows*S`, the rest of the grid is padding.
    pub drawn: (u32, u32),
    /// What the model's input is drawn on: the tile grid, the native square
    /// (the drawn image centred on it) or the whole image itself.
    pub canvas: (u32, u32),
    /// Where the drawn image's top-left corner sits on the canvas.
    pub offset: (u32, u32),
    pub tile: PieceSize,
    /// The global view; present for `low` and for grids of 2+ tiles.
    pub thumbnail: Option<PieceSize>,
    /// Projectors that slice images themselves: the image is sent whole at
    /// this size, and this is its whole price. `cols` x `rows` are then the
    /// projector's slices and the thumbnail its overview (wrappers included).
    pub whole: Option<PieceSize>,
    /// The projector cuts the whole image into its own slices (SmolVLM).
    pub sliced_by_projector: bool,
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
            take(self.drawn.0, self.drawn.1);
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
            // mtmd pads a fixed projector's image onto its square.
            return px(w.width.max(self.canvas.0), w.height.max(self.canvas.1));
        }
        px(self.tile.width * self.cols, self.tile.height * self.rows)
            + self.thumbnail.map_or(0, |t| px(t.width, t.height))
    }

    /// Whether the model sees fewer pixels than the image has.
    pub fn downscaled(&self) -> bool {
        u64::from(self.drawn.0) * u64::from(self.drawn.1)
            < u64::from(self.width) * u64::from(self.height)
    }

    /// Each tile's box `[x0, y0, x1, y1]` in the original image's pixels,
    /// row-major (the part of the tile that is image, not padding); empty
    /// when the image is sent whole.
    pub fn tile_boxes(&self) -> Vec<[u32; 4]> {
        if self.whole.is_some() || self.tiles() == 0 {
            return Vec::new();
        }
        let s = u64::from(self.tile.width);
        let map = |v: u64, drawn: u32, full: u32| {
            (v * u64::from(full) / u64::from(drawn.max(1))).min(u64::from(full)) as u32
        };
        let mut boxes = Vec::with_capacity(self.tiles() as usize);
        for r in 0..u64::from(self.rows) {
            for c in 0..u64::from(self.cols) {
                let x = |v: u64| map(v, self.drawn.0, self.width);
                let y = |v: u64| map(v, self.drawn.1, self.height);
                boxes.push([x(c * s), y(r * s), x((c + 1) * s), y((r + 1) * s)]);
            }
        }
        boxes
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
    let (cols, rows, drawn) = match detail {
        Detail::Low => (0, 0, (0, 0)),
        Detail::High => {
            let g = grid(w, h, s, profile.tiling, limits);
            (g.cols, g.rows, g.drawn)
        }
    };
    let thumbnail = (detail == Detail::Low || cols * rows > 1).then(|| profile.thumbnail(w, h));
    TilePlan {
        detail,
        policy: profile.tiling,
        width: w,
        height: h,
        cols,
        rows,
        drawn,
        canvas: (cols * s, rows * s),
        offset: (0, 0),
        tile,
        thumbnail,
        whole: None,
        sliced_by_projector: false,
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
        policy: TilingPolicy::Native,
        width: w,
        height: h,
        cols,
        rows,
        drawn: (sw, sh),
        canvas: (sw, sh),
        offset: (0, 0),
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
        sliced_by_projector: true,
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
            tiling: TilingPolicy::Fit,
            slices_itself: false,
        }
    }

    fn with(profile: ProjectorProfile, tiling: TilingPolicy) -> ProjectorProfile {
        ProjectorProfile { tiling, ..profile }
    }

    #[test]
    fn a_photo_under_each_policy() {
        // 1000x600 at S = 448: `fit` covers it with 3x2 tiles at its own
        // size; `internvl` also picks 3x2 (1.5 is the closest aspect) but
        // stretches the photo to 1344x896.
        let p = plan(1000, 600, RequestedDetail::Auto, &qwen(), L);
        assert_eq!(
            (p.detail, p.cols, p.rows, p.drawn),
            (Detail::High, 3, 2, (1000, 600))
        );
        assert_eq!(p.tokens(), 6 * 258 + p.thumbnail.unwrap().tokens);
        assert_eq!(p.needed_size(), (1000, 600));
        let i = plan(
            1000,
            600,
            RequestedDetail::Auto,
            &with(qwen(), TilingPolicy::Internvl),
            L,
        );
        assert_eq!((i.cols, i.rows, i.drawn), (3, 2, (1344, 896)));
        // The default `auto` on a 640x480 photo: 4 tiles, not 12.
        let p = plan(640, 480, RequestedDetail::Auto, &qwen(), L);
        assert_eq!((p.cols, p.rows), (2, 2));
        let i = plan(
            640,
            480,
            RequestedDetail::Auto,
            &with(qwen(), TilingPolicy::Internvl),
            L,
        );
        assert_eq!((i.cols, i.rows), (4, 3));
    }

    #[test]
    fn tile_boxes_map_back_to_the_original_image() {
        // 1000x600 under `fit`: drawn at its own size on 3x2 tiles of 448.
        let p = plan(1000, 600, RequestedDetail::High, &qwen(), L);
        let b = p.tile_boxes();
        assert_eq!(b.len(), 6);
        assert_eq!(b[0], [0, 0, 448, 448]);
        assert_eq!(b[5], [896, 448, 1000, 600]);
        assert!(!p.downscaled());
        // 4032x3024 drawn smaller: boxes scale back up, the last reaches the edge.
        let p = plan(4032, 3024, RequestedDetail::High, &qwen(), L);
        assert!(p.downscaled());
        let last = *p.tile_boxes().last().unwrap();
        assert_eq!((last[2], last[3]), (4032, 3024));
    }

    #[test]
    fn auto_low_and_high() {
        let small = plan(300, 200, RequestedDetail::Auto, &qwen(), L);
        assert_eq!((small.detail, small.tiles()), (Detail::Low, 0));
        assert_eq!(small.tokens(), small.thumbnail.unwrap().tokens);
        // Forced `high` on an image that fits one tile: one tile, no thumbnail.
        let forced = plan(300, 200, RequestedDetail::High, &qwen(), L);
        assert_eq!((forced.cols, forced.rows, forced.thumbnail), (1, 1, None));
        assert_eq!(forced.tokens(), 258);
        // `internvl` follows the aspect ratio even for small images: 3x2 is exact.
        let forced = plan(
            300,
            200,
            RequestedDetail::High,
            &with(qwen(), TilingPolicy::Internvl),
            L,
        );
        assert_eq!((forced.cols, forced.rows), (3, 2));
        let low = plan(4000, 3000, RequestedDetail::Low, &qwen(), L);
        assert_eq!(low.pieces(), 1);
        // Fixed projectors: the thumbnail costs the fixed count.
        let f = plan(100, 50, RequestedDetail::Auto, &fixed(), L);
        assert_eq!((f.cols, f.rows), (3, 2));
        assert_eq!(f.tokens(), 6 * 25 + 25);
        let f = plan(
            100,
            50,
            RequestedDetail::Auto,
            &with(fixed(), TilingPolicy::Internvl),
            L,
        );
        assert_eq!(f.tokens(), 2 * 25 + 25);
    }

    const POLICIES: [TilingPolicy; 3] = [
        TilingPolicy::Fit,
        TilingPolicy::Internvl,
        TilingPolicy::Openai,
    ];

    proptest! {
        #[test]
        fn plans_cover_the_image_and_respect_limits(
            w in 1u32..5000, h in 1u32..5000, min in 1u32..4, extra in 0u32..12
        ) {
            let limits = TileLimits { min_tiles: min, max_tiles: min + extra };
            for profile in [qwen(), fixed()] {
                for policy in POLICIES {
                    let profile = with(profile, policy);
                    let p = plan(w, h, RequestedDetail::High, &profile, limits);
                    let s = profile.tile_size;
                    prop_assert!(p.tiles() >= 1 && p.tiles() <= limits.max_tiles);
                    if policy == TilingPolicy::Internvl {
                        prop_assert!(p.tiles() >= limits.min_tiles);
                    }
                    // Tiles are S square and cover what is drawn.
                    prop_assert_eq!((p.tile.width, p.tile.height), (s, s));
                    prop_assert!(p.drawn.0 <= p.cols * s && p.drawn.1 <= p.rows * s);
                    // A thumbnail exactly when there is more than one tile.
                    prop_assert_eq!(p.thumbnail.is_some(), p.tiles() > 1);
                    if let Some(t) = p.thumbnail {
                        prop_assert!(t.width > 0 && t.height > 0);
                        prop_assert!(t.tokens <= profile.thumbnail_budget.max(profile.tile_tokens));
                    }
                    prop_assert_eq!(p.tokens(), p.tiles() * profile.tile_tokens + p.thumbnail.map_or(0, |t| t.tokens));
                }
            }
        }

        #[test]
        fn price_is_monotone_in_size(w in 1u32..2500, h in 1u32..2500, k in 2u32..4) {
            for profile in [qwen(), fixed()] {
                for policy in POLICIES {
                    let profile = with(profile, policy);
                    for detail in [RequestedDetail::Auto, RequestedDetail::High, RequestedDetail::Low] {
                        let small = plan(w, h, detail, &profile, L).tokens();
                        let big = plan(w * k, h * k, detail, &profile, L).tokens();
                        prop_assert!(big >= small, "{:?}: {}x{} -> {} but x{} -> {}", policy, w, h, small, k, big);
                    }
                }
            }
        }
    }
}
