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
    /// mtmd's chunks for a blank `w` x `h` image (preprocessed, not encoded).
    fn chunks(&self, w: u32, h: u32) -> Result<MtmdInputChunks, String> {
        let bitmap = MtmdBitmap::from_image_data(w, h, &vec![128u8; (w * h * 3) as usize])
            .map_err(|e| e.to_string())?;
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
        return fixed(&probe, tile_size, budget, tiling);
    }
    // Dynamic: find the pixel unit that one token covers (patch x merge).
    for merge in 1..=4u32 {
        let unit = patch * merge;
        let want = if settings.tile_size == 0 {
            448
        } else {
            settings.tile_size
        };
        let k = (want as f64 / unit as f64).round().max(1.0) as u32;
        let tile_size = k * unit;
        let tile_tokens = probe.cost(tile_size, tile_size)?;
        let Some(overhead) = tile_tokens.checked_sub(k * k) else {
            continue;
        };
        let half = (k / 2).max(1);
        let consistent = probe.cost(tile_size, half * unit)? == k * half + overhead
            && probe.cost(half * unit, tile_size)? == k * half + overhead
            && probe.cost((k - 1).max(1) * unit, k * unit)? == (k - 1).max(1) * k + overhead;
        if !consistent {
            continue;
        }
        // Smallest grid the projector does not upscale.
        let mut min_tokens = 1;
        while min_tokens < 256 && probe.cost(min_tokens * unit, unit)? != min_tokens + overhead {
            min_tokens += 1;
        }
        return Ok(ProjectorProfile {
            tile_size,
            tile_tokens,
            rule: PieceRule::Dynamic {
                unit,
                overhead,
                min_tokens,
            },
            thumbnail_budget: budget,
            tiling,
        });
    }
    // A projector that sizes images in its own way: send every piece at one
    // square size, whose cost was measured.
    let tile_size = if settings.tile_size == 0 {
        native
    } else {
        settings.tile_size
    };
    fixed(&probe, tile_size, budget, tiling)
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
) -> Result<ProjectorProfile, String> {
    Ok(ProjectorProfile {
        tile_size,
        tile_tokens: probe.cost(tile_size, tile_size)?,
        rule: PieceRule::Fixed,
        thumbnail_budget: budget,
        tiling,
    })
}
