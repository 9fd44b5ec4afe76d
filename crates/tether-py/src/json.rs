//! Python values ⇄ JSON values, and an in-place diff of a Python value against a stored JSON
//! value: the native half of `tether.sync`'s snapshots.
//!
//! The Python side hands over plain JSON-like values (`dict` with `str` keys, `list`, `tuple`,
//! `str`, `int`, `float`, `bool`, `None`, and subclasses of these, as `json.dumps` accepts them);
//! anything else is refused with a message that names the path and the type.

use std::cell::{Cell, RefCell};
use std::sync::Mutex;

use pyo3::Borrowed;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde_json::{Map, Number, Value};
use tether_patch::{PatchOp, diff_into, pointer};

/// How deep a value may nest; deeper (or cyclic) values are refused instead of overflowing.
pub const MAX_DEPTH: usize = 256;

/// Where a value sits: a chain of tokens on the stack, turned into a JSON pointer only when one
/// is needed (an op or an error), so walking an unchanged value builds no strings.
#[derive(Clone, Copy)]
pub enum At<'a> {
    /// A pointer already formatted (`""` for the root, `/items` for a part).
    Root(&'a str),
    /// An object key under a parent.
    Key(&'a At<'a>, &'a str),
    /// An array index under a parent.
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    /// The RFC 6901 pointer.
    pub fn pointer(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            At::Root(p) => out.push_str(p),
            At::Key(parent, key) => {
                parent.write(out);
                pointer::push_token(out, key);
            }
            At::Index(parent, i) => {
                parent.write(out);
                push_index(out, *i);
            }
        }
    }
}

/// Why a Python value could not be walked as JSON.
pub enum WalkError {
    /// A value that is not JSON-like (`type name`, `path`): the caller may serialize it another
    /// way (pydantic), or report it (`TypeError`).
    Opaque(String, String),
    /// A number JSON cannot carry (NaN, infinities, ints beyond 64 bits; `what`, `path`): the
    /// caller may serialize it another way, or report it (`ValueError`).
    Unrepresentable(String, String),
    /// A real error (a non-str key, too deep, a failing Python call).
    Py(PyErr),
}

impl WalkError {
    /// Whether another serializer (pydantic's `dump_json`) might still handle the value.
    pub fn is_fallback(&self) -> bool {
        !matches!(self, WalkError::Py(_))
    }
}

impl From<PyErr> for WalkError {
    fn from(e: PyErr) -> Self {
        WalkError::Py(e)
    }
}

impl From<WalkError> for PyErr {
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::Py(e) => e,
            WalkError::Opaque(kind, path) => PyTypeError::new_err(format!(
                "value at {} is a {kind}, which is not JSON; use dict/list/str/int/float/bool/\
                 None, or annotate the attribute so pydantic can serialize it",
                shown(&path)
            )),
            WalkError::Unrepresentable(what, path) => PyValueError::new_err(format!(
                "value at {} is {what}, which JSON cannot represent",
                shown(&path)
            )),
        }
    }
}

/// How many model classes the cache below keeps before it starts over.
const MAX_MODEL_CLASSES: usize = 4096;

/// Model classes already asked about, kept alive so their addresses are not reused.
static MODEL_CLASSES: Mutex<Vec<(usize, Py<PyType>, bool)>> = Mutex::new(Vec::new());

/// Walks Python values as JSON. With a model check (`check(cls) -> bool`), instances of the
/// classes it accepts are walked as their `__dict__` (pydantic models whose JSON dump is exactly
/// their fields); others are [`WalkError::Opaque`].
pub struct Walker<'py> {
    check: Option<Bound<'py, PyAny>>,
    last: Cell<(usize, bool)>,
    keys: RefCell<KeyCache<'py>>,
}

/// How many dict keys [`KeyCache`] remembers (a power of two).
const KEY_SLOTS: usize = 32;

