//! The HTTP accept loop. `axum::serve` gives hyper no timer, so hyper's
//! header read timeout never fires and a client that sends its headers one
//! byte at a time (slowloris) holds a connection forever. This loop is
//! axum's with the timer set, plus what a server facing idle sockets
//! needs: a deadline for a connection's first bytes (hyper's protocol
//! detection waits for them without one), HTTP/2 pings that close a peer
//! that stopped answering, and a cap on connections. Past the cap a few
//! more are let in, each for one request: `/health` is answered there, and
//! everything else gets a 503 that names the cap.

mod first_bytes;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Connections let in past the cap, each for one request.
const OVERFLOW: usize = 32;

/// A bound listener serving an app, and the way to stop it gracefully:
/// what a single-model server and a router both run.
pub struct Listening {
    pub addr: std::net::SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    grace: Duration,
}

impl Listening {
    /// Binds `--host`:`--port` and serves `app`, with the at-capacity app
    /// past `--max-connections`.
    pub async fn bind(config: &crate::config::Config, app: Router) -> anyhow::Result<Listening> {
        use anyhow::Context as _;
        let apps = Apps {
            at_capacity: crate::api::at_capacity(app.clone()),
            app,
        };
        let listener = TcpListener::bind((config.host, config.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let limits = Limits {
            header_timeout: Duration::from_secs(config.header_read_timeout),
            max_connections: connection_cap(config.max_connections),
        };
        let task = tokio::spawn(serve(listener, apps, limits, async {
            let _ = rx.await;
        }));
        Ok(Listening {
            addr,
            shutdown: Some(tx),
            task,
            grace: Duration::from_secs(config.shutdown_grace),
        })
    }

    /// Stops accepting connections and lets open ones (running streams
    /// included) finish, for at most the shutdown grace period.
    pub async fn stop(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match tokio::time::timeout(self.grace, &mut self.task).await {
            Ok(joined) => joined.unwrap_or(Ok(())),
            Err(_) => {
                tracing::warn!("shutdown grace period over; dropping open connections");
                self.task.abort();
                Ok(())
            }
        }
    }
}

pub struct Limits {
    /// `--header-read-timeout`: for the first bytes, each request's
    /// headers, and an HTTP/2 ping's answer.
    pub header_timeout: Duration,
    /// `--max-connections`.
    pub max_connections: usize,
}

/// The app, and what serves connections past the cap.
pub struct Apps {
    pub app: Router,
    pub at_capacity: Router,
}

/// Serves until `shutdown` resolves, then waits for open connections to
/// finish (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    apps: Apps,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(OVERFLOW));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (permit, app, keep_alive) = match open.clone().try_acquire_owned() {
            Ok(p) => (p, &apps.app, true),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(p) => (p, &apps.at_capacity, false),
                // Closing at once gives the descriptor back.
                Err(_) => continue,
            },
        };
        let timeout = limits.header_timeout;
        let conn = connection(stream, app.clone(), timeout, keep_alive, graceful.watcher());
        tokio::spawn(async move {
            conn.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One connection, served once its first bytes came in time (shutdown
/// waits for it from then on).
async fn connection(
    stream: TcpStream,
    app: Router,
    timeout: Duration,
    keep_alive: bool,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .keep_alive(keep_alive);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(timeout.max(Duration::from_secs(1))))
        .keep_alive_timeout(timeout);
    let Some(io) = first_bytes::wait(stream, timeout).await else {
        return;
    };
    let service = app.map_request(|req: hyper::Request<Incoming>| req.map(Body::new));
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!("connection closed: {e}");
    }
}

/// `--max-connections` as the process's open-file limit allows: each
/// connection is a descriptor, and the model files, sockets of image
/// fetches and the log need some too.
pub fn connection_cap(wanted: usize) -> usize {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        if let Some(soft) = limit.current {
            let room =
                usize::try_from(soft.saturating_sub(64 + OVERFLOW as u64)).unwrap_or(usize::MAX);
            if room < wanted {
                tracing::warn!(
                    "--max-connections {wanted} lowered to {} by the open-file limit ({soft}); raise it with `ulimit -n`",
                    room.max(1)
                );
                return room.max(1);
            }
        }
    }
    wanted
}

/// SIGINT or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
