//! What the server does when things go wrong around a request: an engine
//! that dies, queued clients that leave, a queue that fills up.

use crate::common;

use common::*;
use serde_json::{Value, json};

/// `tessera_queue_depth` as `/metrics` reports it.
async fn queue_depth(s: &TestServer) -> u64 {
    tessera::soak::gauge(&s.client, &s.base, "tessera_queue_depth")
        .await
        .expect("tessera_queue_depth in /metrics") as u64
}

/// Polls `/metrics` (each poll is a round trip, not a sleep) until the
/// queue depth reads `want`; false if it never does.
async fn wait_depth(s: &TestServer, want: u64) -> bool {
    for _ in 0..20_000 {
        if queue_depth(s).await == want {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

fn spawn_post(s: &TestServer, body: Value) -> tokio::task::JoinHandle<(u16, Value)> {
    let client = s.client.clone();
    let url = format!("{}/v1/chat/completions", s.base);
    tokio::spawn(async move {
        let resp = client.post(url).json(&body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
}

/// One sequence, one queue place: A streams without end, B waits in the
/// queue (the depth gauge reads the full queue).
async fn one_running_one_queued() -> (
    TestServer,
    reqwest::Response,
    tokio::task::JoinHandle<(u16, Value)>,
) {
    let s = start_mlp(&["--parallel", "1", "--max-queue", "1", "--ctx-size", "65536"]).await;
    let long = json!({
        "messages": [{"role": "user", "content": "go on forever"}],
        "max_tokens": 60000, "temperature": 0, "stream": true
    });
    let mut a = s.open_stream(&long).await;
    a.chunk().await.unwrap().expect("A is running");
    let b = spawn_post(&s, greedy(vec![text_part("b")], 3));
    assert!(wait_depth(&s, 1).await, "a full queue must not read 0");
    (s, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queued_client_that_leaves_gives_its_place_back_at_once() {
    let (s, a, b) = one_running_one_queued().await;
    // B's client hangs up: its place is free while A still runs.
    b.abort();
    assert!(
        wait_depth(&s, 0).await,
        "the departed client kept its place"
    );
    let c = spawn_post(&s, greedy(vec![text_part("c")], 3));
    assert!(wait_depth(&s, 1).await, "C was refused: a false 429");
    drop(a);
    let (status, body) = c.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"]["completion_tokens"], 3);
}

/// Images are preprocessed and prompts tokenized before a job reaches the
/// engine: with the engine busy and its queue full, the price preview of an
/// image request (the same preparation a chat request gets) is still exact,
/// and equals what the request reports once it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn preparation_never_waits_for_the_engine() {
    let (s, a, b) = one_running_one_queued().await;

    let ask = greedy(
        vec![
            text_part("what is this?"),
            image_part(900, 500, [200, 30, 90]),
        ],
        2,
    );
    let (status, v) = s.post(&ask).await;
    assert_eq!(status, 429, "the engine's queue is full: {v}");
    let (status, preview) = s.post_to("/v1/chat/completions/input_tokens", &ask).await;
    assert_eq!(status, 200, "{preview}");
    assert!(preview["image_tokens"].as_u64().unwrap() > 0, "{preview}");

    drop(a);
    let (status, body) = b.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, v) = s.post(&ask).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["prompt_tokens"], preview["input_tokens"], "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_engine_turns_health_to_503_and_ends_the_server() {
    let s = start_mlp(&[]).await;
    assert_eq!(s.get("/health").await.0, 200);
    s.server.engine.inject_engine_panic();
    // The next job wakes the engine, which then dies outside its guards.
    let (status, v) = s.post(&greedy(vec![text_part("hi")], 2)).await;
    assert!(status >= 500, "{status} {v}");
    let why = tokio::time::timeout(std::time::Duration::from_secs(60), s.server.engine.died())
        .await
        .expect("the death is reported");
    assert!(why.contains("panicked"), "{why}");
    let (status, v) = s.get("/health").await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(assert_envelope(&v)["code"], "engine_stopped");
    let (status, v) = s.post(&greedy(vec![text_part("hi")], 2)).await;
    assert_eq!(status, 503, "{v}");
    // What main() turns into a non-zero exit for the supervisor.
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        s.server.run_until_signal(),
    )
    .await
    .expect("the server stops by itself");
    assert!(ended.is_err());
}

/// A body that can never fit is refused from its byte length, on the HTTP
/// side, without tokenizing it; a stream running meanwhile is untouched
/// (its answer is the one it gives alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn huge_prompts_are_refused_before_tokenizing_and_spare_a_running_stream() {
    let s = start_mlp(&["--parallel", "2", "--max-body-bytes", "100000000"]).await;
    let story = json!({
        "messages": [{"role": "user", "content": "tell a story"}],
        "max_tokens": 4000, "temperature": 0
    });
    let (_, alone) = s.post(&story).await;
    let mut streamed = story.clone();
    streamed["stream"] = json!(true);
    let mut resp = s.open_stream(&streamed).await;
    let first = resp.chunk().await.unwrap().expect("the stream runs");
    let stream = tokio::spawn(async move {
        let mut text = String::from_utf8_lossy(&first).into_owned();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    });

    let many: Vec<Value> = (0..10_000)
        .map(|_| json!({"role": "user", "content": "hi"}))
        .collect();
    let (status, v) = s.post(&json!({"messages": many, "max_tokens": 1})).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(assert_envelope(&v)["code"], "context_length_exceeded");
    assert!(error_message(&v).contains("at least"), "{v}");

    let sixty_mb = "word ".repeat(12_000_000);
    let (status, v) = s.post(&greedy(vec![text_part(&sixty_mb)], 1)).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_message(&v).contains("at least"), "{v}");

    assert!(
        !stream.is_finished(),
        "the stream ended before the big requests"
    );
    let text = stream.await.unwrap();
    let streamed_text = streamed_delta(&sse_data(&text), "content");
    assert_eq!(streamed_text, content(&alone));
}

/// A client that opens a stream and stops reading is cut off once the
/// kernel's socket buffers and the engine's bound of unread events are
/// full, instead of the server generating (and buffering) its whole answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_nobody_reads_is_cancelled_and_its_sequence_freed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start_mlp(&["--parallel", "1", "--ctx-size", "65536"]).await;
    let before = s.server.engine.generated_tokens();
    let body = json!({
        "messages": [{"role": "user", "content": "go on forever"}],
        "max_tokens": 65000, "temperature": 0, "stream": true
    })
    .to_string();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = socket.connect(s.server.addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body.as_bytes()).await.unwrap();
    let mut first = [0u8; 12];
    conn.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // Read nothing more, but keep the connection open.
    let freed = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        s.server.engine.wait_active(0),
    )
    .await;
    assert!(freed.is_ok(), "the stuck stream kept its sequence");
    let spent = s.server.engine.generated_tokens() - before;
    assert!(
        spent < 60_000,
        "{spent} tokens generated for a reader that never read"
    );
    let (status, v) = s.post(&greedy(vec![text_part("next")], 3)).await;
    assert_eq!(status, 200, "{v}");
    drop(conn);
}

/// Reads until the server closes the connection (bounded: a server that
/// never closes fails the test instead of hanging it).
async fn read_to_close(conn: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = conn.read_to_end(&mut out);
    match tokio::time::timeout(std::time::Duration::from_secs(60), read).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let s = start_mlp(&["--header-read-timeout", "1", "--body-read-timeout", "1"]).await;
    // Slowloris: headers that never end.
    let mut conn = tokio::net::TcpStream::connect(s.server.addr).await.unwrap();
    conn.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: test\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut conn).await;
    assert!(
        answer.is_some(),
        "a connection with unfinished headers stayed open"
    );

    // A body that stops arriving.
    let mut conn = tokio::net::TcpStream::connect(s.server.addr).await.unwrap();
    conn.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"messages\": [",
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut conn)
        .await
        .expect("a connection with an unfinished body stayed open");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("--body-read-timeout"), "{answer}");
    // Everyone else is served as before.
    let (status, v) = s.post(&greedy(vec![text_part("hi")], 2)).await;
    assert_eq!(status, 200, "{v}");
}

