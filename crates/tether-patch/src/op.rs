//! The six RFC 6902 operations as one serde enum whose JSON is the standard wire form.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One RFC 6902 operation; serializes to `{"op":"add","path":"/a/0","value":…}` and friends.
///
/// Paths are kept as the strings that came over the wire (not parsed pointers) so that
/// [`Mode::Lenient`](crate::Mode::Lenient) can reinterpret unescaped client paths.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    /// Inserts into an array (shifting later items), sets an object key, or replaces the root.
    Add {
        /// Where to add; `-` as the last token appends to an array.
        path: String,
        /// The value to add.
        value: Value,
    },
    /// Removes an existing object key or array item (shifting later items).
    Remove {
        /// What to remove.
        path: String,
    },
    /// Replaces an existing value.
    Replace {
        /// What to replace.
        path: String,
        /// The new value.
        value: Value,
    },
    /// Removes the value at `from` and adds it at `path`.
    Move {
        /// Where the value is now.
        from: String,
        /// Where it goes, read after the removal.
        path: String,
    },
    /// Adds a copy of the value at `from` at `path`.
    Copy {
        /// What to copy.
        from: String,
        /// Where the copy goes.
        path: String,
    },
    /// Fails the whole patch unless the value at `path` equals `value` (numbers numerically).
    Test {
        /// What to compare.
        path: String,
        /// The expected value.
        value: Value,
    },
}

impl PatchOp {
    /// Builds an `add`, the op a diff emits for inserted items and new keys.
    pub fn add(path: impl Into<String>, value: Value) -> Self {
        Self::Add {
            path: path.into(),
            value,
        }
    }

    /// Builds a `remove`.
    pub fn remove(path: impl Into<String>) -> Self {
        Self::Remove { path: path.into() }
    }

    /// Builds a `replace`.
    pub fn replace(path: impl Into<String>, value: Value) -> Self {
        Self::Replace {
            path: path.into(),
            value,
        }
    }

    /// Builds a `move`.
    pub fn move_(from: impl Into<String>, path: impl Into<String>) -> Self {
        Self::Move {
            from: from.into(),
            path: path.into(),
        }
    }

    /// Builds a `copy`.
    pub fn copy(from: impl Into<String>, path: impl Into<String>) -> Self {
        Self::Copy {
            from: from.into(),
            path: path.into(),
        }
    }

    /// Builds a `test`.
    pub fn test(path: impl Into<String>, value: Value) -> Self {
        Self::Test {
            path: path.into(),
            value,
        }
    }

    /// The op's name as on the wire (`"add"`, …), for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Add { .. } => "add",
            Self::Remove { .. } => "remove",
            Self::Replace { .. } => "replace",
            Self::Move { .. } => "move",
            Self::Copy { .. } => "copy",
            Self::Test { .. } => "test",
        }
    }

    /// The target pointer, which every op has (callers use it to see which top-level key changed).
    pub fn path(&self) -> &str {
        match self {
            Self::Add { path, .. }
            | Self::Remove { path }
            | Self::Replace { path, .. }
            | Self::Move { path, .. }
            | Self::Copy { path, .. }
            | Self::Test { path, .. } => path,
        }
    }

    /// The source pointer of `move` and `copy`.
    pub fn from(&self) -> Option<&str> {
        match self {
            Self::Move { from, .. } | Self::Copy { from, .. } => Some(from),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_form_is_standard() {
        let ops = vec![
            PatchOp::add("/a/0", json!(1)),
            PatchOp::remove("/b"),
            PatchOp::replace("/c", json!({"x": null})),
            PatchOp::move_("/d", "/e"),
            PatchOp::copy("/f", "/g"),
            PatchOp::test("/h", json!("s")),
        ];
        let text = serde_json::to_string(&ops).unwrap();
        assert_eq!(
            text,
            r#"[{"op":"add","path":"/a/0","value":1},{"op":"remove","path":"/b"},{"op":"replace","path":"/c","value":{"x":null}},{"op":"move","from":"/d","path":"/e"},{"op":"copy","from":"/f","path":"/g"},{"op":"test","path":"/h","value":"s"}]"#
        );
        let back: Vec<PatchOp> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ops);
    }

    #[test]
    fn missing_value_or_unknown_op_is_rejected() {
        assert!(serde_json::from_value::<PatchOp>(json!({"op": "add", "path": "/a"})).is_err());
        assert!(serde_json::from_value::<PatchOp>(json!({"op": "nope", "path": "/a"})).is_err());
        assert!(serde_json::from_value::<PatchOp>(json!({"op": "move", "path": "/a"})).is_err());
        // `null` is a value, and unknown members are ignored as RFC 6902 §4 asks.
        let op: PatchOp =
            serde_json::from_value(json!({"op": "add", "path": "/a", "value": null, "x": 1}))
                .unwrap();
        assert_eq!(op, PatchOp::add("/a", Value::Null));
    }

    #[test]
    fn accessors() {
        let op = PatchOp::move_("/a", "/b");
        assert_eq!(
            (op.name(), op.path(), op.from()),
            ("move", "/b", Some("/a"))
        );
        assert_eq!(PatchOp::remove("/x").from(), None);
    }
}
