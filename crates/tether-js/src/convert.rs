//! JS values to [`HostValue`] and back, with jsrun's limits and error messages.

use std::cell::RefCell;
use std::collections::HashMap;

use rquickjs::function::{Args, This};
use rquickjs::{Array, Ctx, Function, Object, Persistent, Type, TypedArray, Value};

use crate::error::JsError;
use crate::value::HostValue;

/// A JS value kept alive for the host: a function (with the `this` it was read from) or a
/// pending promise.
pub(crate) struct Handle {
    pub value: Persistent<Value<'static>>,
    pub this: Option<Persistent<Value<'static>>>,
}

/// Handles the host holds, by id.
#[derive(Default)]
pub(crate) struct Handles {
    pub next: u64,
    pub map: HashMap<u64, Handle>,
}

impl Handles {
    pub fn insert<'js>(&mut self, ctx: &Ctx<'js>, v: Value<'js>, this: Option<Value<'js>>) -> u64 {
        let id = self.next;
        self.next += 1;
        self.map.insert(
            id,
            Handle {
                value: Persistent::save(ctx, v),
                this: this.map(|t| Persistent::save(ctx, t)),
            },
        );
        id
    }
}

/// The converter's view of the bootstrap helpers.
pub(crate) struct Helpers<'js> {
    pub kind: Function<'js>,
    pub time: Function<'js>,
    pub set_items: Function<'js>,
    pub big_to_string: Function<'js>,
    pub bigint: Function<'js>,
    pub date: Function<'js>,
    pub set: Function<'js>,
    pub well_formed: Function<'js>,
    pub u8_from_buffer: Function<'js>,
    pub stream_reader: Function<'js>,
    pub host_stream: Function<'js>,
}

impl<'js> Helpers<'js> {
    pub fn from_object(o: &Object<'js>) -> rquickjs::Result<Self> {
        Ok(Helpers {
            kind: o.get("kind")?,
            time: o.get("time")?,
            set_items: o.get("setItems")?,
            big_to_string: o.get("bigToString")?,
            bigint: o.get("bigint")?,
            date: o.get("date")?,
            set: o.get("set")?,
            well_formed: o.get("wellFormed")?,
            u8_from_buffer: o.get("u8FromBuffer")?,
            stream_reader: o.get("streamReader")?,
            host_stream: o.get("hostStream")?,
        })
    }
}

/// Limits for JS → host conversion.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of arrays/objects/sets.
    pub max_depth: usize,
    /// Largest total size (string bytes, 8 per number, …).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 100,
            max_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Converts JS values to host values, registering functions/streams as handles.
pub(crate) struct ToHost<'a, 'js> {
    pub ctx: &'a Ctx<'js>,
    pub helpers: &'a Helpers<'js>,
    pub handles: &'a RefCell<Handles>,
    pub limits: Limits,
    bytes: usize,
    path: Vec<usize>,
}

fn js_err(e: rquickjs::Error) -> JsError {
    JsError::Other(e.to_string())
}

/// Like `js_err`, but takes the pending JS exception's message when there is one.
fn caught(ctx: &Ctx<'_>, e: rquickjs::Error) -> JsError {
    if let rquickjs::Error::Exception = e {
        let ex = ctx.catch();
        let msg = ex
            .as_object()
            .and_then(|o| o.get::<_, rquickjs::Coerced<String>>("message").ok())
            .map(|c| c.0)
            .or_else(|| ex.get::<rquickjs::Coerced<String>>().ok().map(|c| c.0))
            .unwrap_or_else(|| "exception".into());
        return JsError::Conversion(msg);
    }
    js_err(e)
}

fn size_error(bytes: usize, max: usize) -> JsError {
    JsError::Conversion(format!(
        "Size ({bytes} bytes) exceeded maximum limit of {max} bytes"
    ))
}

