//! `tessera bench`: a reproducible load generator for any OpenAI-compatible
//! server. It streams every request and measures time to first token (TTFT),
//! inter-token latency, per-stream and aggregate decode speed, for text-only
//! and one-image requests at several concurrencies, plus a two-turn
//! conversation that resends its image. Given `--baseline-url` (e.g. a
//! llama-server on the same GGUF), it runs the same workload there and
//! prints the ratios.

use clap::Args;
use serde_json::json;
use std::time::Instant;

mod client;
pub mod images;
mod photos;
mod report;
mod stats;

use client::{Client, user};
use stats::{Level, Report};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Server under test.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A second server to run the same workload against (ratios: url / baseline).
    #[arg(long)]
    pub baseline_url: Option<String>,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    pub concurrency: Vec<usize>,
    /// Requests per client at each level.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Tokens generated per request.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: u32,
    /// Side of the synthetic test image, in pixels (keep it within one tile
    /// so both servers encode it once).
    #[arg(long, default_value_t = 224)]
    pub image_size: u32,
    /// Skip the image workloads (text-only models).
    #[arg(long)]
    pub no_images: bool,
    /// Only the photo comparison: one client's first-token time and prompt
    /// tokens for one photo of each size (e.g. `640x480,1024x768`).
    #[arg(long, value_delimiter = ',')]
    pub photos: Vec<String>,
    /// Instead of measuring speed, flood the server with mixed valid,
    /// invalid and abandoned requests and check that nothing was lost.
    #[arg(long)]
    pub soak: bool,
    /// Requests in a soak.
    #[arg(long, default_value_t = 1000)]
    pub soak_requests: usize,
    /// Requests in flight at once during a soak (keep it well above --parallel).
    #[arg(long, default_value_t = 64)]
    pub soak_concurrency: usize,
}

/// `concurrency` clients, each sending `rounds` requests back to back.
async fn level(
    client: &std::sync::Arc<Client>,
    concurrency: usize,
    rounds: usize,
    image_side: Option<u32>,
    salt: usize,
) -> anyhow::Result<Level> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for r in 0..rounds {
                let n = salt + c * 1000 + r;
                let msg = user(n, image_side.map(|s| images::image_url(n, s)));
                out.push(client.run(vec![msg]).await?.0);
            }
            anyhow::Ok(out)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await??);
    }
    Ok(Level {
        samples,
        wall: start.elapsed(),
    })
}

async fn measure(args: &BenchArgs, url: &str) -> anyhow::Result<Report> {
    let client = std::sync::Arc::new(Client {
        // A fresh connection per request: some servers close idle
        // keep-alive connections, and both servers get the same treatment.
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()?,
        url: url.trim_end_matches('/').to_string(),
        max_tokens: args.max_tokens,
    });
    // Warm-up: first requests pay one-off costs on both servers.
    level(
        &client,
        1,
        1,
        (!args.no_images).then_some(args.image_size),
        1,
    )
    .await?;
    let mut report = Report {
        text: Vec::new(),
        image: Vec::new(),
        first_turn_ms: f64::NAN,
        follow_up_ms: f64::NAN,
        new_conversation_ms: f64::NAN,
    };
    for &c in &args.concurrency {
        report
            .text
            .push((c, level(&client, c, args.rounds, None, 10_000 * c).await?));
        if !args.no_images {
            let l = level(&client, c, args.rounds, Some(args.image_size), 20_000 * c).await?;
            report.image.push((c, l));
        }
    }
    if !args.no_images {
        let (mut first, mut follow, mut again) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..args.rounds.max(1) {
            let n = 90_000 + r;
            let opening = user(n, Some(images::image_url(n, args.image_size)));
            let (s1, answer) = client.run(vec![opening.clone()]).await?;
            let turn2 = vec![
                opening,
                json!({"role": "assistant", "content": answer}),
                json!({"role": "user", "content": "Now describe the colours."}),
            ];
            let (s2, _) = client.run(turn2).await?;
            let fresh = vec![
                json!({"role": "system", "content": format!("You are assistant {r}; answer briefly.")}),
                user(n + 500, Some(images::image_url(n, args.image_size))),
            ];
            let (s3, _) = client.run(fresh).await?;
            first.push(s1.ttft.as_secs_f64() * 1e3);
            follow.push(s2.ttft.as_secs_f64() * 1e3);
            again.push(s3.ttft.as_secs_f64() * 1e3);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        report.first_turn_ms = mean(&first);
        report.follow_up_ms = mean(&follow);
        report.new_conversation_ms = mean(&again);
    }
    Ok(report)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.soak {
        let report =
            crate::soak::soak(&args.url, args.soak_requests, args.soak_concurrency, 7).await;
        println!("{}", serde_json::to_string_pretty(&report)?);
        anyhow::ensure!(
            report.clean(),
            "the soak found lost or wrong answers, or a busy end state"
        );
        return Ok(());
    }
    if !args.photos.is_empty() {
        return photos::run(&photos::PhotoRun {
            url: &args.url,
            baseline_url: args.baseline_url.as_deref(),
            sizes: &args.photos,
            rounds: args.rounds,
            max_tokens: args.max_tokens,
        })
        .await;
    }
    let main = measure(&args, &args.url).await?;
    report::print_report("Server under test", &args.url, &main);
    let Some(base_url) = &args.baseline_url else {
        return Ok(());
    };
    let base = measure(&args, base_url).await?;
    report::print_report("Baseline", base_url, &base);
    report::print_ratios(&main, &base, &args.concurrency);
    Ok(())
}
