use super::*;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A runner that starts an event stream, sends one event and dies.
async fn dying_runner() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = sock.read(&mut buf).await;
        let event = "data: {\"n\":1}\n\n";
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk = format!("{:x}\r\n{event}\r\n", event.len());
        sock.write_all(format!("{head}{chunk}").as_bytes())
            .await
            .unwrap();
        sock.flush().await.unwrap();
        // Gone without the final chunk, as an aborted process goes.
    });
    format!("http://{addr}/")
}

#[tokio::test]
async fn a_stream_cut_by_a_dying_runner_ends_with_an_error_event_and_frees_the_lease() {
    let url = dying_runner().await;
    let resp = reqwest::get(url).await.unwrap();
    let lease = Arc::new(());
    let out = relay(resp, lease.clone(), false);
    assert_eq!(out.status(), StatusCode::OK);
    let body = axum::body::to_bytes(out.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("data: {\"n\":1}\n\n"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let event: serde_json::Value =
        serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(event["error"]["code"], "model_crashed");
    assert_eq!(
        Arc::strong_count(&lease),
        1,
        "the lease outlived the stream"
    );
}
