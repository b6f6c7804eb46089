//! Projectors that slice images themselves by the longest-edge rule
//! (Idefics3 / SmolVLM). mtmd resizes such an image so that its longer side
//! is `longest` pixels, rounds both sides up to whole slices of the native
//! size, and encodes every slice plus an overview. Cutting Tessera's tiles
//! first would make mtmd slice each tile again (17 pieces per tile on
//! SmolVLM), so for these projectors the projector's grid governs: the image
//! is sent whole. The grid is predicted here, exactly as mtmd computes it,
//! and priced from a table measured at start-up, so the price is still known
//! before anything is encoded.

use serde::Serialize;

/// Largest grid side the price table covers.
pub const MAX_GRID: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NativeSlicing {
    /// The longer side after mtmd's resize (`clip.vision.preproc_image_size`).
    pub longest: u32,
    /// Side of one slice: the encoder's native size.
    pub slice: u32,
    /// Tokens of one slice's (or the overview's) embeddings.
    pub slice_tokens: u32,
    /// Whole-image prices, wrappers included: `landscape[g - 1]` for a
    /// G x g grid (width >= height), `portrait[g - 1]` for g x G.
    pub landscape: [u32; MAX_GRID],
    pub portrait: [u32; MAX_GRID],
}

impl NativeSlicing {
    /// Slices along the longer side: always this many.
    pub fn max_grid(&self) -> u32 {
        self.longest.div_ceil(self.slice.max(1))
    }

    /// The size the image is sent at: its own, unless it is so thin that
    /// mtmd's resize would leave under two pixels across (then stretched).
    pub fn sent_size(&self, w: u32, h: u32) -> (u32, u32) {
        let (w, h) = (w.max(1), h.max(1));
        let thinnest = |long: u32| (2 * u64::from(long)).div_ceil(u64::from(self.longest)) as u32;
        if w >= h {
            (w, h.max(thinnest(w)))
        } else {
            (w.max(thinnest(h)), h)
        }
    }

    /// (cols, rows) of slices, computed as mtmd computes them (including its
    /// rounding of the shorter side to an even number of pixels).
    pub fn grid(&self, w: u32, h: u32) -> (u32, u32) {
        let (w, h) = self.sent_size(w, h);
        let aspect = f64::from(w) / f64::from(h);
        let longest = f64::from(self.longest);
        let even = |x: f64| {
            let v = x as u32;
            v + v % 2
        };
        let (rw, rh) = if w >= h {
            (self.longest, even(longest / aspect))
        } else {
            (even(longest * aspect), self.longest)
        };
        let s = self.slice.max(1);
        (rw.div_ceil(s), rh.div_ceil(s))
    }

    /// Tokens the whole image takes: slices, overview and wrapper tokens.
    pub fn price(&self, w: u32, h: u32) -> u32 {
        let (cols, rows) = self.grid(w, h);
        let (w, h) = self.sent_size(w, h);
        let (table, g) = if w >= h {
            (&self.landscape, rows)
        } else {
            (&self.portrait, cols)
        };
        table[(g.clamp(1, MAX_GRID as u32) - 1) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolVLM's geometry: 512 px slices, longest edge 2048.
    fn smolvlm() -> NativeSlicing {
        let mut landscape = [0; MAX_GRID];
        let mut portrait = [0; MAX_GRID];
        for g in 1..=4 {
            landscape[g - 1] = (4 * g as u32 + 1) * 64 + 100 + g as u32;
            portrait[g - 1] = (4 * g as u32 + 1) * 64 + 100 + 10 * g as u32;
        }
        NativeSlicing {
            longest: 2048,
            slice: 512,
            slice_tokens: 64,
            landscape,
            portrait,
        }
    }

    #[test]
    fn grids_follow_the_longest_edge_rule() {
        let n = smolvlm();
        assert_eq!(n.max_grid(), 4);
        // Square and tiny images are upscaled to the full 4x4 grid.
        assert_eq!(n.grid(512, 512), (4, 4));
        assert_eq!(n.grid(1, 1), (4, 4));
        // 4:3 -> 2048 x 1536 -> 4 x 3.
        assert_eq!(n.grid(1024, 768), (4, 3));
        // 10:1 -> 2048 x 204 (even) -> 4 x 1; 1:10 is the transpose.
        assert_eq!(n.grid(4000, 400), (4, 1));
        assert_eq!(n.grid(400, 4000), (1, 4));
        // Just over a slice boundary: 2048 x 1026 -> 3 rows.
        assert_eq!(n.grid(2048, 1025), (4, 3));
        assert_eq!(n.price(1024, 768), n.landscape[2]);
        assert_eq!(n.price(400, 4000), n.portrait[0]);
    }

    #[test]
    fn hair_thin_images_are_stretched_to_two_pixels_after_the_resize() {
        let n = smolvlm();
        assert_eq!(n.sent_size(100_000, 1), (100_000, 98));
        assert_eq!(n.sent_size(1, 100_000), (98, 100_000));
        assert_eq!(n.grid(100_000, 1), (4, 1));
        assert_eq!(n.sent_size(640, 480), (640, 480));
    }
}
