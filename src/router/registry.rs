//! Which models a router serves: read once at start from `--models-dir`
//! and `--models-config`, checked before anything loads, never changed
//! afterwards (a typo fails the start, not the first request).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One model the router can load: its id, where its files are, and the
/// per-model flags its runner gets on top of the server's own.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub id: String,
    /// Other names that route to this model.
    pub aliases: Vec<String>,
    pub source: Source,
    pub mmproj: Option<PathBuf>,
    /// `--flag value` pairs from the config file's `options` table.
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    File(PathBuf),
    /// `owner/name[:quant]`, fetched into the Hugging Face cache by the runner.
    HfRepo(String),
}

/// `--models-config`: `[[models]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    models: Vec<ConfigEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigEntry {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    model: Option<PathBuf>,
    hf_repo: Option<String>,
    mmproj: Option<PathBuf>,
    #[serde(default)]
    options: BTreeMap<String, toml::Value>,
}

/// Flags a config file may not set per model: the router owns them.
const ROUTER_OWNED: &[&str] = &[
    "model",
    "mmproj",
    "hf-repo",
    "alias",
    "host",
    "port",
    "api-key",
    "api-key-file",
    "demo",
    "demo-dir",
];

/// Every model of the directory and the config file, ids unique.
pub fn load(dir: Option<&Path>, config: Option<&Path>) -> Result<Vec<ModelSpec>, String> {
    let mut specs = Vec::new();
    if let Some(dir) = dir {
        specs.extend(scan_dir(dir)?);
    }
    if let Some(path) = config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --models-config {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let from_file = parse_config(&text, base)
            .map_err(|e| format!("--models-config {}: {e}", path.display()))?;
        // The file's entry wins over the directory's model of the same id.
        specs.retain(|s: &ModelSpec| !from_file.iter().any(|f| f.id == s.id));
        specs.extend(from_file);
    }
    check_names(&specs)?;
    if specs.is_empty() {
        return Err(
            "no model found: --models-dir holds no .gguf model and --models-config lists none"
                .into(),
        );
    }
    Ok(specs)
}

/// llama-server's `--models-dir` layout: a `.gguf` at the top is a model
/// (id: its file name less `.gguf`); a folder is one model, its file and
/// mmproj chosen by the `-hf` rule (id: the folder's name).
pub fn scan_dir(dir: &Path) -> Result<Vec<ModelSpec>, String> {
    let read = |d: &Path| {
        std::fs::read_dir(d).map_err(|e| format!("cannot read --models-dir {}: {e}", d.display()))
    };
    let mut specs = Vec::new();
    let mut entries: Vec<_> = read(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    let top: Vec<String> = entries.iter().filter_map(|p| file_name(p)).collect();
    // Only the first shard of each model, and no mmproj, at the top.
    for f in top.iter().filter(|f| is_top_model(f)) {
        specs.push(ModelSpec {
            id: f.strip_suffix(".gguf").unwrap_or(f).to_string(),
            aliases: Vec::new(),
            source: Source::File(dir.join(f)),
            mmproj: None,
            options: Vec::new(),
        });
    }
    for sub in entries.iter().filter(|p| p.is_dir()) {
        let files: Vec<String> = read(sub)?
            .filter_map(Result::ok)
            .filter_map(|e| file_name(&e.path()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let (Some(model), Some(id)) =
            (crate::hub::select::model_file(&files, None), file_name(sub))
        else {
            continue;
        };
        specs.push(ModelSpec {
            id,
            aliases: Vec::new(),
            source: Source::File(sub.join(model)),
            mmproj: crate::hub::select::mmproj_file(&files, model).map(|m| sub.join(m)),
            options: Vec::new(),
        });
    }
    Ok(specs)
}

fn file_name(p: &Path) -> Option<String> {
    p.file_name().map(|f| f.to_string_lossy().into_owned())
}

fn is_top_model(f: &str) -> bool {
    let files = [f.to_string()];
    crate::hub::select::model_file(&files, None).is_some()
}

/// The `[[models]]` of a config file; relative paths are taken from the
/// file's folder, as a user reading the file would.
pub fn parse_config(text: &str, base: &Path) -> Result<Vec<ModelSpec>, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.models.into_iter().map(|e| entry(e, base)).collect()
}

fn entry(e: ConfigEntry, base: &Path) -> Result<ModelSpec, String> {
    let id = e.id.clone();
    let source = match (e.model, e.hf_repo) {
        (Some(m), None) => Source::File(base.join(m)),
        (None, Some(r)) => {
            crate::hub::select::RepoSpec::parse(&r)
                .map_err(|why| format!("model `{id}`: {why}"))?;
            Source::HfRepo(r)
        }
        _ => {
            return Err(format!(
                "model `{id}` needs exactly one of `model` (a path) or `hf_repo`"
            ));
        }
    };
    let mut options = Vec::new();
    for (key, value) in e.options {
        let flag = key.replace('_', "-");
        if ROUTER_OWNED.contains(&flag.as_str()) {
            return Err(format!(
                "model `{id}`: `{key}` is set by the router, not in `options` (use the entry's own keys)"
            ));
        }
        push_flag(&mut options, &flag, &value).map_err(|why| format!("model `{id}`: {why}"))?;
    }
    Ok(ModelSpec {
        id,
        aliases: e.aliases,
        source,
        mmproj: e.mmproj.map(|m| base.join(m)),
        options,
    })
}

/// A TOML value as the flag's command-line form: `true` is the bare flag,
/// `false` leaves it out, an array repeats it.
fn push_flag(out: &mut Vec<String>, flag: &str, value: &toml::Value) -> Result<(), String> {
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        _ => Err(format!(
            "`{flag}` takes a string, number, boolean or list of them"
        )),
    };
    match value {
        toml::Value::Boolean(true) => out.push(format!("--{flag}")),
        toml::Value::Boolean(false) => {}
        toml::Value::Array(items) => {
            for v in items {
                out.push(format!("--{flag}={}", scalar(v)?));
            }
        }
        v => out.push(format!("--{flag}={}", scalar(v)?)),
    }
    Ok(())
}

/// Ids and aliases: unique, and plain enough for a URL path and a log.
fn check_names(specs: &[ModelSpec]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for name in specs
        .iter()
        .flat_map(|s| std::iter::once(&s.id).chain(&s.aliases))
    {
        let plain = !name.is_empty()
            && name.len() <= 256
            && name.chars().all(|c| !c.is_control() && c != '"');
        if !plain {
            return Err(format!(
                "model id {name:?} is empty, too long or has control characters"
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(format!(
                "two models are named `{name}`; ids and aliases must be unique"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
