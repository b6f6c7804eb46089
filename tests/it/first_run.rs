//! What a new user meets first: `--demo` serves the generated tiny model
//! with no files and no network, `/v1/models` says where it runs, and a
//! missing model gets a message that names the way out.

use crate::common;

use common::*;

#[tokio::test]
async fn demo_serves_an_image_request_with_nothing_installed() {
    // Into the test's own folder, never the user's ~/.cache.
    let dir = fixtures().dir.join("demo");
    let s = start(&["--demo", "--demo-dir", path(&dir)]).await;
    let (status, models) = s.get("/v1/models").await;
    assert_eq!(status, 200);
    let m = &models["data"][0];
    assert_eq!(m["id"], "tessera-demo");
    let backend = &m["capabilities"]["backend"];
    assert_eq!(backend["name"], "CPU", "{backend}");
    assert_eq!(backend["offloaded_layers"], 0);
    assert!(backend["layers"].as_u64().unwrap() > 0);
    // The default build is portable x86-64-v3 (AVX2, FMA, F16C), no more.
    let features: Vec<&str> = backend["cpu_features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(features.contains(&"OPENMP"), "{backend}");
    #[cfg(all(target_arch = "x86_64", not(feature = "dynamic-backends")))]
    {
        assert!(features.contains(&"AVX2"), "{backend}");
        assert!(!features.contains(&"AVX512"), "{backend}");
    }
    let (status, v) = s
        .post(&greedy(
            vec![
                text_part("what is this?"),
                image_part(64, 48, [200, 30, 30]),
            ],
            4,
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["usage"]["prompt_tokens_details"]["image_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

async fn start_err(args: &[&str]) -> String {
    let mut argv = vec!["tessera", "--port", "0"];
    argv.extend_from_slice(args);
    let config = <tessera::config::Config as clap::Parser>::parse_from(argv);
    tessera::start(config)
        .await
        .err()
        .expect("refused")
        .to_string()
}

#[tokio::test]
async fn no_model_and_no_network_names_the_cache_and_the_flags_that_fix_it() {
    // The default repository, from a hub that is not there and an empty cache.
    let cache = fixtures().dir.join("empty-hub-cache");
    let dead = "http://127.0.0.1:9";
    let err = start_err(&["--hf-endpoint", dead, "--hf-cache", path(&cache)]).await;
    assert!(err.contains("--model") && err.contains("--demo"), "{err}");
    assert!(
        err.contains(path(&cache)) && err.contains("SmolVLM"),
        "{err}"
    );
    let err = start_err(&["--offline", "--hf-cache", path(&cache)]).await;
    assert!(
        err.contains("offline") && err.contains(path(&cache)),
        "{err}"
    );
    let err = start_err(&["--demo", "--model", path(&fixtures().text)]).await;
    assert!(err.contains("--demo"), "{err}");
}
