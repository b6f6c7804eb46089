//! Faults on demand, for the router's tests: a chat request whose body
//! holds the text in `TESSERA_TEST_ABORT_ON` aborts the process (as a
//! failed `GGML_ASSERT` does); one holding `TESSERA_TEST_STALL_ON` never
//! answers (a request in flight, for as long as its client waits).
//! Compiled only with debug assertions: never in a release build.

pub async fn on_body(body: &[u8]) {
    let holds = |var: &str| {
        std::env::var(var)
            .ok()
            .filter(|m| !m.is_empty())
            .is_some_and(|m| body.windows(m.len()).any(|w| w == m.as_bytes()))
    };
    if holds("TESSERA_TEST_ABORT_ON") {
        std::process::abort();
    }
    if holds("TESSERA_TEST_STALL_ON") {
        std::future::pending::<()>().await;
    }
}
