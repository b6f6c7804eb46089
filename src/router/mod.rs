//! Router mode (`--models-dir`, `--models-config`): one front process that
//! answers every endpoint, routes each request by its `model` to that
//! model's runner (a child process of this binary serving one model on
//! loopback), loads models on demand and unloads them by rule. A llama.cpp
//! abort then costs one model's in-flight requests, not the server.
//!
//! `registry` (which models), `pool` (their states and the rules),
//! `runner` (one child process), `proxy` (one request's hop), `argv` (a
//! runner's flags), `memory` (a model's estimated size), `admin` and
//! `own` (the routes the front answers itself).

mod admin;
pub mod argv;
mod memory;
mod metrics_text;
mod own;
mod pool;
mod proxy;
pub mod registry;
pub mod runner;
mod slot;
mod state;
mod stored;

use crate::api::auth::{ApiKeys, Gate};
use crate::config::Config;
use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use pool::{Limits, Pool};
pub use state::RouterState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A running router.
pub struct RouterServer {
    pub addr: SocketAddr,
    pub state: Arc<RouterState>,
    listening: crate::serve::Listening,
}

impl RouterServer {
    /// Stops taking connections, lets open ones finish (the runners keep
    /// serving them), then stops every runner, each draining its own.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        let _ = self.listening.stop().await;
        self.state.pool.shutdown().await;
        Ok(())
    }

    pub async fn run_until_signal(self) -> std::io::Result<()> {
        crate::serve::shutdown_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await
    }

    /// Each model's runner pid, where one runs (tests watch them exit).
    pub fn runner_pids(&self) -> Vec<(String, u32)> {
        own::runner_pids(&self.state.pool)
    }
}

/// Reads the registry, checks every model's flags, binds and serves.
pub async fn start(config: Config) -> anyhow::Result<RouterServer> {
    config.check().map_err(anyhow::Error::msg)?;
    let m = &config.models;
    let specs = registry::load(m.models_dir.as_deref(), m.models_config.as_deref())
        .map_err(anyhow::Error::msg)?;
    let exe = match &m.runner_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("cannot find this program to start runners")?,
    };
    let runner_key = uuid::Uuid::new_v4().simple().to_string();
    let env = runner_env(&config, &runner_key);
    let env_remove = argv::config_env_names();
    let mut models = Vec::new();
    for spec in specs {
        let (args, runner) = argv::checked(&config, &spec).map_err(anyhow::Error::msg)?;
        let model = match &spec.source {
            registry::Source::File(p) => Some(p.as_path()),
            registry::Source::HfRepo(_) => None,
        };
        let bytes = memory::estimate(
            model,
            spec.mmproj.as_deref(),
            runner.ctx_size,
            &runner.cache,
        );
        let launch = runner::Launch {
            exe: exe.clone(),
            args,
            env_remove: env_remove.clone(),
            env: env.clone(),
        };
        models.push((spec, bytes, launch));
    }
    let pool = Pool::new(
        models,
        Limits {
            models_max: m.models_max as usize,
            memory_bytes: m.models_memory_mb << 20,
            idle_unload: (m.idle_unload_seconds > 0)
                .then(|| Duration::from_secs(m.idle_unload_seconds)),
        },
    );
    let keys = crate::api::auth::configured_keys(&config)?;
    let state = Arc::new(RouterState {
        pool: pool.clone(),
        runner_key,
        http: reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?,
        load_timeout: Duration::from_secs(match config.request_timeout {
            0 => 600,
            t => t,
        }),
        admin: match &m.admin_key {
            Some(k) => ApiKeys::new(&[k]),
            None => ApiKeys::new(&keys),
        },
        created: crate::api::unix_now(),
    });
    if let Some(every) = pool.idle_unload() {
        tokio::spawn(idle_loop(Arc::downgrade(&pool), every));
    }
    let gate = Gate {
        keys: ApiKeys::new(&keys),
        metrics_public: config.metrics_public,
    };
    serve(config, state, gate).await
}

async fn serve(
    config: Config,
    state: Arc<RouterState>,
    gate: Gate,
) -> anyhow::Result<RouterServer> {
    let app = routes(state.clone(), gate, &config);
    let listening = crate::serve::Listening::bind(&config, app).await?;
    tracing::info!(
        models = state.pool.slots.len(),
        "router listening on http://{}",
        listening.addr
    );
    Ok(RouterServer {
        addr: listening.addr,
        state,
        listening,
    })
}

fn routes(state: Arc<RouterState>, gate: Gate, config: &Config) -> Router {
    let gated = Router::new()
        .route("/v1/models", get(own::list_models))
        .route("/v1/models/{id}", get(own::get_model))
        .route("/v1/{*rest}", post(proxy::forward))
        .route(
            "/v1/responses/{*rest}",
            get(stored::find).delete(stored::find),
        )
        .route("/health", get(own::health))
        .route("/metrics", get(own::metrics))
        .merge(crate::api::playground(config))
        .fallback(own::not_found)
        .layer(axum::middleware::from_fn_with_state(
            gate,
            crate::api::auth::require_key,
        ));
    let admin = Router::new()
        .route("/models/load", post(admin::load))
        .route("/models/unload", post(admin::unload));
    let app = gated
        .merge(admin)
        .layer(axum::extract::DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_secs(config.body_read_timeout),
            crate::api::body_deadline,
        ))
        .layer(axum::middleware::from_fn(
            crate::api::dialect::anthropic_errors,
        ))
        .layer(crate::api::cors(config))
        .with_state(state);
    crate::api::with_request_ids(app)
}

/// What a runner's environment gains: its key, and the hub token (secrets
/// never go on a command line that `ps` shows).
fn runner_env(config: &Config, key: &str) -> Vec<(String, String)> {
    let mut env = vec![("TESSERA_API_KEY".to_string(), key.to_string())];
    if let Some(t) = &config.hf_token {
        env.push(("HF_TOKEN".into(), t.clone()));
    }
    env
}

async fn idle_loop(pool: std::sync::Weak<Pool>, idle: Duration) {
    let mut tick = tokio::time::interval(
        idle.min(Duration::from_secs(1))
            .max(Duration::from_millis(100)),
    );
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.unload_idle();
    }
}
