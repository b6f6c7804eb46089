//! `tessera bench` end to end: the same small workload against two real
//! servers, the second as the baseline, and both serve all of it.

use crate::common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_runs_the_same_workload_on_both_servers() {
    let main = start_mlp(&["--parallel", "2"]).await;
    let base = start_mlp(&["--parallel", "2"]).await;
    let args = tessera::bench::BenchArgs {
        url: main.base.clone(),
        baseline_url: Some(base.base.clone()),
        concurrency: vec![1, 2],
        rounds: 1,
        max_tokens: 4,
        image_size: 40,
        no_images: false,
        soak: false,
        soak_requests: 0,
        soak_concurrency: 1,
        photos: Vec::new(),
    };
    tessera::bench::run(args)
        .await
        .expect("the bench completes");
    // Greedy with ignore_eos: every request generates exactly max_tokens,
    // so the same workload is the same count on both.
    let served = main.server.engine.generated_tokens();
    assert!(served > 0, "the server under test served nothing");
    assert_eq!(served, base.server.engine.generated_tokens());
    assert_eq!(served % 4, 0, "{served} is not a whole number of requests");
}

/// `--photos`: one photo per size on each server; both see the same
/// requests (same prompt-token count on identical servers).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_photo_comparison_runs_on_both_servers() {
    let main = start_qwen(&["--tiling", "native"]).await;
    let base = start_qwen(&["--tiling", "native"]).await;
    let args = tessera::bench::BenchArgs {
        url: main.base.clone(),
        baseline_url: Some(base.base.clone()),
        concurrency: vec![1],
        rounds: 1,
        max_tokens: 2,
        image_size: 40,
        no_images: false,
        soak: false,
        soak_requests: 0,
        soak_concurrency: 1,
        photos: vec!["64x48".into(), "100x40".into()],
    };
    tessera::bench::run(args)
        .await
        .expect("the photo bench completes");
    // Warm-up plus one round per size, greedy with ignore_eos.
    assert_eq!(main.server.engine.generated_tokens(), 2 * 2 * 2);
    assert_eq!(base.server.engine.generated_tokens(), 2 * 2 * 2);
}
