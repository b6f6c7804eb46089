//! What a benchmark run measured: per-request samples, per-level summaries,
//! and one server's report.

use std::time::Duration;

/// One streamed request's timings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) ttft: Duration,
    /// Mean gap between content deltas.
    pub(super) itl: Option<Duration>,
    pub(super) tokens: u32,
    /// Completion tokens after the first, per second of decoding.
    pub(super) decode_tps: Option<f64>,
    /// `usage.prompt_tokens`, when the server reported it.
    pub(super) prompt_tokens: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Level {
    pub(super) samples: Vec<Sample>,
    pub(super) wall: Duration,
}

impl Level {
    pub(super) fn ttft_ms(&self, q: f64) -> f64 {
        percentile(
            self.samples
                .iter()
                .map(|s| s.ttft.as_secs_f64() * 1e3)
                .collect(),
            q,
        )
    }
    pub(super) fn itl_ms(&self) -> f64 {
        percentile(
            self.samples
                .iter()
                .filter_map(|s| s.itl.map(|d| d.as_secs_f64() * 1e3))
                .collect(),
            0.5,
        )
    }
    pub(super) fn stream_tps(&self) -> f64 {
        percentile(
            self.samples.iter().filter_map(|s| s.decode_tps).collect(),
            0.5,
        )
    }
    pub(super) fn aggregate_tps(&self) -> f64 {
        let tokens: u32 = self.samples.iter().map(|s| s.tokens).sum();
        tokens as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

fn percentile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let idx = ((v.len() - 1) as f64 * q).round() as usize;
    v[idx.min(v.len() - 1)]
}

/// Results for one server.
pub(super) struct Report {
    pub(super) text: Vec<(usize, Level)>,
    pub(super) image: Vec<(usize, Level)>,
    /// Mean TTFT of first turns and of follow-ups that resend the image.
    pub(super) first_turn_ms: f64,
    pub(super) follow_up_ms: f64,
    /// Mean TTFT of the same image asked about again in a new conversation
    /// (another system prompt: the prefix cache cannot serve it).
    pub(super) new_conversation_ms: f64,
}
