//! Cleanups that outlive their call: a cancelled exec's kill, a cancelled
//! run's removal. Each runs on the tokio runtime its call ran on, and is
//! counted while it runs, so that a process about to exit can wait for
//! them ([`settle`]).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Cleanups started and not yet finished, in this process.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Counts one cleanup while it lives.
pub(crate) struct Pending;

impl Pending {
    pub(crate) fn new() -> Self {
        PENDING.fetch_add(1, Ordering::SeqCst);
        Pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many cleanups this process has started and not yet finished.
pub(crate) fn pending() -> usize {
    PENDING.load(Ordering::SeqCst)
}

/// Waits until every cleanup this process started has finished, or for
/// `limit` at most; whether they all finished.
pub(crate) async fn settle(limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while PENDING.load(Ordering::SeqCst) > 0 {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Runs a cleanup on the tokio runtime the call ran on (the caller's, or
/// async-compat's), so that it outlives the dropped call.
pub(crate) fn spawn_cleanup(cleanup: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let pending = Pending::new();
            handle.spawn(async move {
                cleanup.await;
                drop(pending);
            });
        }
        Err(_) => {
            tracing::warn!("no runtime to run a cleanup on; the engine keeps what the call made");
        }
    }
}
