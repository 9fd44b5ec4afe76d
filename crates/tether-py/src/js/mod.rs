//! `tether._native.js`: the native half of `tether.js` (a jsrun 0.3.0-compatible API on
//! QuickJS through the `tether-js` crate). The Python package adds the pure-Python helpers.

use pyo3::prelude::*;

mod asyncio;
mod call;
mod convert;
mod errors;
mod function;
mod host;
mod runtime;
mod state;
mod timeout;
mod undefined;

/// Registers `JsStream` (a Python class) as the wrapper for JS `ReadableStream`s.
#[pyfunction]
fn _set_stream_factory(py: Python<'_>, factory: Py<PyAny>) {
    let _ = convert::STREAM_FACTORY.set(py, factory);
}

/// Registers `async def _await(x): return await x` (async methods return its coroutines).
#[pyfunction]
fn _set_coroutine_wrapper(py: Python<'_>, wrapper: Py<PyAny>) {
    let _ = asyncio::COROUTINE.set(py, wrapper);
}

/// Runtime threads alive in this process (jsrun's `_debug_active_runtime_threads`).
#[pyfunction]
fn _debug_active_runtime_threads() -> usize {
    tether_js::active_runtime_threads()
}

/// Builds the `js` submodule.
pub fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let m = PyModule::new(py, "js")?;
    m.add("JavaScriptError", py.get_type::<errors::JavaScriptError>())?;
    m.add(
        "RuntimeTerminated",
        py.get_type::<errors::RuntimeTerminated>(),
    )?;
    m.add_class::<runtime::Runtime>()?;
    m.add_class::<runtime::SnapshotBuilder>()?;
    m.add_class::<function::JsFunction>()?;
    m.add_class::<undefined::JsUndefined>()?;
    m.add("undefined", undefined::undefined(py).clone_ref(py))?;
    m.add_function(wrap_pyfunction!(timeout::parse_timeout_py, &m)?)?;
    m.add_function(wrap_pyfunction!(_set_stream_factory, &m)?)?;
    m.add_function(wrap_pyfunction!(_set_coroutine_wrapper, &m)?)?;
    m.add_function(wrap_pyfunction!(_debug_active_runtime_threads, &m)?)?;
    Ok(m)
}
