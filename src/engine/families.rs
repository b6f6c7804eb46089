//! Family knowledge as data: what Tessera knows about each projector type
//! (`clip.projector_type`) that the pinned llama.cpp supports. Adding a
//! family is one row here plus its fixture in `src/fixtures/`.

use crate::vision::TilingPolicy;

/// One projector family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// `clip.projector_type` as the mmproj GGUF spells it.
    pub projector: &'static str,
    /// Who runs it: a name people recognise.
    pub models: &'static str,
    /// The projector cuts an image into its own slices (so Tessera sends
    /// each tile as one piece that the projector may slice further).
    pub slices_itself: bool,
    /// A fixture of this family runs in the test suite.
    pub tested: bool,
    /// mtmd resizes every image to a fixed longest edge and slices it
    /// (Idefics3): Tessera then sends images whole and prices the
    /// projector's grid (`vision/native.rs`) instead of cutting tiles.
    pub longest_edge_slicing: bool,
    /// A projector that slices whole images itself gets them whole under
    /// `native`, priced by mtmd's own count (as llama-server sends them);
    /// false: Tessera cuts tiles under its grid rule instead.
    pub whole_to_projector: bool,
    /// How its Hugging Face processor shapes an image (the README's
    /// family table): what `native` means for it.
    pub geometry: &'static str,
    /// What the coordinates in its grounding output refer to.
    pub coordinates: &'static str,
}

pub const FAMILIES: &[Family] = &[
    Family {
        projector: "mlp",
        models: "LLaVA 1.5",
        slices_itself: false,
        tested: true,
        longest_edge_slicing: false,
        whole_to_projector: false,
        geometry: "one padded square",
        coordinates: "0-1 relative to the padded square",
    },
    Family {
        projector: "qwen2vl_merger",
        models: "Qwen2-VL",
        slices_itself: false,
        tested: true,
        longest_edge_slicing: false,
        whole_to_projector: false,
        geometry: "one image, dynamic resolution",
        coordinates: "0-1000 relative",
    },
    Family {
        projector: "qwen2.5vl_merger",
        models: "Qwen2.5-VL",
        slices_itself: false,
        tested: true,
        longest_edge_slicing: false,
        whole_to_projector: false,
        geometry: "one image, dynamic resolution",
        coordinates: "absolute pixels of the resized image",
    },
    Family {
        projector: "qwen3vl_merger",
        models: "Qwen3-VL",
        slices_itself: false,
        tested: true,
        longest_edge_slicing: false,
        whole_to_projector: false,
        geometry: "one image, dynamic resolution",
        coordinates: "0-1000 relative",
    },
    Family {
        projector: "gemma3",
        models: "Gemma 3",
        slices_itself: false,
        tested: true,
        longest_edge_slicing: false,
        whole_to_projector: false,
        geometry: "one square (896 px on real models)",
        coordinates: "none",
    },
    Family {
        projector: "idefics3",
        models: "SmolVLM, Idefics3",
        slices_itself: true,
        tested: true,
        longest_edge_slicing: true,
        whole_to_projector: false,
        geometry: "longest-edge slices plus an overview",
        coordinates: "none",
    },
    Family {
        projector: "internvl",
        models: "InternVL 2.5/3",
        slices_itself: true,
        tested: true,
        longest_edge_slicing: false,
        whole_to_projector: true,
        geometry: "tiles plus a thumbnail (closest aspect ratio)",
        coordinates: "0-1000 relative",
    },
    Family {
        projector: "lfm2",
        models: "LFM2-VL",
        slices_itself: true,
        tested: true,
        longest_edge_slicing: false,
        whole_to_projector: true,
        geometry: "one image of 64-256 tokens; past twice that, 512 px tiles plus a thumbnail",
        coordinates: "none",
    },
    Family {
        projector: "pixtral",
        models: "Pixtral, Mistral Small 3.x",
        slices_itself: false,
        tested: true,
        longest_edge_slicing: false,
        whole_to_projector: false,
        geometry: "one image, dynamic resolution",
        coordinates: "none",
    },
    Family {
        projector: "resampler",
        models: "MiniCPM-V 2.5/2.6",
        slices_itself: true,
        tested: true,
        longest_edge_slicing: false,
        whole_to_projector: true,
        geometry: "slices plus an overview",
        coordinates: "0-1000 relative",
    },
];

