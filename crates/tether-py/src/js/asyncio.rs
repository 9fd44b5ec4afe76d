//! The asyncio glue: futures a runtime thread settles through `loop.call_soon_threadsafe`, and
//! the coroutines async methods return (they send their request when first awaited).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tether_js::{JsError, Request, Response};

use super::convert::to_py;
use super::errors::to_py_err;
use super::state::{State, attach_worker};

/// An awaitable that is already done (what `JsFunction.close()` returns).
#[pyclass(module = "tether.js", frozen)]
pub struct Done;

#[pymethods]
impl Done {
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PyTuple::empty(py).try_iter().map(|i| i.into_any())
    }
}

/// The loop of the calling coroutine (a RuntimeError outside one).
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
