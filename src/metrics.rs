//! Prometheus metrics, hand-rolled: a few counters, gauges and histograms
//! rendered in the text exposition format at `/metrics`. Shared by the HTTP
//! layer and the engine; recording is a lock-free add or one short lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram with fixed upper bounds.
pub struct Histogram {
    bounds: &'static [f64],
    state: Mutex<(Vec<u64>, f64, u64)>,
}

impl Histogram {
    pub const fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            state: Mutex::new((Vec::new(), 0.0, 0)),
        }
    }

    pub fn observe(&self, v: f64) {
        if let Ok(mut s) = self.state.lock() {
            if s.0.is_empty() {
                s.0 = vec![0; self.bounds.len()];
            }
            for (i, b) in self.bounds.iter().enumerate() {
                if v <= *b {
                    s.0[i] += 1;
                }
            }
            s.1 += v;
            s.2 += 1;
        }
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let (buckets, sum, count) = self
            .state
            .lock()
            .map(|s| (s.0.clone(), s.1, s.2))
            .unwrap_or_default();
        for (i, b) in self.bounds.iter().enumerate() {
            let c = buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

const LATENCY: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const TILES: &[f64] = &[0.0, 1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0];

/// Every metric Tessera exports.
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    pub prompt_tokens: AtomicU64,
    pub completion_tokens: AtomicU64,
    pub cached_tokens: AtomicU64,
    pub image_tokens: AtomicU64,
    /// The image-embedding cache, as the engine last saw it.
    pub image_cache_hits: AtomicU64,
    pub image_cache_misses: AtomicU64,
    pub image_cache_evictions: AtomicU64,
    pub image_cache_bytes: AtomicU64,
    /// Shared with the job queue, which sets it on every change.
    pub queue_depth: std::sync::Arc<AtomicU64>,
    pub active_sequences: AtomicU64,
    /// Speculation: tokens guessed, and those the sampled tokens confirmed.
    pub draft_tokens: AtomicU64,
    pub draft_accepted: AtomicU64,
    /// Tokens llama.cpp reports it has decoded (its own perf counters).
    pub llama_decoded_tokens: AtomicU64,
    pub ttft: Histogram,
    pub itl: Histogram,
    pub tiles_per_image: Histogram,
    pub image_decode: Histogram,
    pub image_encode: Histogram,
    pub image_eval: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            cached_tokens: AtomicU64::new(0),
            image_tokens: AtomicU64::new(0),
            image_cache_hits: AtomicU64::new(0),
            image_cache_misses: AtomicU64::new(0),
            image_cache_evictions: AtomicU64::new(0),
            image_cache_bytes: AtomicU64::new(0),
            queue_depth: Default::default(),
            active_sequences: AtomicU64::new(0),
            llama_decoded_tokens: AtomicU64::new(0),
            draft_tokens: AtomicU64::new(0),
            draft_accepted: AtomicU64::new(0),
            ttft: Histogram::new(LATENCY),
            itl: Histogram::new(LATENCY),
            tiles_per_image: Histogram::new(TILES),
            image_decode: Histogram::new(LATENCY),
            image_encode: Histogram::new(LATENCY),
            image_eval: Histogram::new(LATENCY),
        }
    }
}

impl Metrics {
    pub fn count_request(&self, route: &str, status: u16) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route.to_string(), status)).or_default() += 1;
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP tessera_http_requests_total HTTP requests by route and status.\n# TYPE tessera_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "tessera_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let counters = [
            (
                "tessera_prompt_tokens_total",
                "Prompt tokens that entered the context.",
                &self.prompt_tokens,
            ),
            (
                "tessera_completion_tokens_total",
                "Tokens generated.",
                &self.completion_tokens,
            ),
            (
                "tessera_cached_tokens_total",
                "Prompt tokens reused from the KV cache.",
                &self.cached_tokens,
            ),
            (
                "tessera_image_tokens_total",
                "Prompt tokens taken by images.",
                &self.image_tokens,
            ),
            (
                "tessera_image_cache_hits_total",
                "Image chunks decoded from the embedding cache (no encoder run).",
                &self.image_cache_hits,
            ),
            (
                "tessera_image_cache_misses_total",
                "Image chunks the vision encoder had to encode.",
                &self.image_cache_misses,
            ),
            (
                "tessera_image_cache_evictions_total",
                "Embedding-cache entries dropped to stay within --image-cache-mb.",
                &self.image_cache_evictions,
            ),
            (
                "tessera_draft_tokens_total",
                "Tokens guessed ahead by speculation (--spec-type).",
                &self.draft_tokens,
            ),
            (
                "tessera_draft_accepted_tokens_total",
                "Guessed tokens the sampled tokens confirmed (each saves a decode step).",
                &self.draft_accepted,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let gauges = [
            (
                "tessera_queue_depth",
                "Requests waiting for a sequence.",
                &*self.queue_depth,
            ),
            (
                "tessera_active_sequences",
                "Sequences generating now.",
                &self.active_sequences,
            ),
            (
                "tessera_image_cache_bytes",
                "Bytes of projector output held by the embedding cache.",
                &self.image_cache_bytes,
            ),
            (
                "tessera_llama_decoded_tokens",
                "KV-cache cells llama.cpp has written, by its own count (llama_perf_context: prompt plus generation; each of its two counters reads 1 until it has counted anything).",
                &self.llama_decoded_tokens,
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        self.ttft.render(
            &mut out,
            "tessera_time_to_first_token_seconds",
            "Time from request to first token.",
        );
        self.itl.render(
            &mut out,
            "tessera_inter_token_latency_seconds",
            "Time between two tokens of one stream.",
        );
        self.tiles_per_image.render(
            &mut out,
            "tessera_image_tiles",
            "Tiles per image (thumbnail not counted).",
        );
        self.image_decode.render(
            &mut out,
            "tessera_image_decode_seconds",
            "Fetch, decode, tile and resize time per request's images.",
        );
        self.image_encode.render(
            &mut out,
            "tessera_image_encode_seconds",
            "Vision encoder time per image piece that was encoded (not served from the embedding cache).",
        );
        self.image_eval.render(
            &mut out,
            "tessera_image_eval_seconds",
            "Time to put an image piece into the context: encoding (unless cached) and decoding its tokens.",
        );
        // Linux: the process's resident memory now and at its peak.
        for (field, name, help) in [
            (
                "VmRSS:",
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            (
                "VmHWM:",
                "tessera_peak_resident_memory_bytes",
                "Peak resident memory size in bytes.",
            ),
        ] {
            if let Some(kib) = proc_status_kib(field) {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                    kib * 1024
                );
            }
        }
        out
    }
}

/// A `kB` field of `/proc/self/status` (None off Linux).
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.count_request("/v1/chat/completions", 200);
        Metrics::add(&m.completion_tokens, 5);
        m.ttft.observe(0.02);
        m.ttft.observe(3.0);
        let text = m.render();
        assert!(text.contains(
            "tessera_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1"
        ));
        assert!(text.contains("tessera_completion_tokens_total 5"));
        assert!(text.contains("tessera_time_to_first_token_seconds_bucket{le=\"0.025\"} 1"));
        assert!(text.contains("tessera_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("tessera_time_to_first_token_seconds_count 2"));
    }
}
