//! The resize rule of dynamic-resolution families (Qwen2/2.5/3-VL's
//! `smart_resize`, Pixtral in the pinned mtmd): keep the aspect ratio, round
//! each side to a multiple of the pixels one token covers, and scale by a
//! square root so that the area lands between a minimum and a maximum.
//!
//! Computed exactly as the pinned mtmd computes it (`calc_size_preserved_ratio`
//! in `tools/mtmd/mtmd-image.cpp`), in single-precision floats with C's
//! round-half-away-from-zero, because mtmd is what encodes: an image Tessera
//! resizes to this size passes through mtmd's own resize unchanged. Hugging
//! Face's processor rounds halves to even (Python's `round`); the two differ
//! only when a side is an odd multiple of half a unit (e.g. 70 px at 28).

/// Bounds on the resized area, in pixels; 0 disables one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaBounds {
    pub min_pixels: u64,
    pub max_pixels: u64,
}

/// The size (width, height) a `w` x `h` image is resized to: both sides
/// multiples of `unit`, each at least one unit.
pub fn smart_resize(w: u32, h: u32, unit: u32, bounds: AreaBounds) -> (u32, u32) {
    let f = unit.max(1) as f32;
    let (wf, hf) = (w.max(1) as f32, h.max(1) as f32);
    let by = |x: f32, op: fn(f32) -> f32| (op(x / f) as i64 * f as i64).max(0) as u64;
    let unit = u64::from(unit.max(1));
    let mut w_bar = by(wf, f32::round).max(unit);
    let mut h_bar = by(hf, f32::round).max(unit);
    let (min, max) = (bounds.min_pixels, bounds.max_pixels);
    if max > 0 && w_bar * h_bar > max {
        let beta = (hf * wf / max as f32).sqrt();
        h_bar = by(hf / beta, f32::floor).max(unit);
        w_bar = by(wf / beta, f32::floor).max(unit);
    } else if min > 0 && w_bar * h_bar < min {
        let beta = (min as f32 / (hf * wf)).sqrt();
        h_bar = by(hf * beta, f32::ceil);
        w_bar = by(wf * beta, f32::ceil);
    }
    (clamp_side(w_bar), clamp_side(h_bar))
}

fn clamp_side(v: u64) -> u32 {
    v.min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mtmd's Qwen2-VL defaults: 8..4096 tokens of 28x28 pixels.
    const QWEN: AreaBounds = AreaBounds {
        min_pixels: 8 * 784,
        max_pixels: 4096 * 784,
    };

    #[test]
    fn a_photo_keeps_its_size_to_the_unit() {
        // llama-server charged 391 + 2 tokens for this photo: 23 x 17 units.
        assert_eq!(smart_resize(640, 480, 28, QWEN), (644, 476));
        assert_eq!(smart_resize(1024, 768, 28, QWEN), (1036, 756));
        // Multiples of the unit are a fixed point: what mtmd does to an
        // image Tessera already resized.
        for (w, h) in [(644, 476), (28, 280), (1792, 1792)] {
            assert_eq!(smart_resize(w, h, 28, QWEN), (w, h));
        }
    }

    #[test]
    fn large_images_shrink_under_the_maximum() {
        let (w, h) = smart_resize(4032, 3024, 28, QWEN);
        assert!(u64::from(w) * u64::from(h) <= QWEN.max_pixels);
        assert_eq!((w % 28, h % 28), (0, 0));
        assert_eq!((w, h), (2044, 1540));
    }

    #[test]
    fn tiny_images_grow_to_the_minimum() {
        assert_eq!(smart_resize(1, 1, 28, QWEN), (84, 84));
        let (w, h) = smart_resize(10, 100, 28, QWEN);
        assert!(u64::from(w) * u64::from(h) >= QWEN.min_pixels);
    }

    #[test]
    fn halves_round_away_from_zero_as_in_c() {
        // 70 / 28 = 2.5: C's round gives 3 units, Python's round 2.
        assert_eq!(smart_resize(70, 280, 28, QWEN).0, 84);
    }
}
