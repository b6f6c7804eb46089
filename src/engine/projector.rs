//! Measures the loaded projector once at start-up, so that every image can
//! be priced before it is encoded. Costs are read off mtmd's own tokenizer
//! (preprocessing only, no encoding) on blank probe images, never looked up
//! by model name.

use super::gguf_meta::GgufMeta;
use crate::vision::native::MAX_GRID;
use crate::vision::{NativeSlicing, PieceRule, ProjectorProfile, TilingPolicy};
use llama_cpp_2::mtmd::{
    MtmdBitmap, MtmdContext, MtmdInputChunkType, MtmdInputChunks, MtmdInputText,
};

/// Tiling settings from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct TileSettings {
    /// 0 = automatic: the projector's native size for fixed-count projectors,
    /// 448 px (rounded to the projector's unit) for dynamic ones.
    pub tile_size: u32,
    pub thumbnail_budget: u32,
    /// `--tiling`; `None` takes the projector family's default
    /// (`families::tiling`).
    pub tiling: Option<TilingPolicy>,
}

struct Probe<'a> {
    mtmd: &'a MtmdContext,
    marker: &'a str,
}

impl Probe<'_> {
    /// mtmd's chunks for a `w` x `h` image without pixels: mtmd counts its
    /// tokens exactly as for a real one and touches no pixel, so probes
    /// of any size cost nothing.
    fn chunks(&self, w: u32, h: u32) -> Result<MtmdInputChunks, String> {
        let bitmap = MtmdBitmap::placeholder(w, h).map_err(|e| e.to_string())?;
        let text = MtmdInputText {
            text: self.marker.to_string(),
            add_special: false,
            parse_special: true,
        };
        self.mtmd
            .tokenize(text, &[&bitmap])
            .map_err(|e| format!("probe {w}x{h}: {e}"))
    }

    /// Tokens one `w` x `h` image takes, wrappers included.
    fn cost(&self, w: u32, h: u32) -> Result<u32, String> {
        Ok(self.chunks(w, h)?.total_tokens() as u32)
    }

    /// Tokens of the first image chunk of a `w` x `h` image (one slice).
    fn first_image_chunk(&self, w: u32, h: u32) -> Result<u32, String> {
        let chunks = self.chunks(w, h)?;
        (0..chunks.len())
            .filter_map(|i| chunks.get(i))
            .find(|c| c.chunk_type() == MtmdInputChunkType::Image)
            .map(|c| c.n_tokens() as u32)
            .ok_or_else(|| format!("probe {w}x{h}: no image chunk"))
    }
}

/// `longest_edge`: the projector slices images itself by the longest-edge
/// rule (Idefics3), which the caller knows from the family table.
pub fn measure(
    mtmd: &MtmdContext,
    marker: &str,
    meta: &GgufMeta,
    settings: TileSettings,
    longest_edge: bool,
) -> Result<ProjectorProfile, String> {
    let get = |k: &str| meta.u32(k);
    let native = get("clip.vision.image_size").unwrap_or(448).max(1);
    let patch = get("clip.vision.patch_size").unwrap_or(14).max(1);
    let probe = Probe { mtmd, marker };
    let budget = settings.thumbnail_budget;
    let projector = meta.str("clip.projector_type");
    let tiling = super::families::tiling(projector.as_deref(), settings.tiling);
    let slices_itself = projector
        .as_deref()
        .and_then(super::families::family)
        .is_some_and(|f| f.slices_itself);
    if longest_edge
        && let Some(longest) = get("clip.vision.preproc_image_size")
        && let Some(n) = measure_native(&probe, native, longest)?
    {
        return Ok(ProjectorProfile {
            tile_size: native,
            tile_tokens: n.slice_tokens,
            rule: PieceRule::NativeSlices(n),
            thumbnail_budget: budget,
            tiling,
            slices_itself,
        });
    }

    let a = probe.cost(native, native)?;
    let b = probe.cost(native * 2, native)?;
    let c = probe.cost(native.div_ceil(2), native * 3 / 2)?;
    if a == b && b == c {
        let tile_size = if settings.tile_size == 0 {
            native
        } else {
            settings.tile_size
        };
        return fixed(&probe, tile_size, budget, tiling, slices_itself);
    }
    if let Some(rule) = measure_dynamic(&probe, patch)? {
        let tile_size = settings_tile(settings.tile_size, rule);
        return Ok(ProjectorProfile {
            tile_size,
            tile_tokens: probe.cost(tile_size, tile_size)?,
            rule,
            thumbnail_budget: budget,
            tiling,
            slices_itself,
        });
    }
    // A projector that sizes images in its own way: send every piece at one
    // square size, whose cost was measured.
    let tile_size = if settings.tile_size == 0 {
        native
    } else {
        settings.tile_size
    };
    fixed(&probe, tile_size, budget, tiling, slices_itself)
}

