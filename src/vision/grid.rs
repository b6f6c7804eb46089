//! Tiling policies: which grid of S-sized tiles a `high`-detail image gets,
//! and at what size the image is drawn onto it. Pure arithmetic on the
//! header's width and height.
//!
//! Worked example (S = 448, at most 12 tiles), a 640x480 photo:
//! - `fit` keeps 640x480 (it already fits 12 tiles) and covers it with 2x2
//!   tiles; the grid's last 256 columns and 416 rows are padding.
//! - `internvl` picks 4x3 (aspect 1.33 exactly) and stretches the photo to
//!   1792x1344: nine times its own pixels.
//! - `openai` is OpenAI's `high` geometry: 640x480 needs no scaling and is
//!   2x1 tiles of 512 px; mapped onto 448 px tiles it is drawn at 560x420.

use serde::Serialize;

/// Grid bounds, from the configuration. `min_tiles` binds the `internvl`
/// policy only: `fit` and `openai` never add tiles the image does not cover.
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

/// How `high` detail cuts an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TilingPolicy {
    /// The family's own geometry, as its processor was trained on
    /// (`whole.rs`): one whole image at dynamic resolution or the native
    /// square, or the projector's own slices.
    Native,
    /// Scale down only, so that the image fits `max_tiles` tiles; the grid
    /// is the fewest tiles that cover it, the rest padding.
    Fit,
    /// InternVL's rule: the grid whose aspect ratio is closest to the
    /// image's, the image stretched onto it (upscaled when small).
    Internvl,
    /// OpenAI's `high`: fit in 2048x2048, shortest side down to 768, 512 px
    /// tiles, mapped onto the projector's tile size.
    Openai,
}

impl TilingPolicy {
    pub fn name(self) -> &'static str {
        match self {
            TilingPolicy::Native => "native",
            TilingPolicy::Fit => "fit",
            TilingPolicy::Internvl => "internvl",
            TilingPolicy::Openai => "openai",
        }
    }
}

/// A `high`-detail grid: `cols` x `rows` tiles of S, and the size the image
/// is resized to, at most `cols*S` x `rows*S` and anchored top-left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub cols: u32,
    pub rows: u32,
    pub drawn: (u32, u32),
}

/// The grid for a `w` x `h` image under `policy`, with tile side `s`.
pub fn grid(w: u32, h: u32, s: u32, policy: TilingPolicy, limits: TileLimits) -> Grid {
    let (w, h, s) = (w.max(1), h.max(1), s.max(1));
    let max = limits.max_tiles.max(1);
    match policy {
        TilingPolicy::Internvl => {
            let (cols, rows) = choose_grid(w, h, s, limits);
            Grid {
                cols,
                rows,
                drawn: (cols * s, rows * s),
            }
        }
        // `native` is planned whole (`whole.rs`); as tiles it is `fit`.
        TilingPolicy::Fit | TilingPolicy::Native => covering(fit_size(w, h, s, max), s),
        TilingPolicy::Openai => {
            let (ow, oh) = openai_size(w, h);
            // 512 px tiles onto S px tiles; rounding up keeps OpenAI's count.
            let map = |v: u32| (u64::from(v) * u64::from(s)).div_ceil(512).max(1) as u32;
            covering(fit_size(map(ow), map(oh), s, max), s)
        }
    }
}

/// The fewest S-sized tiles that cover a drawn size.
fn covering(drawn: (u32, u32), s: u32) -> Grid {
    Grid {
        cols: drawn.0.div_ceil(s).max(1),
        rows: drawn.1.div_ceil(s).max(1),
        drawn,
    }
}

/// The largest size, at most `w` x `h` with the same aspect ratio (to a
/// pixel), whose covering grid has at most `max` tiles.
pub fn fit_size(w: u32, h: u32, s: u32, max: u32) -> (u32, u32) {
    let tiles = |w: u32, h: u32| u64::from(w.div_ceil(s)) * u64::from(h.div_ceil(s));
    if tiles(w, h) <= u64::from(max) {
        return (w, h);
    }
    // For c columns, max/c rows is the most that fits; the scale is what
    // the tighter of the two sides allows.
    let mut best = (0.0f64, 1u32, max);
    for c in 1..=max {
        let r = max / c;
        let scale = (f64::from(c * s) / f64::from(w)).min(f64::from(r * s) / f64::from(h));
        if scale > best.0 {
            best = (scale, c, r);
        }
    }
    let (scale, c, r) = best;
    let scale = scale.min(1.0);
    // The epsilon absorbs float error at exact multiples of S; the bound
    // keeps each side within the grid the scale was chosen for.
    let side = |v: u32, tiles: u32| {
        ((f64::from(v) * scale + 1e-9).floor() as u32).clamp(1, (tiles * s).min(v))
    };
    (side(w, c), side(h, r))
}

/// OpenAI's `high` resize: fit within 2048x2048, then the shortest side
/// down to 768; never up.
pub fn openai_size(w: u32, h: u32) -> (u32, u32) {
    let (w, h) = (f64::from(w.max(1)), f64::from(h.max(1)));
    let fit = (2048.0 / w.max(h)).min(1.0);
    let short = (768.0 / (w.min(h) * fit)).min(1.0);
    let side = |v: f64| ((v * fit * short).round() as u32).max(1);
    (side(w), side(h))
}

