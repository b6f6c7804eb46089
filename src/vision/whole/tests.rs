use super::*;

const L: TileLimits = TileLimits {
    min_tiles: 1,
    max_tiles: 12,
};

/// A Qwen2-VL projector as the pinned mtmd measures: 28 px units, two
/// wrapper tokens, 8..4096 image tokens, `native` by default.
fn qwen() -> ProjectorProfile {
    ProjectorProfile {
        tiling: TilingPolicy::Native,
        ..ProjectorProfile::QWEN2VL_448
    }
}

fn pixtral() -> ProjectorProfile {
    ProjectorProfile::PIXTRAL_16
}

fn gemma() -> ProjectorProfile {
    ProjectorProfile {
        tile_size: 896,
        tile_tokens: 258,
        rule: PieceRule::Fixed,
        thumbnail_budget: 75,
        tiling: TilingPolicy::Native,
        slices_itself: false,
    }
}

fn opts() -> ImageOptions {
    ImageOptions::default()
}

#[test]
fn a_photo_is_one_image_at_llama_servers_price() {
    let p = plan_image(640, 480, &opts(), &qwen(), L).unwrap();
    assert_eq!(p.whole.map(|w| (w.width, w.height)), Some((644, 476)));
    // 23 x 17 units + <|vision_start|> / <|vision_end|>: what llama-server
    // charged on the same GGUFs.
    assert_eq!(p.tokens(), 391 + 2);
    assert_eq!(
        (p.pieces(), p.detail, p.policy),
        (1, Detail::High, TilingPolicy::Native)
    );
    // The per-tile view: 2 x 2 regions of 448 px.
    assert_eq!((p.cols, p.rows), (2, 2));
    let big = plan_image(4032, 3024, &opts(), &qwen(), L).unwrap();
    assert!(big.tokens() <= 4096 + 2, "{}", big.tokens());
}

#[test]
fn client_budgets_pick_the_largest_geometry_inside() {
    let cap = ImageOptions {
        max_tokens: Some(256),
        ..opts()
    };
    let p = plan_image(1024, 768, &cap, &qwen(), L).unwrap();
    assert!(
        p.tokens() - 2 <= 256 && p.tokens() - 2 > 200,
        "{}",
        p.tokens()
    );
    let floor = ImageOptions {
        min_tokens: Some(1024),
        ..opts()
    };
    let p = plan_image(640, 480, &floor, &qwen(), L).unwrap();
    assert!(p.tokens() - 2 >= 1024, "{}", p.tokens());
    let pixels = ImageOptions {
        max_pixels: Some(200_000),
        ..opts()
    };
    let w = plan_image(1024, 768, &pixels, &qwen(), L)
        .unwrap()
        .whole
        .unwrap();
    assert!(u64::from(w.width) * u64::from(w.height) <= 200_000);
    // Below the projector's minimum (8 tokens): refused, with the floor.
    let tiny = ImageOptions {
        max_tokens: Some(4),
        ..opts()
    };
    let e = plan_image(640, 480, &tiny, &qwen(), L).unwrap_err();
    assert!(e.smallest >= 8 + 2 && e.smallest < 20, "{e:?}");
}

#[test]
fn detail_low_is_the_thumbnail_budget_as_one_image() {
    let low = ImageOptions {
        detail: RequestedDetail::Low,
        ..opts()
    };
    for (w, h) in [(640, 480), (4000, 400), (300, 3000), (1, 1)] {
        for profile in [qwen(), pixtral()] {
            let p = plan_image(w, h, &low, &profile, L).unwrap();
            assert_eq!((p.detail, p.pieces()), (Detail::Low, 1));
            assert!(p.tokens() <= 75, "{w}x{h}: {}", p.tokens());
        }
    }
    // `auto` is `low` only when the image already fits the budget.
    let small = plan_image(150, 100, &opts(), &qwen(), L).unwrap();
    assert_eq!(small.detail, Detail::Low);
    assert_eq!(small.whole.map(|w| (w.width, w.height)), Some((140, 112)));
    assert_eq!(
        plan_image(640, 480, &opts(), &qwen(), L).unwrap().detail,
        Detail::High
    );
}