/// The price of every grid the longest-edge rule can produce, probed
/// through mtmd; `None` when the geometry is outside the table or mtmd's
/// grid differs from the prediction (the caller then measures it as fixed).
fn measure_native(
    probe: &Probe,
    slice: u32,
    longest: u32,
) -> Result<Option<NativeSlicing>, String> {
    let g_max = longest.div_ceil(slice);
    if g_max == 0 || g_max as usize > MAX_GRID {
        return Ok(None);
    }
    let mut n = NativeSlicing {
        longest,
        slice,
        slice_tokens: probe.first_image_chunk(slice, slice)?,
        landscape: [0; MAX_GRID],
        portrait: [0; MAX_GRID],
    };
    for g in 1..=g_max {
        let i = (g - 1) as usize;
        n.landscape[i] = probe.cost(longest, g * slice)?;
        n.portrait[i] = probe.cost(g * slice, longest)?;
        if n.grid(longest, g * slice) != (g_max, g) || n.grid(g * slice, longest) != (g, g_max) {
            return Ok(None);
        }
    }
    Ok(Some(n))
}

fn fixed(
    probe: &Probe,
    tile_size: u32,
    budget: u32,
    tiling: TilingPolicy,
    slices_itself: bool,
) -> Result<ProjectorProfile, String> {
    Ok(ProjectorProfile {
        tile_size,
        tile_tokens: probe.cost(tile_size, tile_size)?,
        rule: PieceRule::Fixed,
        thumbnail_budget: budget,
        tiling,
        slices_itself,
    })
}

/// The tile side for a dynamic projector: `--tile-size` rounded to whole
/// units, or automatically 448 px but at most 16 x 16 units (a Qwen tile:
/// on Pixtral's 8 or 16 px units 448 px would cost up to 3,000 tokens),
/// and never more units than the projector keeps without resizing.
fn settings_tile(wanted: u32, rule: PieceRule) -> u32 {
    let PieceRule::Dynamic {
        unit, max_tokens, ..
    } = rule
    else {
        return wanted;
    };
    let units = if wanted == 0 {
        (448 / unit).clamp(1, 16)
    } else {
        (wanted as f64 / unit as f64).round().max(1.0) as u32
    };
    let most = (f64::from(max_tokens).sqrt() as u32).max(1);
    units.min(most) * unit
}

/// Dynamic resolution: finds the pixels one token covers (patch x merge),
/// the tokens per row and per image, and the range of tokens mtmd keeps
/// without resizing; `None` when the costs follow no such rule.
fn measure_dynamic(probe: &Probe, patch: u32) -> Result<Option<PieceRule>, String> {
    // Probes of 16..64 tokens: inside every dynamic projector's kept range.
    let (k, half) = (8u32, 4u32);
    for merge in 1..=4u32 {
        let unit = patch * merge;
        // cost(cols, rows) = cols*rows + rows*per_row + overhead
        let c = |cols: u32, rows: u32| probe.cost(cols * unit, rows * unit);
        let (full, wide) = (c(k, k)?, c(k, half)?);
        let Some(per_row) = (full.checked_sub(wide))
            .filter(|d| d.is_multiple_of(k - half))
            .and_then(|d| (d / (k - half)).checked_sub(k))
        else {
            continue;
        };
        let Some(overhead) = full.checked_sub(k * k + k * per_row) else {
            continue;
        };
        let rule = |cols: u32, rows: u32| cols * rows + rows * per_row + overhead;
        let consistent = c(half, k)? == rule(half, k) && c(k - 1, k)? == rule(k - 1, k);
        if !consistent {
            continue;
        }
        // A strip of m x 1 units is kept as it is iff min <= m <= max.
        let kept = |m: u32| -> Result<bool, String> { Ok(c(m, 1)? == rule(m, 1)) };
        let mut min_tokens = 1;
        while min_tokens < 1024 && !kept(min_tokens)? {
            min_tokens += 1;
        }
        let (mut lo, mut hi) = (min_tokens, MAX_PROBED_TOKENS);
        if kept(hi)? {
            lo = hi;
        }
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if kept(mid)? { lo = mid } else { hi = mid - 1 }
        }
        return Ok(Some(PieceRule::Dynamic {
            unit,
            overhead,
            per_row,
            min_tokens,
            max_tokens: lo,
        }));
    }
    Ok(None)
}

/// The largest image-token count probed: beyond it a projector is treated
/// as unbounded (a request's pixels are capped long before).
const MAX_PROBED_TOKENS: u32 = 1 << 20;
