//! The `native` policy: each family's own geometry, the image sent to the
//! encoder whole, as its Hugging Face processor and the pinned mtmd do.
//! - dynamic resolution (Qwen2/2.5/3-VL, Pixtral): `smart_resize` within
//!   the budget, so a 640x480 photo is one 644x476 image of 23 x 17 units;
//! - one fixed square (LLaVA 1.5, Gemma 3): the image scaled to fit the
//!   native square, centred and padded by mtmd, at the fixed count;
//! - longest-edge slicing (SmolVLM): the projector's own grid (`native.rs`).
//!
//! Projectors that cut their own slices from a whole image: InternVL and
//! MiniCPM-V get the image whole too, priced by mtmd's own count (an
//! [`Oracle`], which the caller gives for those families); LFM2-VL, or any
//! of them without an oracle, gets Tessera's tiles under the trained grid
//! rule (`internvl`), each tile one native slice to it.
//!
//! [`plan_image`] is the entry point for every policy: it applies the
//! client's budget and `detail`, and says when a budget cannot be met.

use super::grid::{TileLimits, TilingPolicy};
use super::options::{ImageOptions, PriceError};
use super::pricing::{PieceRule, PieceSize, ProjectorProfile};
use super::smart_resize::{AreaBounds, smart_resize};
use super::tiling::{self, Detail, RequestedDetail, TilePlan};

/// What the loaded projector charges for a whole `w` x `h` image, as mtmd
/// counts it (`None` when it cannot say).
pub type Oracle<'a> = &'a dyn Fn(u32, u32) -> Option<u32>;

/// Largest area an image is sent at to a projector that slices it itself
/// (2048 x 2048): past it their slicing gains little (InternVL: 12 tiles of
/// 448 px; MiniCPM-V: 9 slices of 448; LFM2-VL: 10 of 512), and mtmd's float
/// copy of a 12 MP photo would take 150 MB. An area, not a side, so that a
/// panorama or a receipt keeps the size its processor decides tiling by.
pub const SLICED_MAX_PIXELS: u64 = 2048 * 2048;

/// Plans one image under the client's options (policy, detail, budget).
pub fn plan_image(
    w: u32,
    h: u32,
    opts: &ImageOptions,
    profile: &ProjectorProfile,
    limits: TileLimits,
) -> Result<TilePlan, PriceError> {
    plan_image_with(w, h, opts, profile, limits, None)
}

/// [`plan_image`], with mtmd's own count for projectors that slice whole
/// images themselves (InternVL, MiniCPM-V): `native` then sends the image
/// whole, as llama-server does, and prices it by that count. Without it
/// they get tiles under the trained grid rule.
pub fn plan_image_with(
    w: u32,
    h: u32,
    opts: &ImageOptions,
    profile: &ProjectorProfile,
    limits: TileLimits,
    oracle: Option<Oracle>,
) -> Result<TilePlan, PriceError> {
    let policy = opts.tiling.unwrap_or(profile.tiling);
    let tiles = |tiling: TilingPolicy| {
        let p = ProjectorProfile { tiling, ..*profile };
        within_max(w, h, opts, &p, limits)
    };
    match (policy, profile.rule) {
        (_, PieceRule::NativeSlices(_)) => {
            capped(tiling::plan(w, h, opts.detail, profile, limits), opts)
        }
        (TilingPolicy::Native, PieceRule::Dynamic { .. }) => dynamic(w, h, opts, profile),
        (TilingPolicy::Native, PieceRule::Fixed) if !profile.slices_itself => {
            capped(square(w, h, profile), opts)
        }
        // Projectors that slice whole images themselves: whole, priced by
        // mtmd; else their trained grid rule, cut by Tessera.
        (TilingPolicy::Native, PieceRule::Fixed) => {
            match oracle.and_then(|o| sliced(w, h, opts, o, profile)) {
                Some(plan) => plan,
                None => tiles(TilingPolicy::Internvl),
            }
        }
        (policy, _) => tiles(policy),
    }
}

