//! [`Snapshot`]: QuickJS has no heap images, so a snapshot is the list of bootstrap scripts
//! compiled to bytecode; a runtime created from it replays them at start.

use std::ffi::CString;

use rquickjs::{Ctx, qjs};

use crate::error::JsError;

const MAGIC: &[u8; 8] = b"TJSSNAP1";

/// Compiled bootstrap scripts, replayed in order when a runtime starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    scripts: Vec<(String, Vec<u8>)>,
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Snapshot {
    /// Number of scripts.
    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    /// Whether there are no scripts.
    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    /// Adds a script's bytecode (compiled by the builder).
    pub fn push(&mut self, name: String, bytecode: Vec<u8>) {
        self.scripts.push((name, bytecode));
    }

    /// Serializes: magic, count, then (name, bytecode) pairs, then a checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(self.scripts.len() as u32).to_le_bytes());
        for (name, code) in &self.scripts {
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(code.len() as u32).to_le_bytes());
            out.extend_from_slice(code);
        }
        let sum = fnv(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parses bytes from [`Snapshot::to_bytes`]; anything else is rejected (never fed to the
    /// engine).
    pub fn from_bytes(data: &[u8]) -> Result<Self, JsError> {
        let bad = || JsError::Other("Invalid snapshot data".into());
        if data.len() < MAGIC.len() + 12 || &data[..MAGIC.len()] != MAGIC {
            return Err(bad());
        }
        let (body, sum) = data.split_at(data.len() - 8);
        let sum = u64::from_le_bytes(sum.try_into().map_err(|_| bad())?);
        if fnv(body) != sum {
            return Err(bad());
        }
        let mut pos = MAGIC.len();
        let mut take = |n: usize| -> Result<&[u8], JsError> {
            let s = body.get(pos..pos + n).ok_or_else(bad)?;
            pos += n;
            Ok(s)
        };
        let u32_at = |b: &[u8]| -> Result<usize, JsError> {
            Ok(u32::from_le_bytes(b.try_into().map_err(|_| bad())?) as usize)
        };
        let count = u32_at(take(4)?)?;
        let mut scripts = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let n = u32_at(take(4)?)?;
            let name = String::from_utf8(take(n)?.to_vec()).map_err(|_| bad())?;
            let n = u32_at(take(4)?)?;
            scripts.push((name, take(n)?.to_vec()));
        }
        Ok(Snapshot { scripts })
    }

    /// Runs every script in `ctx`.
    pub(crate) fn replay(&self, ctx: &Ctx<'_>) -> Result<(), String> {
        for (name, code) in &self.scripts {
            let raw = ctx.as_raw().as_ptr();
            // SAFETY: the bytes passed the checksum, so they are bytecode this library wrote
            // with the same engine; the returned values are freed exactly once.
            unsafe {
                let f = qjs::JS_ReadObject(
                    raw,
                    code.as_ptr(),
                    code.len() as _,
                    qjs::JS_READ_OBJ_BYTECODE as i32,
                );
                if qjs::JS_IsException(f) {
                    let _ = ctx.catch();
                    return Err(format!("cannot read script {name}"));
                }
                let r = qjs::JS_EvalFunction(raw, f);
                if qjs::JS_IsException(r) {
                    let e = ctx.catch();
                    let text = e
                        .get::<rquickjs::Coerced<String>>()
                        .map(|c| c.0)
                        .unwrap_or_default();
                    return Err(format!("script {name} threw: {text}"));
                }
                qjs::JS_FreeValue(raw, r);
            }
        }
        Ok(())
    }
}

/// Runs bytecode from [`compile_script`] and returns the script's completion value.
pub(crate) fn eval_bytecode<'js>(
    ctx: &Ctx<'js>,
    code: &[u8],
) -> rquickjs::Result<rquickjs::Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `code` was produced by `compile_script` in this process (same engine build); the
    // returned value is owned by the `Value` we wrap it in.
    unsafe {
        let f = qjs::JS_ReadObject(
            raw,
            code.as_ptr(),
            code.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        );
        if qjs::JS_IsException(f) {
            return Err(rquickjs::Error::Exception);
        }
        let r = qjs::JS_EvalFunction(raw, f);
        if qjs::JS_IsException(r) {
            return Err(rquickjs::Error::Exception);
        }
        Ok(rquickjs::Value::from_raw(ctx.clone(), r))
    }
}

/// Compiles a classic script to bytecode (without running it).
pub(crate) fn compile_script(ctx: &Ctx<'_>, name: &str, source: &str) -> Result<Vec<u8>, String> {
    let src = CString::new(source).map_err(|_| "script contains a NUL byte".to_string())?;
    let fname = CString::new(name).map_err(|_| "name contains a NUL byte".to_string())?;
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: plain QuickJS API calls on a live context; every value and buffer is freed once.
    unsafe {
        let f = qjs::JS_Eval(
            raw,
            src.as_ptr(),
            source.len() as _,
            fname.as_ptr(),
            (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as i32,
        );
        if qjs::JS_IsException(f) {
            let e = ctx.catch();
            let text = e
                .get::<rquickjs::Coerced<String>>()
                .map(|c| c.0)
                .unwrap_or_default();
            return Err(text);
        }
        let mut size: qjs::size_t = 0;
        let buf = qjs::JS_WriteObject(raw, &mut size, f, qjs::JS_WRITE_OBJ_BYTECODE as i32);
        qjs::JS_FreeValue(raw, f);
        if buf.is_null() {
            let _ = ctx.catch();
            return Err("cannot serialize bytecode".into());
        }
        let out = std::slice::from_raw_parts(buf, size as usize).to_vec();
        qjs::js_free(raw, buf.cast());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_rejected() {
        assert!(Snapshot::from_bytes(b"nope").is_err());
        let mut s = Snapshot::default();
        s.push("a".into(), vec![1, 2, 3]);
        let mut b = s.to_bytes();
        assert_eq!(Snapshot::from_bytes(&b).ok(), Some(s));
        let n = b.len();
        b[n - 9] ^= 1;
        assert!(Snapshot::from_bytes(&b).is_err());
    }
}
