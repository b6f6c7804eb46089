//! What can stop a model download.

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    Spec(String),
    #[error(
        "{repo} is not in the model cache at {cache} (offline); run once with network access, \
         pass --model PATH/TO/model.gguf (and --mmproj), or --demo to try the API on a built-in model"
    )]
    NotCached { repo: String, cache: String },
    #[error(
        "cannot reach {endpoint} ({}) and the model cache at {cache} has no copy of {repo}; \
         connect once, set HF_ENDPOINT to a mirror, pass --model PATH/TO/model.gguf (and --mmproj), \
         or --demo to try the API on a built-in model",
        super::names::printable(reason)
    )]
    Unreachable {
        endpoint: String,
        reason: String,
        repo: String,
        cache: String,
    },
    #[error("{repo}: {}", super::names::printable(what))]
    Hub { repo: String, what: String },
    #[error(
        "{file}: the download does not match the hub's checksum (sha256 {expected}, got {actual}); \
         nothing was kept, try again"
    )]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("model cache: {0}")]
    Io(#[from] std::io::Error),
}
