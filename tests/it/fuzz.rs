//! Fuzzing on stable Rust. Every run replays the committed corpora
//! (`fuzz/corpus/<target>/`) through the targets in `tessera::fuzz`, then
//! mutates them for a short while (300 inputs per target). With
//! `TESSERA_FUZZ_SECS=600` each target is fuzzed for that many seconds
//! instead; an input that panics, or (in a timed run) takes over 10 s, is
//! written into the corpus as `crash-*` / `hang-*` and fails the test, so
//! it is replayed from then on. `TESSERA_FUZZ_SEEDS=1` rewrites the seed
//! files.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn load(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn save(target: &str, kind: &str, input: &[u8]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut h);
    let path = corpus_dir(target).join(format!("{kind}-{:016x}", h.finish()));
    let _ = std::fs::create_dir_all(corpus_dir(target));
    let _ = std::fs::write(&path, input);
    path
}

const INTERESTING: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'[', b'\\', b'0', b'9'];

/// Byte-level mutations: flips, interesting bytes, truncation, insertion,
/// deletion, duplication and splicing with another corpus entry.
fn mutate_bytes(rng: &mut StdRng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..=6) {
        let len = v.len();
        let at = if len == 0 {
            0
        } else {
            rng.random_range(0..len)
        };
        match rng.random_range(0..7) {
            0 if len > 0 => v[at] ^= 1 << rng.random_range(0..8),
            1 if len > 0 => v[at] = INTERESTING[rng.random_range(0..INTERESTING.len())],
            2 => v.truncate(at),
            3 => {
                let n = rng.random_range(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                v.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let end = (at + rng.random_range(1..=64)).min(len);
                v.drain(at..end);
            }
            5 if len > 0 => {
                let end = (at + rng.random_range(1..=64)).min(len);
                let chunk = v[at..end].to_vec();
                let to = rng.random_range(0..=v.len());
                v.splice(to..to, chunk);
            }
            _ if !corpus.is_empty() => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                let cut = rng.random_range(0..=other.len());
                v.truncate(at);
                v.extend_from_slice(&other[cut..]);
            }
            _ => {}
        }
    }
    v
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 7 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e12 - 5e11),
        4 => [
            json!(0),
            json!(-1),
            json!(u32::MAX),
            json!(i64::MIN),
            json!(1e308),
        ][rng.random_range(0..5)]
        .clone(),
        5 => json!(
            [
                "",
                "<|im_end|>",
                "data:image/png;base64,",
                "\u{0}",
                "é\u{FFFD}",
                "system",
                "image_url"
            ][rng.random_range(0..7)]
        ),
        6 => json!("x".repeat(rng.random_range(0..300))),
        7 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "role",
                "content",
                "type",
                "text",
                "image_url",
                "url",
                "detail",
                "messages",
                "stop",
                "n",
                "max_tokens",
                "temperature",
                "response_format",
                "tools",
                "stream_options",
                "$ref",
                "$defs",
                "properties",
                "items",
                "anyOf",
                "enum",
                "required",
                "pattern",
                "kwargs",
                "tool_calls",
                "arguments",
                "custom_tools",
            ];
            Value::Object(
                (0..rng.random_range(0..4))
                    .map(|_| {
                        (
                            keys[rng.random_range(0..keys.len())].to_string(),
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

/// JSON pointers of every node of `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                pointers(
                    child,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Replaces one random node of a JSON document with a random value.
fn mutate_json(rng: &mut StdRng, input: &[u8]) -> Option<Vec<u8>> {
    let mut doc: Value = serde_json::from_slice(input).ok()?;
    let mut all = Vec::new();
    pointers(&doc, String::new(), &mut all);
    let at = &all[rng.random_range(0..all.len())];
    let value = random_value(rng, 0);
    *doc.pointer_mut(at)? = value;
    serde_json::to_vec(&doc).ok()
}

/// Replays the corpus, then fuzzes for the configured time or count.
fn fuzz(target: &str, run: fn(&[u8]), json_aware: bool) {
    let corpus = load(target);
    assert!(
        !corpus.is_empty(),
        "no corpus for {target}: run with TESSERA_FUZZ_SEEDS=1"
    );
    let check = |input: &[u8], timed: bool| {
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| run(input));
        if outcome.is_err() {
            let path = save(target, "crash", input);
            panic!("{target} panicked on {}", path.display());
        }
        if timed && started.elapsed() > Duration::from_secs(10) {
            let path = save(target, "hang", input);
            panic!(
                "{target} took {:?} on {}",
                started.elapsed(),
                path.display()
            );
        }
    };
    for input in &corpus {
        check(input, false);
    }
    let secs: Option<u64> = std::env::var("TESSERA_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    let until = secs.map(|s| Instant::now() + Duration::from_secs(s));
    let seed = std::env::var("TESSERA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7e55e7a);
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut execs = 0u64;
    loop {
        match until {
            Some(t) if Instant::now() >= t => break,
            None if execs >= 300 => break,
            _ => {}
        }
        let base = &corpus[rng.random_range(0..corpus.len())];
        let input = if json_aware && rng.random::<bool>() {
            mutate_json(&mut rng, base).unwrap_or_else(|| mutate_bytes(&mut rng, base, &corpus))
        } else {
            mutate_bytes(&mut rng, base, &corpus)
        };
        check(&input, until.is_some());
        execs += 1;
    }
    eprintln!(
        "fuzz {target}: {} corpus inputs, {execs} mutated executions in {:.1} s",
        corpus.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn fuzz_request_body() {
    if std::env::var("TESSERA_FUZZ_SEEDS").is_ok() {
        seeds::requests();
    }
    fuzz("request_body", tessera::fuzz::request_body, true);
}

#[test]
fn fuzz_image_pipeline() {
    if std::env::var("TESSERA_FUZZ_SEEDS").is_ok() {
        seeds::images();
    }
    fuzz("image_pipeline", tessera::fuzz::image_pipeline, false);
}

#[test]
fn fuzz_assembler() {
    if std::env::var("TESSERA_FUZZ_SEEDS").is_ok() {
        seeds::assembler();
    }
    fuzz("assembler", tessera::fuzz::assembler, false);
}

#[test]
fn fuzz_schema() {
    if std::env::var("TESSERA_FUZZ_SEEDS").is_ok() {
        seeds::schemas();
    }
    fuzz("schema", tessera::fuzz::schema, true);
}

#[test]
fn fuzz_template_context() {
    if std::env::var("TESSERA_FUZZ_SEEDS").is_ok() {
        seeds::template_contexts();
    }
    fuzz("template_context", tessera::fuzz::template_context, true);
}

/// The seed corpora, written by `TESSERA_FUZZ_SEEDS=1 cargo test --test fuzz`.
mod seeds {
    use super::*;
    use image::{DynamicImage, ImageFormat};

    fn write(target: &str, name: &str, bytes: &[u8]) {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), format)
            .unwrap();
        out
    }

    pub fn images() {
        let rgb = DynamicImage::ImageRgb8(image::RgbImage::from_fn(37, 23, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 11) as u8, 90])
        }));
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(20, 31, |x, y| {
            image::Rgba([200, (x * 9) as u8, 10, (y * 8) as u8])
        }));
        let gray = DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(16, 9, |x, _| {
            image::Luma([(x * 4000) as u16])
        }));
        write(
            "image_pipeline",
            "seed-rgb.png",
            &encode(&rgb, ImageFormat::Png),
        );
        write(
            "image_pipeline",
            "seed-rgba.png",
            &encode(&rgba, ImageFormat::Png),
        );
        write(
            "image_pipeline",
            "seed-gray16.png",
            &encode(&gray, ImageFormat::Png),
        );
        write(
            "image_pipeline",
            "seed.jpg",
            &encode(&rgb, ImageFormat::Jpeg),
        );
        write(
            "image_pipeline",
            "seed.webp",
            &encode(&rgba, ImageFormat::WebP),
        );
        write(
            "image_pipeline",
            "seed.gif",
            &encode(&rgb, ImageFormat::Gif),
        );
        // A wide one that streams with a shrink factor above 1.
        let wide = DynamicImage::ImageRgb8(image::RgbImage::from_fn(900, 120, |x, _| {
            image::Rgb([(x % 256) as u8, 0, 0])
        }));
        write(
            "image_pipeline",
            "seed-wide.png",
            &encode(&wide, ImageFormat::Png),
        );
    }

    pub fn requests() {
        let tiny_png = encode(
            &DynamicImage::ImageRgb8(image::RgbImage::new(2, 2)),
            ImageFormat::Png,
        );
        let data_url = format!(
            "data:image/png;base64,{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &tiny_png)
        );
        let bodies = [
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            json!({"model": "m", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": data_url, "detail": "high"}}
                ]},
                {"role": "assistant", "content": null},
                {"role": "user", "content": "and?", "name": "bob"}
            ], "max_tokens": 5, "temperature": 0.5, "top_p": 0.9, "top_k": 4, "seed": 3,
               "stop": ["a", "b"], "stream": true, "stream_options": {"include_usage": true}}),
            json!({"messages": [{"role": "developer", "content": "x"}], "n": 1,
                   "response_format": {"type": "json_schema", "json_schema": {"name": "s",
                   "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}}),
            json!({"messages": [{"role": "user", "content": "x"}], "tools": [], "logprobs": false,
                   "presence_penalty": 0, "chat_template_kwargs": {"enable_thinking": false}}),
        ];
        for (i, b) in bodies.iter().enumerate() {
            write(
                "request_body",
                &format!("seed-{i}.json"),
                b.to_string().as_bytes(),
            );
        }
    }

    pub fn schemas() {
        use tessera::prepare::schema_limits::ref_chain;
        let seeds = [
            json!({"type": "object", "properties": {"a": {"type": "integer", "minimum": 0},
                   "b": {"type": "array", "items": {"enum": ["x", "y"]}, "maxItems": 3}},
                   "required": ["a"], "additionalProperties": false}),
            json!({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {
                   "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}}),
            json!({"anyOf": [{"$ref": "#/definitions/a"}, {"type": "string", "pattern": "^[a-z]+$"}],
                   "definitions": {"a": {"oneOf": [{"const": 1}, {"type": "null"}]}}}),
            ref_chain(40),
            ref_chain(1_600),
            json!({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}}),
        ];
        for (i, s) in seeds.iter().enumerate() {
            write(
                "schema",
                &format!("seed-{i}.json"),
                s.to_string().as_bytes(),
            );
        }
    }

    pub fn template_contexts() {
        let mut nested = json!([0, 1, 2]);
        for _ in 0..60 {
            nested = json!({"a": nested});
        }
        let seeds = [
            json!({"messages": [{"role": "system", "content": "be brief"},
                   {"role": "user", "content": "hi <|im_end|>"}]}),
            json!({"messages": [{"role": "user", "content": "weather?"},
                   {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "get", "arguments": {"city": "Paris", "days": [1, 2]}}}]},
                   {"role": "tool", "content": "sunny"}],
                   "tools": [{"type": "function", "function": {"name": "get", "description": "d",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}),
            json!({"messages": [{"role": "user", "content": "x"}],
                   "kwargs": {"date_string": "1 Jan 2026", "custom_tools": [{"type": "function",
                    "function": {"name": "f", "parameters": nested}}]}}),
        ];
        for (i, s) in seeds.iter().enumerate() {
            write(
                "template_context",
                &format!("seed-{i}.json"),
                s.to_string().as_bytes(),
            );
        }
    }

    pub fn assembler() {
        let seeds: [&[u8]; 4] = [
            b"\x01STOP\xffhello \xffworld ST\xffOP tail",
            b"\x02\xe2\x82\xff\xac\xffcaf\xc3\xff\xa9 \xe2\x82\xac",
            b"\x00plain text\xff with pieces",
            b"\x03ab\xffbc\xffa\xffb\xffc\xff\xff\xf0\x9f\x98",
        ];
        for (i, s) in seeds.iter().enumerate() {
            write("assembler", &format!("seed-{i}"), s);
        }
    }
}