/// The UTF-8 of recently seen `str` dict keys, by object: the items of a list mostly share their
/// key objects (a model's field names, a literal's interned keys), and asking CPython for a key's
/// UTF-8 is a call per key per item. Each slot holds its key alive, so its address cannot be
/// reused by another string while it is cached.
struct KeyCache<'py> {
    slots: [Option<(Bound<'py, PyString>, *const u8, usize)>; KEY_SLOTS],
}

impl<'py> KeyCache<'py> {
    /// The UTF-8 of an exact `str`, from the cache or CPython (then cached).
    #[inline]
    fn utf8<'a>(&'a mut self, s: &Bound<'py, PyString>) -> PyResult<&'a [u8]> {
        let ptr = s.as_ptr() as usize;
        let slot = &mut self.slots[(ptr >> 4 ^ ptr >> 9) & (KEY_SLOTS - 1)];
        let hit = matches!(slot, Some((k, _, _)) if k.as_ptr() as usize == ptr);
        if !hit {
            let bytes = s.to_str()?.as_bytes();
            *slot = Some((s.clone(), bytes.as_ptr(), bytes.len()));
        }
        let Some((_, data, len)) = slot else {
            unreachable!("the slot was just filled")
        };
        // SAFETY: `data`/`len` are the UTF-8 CPython gave for the string the slot holds alive;
        // CPython keeps a str's UTF-8 for the string's lifetime and strings are immutable.
        Ok(unsafe { std::slice::from_raw_parts(*data, *len) })
    }
}

impl<'py> Walker<'py> {
    /// A walker for plain JSON values only.
    pub fn plain() -> Self {
        Self::new(None)
    }

    /// A walker that also walks the model classes `check` accepts.
    pub fn new(check: Option<Bound<'py, PyAny>>) -> Self {
        Self {
            check,
            last: Cell::new((0, false)),
            keys: RefCell::new(KeyCache {
                slots: [const { None }; KEY_SLOTS],
            }),
        }
    }

    fn is_walkable_model(&self, obj: &Bound<'py, PyAny>) -> PyResult<bool> {
        let Some(check) = &self.check else {
            return Ok(false);
        };
        let id = obj.get_type_ptr() as usize;
        let (last_id, last_ok) = self.last.get();
        if last_id == id {
            return Ok(last_ok);
        }
        let known = {
            let classes = MODEL_CLASSES.lock().unwrap_or_else(|p| p.into_inner());
            classes
                .iter()
                .find(|(i, _, _)| *i == id)
                .map(|(_, _, ok)| *ok)
        };
        let ok = match known {
            Some(ok) => ok,
            None => {
                let ty = obj.get_type();
                let ok = check.call1((&ty,))?.is_truthy()?;
                let mut classes = MODEL_CLASSES.lock().unwrap_or_else(|p| p.into_inner());
                if classes.len() >= MAX_MODEL_CLASSES {
                    classes.clear(); // classes made on the fly: start over rather than grow
                }
                classes.push((id, ty.unbind(), ok));
                ok
            }
        };
        self.last.set((id, ok));
        Ok(ok)
    }

    /// The dict to walk for a walkable model instance, else `None`.
    fn model_dict(&self, obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyDict>>> {
        if !self.is_walkable_model(obj)? {
            return Ok(None);
        }
        // SAFETY: `obj` is alive; PyObject_GenericGetDict returns a new reference or NULL with
        // an exception set.
        let d = unsafe {
            Bound::from_owned_ptr_or_err(
                obj.py(),
                ffi::PyObject_GenericGetDict(obj.as_ptr(), std::ptr::null_mut()),
            )
        }?;
        if is_exact(&d, BuiltIn::Dict) {
            // SAFETY: the type was just checked to be exactly `dict`.
            return Ok(Some(unsafe { d.cast_into_unchecked::<PyDict>() }));
        }
        Ok(d.cast_into::<PyDict>().ok())
    }

    /// Converts a Python value to JSON; `at` is only used in error messages.
    pub fn to_value(
        &self,
        obj: &Bound<'py, PyAny>,
        at: &At<'_>,
        depth: usize,
    ) -> Result<Value, WalkError> {
        if depth > MAX_DEPTH {
            return Err(PyValueError::new_err(format!(
                "value at {} nests deeper than {MAX_DEPTH} levels (or contains itself)",
                shown(&at.pointer())
            ))
            .into());
        }
        if obj.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Value::String(s.to_str()?.to_owned()));
        }
        if let Ok(b) = obj.cast::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if obj.cast::<PyInt>().is_ok() {
            return int_value(obj, at);
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            return float_value(f.value(), at);
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            return self.dict_value(d, at, depth);
        }
        if let Ok(l) = obj.cast::<PyList>() {
            return self.seq_value(l.iter(), l.len(), at, depth);
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            return self.seq_value(t.iter(), t.len(), at, depth);
        }
        if let Some(d) = self.model_dict(obj)? {
            return self.dict_value(&d, at, depth);
        }
        Err(WalkError::Opaque(
            obj.get_type().name()?.to_string(),
            at.pointer(),
        ))
    }

    fn dict_value(
        &self,
        d: &Bound<'py, PyDict>,
        at: &At<'_>,
        depth: usize,
    ) -> Result<Value, WalkError> {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = dict_key(&k, at)?;
            let value = self.to_value(&v, &At::Key(at, &key), depth + 1)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }

    fn seq_value(
        &self,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        len: usize,
        at: &At<'_>,
        depth: usize,
    ) -> Result<Value, WalkError> {
        let mut out = Vec::with_capacity(len);
        for (i, item) in items.enumerate() {
            out.push(self.to_value(&item, &At::Index(at, i), depth + 1)?);
        }
        Ok(Value::Array(out))
    }

    /// Diffs the Python value `obj` against `prev` in place: `prev` becomes `obj`'s JSON and the
    /// ops that turn the old `prev` into it are appended to `ops` (paths under `at`).
    ///
    /// Containers of the same shape are walked without converting anything, so an unchanged
    /// value costs one comparison walk and a changed one converts only the subtrees that differ.
    /// On an error `prev` may be partly updated, consistently with the ops already appended.
    pub fn diff(
        &self,
        prev: &mut Value,
        obj: &Bound<'py, PyAny>,
        at: &At<'_>,
        ops: &mut Vec<PatchOp>,
        depth: usize,
    ) -> Result<(), WalkError> {
        if depth <= MAX_DEPTH {
            match &mut *prev {
                Value::Object(map) => {
                    let model;
                    let dict = if is_exact(obj, BuiltIn::Dict) {
                        // SAFETY: the type was just checked to be exactly `dict`.
                        Some(unsafe { obj.cast_unchecked::<PyDict>() })
                    } else if let Ok(d) = obj.cast::<PyDict>() {
                        Some(d)
                    } else {
                        model = self.model_dict(obj)?;
                        model.as_ref()
                    };
                    if let Some(d) = dict
                        && dict_len(d) == map.len()
                        && self.diff_same_keys(map, d, at, ops, depth)?
                    {
                        return Ok(());
                    }
                }
                Value::Array(items) => {
                    let list = if is_exact(obj, BuiltIn::List) {
                        // SAFETY: the type was just checked to be exactly `list`.
                        Some(unsafe { obj.cast_unchecked::<PyList>() })
                    } else {
                        obj.cast::<PyList>().ok()
                    };
                    if let Some(l) = list
                        && list_len(l) == items.len()
                    {
                        let py = l.py();
                        for i in 0..items.len() {
                            prefetch_ahead(items, i);
                            prefetch_list_item(l, i + PREFETCH_DISTANCE, items.len());
                            let child = &mut items[i];
                            let i_ssize =
                                ffi::Py_ssize_t::try_from(i).unwrap_or(ffi::Py_ssize_t::MAX);
                            // SAFETY: `l` is alive; PyList_GetItem returns a borrowed reference
                            // (or NULL with IndexError, if Python code shrank the list meanwhile).
                            let item = unsafe {
                                Borrowed::from_ptr_or_err(
                                    py,
                                    ffi::PyList_GetItem(l.as_ptr(), i_ssize),
                                )
                            }?;
                            self.diff_child(child, item, &At::Index(at, i), ops, depth)?;
                        }
                        return Ok(());
                    }
                }
                scalar => {
                    if scalar_eq(&*scalar, obj)? {
                        return Ok(());
                    }
                }
            }
        }
        let new = self.to_value(obj, at, depth)?;
        diff_into(prev, &new, &mut at.pointer(), ops);
        *prev = new;
        Ok(())
    }

    /// Diffs entry by entry while the dict's keys are the map's, in the same order; `false` as
    /// soon as they are not (the entries before were diffed, consistently with `ops`). The dict
    /// must have as many entries as the map.
    fn diff_same_keys(
        &self,
        map: &mut Map<String, Value>,
        d: &Bound<'py, PyDict>,
        at: &At<'_>,
        ops: &mut Vec<PatchOp>,
        depth: usize,
    ) -> Result<bool, WalkError> {
        let py = d.py();
        let mut pos: ffi::Py_ssize_t = 0;
        let mut k: *mut ffi::PyObject = std::ptr::null_mut();
        let mut v: *mut ffi::PyObject = std::ptr::null_mut();
        for (key, child) in map.iter_mut() {
            // SAFETY: `d` is alive; PyDict_Next hands out borrowed references, used below only
            // until the next call, and a value is made a strong reference before any Python code
            // can run (`diff_child`).
            if unsafe { ffi::PyDict_Next(d.as_ptr(), &mut pos, &mut k, &mut v) } == 0 {
                return Ok(false);
            }
            let (k, v) = unsafe { (Borrowed::from_ptr(py, k), Borrowed::from_ptr(py, v)) };
            let same = if is_exact(&k, BuiltIn::Str) {
                // SAFETY: the type was just checked to be exactly `str`.
                let s = unsafe { k.cast_unchecked::<PyString>() };
                bytes_eq(self.keys.borrow_mut().utf8(&s)?, key.as_bytes())
            } else {
                str_is(&k, key)?
            };
            if !same {
                return Ok(false);
            }
            self.diff_child(child, v, &At::Key(at, key), ops, depth)?;
        }
        Ok(true)
    }

    /// Diffs one child: an unchanged scalar is settled here without touching refcounts; anything
    /// else is held by a strong reference while it is walked (walking may run Python code).
    #[inline]
    fn diff_child(
        &self,
        child: &mut Value,
        item: Borrowed<'_, 'py, PyAny>,
        at: &At<'_>,
        ops: &mut Vec<PatchOp>,
        depth: usize,
    ) -> Result<(), WalkError> {
        if !matches!(child, Value::Object(_) | Value::Array(_)) && scalar_eq(child, &item)? {
            return Ok(());
        }
        let item = item.to_owned();
        self.diff(child, &item, at, ops, depth + 1)
    }
}

