//! Who may compute while a test compares greedy outputs. Servers computing
//! at once in one process share llama.cpp's process-wide OpenMP pool (fewer
//! threads each changes float summation order, and on random-weight models
//! sometimes a greedy answer), and llama.cpp's Pixtral graph reads a buffer
//! it never writes (see the README's "Non-finite output"). So a test that
//! compares greedy outputs, or counts what the engine did, takes
//! [`exclusive`]: it waits until no other test has a server running, and no
//! other test starts one until it is done. Every other test runs alongside
//! the rest as before.
//!
//! Tests run one per thread (libtest's), so the owner of a turn is a
//! thread: a test that already runs a server may always start another (a
//! waiting exclusive test must not deadlock it), and the exclusive test
//! starts its own servers freely.

use std::sync::Mutex;
use std::thread::ThreadId;
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// Servers running, per test thread.
    running: Vec<(ThreadId, usize)>,
    /// The test that runs alone now.
    exclusive: Option<ThreadId>,
    /// Tests waiting to run alone: no new test may start a server meanwhile.
    waiting: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    running: Vec::new(),
    exclusive: None,
    waiting: 0,
});
static CHANGED: Notify = Notify::const_new();

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running server's place; given back when its `TestServer` drops.
pub struct ServerTurn(ThreadId);

impl Drop for ServerTurn {
    fn drop(&mut self) {
        let mut s = state();
        if let Some(n) = s.running.iter_mut().find(|(t, _)| *t == self.0) {
            n.1 -= 1;
        }
        s.running.retain(|(_, n)| *n > 0);
        drop(s);
        CHANGED.notify_waiters();
    }
}

/// Waits until this test may start a server.
pub async fn server_turn() -> ServerTurn {
    let me = std::thread::current().id();
    loop {
        let changed = CHANGED.notified();
        {
            let mut s = state();
            let running = s.running.iter().position(|(t, _)| *t == me);
            let others_alone = s.exclusive.is_some_and(|t| t != me) || s.waiting > 0;
            if s.exclusive == Some(me) || running.is_some() || !others_alone {
                match running {
                    Some(i) => s.running[i].1 += 1,
                    None => s.running.push((me, 1)),
                }
                return ServerTurn(me);
            }
        }
        changed.await;
    }
}

/// This test runs alone while the guard lives.
pub struct Exclusive(ThreadId);

impl Drop for Exclusive {
    fn drop(&mut self) {
        let mut s = state();
        if s.exclusive == Some(self.0) {
            s.exclusive = None;
        }
        drop(s);
        CHANGED.notify_waiters();
    }
}

/// Waits until no other test runs a server, then keeps it so. Take it
/// before starting any server of this test.
pub async fn exclusive() -> Exclusive {
    let me = std::thread::current().id();
    state().waiting += 1;
    loop {
        let changed = CHANGED.notified();
        {
            let mut s = state();
            let others = s.running.iter().any(|(t, _)| *t != me);
            if s.exclusive.is_none() && !others {
                s.waiting -= 1;
                s.exclusive = Some(me);
                return Exclusive(me);
            }
        }
        changed.await;
    }
}