/// The tiling policy for a projector: `--tiling` when given, else
/// `native` for every family Tessera knows (each is fed as it was trained),
/// else `fit`: an unknown projector's own geometry is not known, and tiles
/// of its native size are priced exactly whatever it does with them.
pub fn tiling(projector: Option<&str>, chosen: Option<TilingPolicy>) -> TilingPolicy {
    let known = projector.and_then(family).is_some();
    chosen.unwrap_or(if known {
        TilingPolicy::Native
    } else {
        TilingPolicy::Fit
    })
}

/// The row for a projector type, if Tessera has one.
pub fn family(projector: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.projector == projector)
}

/// The vision family of a projector type: an omni projector's vision half
/// is its vision-only sibling (mtmd reads Qwen2.5-Omni's `qwen2.5o` as
/// Qwen2.5-VL's merger for images, Qwen2-Audio's for sound).
pub fn vision_name(projector: &str) -> &str {
    match projector {
        "qwen2.5o" => "qwen2.5vl_merger",
        other => other,
    }
}

/// Where the pinned mtmd's count of a 30 s audio window disagrees with the
/// window its encoder graph makes, as (counted, made): mtmd then aborts the
/// process on the first clip ("Invalid number of output tokens"), so such
/// a projector's audio must not be served. Whisper-style encoders halve
/// the 3,000 mel frames to 1,500 by a strided convolution; some pool them
/// 2 to 1; some stack `stack` frames into one. The count floors what the
/// graph pads up (`clip_n_output_tokens` vs `build_stack`).
pub fn audio_miscount(projector: &str, stack: u32) -> Option<(u32, u32)> {
    let pooled = matches!(
        projector,
        "qwen2a" | "qwen2.5o" | "voxtral" | "musicflamingo"
    );
    let stacks = matches!(projector, "ultravox" | "voxtral" | "meralion");
    if !stacks || stack <= 1 {
        return None;
    }
    let pool = if pooled { 2 } else { 1 };
    let counted = 3000u32.div_ceil(stack) / 2 / pool;
    let made = (1500 / pool).div_ceil(stack);
    (counted != made).then_some((counted, made))
}

/// The start-up warning for a projector family without a fixture, if any.
pub fn untested_warning(projector: &str) -> Option<String> {
    match family(projector) {
        Some(f) if f.tested => None,
        _ => Some(format!(
            "projector family `{projector}` has no fixture in Tessera's test suite: its image \
             prices are measured at start-up, not tested; it still serves"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_families_are_native_unless_told_otherwise() {
        assert_eq!(tiling(Some("internvl"), None), TilingPolicy::Native);
        assert_eq!(tiling(Some("qwen2vl_merger"), None), TilingPolicy::Native);
        assert_eq!(tiling(Some("glm4v"), None), TilingPolicy::Fit);
        assert_eq!(tiling(None, None), TilingPolicy::Fit);
        let chosen = Some(TilingPolicy::Openai);
        assert_eq!(tiling(Some("internvl"), chosen), TilingPolicy::Openai);
    }

    #[test]
    fn only_families_without_a_fixture_are_warned_about() {
        assert_eq!(untested_warning("qwen2vl_merger"), None);
        let w = untested_warning("glm4v").unwrap();
        assert!(w.contains("`glm4v`") && w.contains("not tested"), "{w}");
        assert!(
            FAMILIES
                .iter()
                .all(|f| untested_warning(f.projector).is_none())
        );
    }

    #[test]
    fn stacked_windows_that_mtmd_miscounts_are_found() {
        assert_eq!(audio_miscount("ultravox", 8), Some((187, 188)));
        assert_eq!(audio_miscount("voxtral", 4), Some((187, 188)));
        assert_eq!(audio_miscount("qwen2a", 0), None);
        assert_eq!(audio_miscount("musicflamingo", 0), None);
        assert_eq!(audio_miscount("ultravox", 4), None);
    }
}
