//! `JsFunction`: a JS function kept alive in its runtime (its Python methods are in `call.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::state::State;

pub(super) const PREFIX: &str = "Function call failed: ";

/// A JS function (or method, with its `this`); calling it runs it in its runtime. Weakly
/// referenceable, as jsrun's is (libraries cache functions in weak mappings).
#[pyclass(name = "JsFunction", module = "tether.js", frozen, weakref)]
pub struct JsFunction {
    pub(super) state: Arc<State>,
    pub(super) id: u64,
    pub(super) closed: AtomicBool,
}

impl JsFunction {
    /// A function handed to the user (counted by `_debug_tracked_function_count`).
    pub(crate) fn new(state: Arc<State>, id: u64) -> Self {
        Self::tracked(state, id, true)
    }

    /// One of a `JsStream`'s reader functions (released like a function, but not counted).
    pub(crate) fn for_stream(state: Arc<State>, id: u64) -> Self {
        Self::tracked(state, id, false)
    }

    fn tracked(state: Arc<State>, id: u64, counted: bool) -> Self {
        state.track(id, counted);
        JsFunction {
            state,
            id,
            closed: AtomicBool::new(false),
        }
    }

    /// The handle to pass back into JS (which must be this function's runtime).
    pub(crate) fn handle_for(&self, state: &Arc<State>) -> PyResult<u64> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(PyRuntimeError::new_err("Function has been closed"));
        }
        if self.state.uid != state.uid {
            return Err(PyRuntimeError::new_err(
                "This JsFunction belongs to another runtime",
            ));
        }
        Ok(self.id)
    }

    /// Fails when the function or its runtime is closed or terminated.
    pub(super) fn check(&self) -> PyResult<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(PyRuntimeError::new_err("Function has been closed"));
        }
        if self.state.terminated.load(Ordering::SeqCst) {
            return Err(self.state.terminated_error(PREFIX));
        }
        if self.state.is_gone() {
            return Err(PyRuntimeError::new_err(format!(
                "{PREFIX}Runtime has been shut down"
            )));
        }
        Ok(())
    }

    /// Gives the handle back to the runtime (once).
    pub(super) fn release(&self) {
        // A handle the runtime released when it closed needs nothing more.
        if !self.closed.swap(true, Ordering::SeqCst)
            && self.state.untrack(self.id)
            && !self.state.is_gone()
        {
            self.state.rt.release(self.id);
        }
    }
}

impl Drop for JsFunction {
    fn drop(&mut self) {
        self.release();
    }
}
