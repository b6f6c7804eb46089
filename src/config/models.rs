//! Router mode's flags: several models behind one endpoint, each in its
//! own runner process.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Args)]
pub struct ModelsArgs {
    /// Serve every model in this folder: a top-level `.gguf` is a model
    /// (id: the file name less `.gguf`), a sub-folder is one model with its
    /// mmproj (id: the folder's name). Turns on router mode.
    #[arg(help_heading = "Several models", long, env = "TESSERA_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,

    /// TOML file of `[[models]]` (id, aliases, model or hf_repo, mmproj,
    /// and an `options` table of per-model flags). Turns on router mode.
    #[arg(help_heading = "Several models", long, env = "TESSERA_MODELS_CONFIG")]
    pub models_config: Option<PathBuf>,

    /// Most models loaded at once; loading one more unloads the least
    /// recently used idle one.
    #[arg(help_heading = "Several models", long, visible_alias = "max-loaded-models", env = "TESSERA_MODELS_MAX", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub models_max: u32,

    /// Memory the loaded models may take together, in MiB (model and
    /// projector files plus the KV cache at its configured size); 0: no limit.
    #[arg(
        help_heading = "Several models",
        long,
        env = "TESSERA_MODELS_MEMORY_MB",
        default_value_t = 0
    )]
    pub models_memory_mb: u64,

    /// Unload a model after this many seconds without requests; 0: never.
    #[arg(
        help_heading = "Several models",
        long,
        visible_alias = "sleep-idle-seconds",
        env = "TESSERA_IDLE_UNLOAD_SECONDS",
        default_value_t = 0
    )]
    pub idle_unload_seconds: u64,

    /// Key for `/models/load` and `/models/unload`; without it, they take
    /// the API key (and are open when the API is).
    #[arg(help_heading = "Several models", long, env = "TESSERA_ADMIN_KEY")]
    pub admin_key: Option<String>,

    /// The program runners are started from (default: this binary).
    #[arg(help_heading = "Several models", long, env = "TESSERA_RUNNER_EXE")]
    pub runner_exe: Option<PathBuf>,

    /// Run as a router's runner: print the bound address on stdout, stop
    /// when stdin closes. The router sets it.
    #[arg(help_heading = "Several models", long, env = "TESSERA_RUNNER")]
    pub runner: bool,
}

impl ModelsArgs {
    /// `--models-dir` or `--models-config`: several models, one runner each.
    pub fn router_mode(&self) -> bool {
        self.models_dir.is_some() || self.models_config.is_some()
    }
}
