//! One runner: a child process of the same binary serving one model on
//! loopback. It says on stdout where it listens and when its model is
//! ready (or why it failed); it stops, draining its requests, when its
//! stdin closes, so a router that dies takes no orphan with it. Its
//! stderr is passed through, and the last lines are kept to say why it
//! failed.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, watch};

/// What a runner prints on stdout, one line each.
pub const LISTENING: &str = "TESSERA_RUNNER_LISTENING";
pub const READY: &str = "TESSERA_RUNNER_READY";
pub const FAILED: &str = "TESSERA_RUNNER_FAILED";

/// Lines of stderr kept for a failure's reason (a backtrace may follow it).
const TAIL: usize = 200;

/// How to start a runner.
#[derive(Clone)]
pub struct Launch {
    pub exe: PathBuf,
    pub args: Vec<String>,
    /// Removed from the child's environment (the router's own settings).
    pub env_remove: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// A started, ready runner.
pub struct Runner {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    /// Dropped to ask the runner to drain and stop.
    stdin: Mutex<Option<ChildStdin>>,
    /// Set once the process has exited: a description of how.
    pub exited: watch::Receiver<Option<String>>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl Runner {
    /// Starts the process and waits until it serves (or fails to).
    pub async fn start(launch: Launch) -> Result<Runner, String> {
        let mut cmd = Command::new(&launch.exe);
        cmd.args(&launch.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for name in &launch.env_remove {
            cmd.env_remove(name);
        }
        cmd.envs(launch.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", launch.exe.display()))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = child
            .stderr
            .take()
            .map(|e| tokio::spawn(pass_stderr(e, tail.clone())));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("the runner has no stdout")?;
        let pid = child.id();
        let (exited_tx, exited) = watch::channel(None);
        let (kill_tx, kill_rx) = oneshot::channel();
        tokio::spawn(watch_exit(child, kill_rx, exited_tx));
        let runner = Runner {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            stdin: Mutex::new(stdin),
            exited,
            kill: Mutex::new(Some(kill_tx)),
        };
        match announce(stdout).await {
            Ok(addr) => Ok(Runner { addr, ..runner }),
            Err(why) => {
                runner.kill();
                let mut exited = runner.exited.clone();
                let _ = exited.wait_for(Option::is_some).await;
                // Its last words, read to the end of the pipe.
                if let Some(task) = stderr {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
                }
                Err(reason(why, &tail))
            }
        }
    }

    /// Closes stdin: the runner stops taking requests, finishes those it
    /// has, and exits.
    pub fn stop(&self) {
        if let Ok(mut s) = self.stdin.lock() {
            s.take();
        }
    }

    pub fn kill(&self) {
        if let Some(k) = self.kill.lock().ok().and_then(|mut k| k.take()) {
            let _ = k.send(());
        }
    }

    /// Waits for the process to exit; kills it after `grace`.
    pub async fn wait(&self, grace: std::time::Duration) {
        let mut exited = self.exited.clone();
        if tokio::time::timeout(grace, exited.wait_for(Option::is_some))
            .await
            .is_err()
        {
            tracing::warn!(pid = self.pid, "a runner did not stop in time; killing it");
            self.kill();
            let _ = exited.wait_for(Option::is_some).await;
        }
    }
}

/// Reads stdout up to the ready line; the address comes first. The rest
/// of stdout is drained so the child never blocks on a full pipe.
async fn announce(stdout: tokio::process::ChildStdout) -> Result<SocketAddr, String> {
    let mut lines = BufReader::new(stdout).lines();
    let mut addr = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(a) = line.strip_prefix(LISTENING) {
            addr = a.trim().parse::<SocketAddr>().ok();
        } else if line.starts_with(READY) {
            let addr = addr.ok_or("the runner said it was ready before where it listens")?;
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(addr);
        } else if let Some(why) = line.strip_prefix(FAILED) {
            return Err(why.trim().to_string());
        }
    }
    Err(String::new())
}

/// Waits for the child, or kills it when asked.
async fn watch_exit(
    mut child: Child,
    kill: oneshot::Receiver<()>,
    tx: watch::Sender<Option<String>>,
) {
    let status = tokio::select! {
        s = child.wait() => s,
        _ = kill => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let how = match status {
        Ok(s) => describe(s),
        Err(e) => format!("could not be waited for: {e}"),
    };
    let _ = tx.send(Some(how));
}

fn describe(s: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            let name = match sig {
                6 => " (SIGABRT: llama.cpp aborted)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return format!("was killed by signal {sig}{name}");
        }
    }
    match s.code() {
        Some(0) => "exited".into(),
        Some(c) => format!("exited with status {c}"),
        None => "exited".into(),
    }
}

async fn pass_stderr(err: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(err).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("{line}");
        if let Ok(mut t) = tail.lock() {
            if t.len() == TAIL {
                t.pop_front();
            }
            t.push_back(strip_ansi(&line));
        }
    }
}

/// The reason a runner gave, else the last error its log shows.
fn reason(said: String, tail: &Mutex<VecDeque<String>>) -> String {
    if !said.is_empty() {
        return said;
    }
    let lines: Vec<String> = tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    // `main`'s own error first, then the last error the log shows.
    let main_error = lines
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Error: "));
    let logged = lines.iter().rev().find(|l| l.contains(" ERROR "));
    main_error
        .map(str::to_string)
        .or_else(|| logged.map(|l| l.trim().to_string()))
        .or_else(|| lines.last().map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "the runner exited before it was ready".into())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
