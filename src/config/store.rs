//! Stored responses' bounds (`/v1/responses` with `store: true`).

use clap::Args;

#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct StoreArgs {
    /// Responses kept for `previous_response_id`, `item_reference` and
    /// `GET /v1/responses/{id}`, in memory (lost on restart); the oldest
    /// go first. 0: nothing is stored.
    #[arg(help_heading = "Server", long, env = "TESSERA_RESPONSES_STORE_MAX", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub responses_store_max: u32,

    /// Memory stored responses may take, in MiB (their items and images
    /// counted as JSON).
    #[arg(help_heading = "Server", long, env = "TESSERA_RESPONSES_STORE_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub responses_store_mb: u64,

    /// Seconds a stored response is kept.
    #[arg(help_heading = "Server", long, env = "TESSERA_RESPONSES_STORE_TTL", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub responses_store_ttl: u64,
}

impl StoreArgs {
    pub fn limits(&self) -> crate::api::store::Limits {
        crate::api::store::Limits {
            max: self.responses_store_max as usize,
            bytes: usize::try_from(self.responses_store_mb << 20).unwrap_or(usize::MAX),
            ttl: std::time::Duration::from_secs(self.responses_store_ttl),
        }
    }
}
