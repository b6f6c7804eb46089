//! Model acquisition: finds a GGUF model and its mmproj in a Hugging Face
//! repository, downloads them into the cache that Python's `huggingface_hub`
//! and llama.cpp share (`cache.rs`), resumes interrupted downloads, checks
//! size and sha256, and hands back two paths. It knows nothing of llama.cpp.

pub mod cache;
mod download;
mod error;
pub mod list;
pub mod names;
mod options;
pub mod select;

use cache::RepoCache;
pub use error::HubError;
pub use options::{HubOptions, Resolved};
use select::RepoSpec;
use std::path::PathBuf;

/// The repository served when no model is given.
pub const DEFAULT_REPO: &str = "ggml-org/SmolVLM-256M-Instruct-GGUF";
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
const REVISION: &str = "main";

/// Paths of the model (and mmproj) of `spec`, downloading what the cache lacks.
pub async fn resolve(spec: &str, opts: &HubOptions) -> Result<Resolved, HubError> {
    let spec = RepoSpec::parse(spec).map_err(HubError::Spec)?;
    let cache = RepoCache::new(&opts.cache_root, &spec.repo);
    if opts.offline {
        return from_cache(&spec, &cache, opts).ok_or_else(|| HubError::NotCached {
            repo: spec.repo.clone(),
            cache: opts.cache_root.display().to_string(),
        });
    }
    let client = download::Client::new(opts)?;
    let (commit, files) = match client.list(&spec.repo, REVISION).await {
        Ok(listed) => listed,
        Err(download::ListError::Unreachable(reason)) => {
            // No network: serve the cached copy, if there is one.
            return from_cache(&spec, &cache, opts).ok_or_else(|| HubError::Unreachable {
                endpoint: opts.endpoint.clone(),
                reason,
                repo: spec.repo.clone(),
                cache: opts.cache_root.display().to_string(),
            });
        }
        Err(download::ListError::Hub(what)) => {
            return Err(HubError::Hub {
                repo: spec.repo.clone(),
                what,
            });
        }
    };
    let (model, mmproj) = choose(&spec, &files, opts.want_mmproj)?;
    let model = client.ensure(&spec.repo, &commit, &model, &cache).await?;
    let mmproj = match mmproj {
        Some(f) => Some(client.ensure(&spec.repo, &commit, &f, &cache).await?),
        None => None,
    };
    cache.set_commit(REVISION, &commit)?;
    Ok(Resolved { model, mmproj })
}

fn choose(
    spec: &RepoSpec,
    files: &[String],
    want_mmproj: bool,
) -> Result<(String, Option<String>), HubError> {
    let model = select::model_file(files, spec.quant.as_deref()).ok_or_else(|| HubError::Hub {
        repo: spec.repo.clone(),
        what: match &spec.quant {
            Some(q) => format!("no GGUF model file matches the quant tag {q:?}"),
            None => "the repository has no GGUF model file".into(),
        },
    })?;
    let mmproj = if want_mmproj {
        select::mmproj_file(files, model).map(str::to_string)
    } else {
        None
    };
    Ok((model.to_string(), mmproj))
}

/// The cached snapshot of `main`, when it holds the files the spec selects.
fn from_cache(spec: &RepoSpec, cache: &RepoCache, opts: &HubOptions) -> Option<Resolved> {
    let commit = cache.commit(REVISION)?;
    let files = cache.snapshot_files(&commit);
    let (model, mmproj) = choose(spec, &files, opts.want_mmproj).ok()?;
    let model = cache.snapshot(&commit, &model).ok()?;
    let mmproj = match mmproj {
        Some(f) => Some(cache.snapshot(&commit, &f).ok()?),
        None => None,
    };
    let present = |p: &PathBuf| std::fs::metadata(p).is_ok();
    (present(&model) && mmproj.as_ref().is_none_or(present)).then_some(Resolved { model, mmproj })
}
