use super::*;
use crate::router::registry::{ModelSpec, Source};

fn spec(options: &[&str]) -> ModelSpec {
    ModelSpec {
        id: "vlm".into(),
        aliases: Vec::new(),
        source: Source::File("/m/text.gguf".into()),
        mmproj: Some("/m/mmproj.gguf".into()),
        options: options.iter().map(|s| s.to_string()).collect(),
    }
}

fn parse(args: &[&str]) -> Config {
    Config::try_parse_from(std::iter::once("tessera").chain(args.iter().copied())).unwrap()
}

#[test]
fn every_router_setting_reaches_the_runner_as_the_runner_parses_it() {
    let router = parse(&[
        "--models-dir",
        "/models",
        "-t",
        "3",
        "-c",
        "2048",
        "--tiling",
        "native",
        "--log-prompts",
        "--image-fetch-allow-ip",
        "10.0.0.1,10.0.0.2",
        "--api-key",
        "secret",
        "--hf-token",
        "hf_x",
        "--cors-origin",
        "*",
    ]);
    let args = runner_args(&router, &spec(&[])).unwrap();
    assert!(
        !args
            .iter()
            .any(|a| a.contains("secret") || a.contains("hf_x")),
        "{args:?}"
    );
    let runner = parse(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut a = serde_json::to_value(&router).unwrap();
    let mut b = serde_json::to_value(&runner).unwrap();
    for v in [&mut a, &mut b] {
        for k in NOT_PASSED {
            v.as_object_mut().unwrap().remove(*k);
        }
    }
    assert_eq!(a, b);
    assert_eq!(runner.model, Some("/m/text.gguf".into()));
    assert_eq!(runner.alias.as_deref(), Some("vlm"));
    assert_eq!(runner.host.to_string(), "127.0.0.1");
    assert!(runner.models.runner && !runner.models.router_mode());
}

#[test]
fn a_models_options_override_the_routers() {
    let router = parse(&["--models-dir", "/m", "-c", "2048"]);
    let args = runner_args(&router, &spec(&["--ctx-size=8192"])).unwrap();
    let runner = parse(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(runner.ctx_size, 8192);
}

#[test]
fn a_bad_option_names_the_model() {
    let router = parse(&["--models-dir", "/m"]);
    let e = checked(&router, &spec(&["--ctx-sise=1"])).unwrap_err();
    assert!(
        e.starts_with("model `vlm`:") && e.contains("ctx-sise"),
        "{e}"
    );
    let e = checked(&router, &spec(&["--min-tiles=9", "--max-tiles=2"])).unwrap_err();
    assert!(e.contains("--min-tiles 9"), "{e}");
}