/// How many items ahead [`prefetch_ahead`] starts loading a baseline item's memory.
const PREFETCH_DISTANCE: usize = 8;

/// Asks the CPU to start loading the baseline memory the walk will read a few items from now:
/// the entries of the item `PREFETCH_DISTANCE` ahead, and the strings and arrays those of the
/// item half as far ahead point to (loaded by the first step by then). A sync of a big list is
/// bound by memory latency once other work has evicted the baseline from the caches (as a
/// `gc.collect()` does); overlapping the loads hides much of it. Only a hint: it reads nothing.
#[inline]
fn prefetch_ahead(items: &[Value], i: usize) {
    if let Some(far) = items.get(i + PREFETCH_DISTANCE) {
        prefetch_shallow(far);
    }
    if let Some(Value::Object(map)) = items.get(i + PREFETCH_DISTANCE / 2) {
        for (key, value) in map {
            prefetch(key.as_ptr());
            prefetch_shallow(value);
        }
    }
}

/// Prefetches the Python object at `index` of a list of `len` items, if `index` is in it (the
/// list's own item array is read; the object is only hinted).
#[inline]
fn prefetch_list_item(l: &Bound<'_, PyList>, index: usize, len: usize) {
    if index >= len {
        return;
    }
    let Ok(i) = ffi::Py_ssize_t::try_from(index) else {
        return;
    };
    // SAFETY: `l` is a live list; PyList_GetItem returns a borrowed reference, only hinted here,
    // or NULL with an IndexError set if Python code shrank the list meanwhile, cleared at once
    // (no other exception is pending while the walk runs: it returns on the first error).
    let item = unsafe { ffi::PyList_GetItem(l.as_ptr(), i) };
    if item.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return;
    }
    prefetch_lines(item.cast(), 128);
}