#[test]
fn pixtral_pays_a_token_per_row() {
    let p = plan_image(640, 480, &opts(), &pixtral(), L).unwrap();
    let w = p.whole.unwrap();
    let (a, b) = (w.width / 16, w.height / 16);
    assert!(a * b <= 1024);
    assert_eq!(p.tokens(), a * b + b);
}

#[test]
fn fixed_families_see_one_padded_square() {
    let p = plan_image(1024, 768, &opts(), &gemma(), L).unwrap();
    assert_eq!((p.tokens(), p.pieces()), (258, 1));
    assert_eq!(p.whole.map(|w| (w.width, w.height)), Some((896, 672)));
    assert_eq!((p.canvas, p.offset), ((896, 896), (0, 112)));
    let cap = ImageOptions {
        max_tokens: Some(100),
        ..opts()
    };
    assert_eq!(
        plan_image(1024, 768, &cap, &gemma(), L)
            .unwrap_err()
            .smallest,
        258
    );
}

#[test]
fn tile_policies_stay_selectable_and_honour_a_cap() {
    let fit = ImageOptions {
        tiling: Some(TilingPolicy::Fit),
        ..opts()
    };
    let p = plan_image(640, 480, &fit, &qwen(), L).unwrap();
    assert_eq!((p.cols, p.rows, p.tokens()), (2, 2, 4 * 258 + 74));
    let capped = ImageOptions {
        max_tokens: Some(600),
        ..fit
    };
    let p = plan_image(640, 480, &capped, &qwen(), L).unwrap();
    assert!(p.tokens() <= 600 && p.tiles() >= 1, "{p:?}");
}

#[test]
fn native_on_a_self_slicing_projector_uses_its_trained_grid() {
    let internvl = ProjectorProfile {
        slices_itself: true,
        ..gemma()
    };
    let p = plan_image(1000, 600, &opts(), &internvl, L).unwrap();
    assert_eq!(p.policy, TilingPolicy::Internvl);
    assert!(p.whole.is_none() && p.tiles() > 1);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the budget, a dynamic plan is a size mtmd keeps as it
        /// is, its price is the rule's, and it respects the client's cap.
        #[test]
        fn dynamic_plans_are_fixed_points_within_budget(
            w in 1u32..6000, h in 1u32..6000, max in 8u32..5000, min in 0u32..3000
        ) {
            let o = ImageOptions { max_tokens: Some(max), min_tokens: Some(min), ..opts() };
            for profile in [qwen(), pixtral()] {
                let PieceRule::Dynamic { unit, min_tokens, max_tokens, .. } = profile.rule else { unreachable!() };
                let Ok(p) = plan_image(w, h, &o, &profile, L) else { continue };
                let whole = p.whole.unwrap();
                let (a, b) = (whole.width / unit, whole.height / unit);
                prop_assert_eq!((whole.width % unit, whole.height % unit), (0, 0));
                prop_assert!(a * b >= min_tokens && a * b <= max_tokens);
                prop_assert!(a * b <= max.max(min_tokens), "{}x{} -> {}x{}", w, h, a, b);
                let per = u64::from(unit * unit);
                let natural = AreaBounds { min_pixels: u64::from(min_tokens) * per, max_pixels: u64::from(max_tokens) * per };
                prop_assert_eq!(smart_resize(whole.width, whole.height, unit, natural), (whole.width, whole.height));
            }
        }
    }
}

#[test]
fn low_never_fails_without_a_client_cap() {
    let low = ImageOptions {
        detail: RequestedDetail::Low,
        ..opts()
    };
    let mut tight = qwen();
    tight.thumbnail_budget = 10;
    // The cheapest geometry keeps the aspect ratio: a 1x5000 strip is one
    // unit wide and 200 tall however small the budget (as in mtmd).
    for (w, h, most) in [
        (126, 406, 16),
        (1, 5000, 202),
        (5000, 1, 202),
        (640, 480, 14),
    ] {
        let p = plan_image(w, h, &low, &tight, L).unwrap();
        assert!(p.tokens() <= most, "{w}x{h}: {}", p.tokens());
    }
}

