//! The exceptions `tether._native` raises, one base class for all.

use pyo3::create_exception;
use pyo3::exceptions::PyException;

create_exception!(
    _native,
    TetherError,
    PyException,
    "Base class of every error raised by tether."
);
create_exception!(
    _native,
    ConfigError,
    TetherError,
    "A setting that cannot be used; the message says which and why."
);
create_exception!(
    _native,
    ServerError,
    TetherError,
    "The server could not start or failed while running (e.g. an address already in use)."
);
