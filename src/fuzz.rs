//! Fuzz targets: pure functions from arbitrary bytes through the code that
//! sees client input first, each checking its own invariants and panicking
//! on a violation. `tests/it/fuzz.rs` replays the committed corpora through
//! them on every test run and, for `TESSERA_FUZZ_SECS` seconds, mutates
//! the corpora (a stable-Rust mutation fuzzer: no nightly, no sanitizer
//! rebuild of llama.cpp).

use crate::engine::text::TextAssembler;
use crate::vision::TileLimits;
use crate::vision::pricing::{PieceRule, ProjectorProfile};
use crate::vision::tiling::{RequestedDetail, plan};
use crate::vision::{budget, decode_to, probe, render};

/// Fuzzed images may claim at most this many pixels, so that a run tests
/// the code rather than the machine's memory.
const MAX_PIXELS: u64 = 4_000_000;

/// Bytes of a request body -> a validated request, its content parts and
/// data URLs, as the HTTP side checks them before any model work.
pub fn request_body(bytes: &[u8]) {
    if let Ok(req) = crate::api::check_request(bytes) {
        for m in &req.messages {
            if let Some(crate::openai::MessageContent::Parts(parts)) = &m.content {
                for p in parts {
                    if let crate::openai::ContentPart::ImageUrl { image_url } = p {
                        let _ = crate::vision::image_bytes(&image_url.url, 1 << 20);
                    }
                }
            }
        }
    }
}

/// Image bytes -> header -> tile plan -> decode -> pieces, for a fixed
/// and a dynamic projector: every piece has the planned size.
pub fn image_pipeline(bytes: &[u8]) {
    let Ok(header) = probe(bytes, MAX_PIXELS) else {
        return;
    };
    let fixed = ProjectorProfile {
        tile_size: 56,
        tile_tokens: 16,
        rule: PieceRule::Fixed,
        thumbnail_budget: 75,
        tiling: crate::vision::TilingPolicy::Fit,
        slices_itself: false,
    };
    let dynamic = ProjectorProfile {
        tile_size: 112,
        tile_tokens: 18,
        rule: PieceRule::Dynamic {
            unit: 28,
            overhead: 2,
            per_row: 0,
            min_tokens: 4,
            max_tokens: 4096,
        },
        thumbnail_budget: 16,
        tiling: crate::vision::TilingPolicy::Internvl,
        slices_itself: false,
    };
    for (profile, detail) in [
        (fixed, RequestedDetail::High),
        (dynamic, RequestedDetail::Auto),
    ] {
        let limits = TileLimits {
            min_tiles: 1,
            max_tiles: 6,
        };
        let p = plan(header.width, header.height, detail, &profile, limits);
        let cost = budget::image_cost(&header, &p);
        assert!(cost.kept <= cost.transient, "{cost:?}");
        let Ok(img) = decode_to(bytes, &header, p.needed_size(), MAX_PIXELS) else {
            return;
        };
        let (nw, nh) = p.needed_size();
        assert!(
            img.width >= nw.min(header.width) && img.height >= nh.min(header.height),
            "decoded {}x{} below the plan's {nw}x{nh}",
            img.width,
            img.height
        );
        assert_eq!(img.rgb.len(), img.width as usize * img.height as usize * 3);
        let pieces = render::render(&img, &p).expect("a decoded image renders");
        assert_eq!(pieces.len() as u32, p.pieces());
    }
}

/// Bytes -> stop sequences and token pieces -> the assembler: no stop
/// sequence ever reaches the client, and without one the text is exactly
/// the bytes, decoded.
pub fn assembler(data: &[u8]) {
    let Some((&n_stops, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.split(|b| *b == 0xff);
    let stops: Vec<String> = (&mut parts)
        .take(usize::from(n_stops % 4))
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let pieces: Vec<&[u8]> = parts.collect();
    let mut asm = TextAssembler::new(stops.clone());
    let mut out = String::new();
    let mut stopped = false;
    for piece in &pieces {
        let step = asm.push(piece);
        out.push_str(&step.text);
        if step.stopped {
            stopped = true;
            break;
        }
    }
    if !stopped {
        out.push_str(&asm.finish());
        let all: Vec<u8> = pieces.concat();
        let expected = String::from_utf8_lossy(&all);
        if stops.iter().all(|s| !expected.contains(s.as_str())) {
            assert_eq!(out, expected);
        }
    }
    for s in &stops {
        assert!(!out.contains(s.as_str()), "stop {s:?} leaked into {out:?}");
    }
}

/// Bytes -> a JSON schema -> the caps -> llama.cpp's converter, on the
/// caller's stack (a test thread's 2 MiB, as small as a tokio worker's):
/// whatever the caps let through converts without overflowing it, and
/// its grammar stays under the grammar cap.
pub fn schema(bytes: &[u8]) {
    use crate::prepare::{grammar, schema_limits};
    let Ok(schema) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    let checked = schema_limits::Tally::default().add(&schema);
    if checked.is_ok()
        && let Ok(g) = grammar::from_schema(&schema)
    {
        assert!(g.len() <= schema_limits::MAX_GRAMMAR_BYTES);
    }
}

/// Bytes -> a template context (messages, tools, `chat_template_kwargs`)
/// -> three real families' templates, bounded by the limits of a
/// 512-token context: rendering ends (fuel) and its output stays under
/// the cap, whatever the context holds.
pub fn template_context(bytes: &[u8]) {
    use crate::fixtures::templates::{LLAMA32_VISION, MISTRAL_SMALL, QWEN25_VL};
    use crate::prepare::template::{ChatTemplate, RenderLimits, TemplateExtras, TemplateMessage};
    static TEMPLATES: std::sync::OnceLock<Vec<ChatTemplate>> = std::sync::OnceLock::new();
    let limits = RenderLimits::for_context(512);
    let templates = TEMPLATES.get_or_init(|| {
        [QWEN25_VL, LLAMA32_VISION, MISTRAL_SMALL]
            .map(|src| {
                let mut t = ChatTemplate::new(Some(src.into()), "<s>".into(), "</s>".into());
                t.set_limits(limits);
                t
            })
            .into()
    });
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    let messages: Vec<TemplateMessage> = v["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| TemplateMessage {
            role: m["role"].as_str().unwrap_or("user").into(),
            content: m["content"].as_str().map(str::to_string),
            tool_calls: m.get("tool_calls").cloned(),
            ..TemplateMessage::default()
        })
        .collect();
    let extras = TemplateExtras {
        tools: v.get("tools").cloned(),
        kwargs: v["kwargs"].as_object().cloned().unwrap_or_default(),
        ..TemplateExtras::default()
    };
    for t in templates {
        if let Ok(out) = t.render_with(&messages, &extras) {
            assert!(out.len() <= limits.max_bytes, "{} bytes", out.len());
        }
    }
}
