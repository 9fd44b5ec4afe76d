//! `Runtime`: the native half of `tether.js.Runtime` (the Python subclass adds the helpers).
//!
//! Every call sends a request to the runtime's own thread (see `tether_js::Runtime`). Sync
//! calls wait with the GIL released; async calls return an asyncio future that the runtime
//! thread settles through `loop.call_soon_threadsafe`. The runtime thread takes the GIL only to
//! run Python callbacks and to convert values for them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyString, PyTuple};
use tether_js::{Await, Completion, Config, HostValue, JsError, Op, Request, Response, Snapshot};

use super::convert::{FromPy, from_py, to_py};
use super::errors::{RuntimeTerminated, describe, to_py_err};

const EVAL: &str = "Evaluation failed: ";
const MODULE: &str = "Module evaluation failed: ";

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
    fn release_all(&self) {
        lock(&self.tracked).clear();
        let lp = lock(&self.event_loop).take();
        drop(lp);
    }

    /// `JsFunction`s the user holds (what `_debug_tracked_function_count` reports).
    fn tracked_functions(&self) -> usize {
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

    fn event_loop(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let g = self.event_loop.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref().map(|l| l.clone_ref(py))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An awaitable that is already done (what `JsFunction.close()` returns).
#[pyclass(module = "tether.js", frozen)]
pub struct Done;

#[pymethods]
impl Done {
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyTuple::empty(py).try_iter().map(|i| i.into_any())
    }
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
fn attach_worker<F, R>(f: F) -> Option<R>
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

/// Parses a timeout (seconds as int/float, or a timedelta) with jsrun's messages.
pub(crate) fn parse_timeout(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let py = obj.py();
    let td = py
        .import(intern!(py, "datetime"))?
        .getattr(intern!(py, "timedelta"))?;
    let secs: f64 = if obj.is_instance(&td)? {
        obj.call_method0(intern!(py, "total_seconds"))?.extract()?
    } else if obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyFloat>() {
        obj.extract()?
    } else {
        return Err(PyValueError::new_err(
            "Timeout must be a number (seconds) or datetime.timedelta object",
        ));
    };
    if !secs.is_finite() {
        return Err(PyValueError::new_err("Timeout must be finite"));
    }
    if secs < 0.0 {
        return Err(PyValueError::new_err("Timeout cannot be negative"));
    }
    if secs == 0.0 {
        return Err(PyValueError::new_err("Timeout cannot be zero"));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// `_parse_timeout(value) -> float | None`, so the Python layer validates config the same way.
#[pyfunction]
#[pyo3(name = "_parse_timeout")]
pub(crate) fn parse_timeout_py(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    Ok(parse_timeout(value)?.map(|d| d.as_secs_f64()))
}

pub(crate) fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import(intern!(py, "asyncio"))?
        .call_method0(intern!(py, "get_running_loop"))
}

/// Sets a future's result or exception unless it is already done (cancelled, say).
#[pyfunction]
#[pyo3(name = "_settle")]
pub(crate) fn settle(fut: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if fut.call_method0(intern!(fut.py(), "done"))?.is_truthy()? {
        return Ok(());
    }
    if ok {
        fut.call_method1(intern!(fut.py(), "set_result"), (value,))?;
    } else {
        fut.call_method1(intern!(fut.py(), "set_exception"), (value,))?;
    }
    Ok(())
}

/// A reply that settles `fut` on its loop (values are converted on the runtime thread).
pub(crate) fn future_reply(
    state: &Arc<State>,
    lp: &Bound<'_, PyAny>,
    fut: &Bound<'_, PyAny>,
    prefix: &'static str,
) -> tether_js::Reply {
    let state = state.clone();
    let lp = lp.clone().unbind();
    let fut = fut.clone().unbind();
    Box::new(move |r| {
        attach_worker(|py| {
            let (ok, value): (bool, Py<PyAny>) = match r {
                Ok(Response::Value(v)) => match to_py(py, v, &state) {
                    Ok(o) => (true, o),
                    Err(e) => (false, e.into_value(py).into_any()),
                },
                Ok(_) => (true, py.None()),
                Err(e) => (false, to_py_err(py, e, prefix).into_value(py).into_any()),
            };
            let settle = match wrap_pyfunction!(settle, py) {
                Ok(f) => f,
                Err(_) => return,
            };
            let _ = lp.call_method1(
                py,
                intern!(py, "call_soon_threadsafe"),
                (settle, fut, ok, value),
            );
        });
    })
}

/// Sends `req` when awaited (on the loop that awaits it) and resolves to the answer.
#[pyclass(module = "tether.js", frozen)]
pub struct Deferred {
    state: Arc<State>,
    req: Mutex<Option<Request>>,
    prefix: &'static str,
}

#[pymethods]
impl Deferred {
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let req = self
            .req
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("cannot reuse an already awaited call"))?;
        if self.state.terminated.load(Ordering::SeqCst) {
            return Err(self.state.terminated_error(self.prefix));
        }
        let lp = running_loop(py)?;
        self.state.remember_loop(&lp);
        let fut = lp.call_method0("create_future")?;
        let reply = future_reply(&self.state, &lp, &fut, self.prefix);
        let flag = Arc::downgrade(&self.state);
        let reply: tether_js::Reply = Box::new(move |r| {
            if let (Err(JsError::Terminated(reason)), Some(s)) = (&r, flag.upgrade()) {
                s.mark_terminated(reason);
            }
            reply(r)
        });
        let state = self.state.clone();
        // Never block on a full queue while holding the GIL (the runtime thread may need it).
        py.detach(|| state.rt.submit(req, reply));
        fut.call_method0("__await__")
    }
}

/// `tether.js`'s `async def _await(x): return await x`, so async methods return coroutines.
pub(crate) static COROUTINE: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

/// A coroutine that sends `req` when first awaited.
pub(crate) fn deferred<'py>(
    py: Python<'py>,
    state: &Arc<State>,
    req: Request,
    prefix: &'static str,
) -> PyResult<Bound<'py, PyAny>> {
    let d = Bound::new(
        py,
        Deferred {
            state: state.clone(),
            req: Mutex::new(Some(req)),
            prefix,
        },
    )?;
    match COROUTINE.get(py) {
        Some(wrap) => wrap.bind(py).call1((d,)),
        None => Ok(d.into_any()),
    }
}

