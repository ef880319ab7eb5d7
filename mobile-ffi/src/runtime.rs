//! The crate's one async runtime: tokio, multi-thread, two workers, built on first use and
//! kept for the life of the process (a phone app's process; the JVM test's).
//!
//! Exported async functions do not run on a runtime of uniffi's choosing: they await
//! [`run`], which spawns the work here and aborts it when the awaiting future is dropped —
//! which is what uniffi does when the Kotlin coroutine or Swift task is cancelled.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};
use tokio_util::task::AbortOnDropHandle;

use crate::error::ShouwangError;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The runtime, built on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, ShouwangError> {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("shouwang-rt")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|_| ShouwangError::Internal {
            msg: "无法启动后台任务，请重新打开应用".into(),
        })
}

/// Runs `fut` on the runtime and waits for it. Dropping the returned future (a cancelled
/// coroutine) aborts the task.
pub(crate) async fn run<T, F>(fut: F) -> Result<T, ShouwangError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ShouwangError>> + Send + 'static,
{
    let task = AbortOnDropHandle::new(runtime()?.spawn(fut));
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_cancelled() => Err(ShouwangError::cancelled()),
        Err(_) => Err(ShouwangError::internal()),
    }
}

/// Runs a blocking store operation on the runtime's blocking pool and waits for it.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ShouwangError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ShouwangError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_cancelled() => Err(ShouwangError::cancelled()),
        Err(_) => Err(ShouwangError::internal()),
    }
}
