//! `tessera bench --photos 640x480,1024x768`: what one photo costs on each
//! server, one client at a time: prompt tokens (the image's price plus the
//! text) and first-token time, averaged over `--rounds` distinct photos,
//! with Tessera / baseline ratios. The question issue 19 asks: does a photo
//! cost what llama-server charges, and is it as fast.

use super::client::{Client, user};
use super::images;

/// What the photo comparison needs from `tessera bench`'s arguments.
pub(super) struct PhotoRun<'a> {
    pub(super) url: &'a str,
    pub(super) baseline_url: Option<&'a str>,
    pub(super) sizes: &'a [String],
    pub(super) rounds: usize,
    pub(super) max_tokens: u32,
}

struct Photo {
    w: u32,
    h: u32,
    prompt_tokens: f64,
    ttft_ms: f64,
}

fn parse(size: &str) -> anyhow::Result<(u32, u32)> {
    let (w, h) = size
        .split_once('x')
        .ok_or_else(|| anyhow::anyhow!("--photos takes WxH sizes, e.g. 640x480"))?;
    Ok((w.trim().parse()?, h.trim().parse()?))
}

async fn measure(args: &PhotoRun<'_>, url: &str) -> anyhow::Result<Vec<Photo>> {
    let client = Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()?,
        url: url.trim_end_matches('/').to_string(),
        max_tokens: args.max_tokens,
    };
    let mut out = Vec::new();
    for (i, size) in args.sizes.iter().enumerate() {
        let (w, h) = parse(size)?;
        // Warm-up at this size: one-off buffer growth is not the photo's cost.
        let warm = user(70_000 + i, Some(images::photo_url(70_000 + i, w, h)));
        client.run(vec![warm]).await?;
        let (mut tokens, mut ttft) = (0.0, 0.0);
        let rounds = args.rounds.max(1);
        for r in 0..rounds {
            let n = 80_000 + i * 100 + r;
            let (s, _) = client
                .run(vec![user(n, Some(images::photo_url(n, w, h)))])
                .await?;
            tokens += f64::from(s.prompt_tokens.unwrap_or(0));
            ttft += s.ttft.as_secs_f64() * 1e3;
        }
        out.push(Photo {
            w,
            h,
            prompt_tokens: tokens / rounds as f64,
            ttft_ms: ttft / rounds as f64,
        });
    }
    Ok(out)
}

pub(super) async fn run(args: &PhotoRun<'_>) -> anyhow::Result<()> {
    let main = measure(args, args.url).await?;
    let base = match args.baseline_url {
        Some(u) => Some(measure(args, u).await?),
        None => None,
    };
    println!("| photo | prompt tokens | first token (ms) | tokens ratio | TTFT ratio |");
    println!("| --- | --- | --- | --- | --- |");
    for (i, m) in main.iter().enumerate() {
        let b = base.as_ref().and_then(|b| b.get(i));
        let pair = |a: f64, b: Option<f64>| match b {
            Some(b) => format!("{a:.0} vs {b:.0}"),
            None => format!("{a:.0}"),
        };
        let ratio = |a: f64, b: Option<f64>| b.map_or("-".into(), |b| format!("{:.2}", a / b));
        println!(
            "| {}x{} | {} | {} | {} | {} |",
            m.w,
            m.h,
            pair(m.prompt_tokens, b.map(|b| b.prompt_tokens)),
            pair(m.ttft_ms, b.map(|b| b.ttft_ms)),
            ratio(m.prompt_tokens, b.map(|b| b.prompt_tokens)),
            ratio(m.ttft_ms, b.map(|b| b.ttft_ms)),
        );
    }
    Ok(())
}