fn is_coroutine_function(handler: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = handler.py();
    py.import(intern!(py, "inspect"))?
        .call_method1(intern!(py, "iscoroutinefunction"), (handler,))?
        .is_truthy()
}

/// Completes an async op when its `concurrent.futures.Future` is done.
#[pyclass(module = "tether.js", frozen)]
pub struct OpDone {
    completion: Mutex<Option<Completion>>,
    state: Weak<State>,
}

impl OpDone {
    fn finish(&self, r: Result<HostValue, String>) {
        let c = self
            .completion
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(c) = c {
            c.complete(r);
        }
    }
}

#[pymethods]
impl OpDone {
    fn __call__(&self, py: Python<'_>, fut: &Bound<'_, PyAny>) {
        let r = (|| -> Result<HostValue, String> {
            if fut
                .call_method0("cancelled")
                .and_then(|c| c.is_truthy())
                .unwrap_or(false)
            {
                return Err("Python coroutine was cancelled".into());
            }
            let value = fut
                .call_method0("result")
                .map_err(|e| format!("Python coroutine failed: {}", describe(py, &e)))?;
            let state = self.state.upgrade().ok_or("Runtime has been closed")?;
            from_py(&value, &state).map_err(|e| describe(py, &e))
        })();
        // Completing queues a message for the runtime thread: never wait for room in that
        // queue while holding the GIL.
        py.detach(|| self.finish(r));
    }
}

