//! Timeouts given from Python (seconds or a `timedelta`), checked with jsrun's messages.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt};

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
