//! What a model resolution is asked for, and what it finds.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct HubOptions {
    /// Base URL of the hub (`HF_ENDPOINT`); tests point it at their own server.
    pub endpoint: String,
    /// `HF_TOKEN`, for gated repositories.
    pub token: Option<String>,
    /// Never touch the network; serve what the cache holds.
    pub offline: bool,
    pub cache_root: PathBuf,
    /// Also find the repository's mmproj.
    pub want_mmproj: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub model: PathBuf,
    pub mmproj: Option<PathBuf>,
}