/// Wraps a Python handler as a host op (arguments positional, result converted back).
pub(crate) fn make_op(state: &Arc<State>, handler: Py<PyAny>, is_async: bool) -> Op {
    let weak = Arc::downgrade(state);
    let handler = Owned::new(handler);
    if !is_async {
        return Op::Sync(Arc::new(move |args| {
            attach_worker(|py| -> Result<HostValue, String> {
                let state = weak.upgrade().ok_or("Runtime has been closed")?;
                let mut py_args = Vec::with_capacity(args.len());
                for a in args {
                    py_args.push(to_py(py, a, &state).map_err(|e| describe(py, &e))?);
                }
                let tuple = PyTuple::new(py, py_args).map_err(|e| describe(py, &e))?;
                let r = handler.bind(py).call1(tuple).map_err(|e| describe(py, &e))?;
                if is_awaitable(&r) {
                    let _ = r.call_method0("close");
                    return Err("Async handler called synchronously; bind it with an async def and call it from eval_async".into());
                }
                from_py(&r, &state).map_err(|e| describe(py, &e))
            })
            .unwrap_or_else(|| Err("the Python interpreter is shutting down".into()))
        }));
    }
    Op::Async(Arc::new(move |args, done| {
        let done = OpDone {
            completion: Mutex::new(Some(done)),
            state: weak.clone(),
        };
        attach_worker(|py| {
            let r = (|| -> Result<(), String> {
                let state = weak.upgrade().ok_or("Runtime has been closed")?;
                let lp = state.event_loop(py).ok_or(
                    "No asyncio event loop is available for this async function; call it from eval_async or another async API",
                )?;
                let mut py_args = Vec::with_capacity(args.len());
                for a in args {
                    py_args.push(to_py(py, a, &state).map_err(|e| describe(py, &e))?);
                }
                let tuple = PyTuple::new(py, py_args).map_err(|e| describe(py, &e))?;
                let coro = handler
                    .bind(py)
                    .call1(tuple)
                    .map_err(|e| format!("Python coroutine failed: {}", describe(py, &e)))?;
                let asyncio = py.import("asyncio").map_err(|e| describe(py, &e))?;
                let cf = asyncio
                    .call_method1("run_coroutine_threadsafe", (&coro, lp))
                    .map_err(|e| {
                        let _ = coro.call_method0("close");
                        describe(py, &e)
                    })?;
                let done = Py::new(
                    py,
                    OpDone {
                        completion: Mutex::new(
                            done.completion
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .take(),
                        ),
                        state: weak.clone(),
                    },
                )
                .map_err(|e| describe(py, &e))?;
                cf.call_method1("add_done_callback", (done,))
                    .map_err(|e| describe(py, &e))?;
                Ok(())
            })();
            if let Err(msg) = r {
                done.finish(Err(msg));
            }
        });
    }))
}

fn is_awaitable(obj: &Bound<'_, PyAny>) -> bool {
    let py = obj.py();
    py.import(intern!(py, "inspect"))
        .and_then(|m| m.call_method1(intern!(py, "isawaitable"), (obj,)))
        .and_then(|r| r.is_truthy())
        .unwrap_or(false)
}