/// A whole image for a projector that slices it itself, at the price mtmd
/// counts for the size it is sent at (`None` when mtmd cannot say).
/// `low` sends it fitted within one native tile (one slice, no grid);
/// `auto` is `low` when it already fits one. Under a client's budget the
/// size steps down (or, for a minimum, up) a tenth at a time: mtmd's count
/// jumps where its slicing changes, so the steps ask it rather than guess.
fn sliced(
    w: u32,
    h: u32,
    opts: &ImageOptions,
    oracle: Oracle,
    profile: &ProjectorProfile,
) -> Option<Result<TilePlan, PriceError>> {
    let (w1, h1) = (w.max(1), h.max(1));
    let tile = profile.tile_size.max(1);
    let detail = match opts.detail {
        RequestedDetail::Low => Detail::Low,
        RequestedDetail::High => Detail::High,
        RequestedDetail::Auto if w1.max(h1) <= tile => Detail::Low,
        RequestedDetail::Auto => Detail::High,
    };
    let area = f64::from(w1) * f64::from(h1);
    let largest = (SLICED_MAX_PIXELS as f64 / area).sqrt();
    let top = match detail {
        Detail::Low => f64::from(tile) / f64::from(w1.max(h1)),
        Detail::High => largest,
    }
    .min(1.0);
    let at = |scale: f64| -> Option<((u32, u32), u32)> {
        let side = |v: u32| ((f64::from(v) * scale + 1e-9).floor() as u32).max(1);
        let sent = (side(w1), side(h1));
        Some((sent, oracle(sent.0, sent.1)?))
    };
    let mut best = at(top)?;
    if let Some(max) = opts.max_tokens.filter(|&m| best.1 > m) {
        let (mut scale, mut smallest) = (top, best.1);
        loop {
            if f64::from(w1.max(h1)) * scale < 1.0 {
                return Some(Err(PriceError { smallest }));
            }
            scale *= 0.9;
            let next = at(scale)?;
            smallest = smallest.min(next.1);
            if next.1 <= max {
                best = next;
                break;
            }
        }
    } else if let Some(min) = opts
        .min_tokens
        .filter(|&m| best.1 < m && detail == Detail::High)
    {
        // Grown no larger than any image is sent; short of `min`, the most.
        let max = opts.max_tokens.unwrap_or(u32::MAX);
        let mut scale = top;
        while best.1 < min && scale < largest {
            scale = (scale * 1.1).min(largest);
            let next = at(scale)?;
            if next.1 > max {
                break;
            }
            best = next;
        }
    }
    let mut plan = whole_plan(w, h, detail, best.0, best.1, profile);
    plan.sliced_by_projector = true;
    Some(Ok(plan))
}

/// A plan of one possible price is refused when it is over `max_tokens`.
fn capped(plan: TilePlan, opts: &ImageOptions) -> Result<TilePlan, PriceError> {
    match opts.max_tokens {
        Some(max) if plan.tokens() > max => Err(PriceError {
            smallest: plan.tokens(),
        }),
        _ => Ok(plan),
    }
}

/// Tile policies under a price cap: the largest grid (then the thumbnail
/// alone) whose price fits `max_tokens`.
fn within_max(
    w: u32,
    h: u32,
    opts: &ImageOptions,
    profile: &ProjectorProfile,
    limits: TileLimits,
) -> Result<TilePlan, PriceError> {
    let first = tiling::plan(w, h, opts.detail, profile, limits);
    let Some(max) = opts.max_tokens else {
        return Ok(first);
    };
    if first.tokens() <= max {
        return Ok(first);
    }
    for tiles in (1..limits.max_tiles).rev() {
        let fewer = TileLimits {
            min_tiles: limits.min_tiles.min(tiles),
            max_tiles: tiles,
        };
        let p = tiling::plan(w, h, RequestedDetail::High, profile, fewer);
        if p.tokens() <= max {
            return Ok(p);
        }
    }
    capped(
        tiling::plan(w, h, RequestedDetail::Low, profile, limits),
        opts,
    )
}

/// A dynamic projector's whole image: `smart_resize` within the client's
/// bounds, inside the range the projector keeps as it is (so that mtmd
/// does not resize it again). `low` caps the whole price at the thumbnail
/// budget; `auto` is `low` when the image already fits that cap.
fn dynamic(
    w: u32,
    h: u32,
    opts: &ImageOptions,
    profile: &ProjectorProfile,
) -> Result<TilePlan, PriceError> {
    let Some(d) = Dynamic::of(profile) else {
        return Ok(square(w, h, profile));
    };
    let (floor, ceiling) = (d.natural.min_pixels, d.natural.max_pixels);
    let cheapest = AreaBounds {
        min_pixels: floor,
        max_pixels: floor,
    };
    let smallest = || PriceError {
        smallest: d.price_at(w, h, cheapest),
    };
    if opts.max_area(d.per).is_some_and(|m| m < floor) {
        return Err(smallest());
    }
    let max = opts.max_area(d.per).unwrap_or(ceiling).min(ceiling);
    let mut b = AreaBounds {
        max_pixels: max,
        min_pixels: opts.min_area(d.per).unwrap_or(floor).clamp(floor, max),
    };
    let low_cap = profile.thumbnail_budget;
    let detail = match opts.detail {
        RequestedDetail::Low => Detail::Low,
        RequestedDetail::High => Detail::High,
        RequestedDetail::Auto if d.price_at(w, h, d.natural) <= low_cap => Detail::Low,
        RequestedDetail::Auto => Detail::High,
    };
    if detail == Detail::Low {
        b = d.within_price(w, h, b, low_cap);
    }
    let mut size = d.settled(w, h, b);
    // Growing to the minimum rounds up and may pass the maximum: the
    // maximum wins.
    let area = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
    if area(size) > b.max_pixels {
        b.min_pixels = floor;
        size = d.settled(w, h, b);
    }
    if area(size) > b.max_pixels {
        // `low` on an image whose cheapest geometry is over the thumbnail
        // budget gets that geometry; a client's own cap is refused.
        if opts.has_max() {
            return Err(smallest());
        }
        size = d.settled(w, h, cheapest);
    }
    let (rw, rh) = size;
    let tokens = profile.dynamic_price(rw, rh).ok_or_else(smallest)?;
    Ok(whole_plan(w, h, detail, (rw, rh), tokens, profile))
}

