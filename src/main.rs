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
    /// Download a model and its mmproj into the Hugging Face cache: `owner/name[:quant]`.
    Pull {
        /// `owner/name[:quant]`, as --hf-repo takes it.
        repo: String,
    },
    /// List the GGUF models in the Hugging Face cache, and which a local server runs.
    List {
        /// The server to ask what it runs.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
    },
    /// Write the tiny deterministic test models (text + mmproj GGUFs) into a folder.
    Fixtures {
        /// Folder to write into.
        #[arg(default_value = "fixtures")]
        out: PathBuf,
        /// Also write the benchmark-size pair (~135M-parameter F16 text model + mmproj).
        #[arg(long)]
        bench: bool,
        /// Also write the benchmark projector for a text model of this width (e.g. 640 for Gemma 3 270M), to benchmark the image path on a real text model.
        #[arg(long, value_name = "N_EMBD", value_parser = clap::value_parser!(u32).range(8..=16384))]
        bench_projector_for: Option<u32>,
        /// Also write a realistic-shape pair for benchmarks (random weights, a real model's dimensions): smolvlm-256m, qwen2-vl-2b or gemma3-4b-vision; repeatable. Large (the Qwen shape is 3.6 GB at F16).
        #[arg(long, value_name = "NAME")]
        shape: Vec<String>,
        /// Quantize each shape's text model to these formats too (q8_0, q4_k_m), through llama.cpp's own quantizer.
        #[arg(long, value_enum, value_delimiter = ',')]
        quant: Vec<tessera::fixtures::quantize::Quant>,
        /// Also write an audio pair: a tiny text model with an Ultravox-shaped audio projector.
        #[arg(long)]
        audio: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tessera::logging::init(&cli.serve.log_format);
    match cli.command {
        Some(Command::Fixtures {
            out,
            bench,
            bench_projector_for,
            shape,
            quant,
            audio,
        }) => {
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
            if audio {
                let (text, mmproj) = tessera::fixtures::audio::write_audio(&out)?;
                println!("{}", text.display());
                println!("{}", mmproj.display());
            }
            if let Some(n_embd) = bench_projector_for {
                let path = tessera::fixtures::write_bench_projector(&out, n_embd as usize)?;
                println!("{}", path.display());
            }
            // llama.cpp's backend, once, for the quantizer.
            let _backend = (!shape.is_empty() && !quant.is_empty())
                .then(llama_cpp_2::llama_backend::LlamaBackend::init)
                .transpose()?;
            for name in &shape {
                write_shape(&out, name, &quant, cli.serve.threads)?;
            }
            Ok(())
        }
        Some(Command::Bench(args)) => tessera::bench::run(args).await,
        Some(Command::Pull { repo }) => {
            let got = tessera::pull(&cli.serve, &repo).await?;
            println!("{}", got.model.display());
            if let Some(m) = got.mmproj {
                println!("{}", m.display());
            }
            Ok(())
        }
        Some(Command::List { url }) => {
            print!("{}", tessera::list(&cli.serve, &url).await);
            Ok(())
        }
        Some(Command::Openapi) => {
            print!("{}", tessera::api::openapi::json());
            Ok(())
        }
        None if cli.serve.models.router_mode() => {
            let router = tessera::router::start(cli.serve).await?;
            router.run_until_signal().await?;
            Ok(())
        }
        None => {
            let runner = cli.serve.models.runner;
            let server = tessera::start(cli.serve).await?;
            if runner {
                server.run_as_runner().await?;
            } else {
                server.run_until_signal().await?;
            }
            Ok(())
        }
    }
}

/// `tessera fixtures --shape NAME [--quant ...]`.
fn write_shape(
    out: &std::path::Path,
    name: &str,
    quant: &[tessera::fixtures::quantize::Quant],
    threads: i32,
) -> anyhow::Result<()> {
    use tessera::fixtures::shapes::{SHAPES, shape};
    let Some(s) = shape(name) else {
        let names: Vec<&str> = SHAPES.iter().map(|s| s.name).collect();
        anyhow::bail!("no shape named {name:?}; shapes: {}", names.join(", "));
    };
    let (text, mmproj) = s.write(out)?;
    println!("{}", text.display());
    println!("{}", mmproj.display());
    for q in quant {
        let path = out.join(format!("{}-text-{}.gguf", s.name, q.name()));
        tessera::fixtures::quantize::quantize(&text, &path, *q, threads)
            .map_err(anyhow::Error::msg)?;
        println!("{}", path.display());
    }
    Ok(())
}
