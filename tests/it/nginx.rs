//! Two Tessera replicas behind a real nginx (Debian's package) with the
//! shipped docker/nginx.conf: a session returns to the replica that holds
//! its prefix cache, streams pass through unbuffered, and when a replica
//! stops, its sessions move to the other.

use crate::common;

use common::*;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};

struct Nginx {
    child: Child,
    base: String,
}

impl Drop for Nginx {
    /// SIGTERM lets the master stop its workers (SIGKILL would orphan them).
    fn drop(&mut self) {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs nginx with docker/nginx.conf, pointed at the two replicas.
async fn start_nginx(a: &TestServer, b: &TestServer) -> Nginx {
    let conf =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker/nginx.conf")).unwrap();
    let dir = std::env::temp_dir().join(format!("tessera-nginx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let conf = conf
        .replace("tessera-1:8080", &a.server.addr.to_string())
        .replace("tessera-2:8080", &b.server.addr.to_string())
        .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"))
        .replace("/tmp/tessera-nginx", &dir.join("n").display().to_string());
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = Command::new("nginx")
        .args(["-e", "stderr", "-p"])
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "daemon off; user root; error_log stderr notice;"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nginx is installed (apt-get install nginx; .ci/run does)");
    // Ready once the master has bound its socket and started a worker,
    // which it says at `notice` level; the log is drained to its end.
    let stderr = child.stderr.take().expect("piped stderr");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut ready = Some(ready_tx);
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("start worker process")
                && let Some(tx) = ready.take()
            {
                let _ = tx.send(());
            }
        }
    });
    let nginx = Nginx {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    ready_rx
        .await
        .unwrap_or_else(|_| panic!("nginx exited before listening on {port}"));
    nginx
}

fn turn(session_answer: Option<&str>) -> Value {
    let mut messages = vec![json!({"role": "user", "content": [
        text_part("what is in this picture?"), image_part(64, 48, [10, 200, 30])
    ]})];
    if let Some(a) = session_answer {
        messages.push(json!({"role": "assistant", "content": a}));
        messages.push(json!({"role": "user", "content": "and the colours?"}));
    }
    json!({"messages": messages, "max_tokens": 8, "temperature": 0})
}

async fn post(client: &reqwest::Client, base: &str, session: &str, body: &Value) -> (u16, Value) {
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .header("x-session-id", session)
        .json(body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_stick_streams_flow_and_a_stopped_replica_hands_over() {
    let a = start_mlp(&["--parallel", "1", "--ctx-size", "32768"]).await;
    let b = start_mlp(&["--parallel", "1", "--ctx-size", "32768"]).await;
    let nginx = start_nginx(&a, &b).await;
    let client = reqwest::Client::new();

    // Two turns of one session reach one replica: the second reuses its cache.
    let (status, first) = post(&client, &nginx.base, "alpha", &turn(None)).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = post(&client, &nginx.base, "alpha", &turn(Some(&content(&first)))).await;
    assert_eq!(status, 200, "{second}");
    let cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached > 25,
        "the second turn reused the first's image: {cached}"
    );
    let served = |s: &TestServer| s.server.engine.generated_tokens();
    let (home, other) = if served(&a) > 0 { (&a, &b) } else { (&b, &a) };
    assert_eq!(served(other), 0, "both replicas saw session alpha");
    assert_eq!(served(home), 16);

    // Unbuffered streaming: the first event arrives while the replica is
    // still generating (a buffering proxy would hold it until the end).
    let body = json!({"messages": [{"role": "user", "content": "go on"}],
        "max_tokens": 30000, "temperature": 0, "stream": true});
    let mut stream = client
        .post(format!("{}/v1/chat/completions", nginx.base))
        .header("x-session-id", "alpha")
        .json(&body)
        .send()
        .await
        .unwrap();
    let first_chunk = stream.chunk().await.unwrap().expect("a first chunk");
    assert!(String::from_utf8_lossy(&first_chunk).contains("data:"));
    let at_first = served(home);
    assert!(at_first < 16 + 30000, "the stream was buffered to its end");
    // That bound holds behind a buffering proxy too (it flushes whenever a
    // buffer fills); what keeps events flowing one by one is this setting
    // in the shipped file, which a buffering configuration fails.
    let conf =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker/nginx.conf")).unwrap();
    assert!(
        conf.contains("proxy_buffering off;"),
        "docker/nginx.conf buffers streams"
    );
    drop(stream);

    // Stop alpha's replica: alpha and new sessions are served by the other.
    let TestServer { server, .. } = if std::ptr::eq(home, &a) { a } else { b };
    server.shutdown().await.unwrap();
    for session in ["alpha", "beta", "gamma"] {
        let (status, v) = post(&client, &nginx.base, session, &turn(None)).await;
        assert_eq!(status, 200, "{session}: {v}");
    }
}
