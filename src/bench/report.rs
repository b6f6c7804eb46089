//! What `tessera bench` prints: per-server tables, and the ratios of the
//! server under test to the baseline against the targets of issue 12
//! (docs/BENCHMARKS.md), each marked met or not.

use super::stats::{Level, Report};

fn print_table(name: &str, rows: &[(usize, Level)]) {
    println!("\n{name}\n");
    println!(
        "| clients | TTFT p50 ms | TTFT p95 ms | ITL p50 ms | per-stream tok/s | aggregate tok/s |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (c, l) in rows {
        println!(
            "| {c} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} |",
            l.ttft_ms(0.5),
            l.ttft_ms(0.95),
            l.itl_ms(),
            l.stream_tps(),
            l.aggregate_tps()
        );
    }
}

pub(super) fn print_report(label: &str, url: &str, r: &Report) {
    println!("\n## {label} ({url})");
    print_table("Text-only requests", &r.text);
    if !r.image.is_empty() {
        print_table("One-image requests", &r.image);
        let text1 = r
            .text
            .iter()
            .find(|(c, _)| *c == 1)
            .map(|(_, l)| l.ttft_ms(0.5));
        let img1 = r
            .image
            .iter()
            .find(|(c, _)| *c == 1)
            .map(|(_, l)| l.ttft_ms(0.5));
        if let (Some(t), Some(i)) = (text1, img1) {
            println!(
                "\nImage prefill (one-image TTFT - text TTFT, 1 client): {:.1} ms",
                i - t
            );
        }
        println!(
            "Two-turn conversation resending its image: first turn TTFT {:.1} ms, follow-up {:.1} ms ({:.2}x)",
            r.first_turn_ms,
            r.follow_up_ms,
            r.follow_up_ms / r.first_turn_ms
        );
        println!(
            "Same image in a new conversation (another system prompt): TTFT {:.1} ms ({:.2}x the first turn)",
            r.new_conversation_ms,
            r.new_conversation_ms / r.first_turn_ms
        );
    }
}

fn at(rows: &[(usize, Level)], c: usize) -> Option<&Level> {
    rows.iter().find(|(k, _)| *k == c).map(|(_, l)| l)
}

/// One ratio row: the figure, its target, and whether it is met.
struct Target {
    metric: String,
    ratio: f64,
    /// `<=` or `>=`.
    cmp: &'static str,
    bound: f64,
}

impl Target {
    fn met(&self) -> bool {
        match self.cmp {
            "<=" => self.ratio <= self.bound,
            _ => self.ratio >= self.bound,
        }
    }
}

pub(super) fn print_ratios(main: &Report, base: &Report, concurrency: &[usize]) {
    let mut rows = Vec::new();
    let mut row = |metric: String, ratio: f64, cmp: &'static str, bound: f64| {
        rows.push(Target {
            metric,
            ratio,
            cmp,
            bound,
        })
    };
    if let (Some(a), Some(b)) = (at(&main.image, 1), at(&base.image, 1)) {
        let r = a.ttft_ms(0.5) / b.ttft_ms(0.5);
        row("TTFT, one-image request, 1 client".into(), r, "<=", 0.9);
    }
    if let (Some(a), Some(b)) = (at(&main.text, 1), at(&base.text, 1)) {
        let r = a.stream_tps() / b.stream_tps();
        row("single-stream decode tok/s".into(), r, ">=", 0.98);
    }
    let top = concurrency.iter().copied().max().unwrap_or(1);
    if top > 1 {
        if let (Some(a), Some(b)) = (at(&main.text, top), at(&base.text, top)) {
            let r = a.aggregate_tps() / b.aggregate_tps();
            row(
                format!("aggregate tok/s, {top} clients, text"),
                r,
                ">=",
                1.1,
            );
        }
        if let (Some(a), Some(b)) = (at(&main.image, top), at(&base.image, top)) {
            let r = a.aggregate_tps() / b.aggregate_tps();
            row(
                format!("aggregate tok/s, {top} clients, one image each"),
                r,
                ">=",
                1.1,
            );
            let r = a.ttft_ms(0.5) / b.ttft_ms(0.5);
            row(
                format!("TTFT p50, {top} clients, one image each"),
                r,
                "<=",
                0.5,
            );
            let r = a.stream_tps() / b.stream_tps();
            row(
                format!("per-stream decode p50, {top} clients, one image each"),
                r,
                ">=",
                0.5,
            );
        }
    }
    if !main.image.is_empty() {
        row(
            format!(
                "follow-up TTFT / first-turn TTFT (baseline: {:.2}x)",
                base.follow_up_ms / base.first_turn_ms
            ),
            main.follow_up_ms / main.first_turn_ms,
            "<=",
            0.12,
        );
        row(
            format!(
                "same image, new conversation: TTFT / first-turn TTFT (baseline: {:.2}x)",
                base.new_conversation_ms / base.first_turn_ms
            ),
            main.new_conversation_ms / main.first_turn_ms,
            "<=",
            0.2,
        );
    }
    println!("\n## Ratios (server under test / baseline)\n");
    println!("| metric | ratio | target | met |");
    println!("| --- | --- | --- | --- |");
    for t in rows {
        let met = if t.met() { "yes" } else { "**no**" };
        println!(
            "| {} | {:.2}x | {} {}x | {met} |",
            t.metric, t.ratio, t.cmp, t.bound
        );
    }
}