/// Prefetches the heap memory a value points to directly (its first few cache lines).
#[inline]
fn prefetch_shallow(v: &Value) {
    match v {
        Value::String(s) => prefetch(s.as_ptr()),
        Value::Array(a) => prefetch_lines(a.as_ptr().cast(), std::mem::size_of_val(&a[..])),
        Value::Object(m) => {
            if let Some((key, _)) = m.iter().next() {
                // The map's entries are contiguous (key, value and hash per entry).
                let entry = std::ptr::from_ref(key).cast::<u8>();
                prefetch_lines(entry, m.len() * 64);
            }
        }
        _ => {}
    }
}

/// Prefetches up to 8 cache lines from `p`.
#[inline]
fn prefetch_lines(p: *const u8, bytes: usize) {
    let lines = bytes.div_ceil(64).min(8);
    for line in 0..lines {
        prefetch(p.wrapping_add(line * 64));
    }
}

/// A prefetch hint for the cache line at `p` (no-op where there is no such instruction).
#[inline]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults nor reads into the program, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The UTF-8 of an object known to be exactly `str` (one call; pyo3's wrapper is not inlined
/// across crates).
#[inline]
fn exact_str_utf8<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: `obj` is a live `str`; the UTF-8 CPython returns lives as long as the string
    // (borrowed for `'a`), or NULL with an exception set (unencodable surrogates).
    let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(obj.as_ptr(), &mut len) };
    if data.is_null() {
        return Err(PyErr::fetch(obj.py()));
    }
    let len = usize::try_from(len).unwrap_or(0);
    // SAFETY: see above; `len` bytes at `data`.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

