//! The event channel from the engine to one client. Unbounded, because the
//! engine thread must never block on a client; instead it knows how many
//! events the client has not taken yet, and a client that stops reading
//! (a stuck or hostile stream reader) is cut off at [`MAX_BACKLOG`] events
//! instead of buffering its whole answer in the server.

use super::request::Event;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// Unread events after which a stream is cancelled and its sequence freed.
/// Beyond what the kernel's socket buffers already hold (a few MB), this
/// is thousands of tokens no reader has asked for.
pub const MAX_BACKLOG: usize = 4096;

#[derive(Debug)]
pub struct EventSender {
    tx: mpsc::UnboundedSender<Event>,
    backlog: Arc<AtomicUsize>,
}

#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::UnboundedReceiver<Event>,
    backlog: Arc<AtomicUsize>,
}

pub fn channel() -> (EventSender, EventReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(AtomicUsize::new(0));
    (
        EventSender {
            tx,
            backlog: backlog.clone(),
        },
        EventReceiver { rx, backlog },
    )
}

/// The client is gone (its receiver was dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl EventSender {
    pub fn send(&self, event: Event) -> Result<(), Gone> {
        self.backlog.fetch_add(1, Ordering::Relaxed);
        self.tx.send(event).map_err(|_| Gone)
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// The client has stopped reading: too many events wait for it.
    pub fn stalled(&self) -> bool {
        self.backlog.load(Ordering::Relaxed) > MAX_BACKLOG
    }
}

impl EventReceiver {
    pub async fn recv(&mut self) -> Option<Event> {
        let event = self.rx.recv().await;
        if event.is_some() {
            self.backlog.fetch_sub(1, Ordering::Relaxed);
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_backlog_counts_what_the_reader_has_not_taken() {
        let (tx, mut rx) = channel();
        for _ in 0..=MAX_BACKLOG {
            tx.send(Event::Text("x".into())).unwrap();
        }
        assert!(tx.stalled());
        rx.recv().await.unwrap();
        assert!(!tx.stalled());
        drop(rx);
        assert_eq!(tx.send(Event::Text("y".into())), Err(Gone));
        assert!(tx.is_closed());
    }
}
