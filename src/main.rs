use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tessera::config::Config;

/// Tessera: an OpenAI-compatible vision-language server on llama.cpp.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the OpenAPI document (what openapi/openapi.json holds).
    Openapi,
    /// Load-test an OpenAI-compatible server (and optionally a baseline) and print TTFT, ITL and tokens/s.
    Bench(tessera::bench::BenchArgs),
    /// Write the tiny deterministic test models (text + mmproj GGUFs) into a folder.
    Fixtures {
        /// Folder to write into.
        #[arg(default_value = "fixtures")]
        out: PathBuf,
        /// Also write the benchmark-size pair (~135M-parameter F16 text model + mmproj).
        #[arg(long)]
        bench: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tessera::logging::init(&cli.serve.log_format);
    match cli.command {
        Some(Command::Fixtures { out, bench }) => {
            let set = tessera::fixtures::write_all(&out)?;
            println!("{}", set.text.display());
            println!("{}", set.text_stopper.display());
            println!("{}", set.mmproj_mlp.display());
            println!("{}", set.mmproj_qwen2vl.display());
            if bench {
                let (text, mmproj) = tessera::fixtures::write_bench(&out)?;
                println!("{}", text.display());
                println!("{}", mmproj.display());
            }
            Ok(())
        }
        Some(Command::Bench(args)) => tessera::bench::run(args).await,
        Some(Command::Openapi) => {
            print!("{}", tessera::api::openapi::json());
            Ok(())
        }
        None => {
            let server = tessera::start(cli.serve).await?;
            server.run_until_signal().await?;
            Ok(())
        }
    }
}
