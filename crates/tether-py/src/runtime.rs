//! The one tokio runtime of `tether._native`: created on first use, shut down by `close()`,
//! and the bridge that runs Rust futures as asyncio awaitables on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use pyo3_async_runtimes::generic::{ContextExt, JoinError, Runtime as GenericRuntime};
use tokio::runtime::{Handle, Runtime};

use crate::errors::{ConfigError, TetherError};

/// The runtime, `None` before first use and after `close()` (the next use creates a new one).
pub(crate) static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A handle on the runtime, creating it on first use.
pub(crate) fn handle() -> PyResult<Handle> {
    let mut rt = lock(&RUNTIME);
    if let Some(rt) = rt.as_ref() {
        return Ok(rt.handle().clone());
    }
    let new = tokio::runtime::Builder::new_multi_thread()
        .thread_name("tether-rt")
        .enable_all()
        .build()
        .map_err(|e| TetherError::new_err(format!("cannot start the tokio runtime: {e}")))?;
    let h = new.handle().clone();
    *rt = Some(new);
    Ok(h)
}

/// Runs `fut` to completion on the owned runtime from a Python thread. Refuses (instead of
/// panicking) when called from inside a runtime, where blocking would deadlock.
pub(crate) fn block_on<F: Future>(h: &Handle, fut: F) -> PyResult<F::Output> {
    if Handle::try_current().is_ok() {
        return Err(TetherError::new_err(
            "cannot block inside the tether runtime; await the async variant instead",
        ));
    }
    Ok(h.block_on(fut))
}

/// pyo3-async-runtimes' generic API on our runtime instead of its global, never-closed one.
struct OwnedRuntime;

struct TokioJoinError(tokio::task::JoinError);

impl JoinError for TokioJoinError {
    fn is_panic(&self) -> bool {
        self.0.is_panic()
    }
    fn into_panic(self) -> Box<dyn std::any::Any + Send + 'static> {
        self.0.into_panic()
    }
}

/// The join handle pyo3-async-runtimes awaits (it only ever awaits it or drops it).
struct JoinFuture(Option<tokio::task::JoinHandle<()>>);

impl Future for JoinFuture {
    type Output = Result<(), TokioJoinError>;
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.0.as_mut() {
            Some(h) => Pin::new(h).poll(cx).map_err(TokioJoinError),
            None => std::task::Poll::Ready(Ok(())),
        }
    }
}

tokio::task_local! {
    static TASK_LOCALS: TaskLocals;
}

impl GenericRuntime for OwnedRuntime {
    type JoinError = TokioJoinError;
    type JoinHandle = JoinFuture;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Spawning on a runtime that was just shut down yields a cancelled task, not a panic.
        JoinFuture(handle().ok().map(|h| h.spawn(fut)))
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        JoinFuture(handle().ok().map(|h| h.spawn_blocking(f)))
    }
}

impl ContextExt for OwnedRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        Box::pin(TASK_LOCALS.scope(locals, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS.try_with(|l| l.clone()).ok()
    }
}

/// Wraps a Rust future as an asyncio awaitable running on the owned runtime.
pub(crate) fn awaitable<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    handle()?;
    pyo3_async_runtimes::generic::future_into_py::<OwnedRuntime, _, T>(py, fut)
}

pub(crate) fn duration(s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| ConfigError::new_err(format!("invalid duration: {s} seconds")))
}
