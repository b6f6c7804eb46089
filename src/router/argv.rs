//! A runner's command line and environment: the router's own settings,
//! every one of them as a flag (so `-t 4` given to the router reaches each
//! runner), then the model's files and its `options` from the config file
//! (later flags win), then what only the router decides (loopback, the
//! runner's key, `--runner`). Secrets travel in the environment, never on
//! a command line that `ps` shows.

use super::registry::{ModelSpec, Source};
use crate::config::Config;
use clap::{CommandFactory, Parser};

/// Settings the router decides for each runner, or keeps for itself.
const NOT_PASSED: &[&str] = &[
    "model",
    "mmproj",
    "hf_repo",
    "alias",
    "host",
    "port",
    "api_key",
    "api_key_file",
    "hf_token",
    "demo",
    "demo_dir",
    "cors_origin",
    "metrics_public",
    "no_ui",
    // A draft model shares one model's vocabulary: a model's own option.
    "model_draft",
];

/// The flags a runner for `spec` starts with.
pub fn runner_args(config: &Config, spec: &ModelSpec) -> Result<Vec<String>, String> {
    let value = serde_json::to_value(config).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(fields) = value else {
        return Err("the configuration is not an object".into());
    };
    // A model's own option replaces the router's (clap takes a flag once).
    let own: Vec<String> = spec
        .options
        .iter()
        .filter_map(|o| o.strip_prefix("--"))
        .map(|o| o.split('=').next().unwrap_or(o).replace('-', "_"))
        .collect();
    let mut args = Vec::new();
    let passed = |n: &str| !NOT_PASSED.contains(&n) && !own.iter().any(|o| o == n);
    for (name, v) in fields.iter().filter(|(n, _)| passed(n)) {
        let flag = format!("--{}", name.replace('_', "-"));
        match v {
            serde_json::Value::Null | serde_json::Value::Bool(false) => {}
            serde_json::Value::Bool(true) => args.push(flag),
            serde_json::Value::Array(items) => {
                for item in items {
                    args.push(format!("{flag}={}", plain(item)));
                }
            }
            v => args.push(format!("{flag}={}", plain(v))),
        }
    }
    match &spec.source {
        Source::File(p) => args.push(format!("--model={}", p.display())),
        Source::HfRepo(r) => args.push(format!("--hf-repo={r}")),
    }
    if let Some(m) = &spec.mmproj {
        args.push(format!("--mmproj={}", m.display()));
    }
    args.push(format!("--alias={}", spec.id));
    args.extend(spec.options.iter().cloned());
    args.extend(["--host=127.0.0.1", "--port=0", "--runner"].map(String::from));
    Ok(args)
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Environment variables the router's own flags read: removed from a
/// runner's environment, so that only its command line speaks (a
/// `TESSERA_MODELS_DIR` would make every runner a router again).
pub fn config_env_names() -> Vec<String> {
    Config::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

/// A runner's flags, and the settings it will parse from them: parsed
/// here, once at the router's start, so that a bad `options` entry fails
/// the start with the model named.
pub fn checked(config: &Config, spec: &ModelSpec) -> Result<(Vec<String>, Config), String> {
    let args = runner_args(config, spec)?;
    let argv = std::iter::once("tessera".to_string()).chain(args.iter().cloned());
    let parsed = Config::try_parse_from(argv).map_err(|e| {
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default().to_string();
        format!("model `{}`: {first}", spec.id)
    })?;
    parsed
        .check()
        .map_err(|e| format!("model `{}`: {e}", spec.id))?;
    Ok((args, parsed))
}

#[cfg(test)]
mod tests;