/// Converts a top-level value that needs none of the bootstrap helpers (undefined, null, a
/// boolean, a number, a well-formed string) as [`ToHost::convert`] would; `None` for anything
/// else. Saves looking the helpers up for the common small result.
pub(crate) fn convert_scalar(v: &Value<'_>, limits: Limits) -> Option<Result<HostValue, JsError>> {
    let sized = |n: usize, out: HostValue| match n > limits.max_bytes {
        true => Err(size_error(n, limits.max_bytes)),
        false => Ok(out),
    };
    Some(match v.type_of() {
        Type::Uninitialized | Type::Undefined => Ok(HostValue::Undefined),
        Type::Null => Ok(HostValue::Null),
        Type::Bool => Ok(HostValue::Bool(v.as_bool().unwrap_or(false))),
        Type::Int | Type::Float => sized(8, HostValue::Number(v.as_number().unwrap_or(f64::NAN))),
        Type::String => {
            let s = v.as_string()?.to_string().ok()?;
            sized(s.len(), HostValue::String(s))
        }
        _ => return None,
    })
}

impl<'a, 'js> ToHost<'a, 'js> {
    pub fn new(
        ctx: &'a Ctx<'js>,
        helpers: &'a Helpers<'js>,
        handles: &'a RefCell<Handles>,
        limits: Limits,
    ) -> Self {
        ToHost {
            ctx,
            helpers,
            handles,
            limits,
            bytes: 0,
            path: Vec::new(),
        }
    }

    fn add_bytes(&mut self, n: usize) -> Result<(), JsError> {
        self.bytes += n;
        if self.bytes > self.limits.max_bytes {
            return Err(size_error(self.bytes, self.limits.max_bytes));
        }
        Ok(())
    }

    /// Converts one value (the top level; `this` is what a function was read from).
    pub fn convert(&mut self, v: Value<'js>) -> Result<HostValue, JsError> {
        self.value(v, None)
    }

    fn enter(&mut self, v: &Value<'js>) -> Result<(), JsError> {
        if self.path.len() >= self.limits.max_depth {
            return Err(JsError::Conversion(format!(
                "Depth exceeded maximum limit of {}",
                self.limits.max_depth
            )));
        }
        // SAFETY: `v` is an object, so its JSValue holds a pointer; we only compare it.
        let ptr = unsafe { rquickjs::qjs::JS_VALUE_GET_PTR(v.as_raw()) } as usize;
        if self.path.contains(&ptr) {
            return Err(JsError::Conversion(
                "Cannot serialize circular reference".into(),
            ));
        }
        self.path.push(ptr);
        Ok(())
    }

    fn string(&mut self, s: rquickjs::String<'js>) -> Result<String, JsError> {
        let out = match s.to_string() {
            Ok(s) => s,
            Err(_) => {
                let fixed: rquickjs::String = self
                    .helpers
                    .well_formed
                    .call((s,))
                    .map_err(|e| caught(self.ctx, e))?;
                fixed.to_string().map_err(|e| caught(self.ctx, e))?
            }
        };
        self.add_bytes(out.len())?;
        Ok(out)
    }