fn resolver_fn(resolver: Py<PyAny>) -> tether_js::ModuleResolver {
    let resolver = Owned::new(resolver);
    Box::new(move |spec, referrer| {
        attach_worker(|py| {
            let r = resolver.bind(py).call1((spec, referrer)).map_err(|e| {
                format!("Module resolution failed for {spec}: {}", describe(py, &e))
            })?;
            if r.is_none() {
                return Ok(None);
            }
            let s = r.cast::<PyString>().map_err(|_| {
                format!(
                    "Module resolver must return a string or None: TypeError: '{}' object cannot be cast as 'str'",
                    type_name(&r)
                )
            })?;
            let s = super::convert::py_str(s).map_err(|e| describe(py, &e))?;
            Ok(if s.is_empty() { None } else { Some(s) })
        })
        .unwrap_or_else(|| Err("the Python interpreter is shutting down".into()))
    })
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

fn loader_fn(loader: Py<PyAny>, state: Weak<State>) -> tether_js::ModuleLoader {
    let loader = Owned::new(loader);
    Box::new(move |spec, allow_async| {
        attach_worker(|py| {
            let fail = |e: PyErr| format!("Failed to call module loader: {}", describe(py, &e));
            let r = loader.bind(py).call1((spec,)).map_err(fail)?;
            let r = if is_awaitable(&r) {
                if !allow_async {
                    let _ = r.call_method0("close");
                    return Err("An async module loader cannot be used with a synchronous evaluation (eval_module). Use eval_module_async() instead.".to_string());
                }
                let lp = state
                    .upgrade()
                    .and_then(|s| s.event_loop(py))
                    .ok_or("No asyncio event loop is available for the async module loader")?;
                let asyncio = py.import("asyncio").map_err(fail)?;
                // run_coroutine_threadsafe takes coroutines only; wrap other awaitables.
                let coro = match COROUTINE.get(py) {
                    Some(wrap) if !r.hasattr("send").unwrap_or(false) => {
                        wrap.bind(py).call1((r,)).map_err(fail)?
                    }
                    _ => r,
                };
                let cf = asyncio
                    .call_method1("run_coroutine_threadsafe", (coro, lp))
                    .map_err(fail)?;
                // `result()` waits on a lock, which releases the GIL.
                cf.call_method0("result").map_err(fail)?
            } else {
                r
            };
            match r.cast::<PyString>() {
                Ok(s) => super::convert::py_str(s).map_err(|e| describe(py, &e)),
                Err(_) => Err(format!(
                    "Module loader must return a string: TypeError: '{}' object cannot be cast as 'str'",
                    type_name(&r)
                )),
            }
        })
        .unwrap_or_else(|| Err("the Python interpreter is shutting down".into()))
    })
}

/// The native runtime; `tether.js.Runtime` subclasses it.
#[pyclass(name = "Runtime", module = "tether.js", subclass, frozen)]
pub struct Runtime {
    state: Arc<State>,
}

impl Runtime {
    fn live(&self) -> PyResult<&Arc<State>> {
        if self.state.terminated.load(Ordering::SeqCst) {
            return Err(self.state.terminated_error(EVAL));
        }
        if self.state.closed.load(Ordering::SeqCst) {
            return Err(PyRuntimeError::new_err("Runtime has been closed"));
        }
        Ok(&self.state)
    }

    fn wait(&self, py: Python<'_>, req: Request, prefix: &str) -> PyResult<Response> {
        let state = self.live()?.clone();
        let r = py.detach(|| state.rt.request(req));
        self.after(&r);
        r.map_err(|e| to_py_err(py, e, prefix))
    }

    fn after<T>(&self, r: &Result<T, JsError>) {
        if let Err(JsError::Terminated(reason)) = r {
            self.state.mark_terminated(reason);
        }
    }

    fn value(&self, py: Python<'_>, req: Request, prefix: &str) -> PyResult<Py<PyAny>> {
        match self.wait(py, req, prefix)? {
            Response::Value(v) => to_py(py, v, &self.state),
            other => Err(PyRuntimeError::new_err(format!(
                "unexpected response {other:?}"
            ))),
        }
    }

    fn submit_async<'py>(
        &self,
        py: Python<'py>,
        req: Request,
        prefix: &'static str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let state = self.live()?;
        deferred(py, state, req, prefix)
    }

    fn register(
        &self,
        py: Python<'_>,
        name: &str,
        handler: Py<PyAny>,
        is_async: bool,
    ) -> PyResult<u32> {
        let state = self.live()?.clone();
        let op = make_op(&state, handler, is_async);
        let name = name.to_string();
        py.detach(|| state.rt.register_op(&name, op))
            .map_err(|e| to_py_err(py, e, ""))
    }
}

