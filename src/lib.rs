//! Tessera: a local, OpenAI-compatible vision-language server on llama.cpp.
//!
//! `api` (HTTP: routes, auth, framing) -> `prepare` (a wire request becomes
//! an engine job) -> `vision` (images) and `engine` (the llama.cpp thread);
//! `openai` holds the wire types. Arrows point one way.

pub mod anthropic;
pub mod api;
pub mod audio;
pub mod bench;
pub mod config;
pub mod engine;
pub mod fixtures;
#[cfg(feature = "testing")]
pub mod fuzz;
pub mod hub;
pub mod logging;
pub mod metrics;
pub mod openai;
pub mod prepare;
pub mod router;
mod serve;
pub mod soak;
pub mod ui;
pub mod video;
pub mod vision;

use anyhow::Context as _;
use api::AppState;
use config::Config;
use engine::Engine;
use std::net::SocketAddr;
use std::sync::Arc;

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub engine: Engine,
    listening: serve::Listening,
}

impl Server {
    /// Stops accepting connections and lets open ones (running streams
    /// included) finish, for at most the shutdown grace period.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        let stopped = self.listening.stop().await;
        self.engine.stop(std::time::Duration::from_secs(10)).await;
        stopped
    }

    /// Runs until SIGINT/SIGTERM, then shuts down gracefully. Fails when
    /// the engine dies, so that the process exits non-zero and its
    /// supervisor (systemd, Docker, Kubernetes) restarts it.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        self.run_until(serve::shutdown_signal()).await
    }

    /// Runs until `stop` completes (then shuts down gracefully) or the
    /// engine dies (an error).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let engine = self.engine.clone();
        tokio::select! {
            _ = stop => {
                tracing::info!("shutting down");
                self.shutdown().await
            }
            why = engine.died() => {
                tracing::error!("exiting: {why}");
                let _ = self.shutdown().await;
                Err(std::io::Error::other(format!("the inference engine stopped: {why}")))
            }
        }
    }

    /// A router's runner: says on stdout where it listens and whether its
    /// model loaded, and stops, draining, when stdin closes (its router is
    /// gone or unloads it) or on a signal.
    pub async fn run_as_runner(self) -> std::io::Result<()> {
        println!("{} {}", router::runner::LISTENING, self.addr);
        let engine = self.engine.clone();
        tokio::spawn(async move {
            match engine.wait_ready().await {
                engine::Status::Ready => println!("{}", router::runner::READY),
                engine::Status::Failed(e) | engine::Status::Dead(e) => {
                    println!("{} {e}", router::runner::FAILED)
                }
                engine::Status::Loading => {}
            }
        });
        let stdin_closed = async {
            use tokio::io::AsyncReadExt as _;
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while let Ok(n) = stdin.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        self.run_until(async {
            tokio::select! { _ = serve::shutdown_signal() => {}, _ = stdin_closed => {} }
        })
        .await
    }
}

/// Where `--demo` writes its model: `--demo-dir`, else the user's cache.
fn demo_dir(config: &Config) -> std::path::PathBuf {
    config
        .demo_dir
        .clone()
        .unwrap_or_else(|| hub::cache::user_cache().join("tessera").join("demo"))
}

/// Points the config at the generated tiny model and its Qwen2-VL-style
/// projector (written once, then reused).
fn use_demo_model(config: &mut Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.model.is_none() && config.mmproj.is_none(),
        "--demo serves the built-in tiny model; drop --model/--mmproj or --demo"
    );
    let dir = demo_dir(config);
    let set = fixtures::write_all(&dir)
        .with_context(|| format!("cannot write the demo model into {}", dir.display()))?;
    config.model = Some(set.text);
    config.mmproj = Some(set.mmproj_qwen2vl);
    config.alias.get_or_insert_with(|| "tessera-demo".into());
    tracing::warn!(
        "--demo: serving Tessera's generated tiny model from {}; it runs the whole pipeline \
         (tiling, pricing, encoding, streaming) but its answers are noise",
        dir.display()
    );
    Ok(())
}

/// Where and how the hub is reached, from the flags.
fn hub_options(config: &Config, want_mmproj: bool) -> hub::HubOptions {
    let offline_env = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v == "true");
    hub::HubOptions {
        endpoint: config.hf_endpoint.clone(),
        token: config.hf_token.clone().filter(|t| !t.is_empty()),
        offline: config.offline || offline_env,
        cache_root: config.hf_cache.clone().unwrap_or_else(hub::cache::root),
        want_mmproj,
    }
}