    fn value(&mut self, v: Value<'js>, this: Option<&Value<'js>>) -> Result<HostValue, JsError> {
        match v.type_of() {
            Type::Uninitialized | Type::Undefined => Ok(HostValue::Undefined),
            Type::Null => Ok(HostValue::Null),
            Type::Bool => Ok(HostValue::Bool(v.as_bool().unwrap_or(false))),
            Type::Int | Type::Float => {
                self.add_bytes(8)?;
                Ok(HostValue::Number(v.as_number().unwrap_or(f64::NAN)))
            }
            Type::String => match v.into_string() {
                Some(s) => Ok(HostValue::String(self.string(s)?)),
                None => Ok(HostValue::Undefined),
            },
            Type::Symbol => Err(JsError::Conversion("Cannot serialize V8 symbol".into())),
            Type::BigInt => {
                let s: String = self
                    .helpers
                    .big_to_string
                    .call((v,))
                    .map_err(|e| caught(self.ctx, e))?;
                self.add_bytes(s.len())?;
                Ok(HostValue::BigInt(s))
            }
            Type::Function | Type::Constructor => {
                let id = self.handles.borrow_mut().insert(self.ctx, v, this.cloned());
                Ok(HostValue::Function(id))
            }
            Type::Array => {
                self.enter(&v)?;
                let arr = v
                    .into_array()
                    .ok_or_else(|| JsError::Other("not an array".into()))?;
                let mut out = Vec::with_capacity(arr.len());
                for i in 0..arr.len() {
                    let item: Value = arr.get(i).map_err(|e| caught(self.ctx, e))?;
                    out.push(self.value(item, Some(arr.as_value()))?);
                }
                self.path.pop();
                Ok(HostValue::Array(out))
            }
            Type::Object | Type::Promise | Type::Exception | Type::Proxy => self.object(v),
            Type::Module | Type::Unknown => Ok(HostValue::Undefined),
        }
    }

    fn object(&mut self, v: Value<'js>) -> Result<HostValue, JsError> {
        let kind: i32 = self
            .helpers
            .kind
            .call((v.clone(),))
            .map_err(|e| caught(self.ctx, e))?;
        match kind {
            1 => {
                let ms: f64 = self
                    .helpers
                    .time
                    .call((v,))
                    .map_err(|e| caught(self.ctx, e))?;
                if !ms.is_finite() {
                    return Err(JsError::Conversion("Date value out of range".into()));
                }
                self.add_bytes(8)?;
                Ok(HostValue::Date(ms))
            }
            2 => {
                self.enter(&v)?;
                let items: Array = self
                    .helpers
                    .set_items
                    .call((v,))
                    .map_err(|e| caught(self.ctx, e))?;
                let mut out = Vec::with_capacity(items.len());
                for i in 0..items.len() {
                    let item: Value = items.get(i).map_err(|e| caught(self.ctx, e))?;
                    out.push(self.value(item, None)?);
                }
                self.path.pop();
                Ok(HostValue::Set(out))
            }
            3 | 4 => {
                let v = if kind == 4 {
                    self.helpers
                        .u8_from_buffer
                        .call((v,))
                        .map_err(|e| caught(self.ctx, e))?
                } else {
                    v
                };
                let ta = TypedArray::<u8>::from_value(v).map_err(|e| caught(self.ctx, e))?;
                let bytes = match ta.as_raw() {
                    // SAFETY: the view is alive (we hold `ta`) and nothing runs JS while we copy.
                    Some(p) => unsafe { p.as_ref() }.to_vec(),
                    None => Vec::new(),
                };
                self.add_bytes(bytes.len())?;
                Ok(HostValue::Bytes(bytes))
            }
            6 => {
                let parts: Array = self
                    .helpers
                    .stream_reader
                    .call((v,))
                    .map_err(|e| caught(self.ctx, e))?;
                let read: Value = parts.get(0).map_err(|e| caught(self.ctx, e))?;
                let cancel: Value = parts.get(1).map_err(|e| caught(self.ctx, e))?;
                let read = self.handles.borrow_mut().insert(self.ctx, read, None);
                let cancel = self.handles.borrow_mut().insert(self.ctx, cancel, None);
                Ok(HostValue::Stream { read, cancel })
            }
            _ => {
                self.enter(&v)?;
                let obj = v
                    .as_object()
                    .cloned()
                    .ok_or_else(|| JsError::Other("not an object".into()))?;
                let mut out = Vec::new();
                for atom in obj.keys::<rquickjs::Atom>() {
                    let atom = atom.map_err(|e| caught(self.ctx, e))?;
                    // Through a JS string: keys may hold NUL or lone surrogates.
                    let js_key = atom.to_js_string().map_err(|e| caught(self.ctx, e))?;
                    let key = self.string(js_key)?;
                    let item: Value = obj.get(atom).map_err(|e| caught(self.ctx, e))?;
                    let item = self.value(item, Some(&v))?;
                    out.push((key, item));
                }
                self.path.pop();
                Ok(HostValue::Object(out))
            }
        }
    }
}

