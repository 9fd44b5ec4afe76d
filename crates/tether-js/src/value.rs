//! [`HostValue`]: the engine-neutral value that crosses between JavaScript and the host.

/// A value on its way between JavaScript and the host (Rust, Python), so hosts never touch
/// engine handles; functions and streams stay in the isolate and cross as handle ids.
#[derive(Debug, Clone, PartialEq)]
pub enum HostValue {
    /// JS `undefined`.
    Undefined,
    /// JS `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A JS number (the host decides whether it is an integer).
    Number(f64),
    /// A BigInt as decimal digits with an optional leading `-`.
    BigInt(String),
    /// A string.
    String(String),
    /// A `Uint8Array` or `ArrayBuffer` (JS to host), or bytes for a `Uint8Array` (host to JS).
    Bytes(Vec<u8>),
    /// An array (holes are `Undefined`).
    Array(Vec<HostValue>),
    /// An object's own enumerable string-keyed properties, in order.
    Object(Vec<(String, HostValue)>),
    /// A `Set`, in insertion order.
    Set(Vec<HostValue>),
    /// A `Date` as milliseconds since the epoch.
    Date(f64),
    /// A JS function kept alive in the isolate under this handle (see `Isolate::release`).
    Function(u64),
    /// A JS `ReadableStream` whose reader is kept in the isolate: the handle of its `read`
    /// function and of its `cancel` function.
    Stream {
        /// Handle of a function returning a promise of `{done, value}`.
        read: u64,
        /// Handle of a function cancelling the stream.
        cancel: u64,
    },
    /// A host function: calling it in JS runs host op `op` (registered with `register_op`).
    HostFunction {
        /// The op id.
        op: u32,
        /// Name given to the JS function.
        name: String,
    },
    /// A host stream: a JS `ReadableStream` whose `pull` runs async op `pull` (which resolves
    /// to `{done, value}`) and whose `cancel` runs async op `cancel`.
    HostStream {
        /// Async op resolving to the next `{done, value}`.
        pull: u32,
        /// Async op called when JS cancels the stream.
        cancel: u32,
    },
}

impl HostValue {
    /// Converts JSON to a host value (integers become numbers; big ones lose precision as in JS).
    pub fn from_json(v: &serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null => HostValue::Null,
            J::Bool(b) => HostValue::Bool(*b),
            J::Number(n) => HostValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            J::String(s) => HostValue::String(s.clone()),
            J::Array(a) => HostValue::Array(a.iter().map(Self::from_json).collect()),
            J::Object(o) => HostValue::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Self::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to JSON the way `JSON.stringify` would (undefined and functions in objects are
    /// dropped, in arrays they become null; non-finite numbers become null; integral numbers
    /// become JSON integers).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            HostValue::Undefined | HostValue::Null => J::Null,
            HostValue::Bool(b) => J::Bool(*b),
            HostValue::Number(n) => number_to_json(*n),
            HostValue::BigInt(s) => J::String(s.clone()),
            HostValue::String(s) => J::String(s.clone()),
            HostValue::Bytes(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
            HostValue::Array(a) | HostValue::Set(a) => J::Array(
                a.iter()
                    .map(|v| {
                        if v.is_json_skipped() {
                            J::Null
                        } else {
                            v.to_json()
                        }
                    })
                    .collect(),
            ),
            HostValue::Object(o) => J::Object(
                o.iter()
                    .filter(|(_, v)| !v.is_json_skipped())
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
            HostValue::Date(ms) => number_to_json(*ms),
            _ => J::Null,
        }
    }

    fn is_json_skipped(&self) -> bool {
        matches!(
            self,
            HostValue::Undefined | HostValue::Function(_) | HostValue::HostFunction { .. }
        )
    }
}

fn number_to_json(n: f64) -> serde_json::Value {
    if !n.is_finite() {
        return serde_json::Value::Null;
    }
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        return serde_json::Value::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_integers() {
        let j = serde_json::json!({"a": [1, 2.5, null, true, "x"], "b": {}});
        assert_eq!(HostValue::from_json(&j).to_json(), j);
    }

    #[test]
    fn undefined_is_dropped_from_objects() {
        let v = HostValue::Object(vec![("a".into(), HostValue::Undefined)]);
        assert_eq!(v.to_json(), serde_json::json!({}));
    }
}