/// A dict's length in one call.
#[inline]
fn dict_len(d: &Bound<'_, PyDict>) -> usize {
    // SAFETY: `d` is a live dict.
    usize::try_from(unsafe { ffi::PyDict_Size(d.as_ptr()) }).unwrap_or(usize::MAX)
}

/// A list's length in one call.
#[inline]
fn list_len(l: &Bound<'_, PyList>) -> usize {
    // SAFETY: `l` is a live list.
    usize::try_from(unsafe { ffi::PyList_Size(l.as_ptr()) }).unwrap_or(usize::MAX)
}

/// Whether a Python object is a `str` equal to `key`.
#[inline]
fn str_is(obj: &Bound<'_, PyAny>, key: &str) -> PyResult<bool> {
    let Ok(s) = obj.cast::<PyString>() else {
        return Ok(false);
    };
    Ok(bytes_eq(s.to_str()?.as_bytes(), key.as_bytes()))
}

/// Byte equality without a libc call for the short strings keys and values mostly are: up to 16
/// bytes as two overlapping words (no loop), longer ones by `memcmp`.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    let half = |s: &[u8], at: usize| {
        let mut w = [0; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_ne_bytes(w)
    };
    match n {
        0 => true,
        1..4 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

#[derive(Clone, Copy)]
enum BuiltIn {
    Str,
    Int,
    Float,
    Bool,
    Dict,
    List,
}

/// The type object of a built-in scalar type, to test exact types by pointer.
#[inline]
fn builtin(which: BuiltIn) -> *mut ffi::PyTypeObject {
    // Only the addresses of the interpreter's static type objects are taken (no access).
    match which {
        BuiltIn::Str => &raw mut ffi::PyUnicode_Type,
        BuiltIn::Int => &raw mut ffi::PyLong_Type,
        BuiltIn::Float => &raw mut ffi::PyFloat_Type,
        BuiltIn::Bool => &raw mut ffi::PyBool_Type,
        BuiltIn::Dict => &raw mut ffi::PyDict_Type,
        BuiltIn::List => &raw mut ffi::PyList_Type,
    }
}

/// Whether `obj` is exactly of a built-in type: one pointer comparison, where a type check by
/// flags is a call into CPython under the stable ABI.
#[inline]
fn is_exact(obj: &Bound<'_, PyAny>, which: BuiltIn) -> bool {
    obj.get_type_ptr() == builtin(which)
}

/// Converts a plain Python JSON value (no models); see [`Walker::to_value`].
pub fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    Walker::plain()
        .to_value(obj, &At::Root(""), 0)
        .map_err(PyErr::from)
}

