//! The queue between the HTTP handlers and the engine thread. Not a plain
//! channel, because a queue place must be given back as soon as it is
//! useless: a job whose client left, or whose deadline passed, is removed
//! at the next submission or engine step instead of when it reaches the
//! front (where it would have caused false 429s). The depth gauge is set on
//! every change, so `/metrics` reads the queue as it is, full included.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// What the queue needs to know about a job.
pub trait Queued {
    /// The client is gone: drop the job without an answer.
    fn departed(&self) -> bool;
    fn deadline(&self) -> Option<Instant>;
    /// Tells the client its deadline passed while it waited.
    fn expire(self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Full,
    Closed,
}

struct Inner<T> {
    jobs: VecDeque<T>,
    closed: bool,
}

pub struct JobQueue<T> {
    inner: Mutex<Inner<T>>,
    ready: Condvar,
    capacity: usize,
    depth: Arc<AtomicU64>,
}

impl<T: Queued> JobQueue<T> {
    pub fn new(capacity: usize, depth: Arc<AtomicU64>) -> Self {
        JobQueue {
            inner: Mutex::new(Inner {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            depth,
        }
    }

    /// A panic elsewhere never leaves the queue unusable.
    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, job: T) -> Result<(), (Refused, T)> {
        let mut inner = self.lock();
        if inner.closed {
            return Err((Refused::Closed, job));
        }
        self.prune_locked(&mut inner);
        if inner.jobs.len() >= self.capacity {
            return Err((Refused::Full, job));
        }
        inner.jobs.push_back(job);
        self.set_depth(&inner);
        drop(inner);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job; waits while the queue is empty. `None` once closed.
    pub fn pop_wait(&self) -> Option<T> {
        let mut inner = self.lock();
        loop {
            self.prune_locked(&mut inner);
            if let Some(job) = inner.jobs.pop_front() {
                self.set_depth(&inner);
                return Some(job);
            }
            if inner.closed {
                return None;
            }
            inner = self.ready.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn try_pop(&self) -> Option<T> {
        self.try_pop_if(|_| true)
    }

    /// The next job if `fits` says it can start now; otherwise it keeps its
    /// place at the head (counted, pruned and expired as any queued job),
    /// and the jobs behind it wait too: first come, first served.
    pub fn try_pop_if(&self, fits: impl FnOnce(&T) -> bool) -> Option<T> {
        let mut inner = self.lock();
        self.prune_locked(&mut inner);
        let job = match inner.jobs.front() {
            Some(j) if fits(j) => inner.jobs.pop_front(),
            _ => None,
        };
        self.set_depth(&inner);
        job
    }

    /// Removes departed and expired jobs (the engine calls it every step).
    pub fn prune(&self) {
        let mut inner = self.lock();
        self.prune_locked(&mut inner);
    }

    /// No more jobs are accepted; those still queued are handed back.
    pub fn close(&self) -> Vec<T> {
        let mut inner = self.lock();
        inner.closed = true;
        let left: Vec<T> = inner.jobs.drain(..).collect();
        self.set_depth(&inner);
        drop(inner);
        self.ready.notify_all();
        left
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn prune_locked(&self, inner: &mut Inner<T>) {
        let now = Instant::now();
        let keep = |j: &T| !j.departed() && j.deadline().is_none_or(|d| now <= d);
        if inner.jobs.iter().all(keep) {
            return;
        }
        let (kept, dropped): (VecDeque<T>, VecDeque<T>) = inner.jobs.drain(..).partition(keep);
        inner.jobs = kept;
        for job in dropped {
            if !job.departed() {
                job.expire();
            }
        }
        self.set_depth(inner);
    }

    fn set_depth(&self, inner: &Inner<T>) {
        self.depth.store(inner.jobs.len() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    struct Fake {
        gone: Arc<AtomicBool>,
        deadline: Option<Instant>,
        expired: Arc<AtomicBool>,
    }

    impl Queued for Fake {
        fn departed(&self) -> bool {
            self.gone.load(Ordering::Relaxed)
        }
        fn deadline(&self) -> Option<Instant> {
            self.deadline
        }
        fn expire(self) {
            self.expired.store(true, Ordering::Relaxed);
        }
    }

    fn job(deadline: Option<Instant>) -> (Fake, Arc<AtomicBool>, Arc<AtomicBool>) {
        let gone = Arc::new(AtomicBool::new(false));
        let expired = Arc::new(AtomicBool::new(false));
        let f = Fake {
            gone: gone.clone(),
            deadline,
            expired: expired.clone(),
        };
        (f, gone, expired)
    }

    #[test]
    fn depth_reads_the_queue_as_it_is_full_included() {
        let depth = Arc::new(AtomicU64::new(0));
        let q = JobQueue::new(2, depth.clone());
        assert!(q.push(job(None).0).is_ok());
        assert!(q.push(job(None).0).is_ok());
        assert_eq!(depth.load(Ordering::Relaxed), 2);
        assert!(matches!(q.push(job(None).0), Err((Refused::Full, _))));
        assert_eq!(depth.load(Ordering::Relaxed), 2);
        assert!(q.try_pop().is_some());
        assert_eq!(depth.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_head_that_does_not_fit_keeps_its_place_and_holds_the_line() {
        let depth = Arc::new(AtomicU64::new(0));
        let q = JobQueue::new(4, depth.clone());
        let (big, _, _) = job(None);
        let (small, _, _) = job(Some(Instant::now() + Duration::from_secs(60)));
        assert!(q.push(big).is_ok());
        assert!(q.push(small).is_ok());
        // The head does not fit: nothing leaves, the one behind waits too.
        assert!(q.try_pop_if(|j| j.deadline.is_some()).is_none());
        assert_eq!(depth.load(Ordering::Relaxed), 2);
        let head = q.try_pop_if(|j| j.deadline.is_none());
        assert!(head.is_some_and(|j| j.deadline.is_none()));
        assert_eq!(depth.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_departed_client_gives_its_place_back_at_once() {
        let q = JobQueue::new(1, Arc::new(AtomicU64::new(0)));
        let (a, gone, expired) = job(None);
        assert!(q.push(a).is_ok());
        gone.store(true, Ordering::Relaxed);
        assert!(
            q.push(job(None).0).is_ok(),
            "the departed job kept its place"
        );
        assert!(
            !expired.load(Ordering::Relaxed),
            "a departed job gets no answer"
        );
    }

    #[test]
    fn an_expired_job_is_told_and_removed_while_still_queued() {
        let q = JobQueue::new(4, Arc::new(AtomicU64::new(0)));
        let past = Instant::now() - Duration::from_millis(1);
        let (a, _, expired) = job(Some(past));
        assert!(q.push(a).is_ok());
        q.prune();
        assert!(expired.load(Ordering::Relaxed));
        assert!(q.try_pop().is_none());
    }

    #[test]
    fn close_wakes_the_waiter_and_hands_back_the_queue() {
        let q = Arc::new(JobQueue::<Fake>::new(4, Arc::new(AtomicU64::new(0))));
        let waiter = {
            let q = q.clone();
            std::thread::spawn(move || q.pop_wait().is_none())
        };
        assert!(q.close().is_empty());
        assert!(waiter.join().unwrap());
        assert!(matches!(q.push(job(None).0), Err((Refused::Closed, _))));
    }
}
