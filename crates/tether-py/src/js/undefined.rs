//! `JsUndefined` and its one instance `undefined`, so Python can tell JS `undefined` from `null`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The type of `tether.js.undefined` (falsy; cannot be instantiated).
#[pyclass(name = "JsUndefined", module = "tether.js", frozen)]
pub struct JsUndefined;

#[pymethods]
impl JsUndefined {
    #[new]
    fn py_new() -> PyResult<Self> {
        Err(PyRuntimeError::new_err(
            "JsUndefined is a singleton; use tether.js.undefined",
        ))
    }

    fn __bool__(&self) -> bool {
        false
    }

    fn __repr__(&self) -> &'static str {
        "JsUndefined"
    }

    fn __copy__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __deepcopy__(slf: Py<Self>, _memo: &Bound<'_, PyAny>) -> Py<Self> {
        slf
    }

    fn __reduce__(&self) -> &'static str {
        "undefined"
    }
}

static UNDEFINED: PyOnceLock<Py<JsUndefined>> = PyOnceLock::new();

/// The singleton.
pub(crate) fn undefined(py: Python<'_>) -> &Py<JsUndefined> {
    UNDEFINED.get_or_init(py, || match Py::new(py, JsUndefined) {
        Ok(u) => u,
        // Allocating a zero-sized object fails only when the interpreter is out of memory.
        Err(e) => panic!("cannot allocate JsUndefined: {e}"),
    })
}