/// Fetches --hf-repo (or the default repository) into the model cache, or
/// finds it there, and points the config at the files.
async fn download_model(config: &mut Config) -> anyhow::Result<()> {
    let spec = config
        .hf_repo
        .clone()
        .unwrap_or_else(|| hub::DEFAULT_REPO.to_string());
    let opts = hub_options(config, config.mmproj.is_none());
    tracing::info!(repo = %spec, cache = %opts.cache_root.display(), "resolving the model");
    let resolved = hub::resolve(&spec, &opts).await?;
    config.model = Some(resolved.model);
    if config.mmproj.is_none() {
        config.mmproj = resolved.mmproj;
    }
    Ok(())
}

/// `tessera pull owner/repo[:quant]`: the model and its mmproj into the
/// cache (with progress and resume), as `--hf-repo` would fetch them.
pub async fn pull(config: &Config, spec: &str) -> anyhow::Result<hub::Resolved> {
    Ok(hub::resolve(spec, &hub_options(config, true)).await?)
}

/// `tessera list`: the cached GGUF models, and which a server at `url` runs.
pub async fn list(config: &Config, url: &str) -> String {
    let root = hub_options(config, false).cache_root;
    let key = config.api_key.first().map(String::as_str);
    let running = hub::list::running(url, key).await;
    hub::list::table(&hub::list::cached(&root), &running)
}

/// Binds the listener, starts loading the model in the background and serves.
/// `/health` answers 503 until the model is ready.
pub async fn start(mut config: Config) -> anyhow::Result<Server> {
    config.check().map_err(anyhow::Error::msg)?;
    let model = find_model(&mut config).await?;
    let metrics = Arc::new(metrics::Metrics::default());
    let template_file = chat_template_file(&config)?;
    let (prompt_model, on_loaded) = prepare::on_loaded(template_file);
    let engine = Engine::start(config.engine(model, metrics.clone(), on_loaded));
    let preparer = prepare::Preparer::new(
        config.prepare().map_err(anyhow::Error::msg)?,
        engine.clone(),
        prompt_model,
        metrics.clone(),
    );
    let state = Arc::new(AppState {
        metrics,
        gate: api::auth::Gate {
            keys: api::auth::ApiKeys::new(&api::auth::configured_keys(&config)?),
            metrics_public: config.metrics_public,
        },
        engine: engine.clone(),
        model_id: config.model_id(),
        created: api::unix_now(),
        preparer,
        store: Arc::new(api::store::ResponseStore::new(config.store.limits())),
        request_timeout: (config.request_timeout > 0)
            .then(|| std::time::Duration::from_secs(config.request_timeout)),
    });
    let app = api::router(state, &config);
    let listening = serve::Listening::bind(&config, app).await?;
    tracing::info!("listening on http://{}", listening.addr);
    Ok(Server {
        addr: listening.addr,
        engine,
        listening,
    })
}

/// The model file to serve: `--demo`'s, `--model`, or downloaded.
async fn find_model(config: &mut Config) -> anyhow::Result<std::path::PathBuf> {
    if config.demo {
        use_demo_model(config)?;
    } else if config.model.is_none() {
        download_model(config).await?;
    }
    let model = config.model.clone().context(
        "no model given: pass --model PATH/TO/model.gguf (or set TESSERA_MODEL), \
         or --demo to try the API on a built-in tiny model",
    )?;
    anyhow::ensure!(model.is_file(), "model file not found: {}", model.display());
    if let Some(p) = &config.mmproj {
        anyhow::ensure!(p.is_file(), "mmproj file not found: {}", p.display());
    }
    Ok(model)
}

/// `--chat-template-file`, read and checked to compile before anything loads.
fn chat_template_file(config: &Config) -> anyhow::Result<Option<prepare::TemplateFile>> {
    let Some(path) = &config.chat_template_file else {
        return Ok(None);
    };
    let source = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --chat-template-file {}", path.display()))?;
    prepare::jinja::environment(&source).map_err(|e| {
        anyhow::anyhow!(
            "--chat-template-file {} does not compile: {e}",
            path.display()
        )
    })?;
    Ok(Some((path.display().to_string(), source)))
}
