//! CPU work of preparation on tokio's blocking pool, at most one job per
//! core per pool. Two pools, so that a text prompt never waits behind
//! image decodes: images take one, templates and tokenizing the other.

use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct CpuPool {
    /// More jobs at once than cores only adds memory (and allocator
    /// arenas), never speed.
    turns: Arc<Semaphore>,
}

impl CpuPool {
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        CpuPool {
            turns: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Runs `work` once a turn is free.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        // The semaphore is never closed.
        let turn = self.turns.clone().acquire_owned().await.ok();
        let out = tokio::task::spawn_blocking(work).await;
        drop(turn);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_pool_holds_the_next_job_until_a_turn_frees() {
        let pool = CpuPool {
            turns: Arc::new(Semaphore::new(1)),
        };
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(move || rx.recv().is_ok()).await }
        });
        // Wait until the first job holds the only turn.
        while pool.turns.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let mut second = std::pin::pin!(pool.run(|| 2));
        assert!(futures::poll!(second.as_mut()).is_pending());
        tx.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
        assert_eq!(second.await.unwrap(), 2);
    }
}
