//! Python callables as the runtime's host functions, module resolver and module loader (they
//! run on the runtime thread and attach to the interpreter for each call).

use std::sync::{Arc, Mutex, Weak};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};
use tether_js::{Completion, HostValue, Op};

use super::asyncio::COROUTINE;
use super::convert::{from_py, py_str, to_py};
use super::errors::describe;
use super::state::{Owned, State, attach_worker};

/// Whether a handler is an `async def` (it becomes an async op).
pub(crate) fn is_coroutine_function(handler: &Bound<'_, PyAny>) -> PyResult<bool> {
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

/// The resolver the runtime calls for each import: `resolver(specifier, referrer)`.
pub(crate) fn resolver_fn(resolver: Py<PyAny>) -> tether_js::ModuleResolver {
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
            let s = py_str(s).map_err(|e| describe(py, &e))?;
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

/// The loader the runtime calls for a resolved URL: `loader(url)`, awaited when it is async.
pub(crate) fn loader_fn(loader: Py<PyAny>, state: Weak<State>) -> tether_js::ModuleLoader {
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
                Ok(s) => py_str(s).map_err(|e| describe(py, &e)),
                Err(_) => Err(format!(
                    "Module loader must return a string: TypeError: '{}' object cannot be cast as 'str'",
                    type_name(&r)
                )),
            }
        })
        .unwrap_or_else(|| Err("the Python interpreter is shutting down".into()))
    })
}
