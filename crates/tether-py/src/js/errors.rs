//! The exception classes of `tether.js` and the mapping from [`JsError`] to them.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use tether_js::JsError;

create_exception!(
    js,
    JavaScriptError,
    PyException,
    "A JavaScript exception: `name`, `message`, `stack` and `frames` describe it."
);
create_exception!(
    js,
    RuntimeTerminated,
    PyRuntimeError,
    "The runtime was terminated (by `terminate()` or by its heap limit) and cannot run code."
);

/// Builds the Python exception for an engine error; `prefix` is `Evaluation failed: `,
/// `Function call failed: ` or `Module evaluation failed: `.
pub(crate) fn to_py_err(py: Python<'_>, e: JsError, prefix: &str) -> PyErr {
    match e {
        JsError::Exception(ex) => {
            let err = JavaScriptError::new_err(format!("{prefix}{}", ex.summary()));
            let v = err.value(py);
            let frames = PyList::empty(py);
            for f in &ex.frames {
                let d = PyDict::new(py);
                let _ = (|| -> PyResult<()> {
                    if let Some(n) = &f.function_name {
                        d.set_item("function_name", n)?;
                    }
                    d.set_item("file_name", &f.file_name)?;
                    d.set_item("line_number", f.line_number)?;
                    d.set_item("column_number", f.column_number)?;
                    frames.append(d)
                })();
            }
            let _ = v.setattr("name", ex.name.clone());
            let _ = v.setattr("message", ex.message.clone());
            let _ = v.setattr("stack", ex.stack.clone());
            let _ = v.setattr("frames", frames);
            err
        }
        JsError::Terminated(reason) => RuntimeTerminated::new_err(format!("{prefix}{reason}")),
        JsError::Closed => PyRuntimeError::new_err("Runtime has been closed"),
        other => PyRuntimeError::new_err(format!("{prefix}{other}")),
    }
}

/// `TypeName: message` for a Python exception (what JS sees from a failing host function).
pub(crate) fn describe(py: Python<'_>, e: &PyErr) -> String {
    let name = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let msg = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    format!("{name}: {msg}")
}