#[pymethods]
impl Runtime {
    #[new]
    #[pyo3(signature = (
        *,
        max_heap_size=None,
        initial_heap_size=None,
        bootstrap=None,
        timeout=None,
        enable_console=false,
        snapshot=None,
        max_serialization_depth=100,
        max_serialization_bytes=10485760,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        max_heap_size: Option<usize>,
        initial_heap_size: Option<usize>,
        bootstrap: Option<String>,
        timeout: Option<f64>,
        enable_console: bool,
        snapshot: Option<Vec<u8>>,
        max_serialization_depth: usize,
        max_serialization_bytes: usize,
    ) -> PyResult<Self> {
        let spawn =
            |msg: String| PyRuntimeError::new_err(format!("Failed to spawn runtime: {msg}"));
        if let Some(initial) = initial_heap_size {
            match max_heap_size {
                None => {
                    return Err(spawn(
                        "initial_heap_size requires max_heap_size to be set as well".into(),
                    ));
                }
                Some(max) if initial > max => {
                    return Err(spawn(format!(
                        "initial_heap_size ({initial}) cannot exceed max_heap_size ({max})"
                    )));
                }
                _ => {}
            }
        }
        let snapshot = match snapshot {
            Some(b) => Some(Snapshot::from_bytes(&b).map_err(|e| spawn(e.to_string()))?),
            None => None,
        };
        let config = Config {
            memory_limit: max_heap_size,
            gc_threshold: initial_heap_size,
            timeout: timeout.map(Duration::from_secs_f64),
            console: enable_console,
            limits: tether_js::Limits {
                max_depth: max_serialization_depth,
                max_bytes: max_serialization_bytes,
            },
            snapshot,
            bootstrap,
            ..Config::default()
        };
        let rt = py
            .detach(|| tether_js::Runtime::new(config))
            .map_err(|e| spawn(e.to_string()))?;
        Ok(Runtime {
            state: Arc::new(State {
                rt,
                uid: NEXT_UID.fetch_add(1, Ordering::SeqCst),
                max_depth: max_serialization_depth,
                max_bytes: max_serialization_bytes,
                tracked: Mutex::default(),
                closed: AtomicBool::new(false),
                terminated: AtomicBool::new(false),
                reason: Mutex::new(None),
                event_loop: Mutex::new(None),
            }),
        })
    }

    /// Evaluates code and returns the completion value (promises are not awaited).
    fn eval(&self, py: Python<'_>, code: &str) -> PyResult<Py<PyAny>> {
        self.value(
            py,
            Request::Eval {
                code: code.into(),
                timeout: None,
                wait: Await::No,
            },
            EVAL,
        )
    }

    /// Evaluates code, awaiting a returned promise while timers and host calls run.
    #[pyo3(signature = (code, /, *, timeout=None))]
    fn eval_async<'py>(
        &self,
        py: Python<'py>,
        code: &str,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = parse_timeout(timeout)?;
        self.submit_async(
            py,
            Request::Eval {
                code: code.into(),
                timeout,
                wait: Await::Yes,
            },
            EVAL,
        )
    }

    /// Imports a module and returns its namespace as a dict.
    fn eval_module(&self, py: Python<'_>, specifier: &str) -> PyResult<Py<PyAny>> {
        self.value(
            py,
            Request::EvalModule {
                specifier: specifier.into(),
                timeout: None,
                is_async: false,
            },
            MODULE,
        )
    }

    /// Imports a module (async loaders allowed) and returns its namespace as a dict.
    #[pyo3(signature = (specifier, /, *, timeout=None))]
    fn eval_module_async<'py>(
        &self,
        py: Python<'py>,
        specifier: &str,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = parse_timeout(timeout)?;
        self.submit_async(
            py,
            Request::EvalModule {
                specifier: specifier.into(),
                timeout,
                is_async: true,
            },
            MODULE,
        )
    }

    /// Registers a host op callable as `__host_op_sync__(id, ...)` / `__host_op_async__(id, ...)`.
    #[pyo3(signature = (name, handler, /, *, mode="sync"))]
    fn register_op(
        &self,
        py: Python<'_>,
        name: &str,
        handler: Py<PyAny>,
        mode: &str,
    ) -> PyResult<u32> {
        let is_coro = is_coroutine_function(handler.bind(py))?;
        let is_async = match mode {
            "sync" => false,
            "async" => true,
            other => {
                return Err(PyRuntimeError::new_err(format!(
                    "Invalid mode '{other}', expected 'sync' or 'async'"
                )));
            }
        };
        if is_coro && !is_async {
            return Err(PyRuntimeError::new_err(
                "Handler is async but mode='sync'; use mode='async'",
            ));
        }
        if !is_coro && is_async {
            return Err(PyRuntimeError::new_err(
                "Handler is sync but mode='async'; use mode='sync'",
            ));
        }
        self.register(py, name, handler, is_async)
    }

    /// Sets `globalThis[name]` to a function calling `handler` (an `async def` returns a Promise).
    fn bind_function(&self, py: Python<'_>, name: &str, handler: Py<PyAny>) -> PyResult<()> {
        if !handler.bind(py).is_callable() {
            return Err(PyTypeError::new_err("handler must be callable"));
        }
        let is_async = is_coroutine_function(handler.bind(py))?;
        if is_async && let Ok(lp) = running_loop(py) {
            self.state.remember_loop(&lp);
        }
        let op = self.register(py, name, handler, is_async)?;
        let value = HostValue::HostFunction {
            op,
            name: name.to_string(),
        };
        self.wait(
            py,
            Request::SetGlobal {
                name: name.into(),
                value,
            },
            "",
        )?;
        Ok(())
    }

    /// Sets `globalThis[name]` to a copy of `mapping` (top-level callables become functions).
    fn bind_object(&self, py: Python<'_>, name: &str, mapping: &Bound<'_, PyAny>) -> PyResult<()> {
        let bad = || PyRuntimeError::new_err("bind_object expects a dict with string keys");
        let dict = mapping.cast::<PyDict>().map_err(|_| bad())?;
        let state = self.live()?.clone();
        let mut props = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| bad())?
                .to_cow()?
                .into_owned();
            let value = if v.is_callable() && !v.is_instance_of::<super::function::JsFunction>() {
                let is_async = is_coroutine_function(&v)?;
                if is_async && let Ok(lp) = running_loop(py) {
                    state.remember_loop(&lp);
                }
                let op = self.register(py, &key, v.clone().unbind(), is_async)?;
                HostValue::HostFunction {
                    op,
                    name: key.clone(),
                }
            } else {
                FromPy::new(&state).convert(&v)?
            };
            props.push((key, value));
        }
        let value = HostValue::Object(props);
        self.wait(
            py,
            Request::SetGlobal {
                name: name.into(),
                value,
            },
            "",
        )?;
        Ok(())
    }

    /// Sets the resolver `(specifier, referrer) -> str | None` for imports.
    fn set_module_resolver(&self, py: Python<'_>, resolver: Py<PyAny>) -> PyResult<()> {
        let r = if resolver.is_none(py) {
            None
        } else {
            Some(resolver_fn(resolver))
        };
        self.wait(py, Request::SetResolver(r), "")?;
        Ok(())
    }

    /// Sets the loader `(resolved_specifier) -> str | awaitable[str]`.
    fn set_module_loader(&self, py: Python<'_>, loader: Py<PyAny>) -> PyResult<()> {
        let l = if loader.is_none(py) {
            None
        } else {
            Some(loader_fn(loader, Arc::downgrade(&self.state)))
        };
        self.wait(py, Request::SetLoader(l), "")?;
        Ok(())
    }

    /// Adds a module importable as `name`, `static:name` or `jsrun://static/name`.
    fn add_static_module(&self, py: Python<'_>, name: &str, source: &str) -> PyResult<()> {
        self.wait(
            py,
            Request::AddStaticModule {
                name: name.into(),
                source: source.into(),
            },
            "",
        )?;
        Ok(())
    }

    /// Counters and heap figures as a dict (the Python layer wraps it in `RuntimeStats`).
    fn _stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = match self.wait(py, Request::Stats, "")? {
            Response::Stats(s) => s,
            other => {
                return Err(PyRuntimeError::new_err(format!(
                    "unexpected response {other:?}"
                )));
            }
        };
        let d = PyDict::new(py);
        d.set_item("heap_total_bytes", s.heap_total_bytes)?;
        d.set_item("heap_used_bytes", s.heap_used_bytes)?;
        d.set_item("total_execution_time_ms", s.total_execution_time_ms)?;
        d.set_item("last_execution_time_ms", s.last_execution_time_ms)?;
        d.set_item("last_execution_kind", s.last_execution_kind)?;
        d.set_item("eval_sync_count", s.eval_sync_count)?;
        d.set_item("eval_async_count", s.eval_async_count)?;
        d.set_item("eval_module_sync_count", s.eval_module_sync_count)?;
        d.set_item("eval_module_async_count", s.eval_module_async_count)?;
        d.set_item("call_function_sync_count", s.call_function_sync_count)?;
        d.set_item("call_function_async_count", s.call_function_async_count)?;
        d.set_item("active_async_ops", s.active_async_ops)?;
        d.set_item("open_resources", s.open_resources)?;
        d.set_item("active_timers", s.active_timers)?;
        d.set_item("active_intervals", s.active_intervals)?;
        Ok(d)
    }

    /// A unique id for this runtime (stream sources use it to check ownership).
    #[getter]
    fn _uid(&self) -> u64 {
        self.state.uid
    }

    /// Stops the runtime thread and releases every handle Python still holds; idempotent.
    /// Later calls raise `RuntimeError`.
    fn close(&self, py: Python<'_>) {
        if self.state.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let state = self.state.clone();
        py.detach(|| state.rt.close());
        self.state.release_all();
    }

    /// Whether `close()` or `terminate()` ran.
    fn is_closed(&self) -> bool {
        self.state.is_gone()
    }

    /// Interrupts running JS and closes the runtime; later calls raise `RuntimeTerminated`.
    fn terminate(&self, py: Python<'_>) {
        if self.state.closed.load(Ordering::SeqCst) && !self.state.terminated.load(Ordering::SeqCst)
        {
            return;
        }
        self.state.mark_terminated("Terminated by host request");
        self.state.rt.terminate();
        if !self.state.closed.swap(true, Ordering::SeqCst) {
            let state = self.state.clone();
            // Joining is quick: the interrupt handler stops JS within a few milliseconds.
            py.detach(|| state.rt.close());
        }
        self.state.release_all();
    }

    /// Live `JsFunction` handles (for tests).
    fn _debug_tracked_function_count(&self) -> usize {
        self.state.tracked_functions()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if !self.state.closed.swap(true, Ordering::SeqCst) {
            // No join here: the GIL may be held, and the thread may be waiting for it. Functions
            // that outlive the runtime keep `state` (and a clone of the runtime), but not its
            // thread or heap.
            self.state.rt.terminate();
            self.state.rt.close_nowait();
            self.state.release_all();
        }
    }
}

