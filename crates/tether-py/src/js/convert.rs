//! Python objects to [`HostValue`] and back, with jsrun 0.3.0's conversion rules (docs/js.md) and two
//! fixes: ints beyond ±2^53 become BigInt, and nothing internal is reachable.

use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMemoryView, PySet,
    PyString, PyTuple,
};
use pyo3::{ffi, intern};
use tether_js::HostValue;

use super::function::JsFunction;
use super::state::State;
use super::undefined::{JsUndefined, undefined};

/// `tether.js.JsStream`, registered by the Python package (`_set_stream_factory`).
pub(crate) static STREAM_FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

const MAX_SAFE: i64 = 9_007_199_254_740_992;
const UNSUPPORTED: &str = "Unsupported Python type for JSValue conversion";

/// Converts a host value to Python (functions become `JsFunction`s of `state`'s runtime).
pub(crate) fn to_py(py: Python<'_>, v: HostValue, state: &Arc<State>) -> PyResult<Py<PyAny>> {
    Ok(match v {
        HostValue::Undefined => undefined(py).clone_ref(py).into_any(),
        HostValue::Null => py.None(),
        HostValue::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        HostValue::Number(n) => number(py, n)?,
        HostValue::BigInt(s) => py.get_type::<PyInt>().call1((s,))?.unbind(),
        HostValue::String(s) => PyString::new(py, &s).into_any().unbind(),
        HostValue::Bytes(b) => PyBytes::new(py, &b).into_any().unbind(),
        HostValue::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item, state)?)?;
            }
            list.into_any().unbind()
        }
        HostValue::Object(props) => {
            let d = PyDict::new(py);
            for (k, item) in props {
                d.set_item(k, to_py(py, item, state)?)?;
            }
            d.into_any().unbind()
        }
        HostValue::Set(items) => {
            let s = PySet::empty(py)?;
            for item in items {
                s.add(to_py(py, item, state)?)?;
            }
            s.into_any().unbind()
        }
        HostValue::Date(ms) => date(py, ms)?,
        HostValue::Function(id) => Py::new(py, JsFunction::new(state.clone(), id))?.into_any(),
        HostValue::Stream { read, cancel } => {
            let read = Py::new(py, JsFunction::for_stream(state.clone(), read))?;
            let cancel = Py::new(py, JsFunction::for_stream(state.clone(), cancel))?;
            match STREAM_FACTORY.get(py) {
                Some(f) => f.call1(py, (read, cancel))?,
                None => return Err(PyRuntimeError::new_err("tether.js is not initialised")),
            }
        }
        HostValue::HostFunction { .. } | HostValue::HostStream { .. } => py.None(),
    })
}

fn number(py: Python<'_>, n: f64) -> PyResult<Py<PyAny>> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n.is_finite() && n.fract() == 0.0 && n.abs() <= TWO_63 {
        // `as` saturates, which is what jsrun does at exactly 2^63.
        return Ok((n as i64).into_pyobject(py)?.into_any().unbind());
    }
    Ok(PyFloat::new(py, n).into_any().unbind())
}

fn date(py: Python<'_>, ms: f64) -> PyResult<Py<PyAny>> {
    let dt = py.import(intern!(py, "datetime"))?;
    let utc = dt
        .getattr(intern!(py, "timezone"))?
        .getattr(intern!(py, "utc"))?;
    let epoch = dt
        .getattr(intern!(py, "datetime"))?
        .call1((1970, 1, 1, 0, 0, 0, 0, utc))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("milliseconds", ms)?;
    let delta = dt
        .getattr(intern!(py, "timedelta"))?
        .call((), Some(&kwargs));
    match delta.and_then(|d| epoch.add(d)) {
        Ok(v) => Ok(v.unbind()),
        Err(_) => Err(PyRuntimeError::new_err("Date value out of range")),
    }
}

/// Walks a Python value into a host value, enforcing depth, size and cycle rules. The size of a
/// value is counted as jsrun counts it (bytes of strings and binary data plus a fixed cost per
/// scalar, container and entry), so the same values pass and fail.
pub(crate) struct FromPy<'a> {
    state: &'a Arc<State>,
    path: Vec<*mut ffi::PyObject>,
    bytes: usize,
}

impl<'a> FromPy<'a> {
    /// A walker for one top-level value.
    pub fn new(state: &'a Arc<State>) -> Self {
        FromPy {
            state,
            path: Vec::new(),
            bytes: 0,
        }
    }

    /// Counts `n` more bytes of the value against `max_serialization_bytes`.
    fn add(&mut self, n: usize) -> PyResult<()> {
        self.bytes = self.bytes.saturating_add(n);
        let max = self.state.max_bytes;
        if self.bytes > max {
            return Err(PyRuntimeError::new_err(format!(
                "Size ({} bytes) exceeded maximum limit of {max} bytes",
                self.bytes
            )));
        }
        Ok(())
    }

    fn enter(&mut self, obj: &Bound<'_, PyAny>, kind: &str) -> PyResult<()> {
        let max = self.state.max_depth;
        if self.path.len() >= max {
            return Err(PyRuntimeError::new_err(format!(
                "Depth exceeded maximum limit of {max}"
            )));
        }
        let p = obj.as_ptr();
        if self.path.contains(&p) {
            return Err(PyRuntimeError::new_err(format!(
                "Circular reference detected while converting Python {kind}"
            )));
        }
        self.path.push(p);
        Ok(())
    }

