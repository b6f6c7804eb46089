//! Tessera's `native` geometry against each family's reference processor:
//! `tests/data/reference_geometry.json`, computed once by
//! `scripts/reference_geometry.py` with Hugging Face `transformers` 4.57.1 and
//! the processors' published parameters (no download, no model here). That
//! the geometry's price is what mtmd then charges is `families.rs`'s check.

use crate::common::*;
use serde_json::{Value, json};
use tessera::fixtures::families::family_fixture;
use tessera::vision::grid::choose_grid;
use tessera::vision::{
    ImageOptions, NativeSlicing, PieceSize, ProjectorProfile, TileLimits, TilePlan, TilingPolicy,
    plan_image,
};

fn reference() -> Vec<Value> {
    let text = include_str!("../data/reference_geometry.json");
    let v: Value = serde_json::from_str(text).expect("reference table");
    v["sizes"].as_array().expect("sizes").clone()
}

fn size(row: &Value) -> (u32, u32) {
    (
        row["width"].as_u64().unwrap() as u32,
        row["height"].as_u64().unwrap() as u32,
    )
}

fn n(v: &Value) -> u32 {
    v.as_u64().unwrap() as u32
}

/// The default plan of a `w` x `h` image, which `native` sends whole.
fn native(w: u32, h: u32, profile: &ProjectorProfile) -> (TilePlan, PieceSize) {
    let p = plan_image(
        w,
        h,
        &ImageOptions::default(),
        profile,
        TileLimits::default(),
    )
    .unwrap();
    let whole = p.whole.expect("sent whole");
    (p, whole)
}

/// Qwen2/2.5-VL: `smart_resize` with the pinned mtmd's bounds (8..4096
/// tokens; the published processor allows 4..16,384) gives the same size
/// and token count on every size of the sweep.
#[test]
fn qwen_matches_smart_resize() {
    let profile = ProjectorProfile {
        tiling: TilingPolicy::Native,
        ..ProjectorProfile::QWEN2VL_448
    };
    for row in reference() {
        let (w, h) = size(&row);
        let want = &row["qwen2vl_mtmd"];
        let (p, whole) = native(w, h, &profile);
        assert_eq!(
            (whole.width, whole.height),
            (n(&want["width"]), n(&want["height"])),
            "{row}"
        );
        assert_eq!(p.tokens(), n(&want["tokens"]) + 2, "{row}");
    }
}

/// InternVL: the tile grid of the closest aspect ratio within 1..12 tiles.
#[test]
fn internvl_matches_its_tiled_canvas() {
    let limits = TileLimits {
        min_tiles: 1,
        max_tiles: 12,
    };
    for row in reference() {
        let (w, h) = size(&row);
        let want = &row["internvl"];
        assert_eq!(
            choose_grid(w, h, 448, limits),
            (n(&want["cols"]), n(&want["rows"])),
            "{row}"
        );
    }
}

/// SmolVLM: longest edge 2048, 512 px slices.
#[test]
fn smolvlm_matches_its_longest_edge_slicing() {
    let n_ = NativeSlicing {
        longest: 2048,
        slice: 512,
        slice_tokens: 64,
        landscape: [0; 8],
        portrait: [0; 8],
    };
    for row in reference() {
        let (w, h) = size(&row);
        let want = &row["smolvlm"];
        assert_eq!(n_.grid(w, h), (n(&want["cols"]), n(&want["rows"])), "{row}");
    }
}

/// Pixtral: the pinned mtmd caps an image at 1,024 tokens of 16 px (its
/// own choice, marked "TODO" there), where the published processor allows
/// a 1,024 px longest edge (up to 4,096; fewer than mtmd on panoramas):
/// Tessera follows mtmd, which encodes. Both keep the aspect ratio.
#[test]
fn pixtral_follows_mtmd_within_its_cap() {
    let profile = ProjectorProfile::PIXTRAL_16;
    for row in reference() {
        let (w, h) = size(&row);
        let (p, whole) = native(w, h, &profile);
        let (a, b) = (whole.width / 16, whole.height / 16);
        assert!(a * b <= 1024 && p.tokens() == a * b + b, "{row}");
        // Same aspect ratio as the reference, to within a unit per side.
        let (rw, rh) = (n(&row["pixtral"]["width"]), n(&row["pixtral"]["height"]));
        let (x, y) = (u64::from(whole.width * rh), u64::from(whole.height * rw));
        assert!(
            x.abs_diff(y) <= 16 * u64::from(rw.max(rh)),
            "{row}: {whole:?}"
        );
    }
}

/// LFM2-VL on its fixture, which has the real geometry (16 px patches, 2x2
/// merge): mtmd's slicing, which Tessera prices and sends whole, gives the
/// reference processor's tiles and thumbnail on every size of the sweep.
/// The price adds mtmd's markers, one token each as in LFM2's vocabulary:
/// `<|image_start|>`, `<|image_end|>`, and when tiled `<|img_row_R_col_C|>`
/// per tile and `<|img_thumbnail|>`.
#[tokio::test]
async fn lfm2_follows_its_processors_tiles_and_thumbnail() {
    let f = family_fixture("lfm2-vl").expect("lfm2 fixture");
    let s = start_family(f, &[]).await;
    for row in reference() {
        let (w, h) = size(&row);
        let want = &row["lfm2"];
        let tiles = want["cols"]
            .as_u64()
            .map_or(0, |c| c as u32 * n(&want["rows"]));
        let thumbnail_marker = u32::from(tiles > 0);
        let tokens = n(&want["tokens"]) + 2 + tiles + thumbnail_marker;
        let body =
            json!({"messages": [{"role": "user", "content": [image_part(w, h, [9, 80, 200])]}]});
        let (status, v) = s.post_to("/v1/chat/completions/input_tokens", &body).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["images"][0]["tokens"], tokens, "{row}: {v}");
    }
}