/// A dynamic projector's facts, as the whole-image planner uses them.
struct Dynamic<'a> {
    profile: &'a ProjectorProfile,
    unit: u32,
    overhead: u32,
    /// Pixels one token covers.
    per: u64,
    /// The area range the projector keeps without resizing.
    natural: AreaBounds,
}

impl<'a> Dynamic<'a> {
    fn of(profile: &'a ProjectorProfile) -> Option<Self> {
        let PieceRule::Dynamic {
            unit,
            overhead,
            min_tokens,
            max_tokens,
            ..
        } = profile.rule
        else {
            return None;
        };
        let per = u64::from(unit) * u64::from(unit);
        Some(Dynamic {
            profile,
            unit,
            overhead,
            per,
            natural: AreaBounds {
                min_pixels: u64::from(min_tokens) * per,
                max_pixels: u64::from(max_tokens) * per,
            },
        })
    }

    /// `smart_resize` within `b`, then as mtmd would resize that again
    /// within its own range (a no-op unless `b`'s rounding fell below the
    /// projector's minimum): the size the projector keeps as it is.
    fn settled(&self, w: u32, h: u32, b: AreaBounds) -> (u32, u32) {
        let (rw, rh) = smart_resize(w, h, self.unit, b);
        smart_resize(rw, rh, self.unit, self.natural)
    }

    /// The price of `w` x `h` resized within `b`; `u32::MAX` when the size
    /// falls outside what the projector keeps.
    fn price_at(&self, w: u32, h: u32, b: AreaBounds) -> u32 {
        let (rw, rh) = self.settled(w, h, b);
        self.profile.dynamic_price(rw, rh).unwrap_or(u32::MAX)
    }

    /// `b` narrowed so that the whole price is at most `cap` (never below
    /// the projector's minimum): its units first, then a unit at a time
    /// while row tokens push the price past it.
    fn within_price(&self, w: u32, h: u32, b: AreaBounds, cap: u32) -> AreaBounds {
        let floor = self.natural.min_pixels;
        let units = u64::from(cap.saturating_sub(self.overhead));
        let mut b = AreaBounds {
            max_pixels: b.max_pixels.min(units * self.per).max(floor),
            min_pixels: floor,
        };
        while self.price_at(w, h, b) > cap && b.max_pixels > floor {
            b.max_pixels = b.max_pixels.saturating_sub(self.per).max(floor);
        }
        b
    }
}

/// A fixed-count projector's one image: scaled to fit the native square
/// (mtmd's own rounding: up, at most the square), centred on it by mtmd.
fn square(w: u32, h: u32, profile: &ProjectorProfile) -> TilePlan {
    let s = profile.tile_size.max(1);
    let (w1, h1) = (w.max(1), h.max(1));
    let scale = (s as f32 / w1 as f32).min(s as f32 / h1 as f32);
    let side = |v: u32| ((v as f32 * scale).ceil() as u32).clamp(1, s);
    let fitted = (side(w1), side(h1));
    let mut p = whole_plan(w, h, Detail::High, fitted, profile.tile_tokens, profile);
    p.canvas = (s, s);
    p.offset = ((s - fitted.0) / 2, (s - fitted.1) / 2);
    p
}

/// A plan that sends the image whole at `resized`; `cols` x `rows` are the
/// tile-sized regions it covers (the per-tile view of its price).
fn whole_plan(
    w: u32,
    h: u32,
    detail: Detail,
    resized: (u32, u32),
    tokens: u32,
    profile: &ProjectorProfile,
) -> TilePlan {
    let s = profile.tile_size.max(1);
    TilePlan {
        detail,
        policy: TilingPolicy::Native,
        width: w,
        height: h,
        cols: resized.0.div_ceil(s),
        rows: resized.1.div_ceil(s),
        drawn: resized,
        canvas: resized,
        offset: (0, 0),
        tile: profile.tile(),
        thumbnail: None,
        whole: Some(PieceSize {
            width: resized.0,
            height: resized.1,
            tokens,
        }),
        sliced_by_projector: false,
    }
}

#[cfg(test)]
mod tests;