/// A model whose logits are NaN gets a 500 that says so, not an answer of
/// token 0 repeated; the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_logits_fail_the_request_instead_of_answering_noise() {
    use tessera::fixtures::{N_EMBD, TextVariant, text_model, write_if_changed};
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nan-logits.gguf");
    let mut m = text_model(1, TextVariant::RunsToLength);
    m.tensor(
        "output_norm.weight",
        &[N_EMBD as u64],
        vec![f32::NAN; N_EMBD],
    );
    write_if_changed(&path, &m).unwrap();
    let s = start(&["--model", path.to_str().unwrap()]).await;
    // Twice: the first failure leaves nothing behind that breaks the next.
    for _ in 0..2 {
        let body = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4});
        let (status, v) = s.post(&body).await;
        assert_eq!(status, 500, "{v}");
        assert_eq!(v["error"]["type"], "server_error", "{v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("non-finite logits"), "{v}");
    }
    let (status, _) = s.get("/health").await;
    assert_eq!(status, 200);
}

/// A projector whose output is NaN: the engine reloads the projector once,
/// then fails the request with a 500 that says so, keeps nothing in the
/// embedding cache, and goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_that_outputs_nan_fails_the_request_and_spares_the_server() {
    use tessera::fixtures::{N_EMBD, Projector, mmproj, write_if_changed};
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nan-mmproj.gguf");
    let mut m = mmproj(2, Projector::Mlp);
    m.tensor("mm.2.bias", &[N_EMBD as u64], vec![f32::NAN; N_EMBD]);
    write_if_changed(&path, &m).unwrap();
    let s = start(&[
        "--model",
        common::path(&fixtures().text),
        "--mmproj",
        common::path(&path),
    ])
    .await;
    for _ in 0..2 {
        let (status, v) = s
            .post(&greedy(
                vec![text_part("what is it?"), image_part(30, 30, [9, 9, 9])],
                4,
            ))
            .await;
        assert_eq!(status, 500, "{v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("non-finite output"), "{v}");
    }
    let bytes = tessera::soak::gauge(&s.client, &s.base, "tessera_image_cache_bytes").await;
    assert_eq!(bytes, Some(0.0));
    let (status, v) = s.post(&greedy(vec![text_part("hi")], 4)).await;
    assert_eq!(status, 200, "{v}");
}