#[test]
fn self_slicing_projectors_get_the_image_whole_at_mtmds_count() {
    let lfm2 = ProjectorProfile {
        slices_itself: true,
        ..gemma()
    };
    // A stand-in for mtmd's count: 64 per started 512 px slice, plus 100.
    let count = |w: u32, h: u32| Some(w.div_ceil(512) * h.div_ceil(512) * 64 + 100);
    let oracle: Oracle = &count;
    let p = plan_image_with(4000, 3000, &opts(), &lfm2, L, Some(oracle)).unwrap();
    let whole = p.whole.unwrap();
    // Sent no larger than SLICED_MAX_PIXELS, at mtmd's price for that size.
    assert_eq!((whole.width, whole.height), (2364, 1773));
    assert_eq!(p.tokens(), 5 * 4 * 64 + 100);
    assert!(p.sliced_by_projector && p.policy == TilingPolicy::Native);
    let small = plan_image_with(300, 200, &opts(), &lfm2, L, Some(oracle)).unwrap();
    assert_eq!(small.whole.map(|w| (w.width, w.height)), Some((300, 200)));
    let cap = ImageOptions {
        max_tokens: Some(100),
        ..opts()
    };
    let e = plan_image_with(300, 200, &cap, &lfm2, L, Some(oracle)).unwrap_err();
    assert_eq!(e.smallest, 164);
    // mtmd cannot say: Tessera's tiles under the trained grid rule.
    let none = |_: u32, _: u32| None;
    let p = plan_image_with(1000, 600, &opts(), &lfm2, L, Some(&none)).unwrap();
    assert_eq!(p.policy, TilingPolicy::Internvl);
}

#[test]
fn self_slicing_projectors_honour_detail_and_budgets() {
    let lfm2 = ProjectorProfile {
        slices_itself: true,
        tile_size: 256,
        ..gemma()
    };
    let count = |w: u32, h: u32| Some(w.div_ceil(512) * h.div_ceil(512) * 64 + 100);
    let oracle: Oracle = &count;
    let with = |o: ImageOptions| plan_image_with(1024, 768, &o, &lfm2, L, Some(oracle));
    let sent = |p: &TilePlan| p.whole.map(|w| (w.width, w.height));
    // `low`: fitted within one native tile, one slice.
    let low = with(ImageOptions {
        detail: RequestedDetail::Low,
        ..opts()
    })
    .unwrap();
    assert_eq!((sent(&low), low.tokens()), (Some((256, 192)), 164));
    assert_eq!(low.detail, Detail::Low);
    // `auto` is `low` only for an image that already fits a tile.
    let auto = plan_image_with(200, 100, &opts(), &lfm2, L, Some(oracle)).unwrap();
    assert_eq!((auto.detail, sent(&auto)), (Detail::Low, Some((200, 100))));
    assert_eq!(with(opts()).unwrap().detail, Detail::High);
    // A cap: the largest size whose count fits (2 x 1 slices, 228).
    let capped = with(ImageOptions {
        max_tokens: Some(300),
        ..opts()
    })
    .unwrap();
    assert_eq!(capped.tokens(), 228, "{capped:?}");
    assert!(sent(&capped).is_some_and(|(w, h)| w <= 1024 && w > 512 && h <= 512));
    // A minimum grows the image, never past the largest side sent.
    let grown = with(ImageOptions {
        min_tokens: Some(600),
        ..opts()
    })
    .unwrap();
    assert!(
        grown.tokens() >= 600
            && sent(&grown).is_some_and(|(w, h)| u64::from(w * h) <= SLICED_MAX_PIXELS)
    );
    let most = with(ImageOptions {
        min_tokens: Some(100_000),
        ..opts()
    })
    .unwrap();
    assert_eq!(sent(&most), Some((2364, 1773)));
}
