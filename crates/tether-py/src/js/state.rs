//! `State`: what Python-side objects (functions, callbacks, futures) share about one runtime,
//! and how code on a runtime thread attaches to the interpreter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pyo3::prelude::*;

use super::errors::RuntimeTerminated;

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// What Python-side objects (functions, callbacks) share about one runtime.
pub(crate) struct State {
    pub rt: tether_js::Runtime,
    pub uid: u64,
    pub max_depth: usize,
    pub max_bytes: usize,
    /// Handles Python objects hold (`true`: a `JsFunction` the user got; `false`: a stream's
    /// reader function), all released when the runtime closes.
    tracked: Mutex<HashMap<u64, bool>>,
    pub closed: AtomicBool,
    pub terminated: AtomicBool,
    /// Why it was terminated ("Terminated by host request", "Heap limit exceeded").
    reason: Mutex<Option<String>>,
    event_loop: Mutex<Option<Py<PyAny>>>,
}

impl State {
    /// The state of a new runtime, with a process-unique id.
    pub fn new(rt: tether_js::Runtime, max_depth: usize, max_bytes: usize) -> Self {
        State {
            rt,
            uid: NEXT_UID.fetch_add(1, Ordering::SeqCst),
            max_depth,
            max_bytes,
            tracked: Mutex::default(),
            closed: AtomicBool::new(false),
            terminated: AtomicBool::new(false),
            reason: Mutex::new(None),
            event_loop: Mutex::new(None),
        }
    }

    /// Records a handle a Python object now holds.
    pub fn track(&self, handle: u64, counted: bool) {
        lock(&self.tracked).insert(handle, counted);
    }

    /// Gives a handle back: whether it was still tracked (not released by a close meanwhile).
    pub fn untrack(&self, handle: u64) -> bool {
        lock(&self.tracked).remove(&handle).is_some()
    }

    /// Forgets every handle (the runtime is gone, and with it what the handles pointed to) and
    /// the event loop, so objects that outlive the runtime hold nothing of it.
    pub fn release_all(&self) {
        lock(&self.tracked).clear();
        let lp = lock(&self.event_loop).take();
        drop(lp);
    }

    /// `JsFunction`s the user holds (what `_debug_tracked_function_count` reports).
    pub fn tracked_functions(&self) -> usize {
        lock(&self.tracked)
            .values()
            .filter(|counted| **counted)
            .count()
    }

    /// Closed or terminated.
    pub fn is_gone(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || self.terminated.load(Ordering::SeqCst)
    }

    /// Records a termination (the first reason wins).
    pub fn mark_terminated(&self, reason: &str) {
        let mut g = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(reason.to_string());
        }
        self.terminated.store(true, Ordering::SeqCst);
    }

    /// The error later calls raise after a termination.
    pub fn terminated_error(&self, prefix: &str) -> PyErr {
        let g = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        let reason = g.as_deref().unwrap_or("Terminated by host request");
        RuntimeTerminated::new_err(format!("{prefix}{reason}"))
    }

    /// Keeps the loop async host functions run on.
    pub fn remember_loop(&self, lp: &Bound<'_, PyAny>) {
        let mut g = self.event_loop.lock().unwrap_or_else(|p| p.into_inner());
        let same = g.as_ref().is_some_and(|l| l.is(lp));
        if !same {
            *g = Some(lp.clone().unbind());
        }
    }

    pub fn event_loop(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let g = self.event_loop.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref().map(|l| l.clone_ref(py))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps a Python thread state for a runtime thread from its first callback until the thread
/// exits, so each callback only takes the GIL (creating and destroying a thread state per call
/// costs more than the call).
struct KeptThreadState {
    tstate: *mut pyo3::ffi::PyThreadState,
    gstate: pyo3::ffi::PyGILState_STATE,
}

impl Drop for KeptThreadState {
    fn drop(&mut self) {
        // Skip the cleanup while the interpreter is finalizing (try_attach says so).
        if Python::try_attach(|_| ()).is_some() {
            // SAFETY: the pair saved below, restored once, on the thread that saved it.
            unsafe {
                pyo3::ffi::PyEval_RestoreThread(self.tstate);
                pyo3::ffi::PyGILState_Release(self.gstate);
            }
        }
    }
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<KeptThreadState>> = const { std::cell::RefCell::new(None) };
}

/// `Python::try_attach` for code running on a runtime thread.
pub(crate) fn attach_worker<F, R>(f: F) -> Option<R>
where
    F: for<'py> FnOnce(Python<'py>) -> R,
{
    if std::thread::current().name() == Some("tether-js") {
        KEPT.with(|k| {
            let mut k = k.borrow_mut();
            if k.is_none() && Python::try_attach(|_| ()).is_some() {
                // SAFETY: runtime threads never hold the GIL between callbacks, so Ensure takes
                // it and SaveThread gives it back, leaving a thread state for later attaches.
                unsafe {
                    let gstate = pyo3::ffi::PyGILState_Ensure();
                    let tstate = pyo3::ffi::PyEval_SaveThread();
                    *k = Some(KeptThreadState { tstate, gstate });
                }
            }
        });
    }
    Python::try_attach(f)
}

/// A Python object held by a runtime's closures (a host function, the resolver, the loader).
/// Dropped while attached to the interpreter where it can be, so it goes when the runtime's heap
/// does: pyo3 would otherwise defer the decref to its next attach in this process, which may
/// not come soon.
pub(crate) struct Owned(std::mem::ManuallyDrop<Py<PyAny>>);

impl Owned {
    pub(crate) fn new(obj: Py<PyAny>) -> Self {
        Owned(std::mem::ManuallyDrop::new(obj))
    }
}

impl std::ops::Deref for Owned {
    type Target = Py<PyAny>;

    fn deref(&self) -> &Py<PyAny> {
        &self.0
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: taken once, here; `self.0` is not used afterwards.
        let obj = unsafe { std::mem::ManuallyDrop::take(&mut self.0) };
        // Not attached (the interpreter is finalizing): the closure, and `obj`, drop deferred.
        let _ = attach_worker(move |_| drop(obj));
    }
}