/// A snapshot builder: runs classic scripts now and replays their bytecode in new runtimes.
#[pyclass(name = "SnapshotBuilder", module = "tether.js")]
pub struct SnapshotBuilder {
    inner: Mutex<Option<tether_js::SnapshotBuilder>>,
}

#[pymethods]
impl SnapshotBuilder {
    #[new]
    #[pyo3(signature = (*, bootstrap=None, enable_console=false))]
    fn py_new(py: Python<'_>, bootstrap: Option<String>, enable_console: bool) -> PyResult<Self> {
        let mut b = py
            .detach(|| {
                tether_js::SnapshotBuilder::new(Config {
                    console: enable_console,
                    ..Config::default()
                })
            })
            .map_err(|e| PyRuntimeError::new_err(format!("Failed to spawn runtime: {e}")))?;
        if let Some(src) = bootstrap {
            py.detach(|| b.execute_script("<bootstrap>", &src))
                .map_err(|e| to_py_err(py, e, ""))?;
        }
        Ok(SnapshotBuilder {
            inner: Mutex::new(Some(b)),
        })
    }

    /// Runs a classic script (no `import`) and records it.
    fn execute_script(&self, py: Python<'_>, name: &str, source: &str) -> PyResult<()> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let b = g
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("Snapshot already built"))?;
        py.detach(|| b.execute_script(name, source))
            .map_err(|e| to_py_err(py, e, ""))
    }

    /// The snapshot bytes (for `RuntimeConfig(snapshot=...)`); once only.
    fn build<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let b = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("Snapshot already built"))?;
        let snap = py.detach(|| b.build());
        Ok(pyo3::types::PyBytes::new(py, &snap.to_bytes()))
    }
}