/// Converts host values to JS; host functions are built by `make_host_fn`.
pub(crate) struct FromHost<'a, 'js, F>
where
    F: FnMut(&Ctx<'js>, u32, &str) -> rquickjs::Result<Function<'js>>,
{
    pub ctx: &'a Ctx<'js>,
    pub helpers: &'a Helpers<'js>,
    pub handles: &'a RefCell<Handles>,
    pub make_host_fn: F,
}

impl<'js, F> FromHost<'_, 'js, F>
where
    F: FnMut(&Ctx<'js>, u32, &str) -> rquickjs::Result<Function<'js>>,
{
    /// Converts one host value.
    pub fn convert(&mut self, v: &HostValue) -> rquickjs::Result<Value<'js>> {
        let ctx = self.ctx.clone();
        Ok(match v {
            HostValue::Undefined => Value::new_undefined(ctx),
            HostValue::Null => Value::new_null(ctx),
            HostValue::Bool(b) => Value::new_bool(ctx, *b),
            HostValue::Number(n) => Value::new_number(ctx, *n),
            HostValue::BigInt(s) => self.helpers.bigint.call((s.as_str(),))?,
            HostValue::String(s) => rquickjs::String::from_str(ctx, s)?.into_value(),
            HostValue::Bytes(b) => TypedArray::<u8>::new_copy(ctx, b)?.into_value(),
            HostValue::Array(items) => {
                let arr = Array::new(ctx)?;
                for (i, item) in items.iter().enumerate() {
                    arr.set(i, self.convert(item)?)?;
                }
                arr.into_value()
            }
            HostValue::Object(props) => {
                let obj = Object::new(ctx)?;
                for (k, item) in props {
                    // Define, not assign: a `__proto__` key must stay an own property.
                    let prop = rquickjs::object::Property::from(self.convert(item)?)
                        .writable()
                        .enumerable()
                        .configurable();
                    obj.prop(k.as_str(), prop)?;
                }
                obj.into_value()
            }
            HostValue::Set(items) => {
                let arr = Array::new(ctx)?;
                for (i, item) in items.iter().enumerate() {
                    arr.set(i, self.convert(item)?)?;
                }
                self.helpers.set.call((arr,))?
            }
            HostValue::Date(ms) => self.helpers.date.call((*ms,))?,
            HostValue::Function(id) => {
                match self.handles.borrow().map.get(id).map(|h| h.value.clone()) {
                    Some(h) => h.restore(&ctx)?,
                    None => {
                        return Err(rquickjs::Exception::throw_type(
                            &ctx,
                            "Function has been closed",
                        ));
                    }
                }
            }
            HostValue::Stream { read, .. } => {
                match self.handles.borrow().map.get(read).map(|h| h.value.clone()) {
                    Some(h) => h.restore(&ctx)?,
                    None => Value::new_undefined(ctx),
                }
            }
            HostValue::HostFunction { op, name } => {
                (self.make_host_fn)(&ctx, *op, name)?.into_value()
            }
            HostValue::HostStream { pull, cancel } => {
                let pull = (self.make_host_fn)(&ctx, *pull, "pull")?;
                let cancel = (self.make_host_fn)(&ctx, *cancel, "cancel")?;
                self.helpers.host_stream.call((pull, cancel))?
            }
        })
    }
}

/// Calls a function with an explicit `this` and arguments.
pub(crate) fn call_with_this<'js>(
    ctx: &Ctx<'js>,
    f: &Function<'js>,
    this: Value<'js>,
    args: Vec<Value<'js>>,
) -> rquickjs::Result<Value<'js>> {
    let mut a = Args::new(ctx.clone(), args.len());
    a.this(this)?;
    a.push_args(args)?;
    let _ = This(());
    f.call_arg(a)
}