    /// Converts one value.
    pub fn convert(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<HostValue> {
        let py = obj.py();
        if obj.is_none() {
            self.add(4)?;
            return Ok(HostValue::Null);
        }
        if obj.is_instance_of::<JsUndefined>() {
            return Ok(HostValue::Undefined);
        }
        if let Ok(b) = obj.cast::<PyBool>() {
            self.add(1)?;
            return Ok(HostValue::Bool(b.is_true()));
        }
        if obj.is_instance_of::<PyInt>() {
            if let Ok(i) = obj.extract::<i64>() {
                self.add(8)?;
                if (-MAX_SAFE..=MAX_SAFE).contains(&i) {
                    return Ok(HostValue::Number(i as f64));
                }
            } else {
                // jsrun counts a big int by its magnitude's bytes.
                let bits: usize = obj.call_method0(intern!(py, "bit_length"))?.extract()?;
                self.add(bits.div_ceil(8))?;
            }
            return Ok(HostValue::BigInt(obj.str()?.to_string()));
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            self.add(8)?;
            return Ok(HostValue::Number(f.value()));
        }
        if let Ok(s) = obj.cast::<PyString>() {
            let s = py_str(s)?;
            let max = self.state.max_bytes;
            if s.len() > max {
                return Err(PyRuntimeError::new_err(format!(
                    "String size limit exceeded: {} > {max}",
                    s.len()
                )));
            }
            self.add(s.len().saturating_add(16))?;
            return Ok(HostValue::String(s));
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            self.add(b.as_bytes().len())?;
            return Ok(HostValue::Bytes(b.as_bytes().to_vec()));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            self.add(b.len())?;
            return Ok(HostValue::Bytes(b.to_vec()));
        }
        if obj.is_instance_of::<PyMemoryView>() {
            let b = py.get_type::<PyBytes>().call1((obj,))?;
            let b = b.cast::<PyBytes>()?.as_bytes();
            self.add(b.len())?;
            return Ok(HostValue::Bytes(b.to_vec()));
        }
        if let Ok(f) = obj.cast::<JsFunction>() {
            let f = f.borrow();
            let id = f.handle_for(self.state)?;
            self.add(8)?;
            return Ok(HostValue::Function(id));
        }
        if let Ok(l) = obj.cast::<PyList>() {
            self.enter(obj, "list")?;
            self.add(16usize.saturating_add(l.len().saturating_mul(8)))?;
            let mut out = Vec::with_capacity(l.len());
            for item in l.iter() {
                out.push(self.convert(&item)?);
            }
            self.path.pop();
            return Ok(HostValue::Array(out));
        }
        if obj.is_instance_of::<PyTuple>() {
            return Err(PyRuntimeError::new_err(UNSUPPORTED));
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            self.enter(obj, "dict")?;
            self.add(24usize.saturating_add(d.len().saturating_mul(16)))?;
            let mut out = Vec::with_capacity(d.len());
            for (k, v) in d.iter() {
                let key = match k.cast::<PyString>() {
                    Ok(s) => py_str(s)?,
                    Err(_) => {
                        return Err(PyTypeError::new_err(format!(
                            "'{}' object cannot be cast as 'str'",
                            k.get_type().name()?
                        )));
                    }
                };
                self.add(key.len().saturating_add(8))?;
                out.push((key, self.convert(&v)?));
            }
            self.path.pop();
            return Ok(HostValue::Object(out));
        }
        if obj.is_instance_of::<PySet>() || obj.is_instance_of::<PyFrozenSet>() {
            self.enter(obj, "set")?;
            self.add(24usize.saturating_add(obj.len()?.saturating_mul(8)))?;
            let mut out = Vec::new();
            for item in obj.try_iter()? {
                out.push(self.convert(&item?)?);
            }
            self.path.pop();
            return Ok(HostValue::Set(out));
        }
        let dt = py.import(intern!(py, "datetime"))?;
        if obj.is_instance(&dt.getattr(intern!(py, "datetime"))?)? {
            let obj = if obj.getattr(intern!(py, "tzinfo"))?.is_none() {
                let utc = dt
                    .getattr(intern!(py, "timezone"))?
                    .getattr(intern!(py, "utc"))?;
                let kwargs = PyDict::new(py);
                kwargs.set_item("tzinfo", utc)?;
                obj.call_method(intern!(py, "replace"), (), Some(&kwargs))?
            } else {
                obj.clone()
            };
            let ts: f64 = obj.call_method0(intern!(py, "timestamp"))?.extract()?;
            self.add(16)?;
            return Ok(HostValue::Date((ts * 1000.0).round()));
        }
        if let Ok(ops) = obj.getattr(intern!(py, "_tether_stream_ops")) {
            let (owner, pull, cancel): (u64, u32, u32) = ops.extract()?;
            if owner != self.state.uid {
                return Err(PyRuntimeError::new_err(
                    "This stream source belongs to another runtime",
                ));
            }
            self.add(4)?;
            return Ok(HostValue::HostStream { pull, cancel });
        }
        Err(PyRuntimeError::new_err(UNSUPPORTED))
    }
}

/// A Python str as UTF-8; lone surrogates (which UTF-8 cannot hold) become U+FFFD.
pub(crate) fn py_str(s: &Bound<'_, PyString>) -> PyResult<String> {
    if let Ok(c) = s.to_cow() {
        return Ok(c.into_owned());
    }
    let utf16 = s.call_method1(intern!(s.py(), "encode"), ("utf-16-le", "surrogatepass"))?;
    let bytes = utf16.cast::<PyBytes>()?.as_bytes();
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

/// Converts one Python value for `state`'s runtime.
pub(crate) fn from_py(obj: &Bound<'_, PyAny>, state: &Arc<State>) -> PyResult<HostValue> {
    FromPy::new(state).convert(obj)
}