/// OpenAI's `high` tile count for a `w` x `h` image (512 px tiles).
pub fn openai_tiles(w: u32, h: u32) -> u32 {
    let (ow, oh) = openai_size(w, h);
    ow.div_ceil(512) * oh.div_ceil(512)
}

/// The grid (cols, rows) whose aspect ratio is closest to `w`/`h`, among
/// `min_tiles <= cols*rows <= max_tiles`, with InternVL's tie rule: ties
/// (e.g. a square image: 1x1, 2x2 and 3x3 all match exactly) go to the
/// larger grid only when W*H > 0.5 * S*S * cols*rows.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const L: TileLimits = TileLimits {
        min_tiles: 1,
        max_tiles: 12,
    };

    #[test]
    fn worked_example_from_the_doc_comment() {
        let g = |p| grid(640, 480, 448, p, L);
        assert_eq!(
            g(TilingPolicy::Fit),
            Grid {
                cols: 2,
                rows: 2,
                drawn: (640, 480)
            }
        );
        assert_eq!(
            g(TilingPolicy::Internvl),
            Grid {
                cols: 4,
                rows: 3,
                drawn: (1792, 1344)
            }
        );
        assert_eq!(
            g(TilingPolicy::Openai),
            Grid {
                cols: 2,
                rows: 1,
                drawn: (560, 420)
            }
        );
    }

    #[test]
    fn internvl_rule_is_unchanged() {
        assert_eq!(choose_grid(1000, 600, 448, L), (3, 2));
        // Square: 1x1, 2x2, 3x3 tie. 2x2 needs W*H > 0.5*448^2*4 = 401,408.
        assert_eq!(choose_grid(600, 600, 448, L), (1, 1)); // 360,000
        assert_eq!(choose_grid(700, 700, 448, L), (2, 2)); // 490,000
        // 3x3 needs > 903,168.
        assert_eq!(choose_grid(950, 950, 448, L), (2, 2)); // 902,500
        assert_eq!(choose_grid(951, 951, 448, L), (3, 3)); // 904,401
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
    fn openai_geometry_matches_its_published_examples() {
        // OpenAI's pricing examples: 1024x1024 -> 768x768, 4 tiles;
        // 2048x4096 -> 768x1536, 6 tiles; the 640x480 -> 2 tiles.
        assert_eq!(openai_size(1024, 1024), (768, 768));
        assert_eq!(openai_tiles(1024, 1024), 4);
        assert_eq!(openai_size(2048, 4096), (768, 1536));
        assert_eq!(openai_tiles(2048, 4096), 6);
        assert_eq!(openai_tiles(640, 480), 2);
        assert_eq!(openai_tiles(1, 1), 1);
        // With 512 px projector tiles the grid is OpenAI's own.
        let g = grid(2048, 4096, 512, TilingPolicy::Openai, L);
        assert_eq!((g.cols, g.rows, g.drawn), (2, 3, (768, 1536)));
    }

    #[test]
    fn fit_shrinks_only_past_the_tile_limit() {
        // 4032x3024 at 448: 9x7 = 63 tiles, over 12; the best grid is 4x3.
        let g = grid(4032, 3024, 448, TilingPolicy::Fit, L);
        assert_eq!((g.cols, g.rows), (4, 3));
        assert_eq!(g.drawn, (1792, 1344));
        // A 1:10 receipt keeps its size: 1x7 tiles.
        let g = grid(300, 3000, 448, TilingPolicy::Fit, L);
        assert_eq!((g.cols, g.rows, g.drawn), (1, 7, (300, 3000)));
    }

    proptest! {
        #[test]
        fn fit_never_upsamples_covers_the_image_and_stays_in_bounds(
            w in 1u32..20_000, h in 1u32..20_000, s in 14u32..1024, max in 1u32..64
        ) {
            let limits = TileLimits { min_tiles: 1, max_tiles: max };
            let g = grid(w, h, s, TilingPolicy::Fit, limits);
            prop_assert!(g.drawn.0 <= w && g.drawn.1 <= h, "upsampled: {:?}", g);
            prop_assert!(g.drawn.0 >= 1 && g.drawn.1 >= 1);
            // The grid covers what is drawn, and no row or column is all padding.
            prop_assert!(g.drawn.0 <= g.cols * s && g.drawn.1 <= g.rows * s);
            prop_assert!(g.drawn.0 > (g.cols - 1) * s && g.drawn.1 > (g.rows - 1) * s);
            prop_assert!(g.cols * g.rows >= 1 && g.cols * g.rows <= max);
            // Kept whole when it already fits.
            if u64::from(w.div_ceil(s)) * u64::from(h.div_ceil(s)) <= u64::from(max) {
                prop_assert_eq!(g.drawn, (w, h));
            }
        }

        #[test]
        fn every_policy_covers_what_it_draws(
            w in 1u32..20_000, h in 1u32..20_000, s in 14u32..1024, max in 1u32..64
        ) {
            let limits = TileLimits { min_tiles: 1, max_tiles: max };
            for policy in [TilingPolicy::Fit, TilingPolicy::Internvl, TilingPolicy::Openai] {
                let g = grid(w, h, s, policy, limits);
                prop_assert!(g.cols * g.rows >= 1 && g.cols * g.rows <= max, "{:?} {:?}", policy, g);
                prop_assert!(g.drawn.0 <= g.cols * s && g.drawn.1 <= g.rows * s);
                prop_assert!(g.drawn.0 >= 1 && g.drawn.1 >= 1);
            }
        }
    }
}
