//! `Runtime`: the native half of `tether.js.Runtime` (the Python subclass adds the helpers).
//!
//! Every call sends a request to the runtime's own thread (see `tether_js::Runtime`). Sync
//! calls wait with the GIL released; async calls return an asyncio future that the runtime
//! thread settles (`asyncio.rs`). The runtime thread takes the GIL only to run Python callbacks
//! (`host.rs`) and to convert values for them (`convert.rs`).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tether_js::{Await, Config, HostValue, JsError, Request, Response, Snapshot};

use super::asyncio::{deferred, running_loop};
use super::convert::{FromPy, to_py};
use super::errors::to_py_err;
use super::host::{is_coroutine_function, loader_fn, make_op, resolver_fn};
use super::state::State;
use super::timeout::parse_timeout;

const EVAL: &str = "Evaluation failed: ";
const MODULE: &str = "Module evaluation failed: ";

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
        code_cache_bytes=tether_js::CodeCacheLimits::DEFAULT.max_bytes,
        code_cache_entries=tether_js::CodeCacheLimits::DEFAULT.max_entries,
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
        code_cache_bytes: usize,
        code_cache_entries: usize,
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
            code_cache: tether_js::CodeCacheLimits {
                max_entries: code_cache_entries,
                max_bytes: code_cache_bytes,
            },
            ..Config::default()
        };
        let rt = py
            .detach(|| tether_js::Runtime::new(config))
            .map_err(|e| spawn(e.to_string()))?;
        Ok(Runtime {
            state: Arc::new(State::new(
                rt,
                max_serialization_depth,
                max_serialization_bytes,
            )),
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
        d.set_item("code_cache_hits", s.code_cache.hits)?;
        d.set_item("code_cache_misses", s.code_cache.misses)?;
        d.set_item("code_cache_evictions", s.code_cache.evictions)?;
        d.set_item("code_cache_bytes", s.code_cache.bytes)?;
        d.set_item("code_cache_entries", s.code_cache.entries)?;
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
