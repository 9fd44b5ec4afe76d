//! `JsFunction`'s Python methods: calling a JS function from Python, sync or awaited.

use std::sync::atomic::Ordering;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tether_js::{Await, HostValue, Request, Response};

use super::asyncio::{Done, deferred, future_reply, running_loop};
use super::convert::{from_py, to_py};
use super::errors::to_py_err;
use super::function::{JsFunction, PREFIX};
use super::timeout::parse_timeout;

impl JsFunction {
    /// Converts call arguments for this function's runtime.
    fn args(&self, args: &Bound<'_, PyTuple>) -> PyResult<Vec<tether_js::HostValue>> {
        args.iter().map(|a| from_py(&a, &self.state)).collect()
    }
}

#[pymethods]
impl JsFunction {
    /// Calls the function: the value when JS finishes (a settled promise included), else an
    /// awaitable for the pending promise.
    #[pyo3(signature = (*args, timeout=None))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let timeout = parse_timeout(timeout)?;
        self.check()?;
        let args = self.args(args)?;
        let state = self.state.clone();
        let func = self.id;
        let r = py.detach(|| {
            state.rt.request(Request::Call {
                func,
                args,
                timeout,
                wait: Await::IfSettled,
            })
        });
        match r {
            Ok(Response::Value(v)) => to_py(py, v, &self.state),
            Ok(Response::Pending(handle)) => {
                let Ok(lp) = running_loop(py) else {
                    let req = Request::AwaitHandle { handle, timeout };
                    return deferred(py, &self.state, req, PREFIX).map(Bound::unbind);
                };
                self.state.remember_loop(&lp);
                let fut = lp.call_method0("create_future")?;
                let reply = future_reply(&self.state, &lp, &fut, PREFIX);
                let state = self.state.clone();
                // Never block on a full queue while holding the GIL (the runtime thread may
                // need it to drain the queue).
                py.detach(|| {
                    state
                        .rt
                        .submit(Request::AwaitHandle { handle, timeout }, reply)
                });
                Ok(fut.unbind())
            }
            Ok(other) => Err(PyRuntimeError::new_err(format!(
                "unexpected response {other:?}"
            ))),
            Err(e) => Err(to_py_err(py, e, PREFIX)),
        }
    }

    /// Calls the function and returns an awaitable of its (awaited) result.
    #[pyo3(signature = (*args, timeout=None))]
    fn call_async<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        timeout: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = parse_timeout(timeout)?;
        self.check()?;
        let args = self.args(args)?;
        let req = Request::Call {
            func: self.id,
            args,
            timeout,
            wait: Await::Yes,
        };
        deferred(py, &self.state, req, PREFIX)
    }

    /// Releases the function (an awaitable, for jsrun compatibility); later calls fail.
    fn close(&self) -> Done {
        self.release();
        Done
    }

    /// Calls the function and forgets the call (no result, no error): what a finalizer can do,
    /// on any thread, without a running event loop. Does nothing once released.
    #[pyo3(signature = (*args))]
    fn _call_detached(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        if self.check().is_err() {
            return Ok(());
        }
        let args = self.args(args)?;
        let req = Request::Call {
            func: self.id,
            args,
            timeout: None,
            wait: Await::No,
        };
        let rt = self.state.rt.clone();
        let reply: tether_js::Reply = {
            let rt = rt.clone();
            Box::new(move |r| {
                if let Ok(Response::Value(v)) = r {
                    release_handles(&rt, v);
                }
            })
        };
        // Never block on a full queue while holding the GIL (the runtime thread may need it).
        py.detach(|| rt.submit(req, reply));
        Ok(())
    }

    /// Whether the runtime was closed (not terminated): a `JsStream` then says so as jsrun's does.
    #[getter]
    fn _runtime_closed(&self) -> bool {
        self.state.closed.load(Ordering::SeqCst) && !self.state.terminated.load(Ordering::SeqCst)
    }

    fn __repr__(&self) -> String {
        if self.closed.load(Ordering::SeqCst) {
            return "<JsFunction (closed)>".into();
        }
        format!("<JsFunction id={}>", self.id)
    }

    #[getter]
    fn _handle(&self) -> u64 {
        self.id
    }

    /// The owning runtime's id (the Python layer keys stream statistics by it).
    #[getter]
    fn _runtime_uid(&self) -> u64 {
        self.state.uid
    }

    fn __reduce__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let _ = PyDict::new(py);
        Err(PyRuntimeError::new_err("JsFunction cannot be pickled"))
    }
}

/// Releases the handles inside a value nobody will see (the result of a detached call).
fn release_handles(rt: &tether_js::Runtime, v: HostValue) {
    match v {
        HostValue::Function(id) => rt.release(id),
        HostValue::Stream { read, cancel } => {
            rt.release(read);
            rt.release(cancel);
        }
        HostValue::Array(items) | HostValue::Set(items) => {
            for item in items {
                release_handles(rt, item);
            }
        }
        HostValue::Object(props) => {
            for (_, item) in props {
                release_handles(rt, item);
            }
        }
        _ => {}
    }
}
