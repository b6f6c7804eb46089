//! Log set-up. llama.cpp's loader prints about 160 lines at INFO; they are
//! kept at WARN by default and come back with `TESSERA_LOG=info,llama=debug`.
//! llama-cpp-2 logs under the target `llama-cpp-2` (hyphens), which the
//! prefix `llama` matches, whatever the crate calls itself.

use tracing_subscriber::EnvFilter;

/// Used when `TESSERA_LOG` is unset or does not parse.
pub const DEFAULT_FILTER: &str = "info,llama=warn";

pub fn filter() -> EnvFilter {
    EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// Installs the global subscriber: human-readable text or one JSON object per line.
pub fn init(format: &str) {
    let logs = tracing_subscriber::fmt().with_env_filter(filter());
    if format == "json" {
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn llama_cpp_loader_lines_are_quiet_by_default() {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(DEFAULT_FILTER))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "llama-cpp-2", "llama_model_loader: loaded meta data");
            tracing::warn!(target: "llama-cpp-2", "a real warning");
            tracing::info!(target: "tessera", "model ready");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("loaded meta data"), "{out}");
        assert!(out.contains("a real warning"), "{out}");
        assert!(out.contains("model ready"), "{out}");
    }
}