fn int_value(obj: &Bound<'_, PyAny>, at: &At<'_>) -> Result<Value, WalkError> {
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(Value::Number(i.into()));
    }
    if let Ok(u) = obj.extract::<u64>() {
        return Ok(Value::Number(u.into()));
    }
    Err(WalkError::Unrepresentable(
        "an int beyond 64 bits (send it as a string)".into(),
        at.pointer(),
    ))
}

fn float_value(f: f64, at: &At<'_>) -> Result<Value, WalkError> {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| {
        WalkError::Unrepresentable(
            format!("the float {f} (browsers reject NaN and Infinity)"),
            at.pointer(),
        )
    })
}

fn dict_key(k: &Bound<'_, PyAny>, at: &At<'_>) -> PyResult<String> {
    match k.cast::<PyString>() {
        Ok(s) => Ok(s.to_str()?.to_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "dict at {} has a key of type {}; JSON object keys must be str",
            shown(&at.pointer()),
            k.get_type().name()?
        ))),
    }
}

fn push_index(path: &mut String, i: usize) {
    use std::fmt::Write;
    let _ = write!(path, "/{i}");
}

fn shown(path: &str) -> &str {
    if path.is_empty() { "the root" } else { path }
}

/// Converts JSON to Python objects (`dict`, `list`, `str`, `int`, `float`, `bool`, `None`).
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for item in a {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(m) => {
            let dict = PyDict::new(py);
            for (k, item) in m {
                dict.set_item(k, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Whether a Python scalar converts to exactly `v` (containers never compare equal here).
#[inline]
fn scalar_eq(v: &Value, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    // Exact built-in types first (the common case), by comparing type pointers.
    let ty = obj.get_type_ptr();
    Ok(match v {
        Value::Null => obj.is_none(),
        Value::Bool(b) => obj.cast::<PyBool>().is_ok_and(|o| o.is_true() == *b),
        Value::String(s) => {
            if ty == builtin(BuiltIn::Str) {
                // SAFETY: the type was just checked to be exactly `str`.
                bytes_eq(exact_str_utf8(obj)?, s.as_bytes())
            } else {
                str_is(obj, s)?
            }
        }
        Value::Number(n) => {
            if ty == builtin(BuiltIn::Float) {
                // SAFETY: the type was just checked to be exactly `float`
                // (PyFloat_AsDouble cannot fail on an exact float.)
                let f = unsafe { ffi::PyFloat_AsDouble(obj.as_ptr()) };
                n.is_f64() && n.as_f64() == Some(f)
            } else if ty == builtin(BuiltIn::Bool) || obj.cast::<PyBool>().is_ok() {
                false
            } else if ty == builtin(BuiltIn::Int) {
                let mut overflow = 0;
                // SAFETY: `obj` is exactly an `int`: no `__index__` runs and, with the overflow
                // flag, no exception is set.
                let i = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj.as_ptr(), &mut overflow) };
                if overflow == 0 {
                    n.as_i64() == Some(i)
                } else {
                    n.as_u64()
                        .is_some_and(|u| obj.extract::<u64>().is_ok_and(|o| o == u))
                }
            } else if obj.cast::<PyInt>().is_ok() {
                match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => obj.extract::<i64>().is_ok_and(|o| o == i),
                    (None, Some(u)) => obj.extract::<u64>().is_ok_and(|o| o == u),
                    _ => false, // a float snapshot and an int value print differently
                }
            } else if let Ok(f) = obj.cast::<PyFloat>() {
                n.is_f64() && n.as_f64() == Some(f.value())
            } else {
                false
            }
        }
        Value::Array(_) | Value::Object(_) => false,
    })
}
