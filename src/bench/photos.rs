//! `tessera bench --photos 640x480,1024x768`: what one photo costs on each
//! server, one client at a time: prompt tokens (the image's price plus the
//! text) and the median first-token time over `--rounds` distinct photos,
//! with Tessera / baseline ratios. The question issue 19 asks: does a photo
//! cost what llama-server charges, and is it as fast.
//!
//! With a baseline, the two servers take turns on the same photo, in ABBA
//! order, so that a shared machine's drift (another process, frequency
//! changes) lands on both sides instead of on whichever ran second.

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

/// One server's figures for one size.
#[derive(Default)]
struct Photo {
    prompt_tokens: Vec<f64>,
    ttft_ms: Vec<f64>,
}

fn parse(size: &str) -> anyhow::Result<(u32, u32)> {
    let (w, h) = size
        .split_once('x')
        .ok_or_else(|| anyhow::anyhow!("--photos takes WxH sizes, e.g. 640x480"))?;
    Ok((w.trim().parse()?, h.trim().parse()?))
}

fn client(args: &PhotoRun<'_>, url: &str) -> anyhow::Result<Client> {
    Ok(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()?,
        url: url.trim_end_matches('/').to_string(),
        max_tokens: args.max_tokens,
    })
}

/// Sends photo `n` to `client` and records what it cost.
async fn once(
    client: &Client,
    n: usize,
    (w, h): (u32, u32),
    into: &mut Photo,
) -> anyhow::Result<()> {
    let (s, _) = client
        .run(vec![user(n, Some(images::photo_url(n, w, h)))])
        .await?;
    into.prompt_tokens
        .push(f64::from(s.prompt_tokens.unwrap_or(0)));
    into.ttft_ms.push(s.ttft.as_secs_f64() * 1e3);
    Ok(())
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Both servers at one size: a warm-up each (one-off buffer growth is not
/// the photo's cost), then the rounds in ABBA order.
async fn size(
    rounds: usize,
    i: usize,
    wh: (u32, u32),
    main: &Client,
    base: Option<&Client>,
) -> anyhow::Result<(Photo, Option<Photo>)> {
    let (mut a, mut b) = (Photo::default(), Photo::default());
    let warm = 70_000 + i;
    once(main, warm, wh, &mut Photo::default()).await?;
    if let Some(base) = base {
        once(base, warm, wh, &mut Photo::default()).await?;
    }
    for r in 0..rounds.max(1) {
        let n = 80_000 + i * 100 + r;
        match base {
            Some(base) if r % 2 == 1 => {
                once(base, n, wh, &mut b).await?;
                once(main, n, wh, &mut a).await?;
            }
            Some(base) => {
                once(main, n, wh, &mut a).await?;
                once(base, n, wh, &mut b).await?;
            }
            None => once(main, n, wh, &mut a).await?,
        }
    }
    Ok((a, base.map(|_| b)))
}

pub(super) async fn run(args: &PhotoRun<'_>) -> anyhow::Result<()> {
    let main = client(args, args.url)?;
    let base = args.baseline_url.map(|u| client(args, u)).transpose()?;
    println!("| photo | prompt tokens | median first token (ms) | tokens ratio | TTFT ratio |");
    println!("| --- | --- | --- | --- | --- |");
    for (i, s) in args.sizes.iter().enumerate() {
        let (w, h) = parse(s)?;
        let (m, b) = size(args.rounds, i, (w, h), &main, base.as_ref()).await?;
        let (mt, mf) = (median(&m.prompt_tokens), median(&m.ttft_ms));
        let b = b.map(|b| (median(&b.prompt_tokens), median(&b.ttft_ms)));
        let pair = |a: f64, b: Option<f64>| match b {
            Some(b) => format!("{a:.0} vs {b:.0}"),
            None => format!("{a:.0}"),
        };
        let ratio = |a: f64, b: Option<f64>| b.map_or("-".into(), |b| format!("{:.2}", a / b));
        let (bt, bf) = (b.map(|b| b.0), b.map(|b| b.1));
        println!(
            "| {w}x{h} | {} | {} | {} | {} |",
            pair(mt, bt),
            pair(mf, bf),
            ratio(mt, bt),
            ratio(mf, bf),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_takes_the_middle_not_the_mean() {
        assert_eq!(median(&[1.0, 100.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
