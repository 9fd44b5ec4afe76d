//! Reads what the relay needs from a frame (component, type, target and a few payload fields)
//! without building a JSON tree and without ever re-serializing: the frame is forwarded as it
//! came. Non-strict JSON (`NaN`, `Infinity`, which Python's `json.dumps` writes) is read by
//! parsing a copy where those tokens are `null`; anything else that does not parse is
//! [`Inbound::Opaque`] and is still relayed.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON value reduced to what routing and compaction look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Loose<'a> {
    /// Absent or `null`.
    #[default]
    Null,
    /// A string.
    Str(Cow<'a, str>),
    /// A number (integers above 2^53 lose precision, as in JavaScript).
    Num(f64),
    /// `true` / `false`.
    Bool,
    /// An array, and whether it is empty.
    Array { empty: bool },
    /// An object (contents not kept).
    Object,
}

impl<'a> Loose<'a> {
    fn into_string(self) -> Option<String> {
        self.into_str().map(Cow::into_owned)
    }

    /// The string, still borrowed from the frame when it had no escapes.
    fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Loose::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a JavaScript-equal integer: `1` and `1.0` are the same index.
    pub(crate) fn as_index(&self) -> Option<i64> {
        match *self {
            Loose::Num(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.0e15 => {
                Some(n as i64)
            }
            _ => None,
        }
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose::Bool)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Loose::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Loose::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Loose::Num(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut empty = true;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            empty = false;
        }
        Ok(Loose::Array { empty })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Object)
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Loose::deserialize(d)? {
            Loose::Str(s) => Ok(Key(s)),
            _ => Err(de::Error::custom("object keys are strings")),
        }
    }
}

/// Declares a struct read from a JSON object field by field (last duplicate wins, as in
/// `JSON.parse`); a value that is not an object reads as the default.
macro_rules! lenient_object {
    ($name:ident { $($key:literal => $field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Default)]
        pub(crate) struct $name<'a> {
            $(pub(crate) $field: $ty,)*
            _borrow: std::marker::PhantomData<&'a ()>,
        }

        impl<'de> Deserialize<'de> for $name<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name<'de>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("any JSON value")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        let mut out = $name::default();
                        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                            match key.as_ref() {
                                $($key => out.$field = map.next_value()?,)*
                                _ => { map.next_value::<IgnoredAny>()?; }
                            }
                        }
                        Ok(out)
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                        while seq.next_element::<IgnoredAny>()?.is_some() {}
                        Ok($name::default())
                    }
                    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> { Ok($name::default()) }
                    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> { Ok($name::default()) }
                    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> { Ok($name::default()) }
                    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> { Ok($name::default()) }
                    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> { Ok($name::default()) }
                    fn visit_unit<E>(self) -> Result<Self::Value, E> { Ok($name::default()) }
                    fn visit_none<E>(self) -> Result<Self::Value, E> { Ok($name::default()) }
                }
                d.deserialize_any(V)
            }
        }
    };
}

lenient_object!(RawOptions {
    "parent" => parent: Loose<'a>,
    "x" => x: Loose<'a>,
    "y" => y: Loose<'a>,
    "bufferId" => buffer_id: Loose<'a>,
    "sourceBufferId" => source_buffer_id: Loose<'a>,
    "targetBufferId" => target_buffer_id: Loose<'a>,
    "path" => path: Loose<'a>,
});

lenient_object!(RawPayload {
    "peerId" => peer_id: Loose<'a>,
    "role" => role: Loose<'a>,
    "status" => status: Loose<'a>,
    "version" => version: Loose<'a>,
    "timestamp" => timestamp: Loose<'a>,
    "parent" => parent: Loose<'a>,
    "action" => action: Loose<'a>,
    "variableName" => variable_name: Loose<'a>,
    "options" => options: RawOptions<'a>,
});

lenient_object!(RawEnvelope {
    "component" => component: Loose<'a>,
    "type" => kind: Loose<'a>,
    "target" => target: Loose<'a>,
    "payload" => payload: RawPayload<'a>,
});

/// A peer's role, from its announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The Python script (`"hero"`).
    Hero,
    /// A UI page (`"sidekick"`).
    Sidekick,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Hero => "hero",
            Role::Sidekick => "sidekick",
        }
    }
}

/// A valid `system/announce`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Announce {
    pub peer_id: String,
    pub role: Role,
    pub online: bool,
    pub version: String,
}

/// Why an announce was refused (it is then not relayed).
pub(crate) fn check_announce(p: RawPayload<'_>) -> Result<Announce, &'static str> {
    let peer_id = match p.peer_id.into_string() {
        Some(s) if !s.is_empty() => s,
        _ => return Err("peerId must be a non-empty string"),
    };
    let role = match &p.role {
        Loose::Str(s) if s == "hero" => Role::Hero,
        Loose::Str(s) if s == "sidekick" => Role::Sidekick,
        _ => return Err("role must be \"hero\" or \"sidekick\""),
    };
    let online = match &p.status {
        Loose::Str(s) if s == "online" => true,
        Loose::Str(s) if s == "offline" => false,
        _ => return Err("status must be \"online\" or \"offline\""),
    };
    let Some(version) = p.version.into_string() else {
        return Err("version must be a string");
    };
    if !matches!(p.timestamp, Loose::Num(_)) {
        return Err("timestamp must be a number");
    }
    Ok(Announce {
        peer_id,
        role,
        online,
        version,
    })
}

/// The fields of an `update` that compaction reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Update<'a> {
    /// `payload.action`, when a string.
    pub action: Option<Cow<'a, str>>,
    /// `payload.options.parent` (changeParent).
    pub new_parent: Option<Cow<'a, str>>,
    /// Grid cell `options.x` / `options.y` as integers.
    pub x: Option<i64>,
    pub y: Option<i64>,
    /// Whether `options.x`/`options.y` were present at all.
    pub has_cell: bool,
    /// Canvas `options.bufferId` (absent means 0; `None` means present but not an integer).
    pub buffer: Option<i64>,
    pub source_buffer: Option<i64>,
    pub target_buffer: Option<i64>,
    /// Viz `payload.variableName`, when a string.
    pub variable: Option<Cow<'a, str>>,
    /// Viz `options.path` is `[]`.
    pub root_path: bool,
}

/// What a frame is, for routing and the replay log; names are borrowed from the frame where
/// they can be (one frame, no allocation, on the relay's hot path).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inbound<'a> {
    /// `system/announce`, valid or not.
    Announce(Result<Announce, &'static str>),
    /// `global/clearAll`.
    ClearAll,
    /// `<c>/spawn` with a string target.
    Spawn {
        component: Cow<'a, str>,
        target: Cow<'a, str>,
        parent: Option<Cow<'a, str>>,
    },
    /// `<c>/update` with a string target.
    Update {
        component: Cow<'a, str>,
        target: Cow<'a, str>,
        update: Update<'a>,
    },
    /// `<c>/remove` with a string target.
    Remove { target: Cow<'a, str> },
    /// Any other object with string `component` and `type` (events, errors, unknown types).
    Other,
    /// Not JSON, not an object, or without `component`/`type`: relayed, never logged.
    Opaque,
}

/// Classifies a frame. Never fails: what cannot be read is [`Inbound::Opaque`].
pub(crate) fn inspect(text: &str) -> Inbound<'_> {
    match serde_json::from_str::<RawEnvelope<'_>>(text) {
        Ok(env) => classify(env),
        Err(_) => match replace_nonfinite(text) {
            Some(strict) => match serde_json::from_str::<RawEnvelope<'_>>(&strict) {
                Ok(env) => classify(env).into_owned(),
                Err(_) => Inbound::Opaque,
            },
            None => Inbound::Opaque,
        },
    }
}

fn classify(env: RawEnvelope<'_>) -> Inbound<'_> {
    let (Loose::Str(component), Loose::Str(kind)) = (env.component, env.kind) else {
        return Inbound::Opaque;
    };
    let target = env.target.into_str();
    let p = env.payload;
    match (component.as_ref(), kind.as_ref()) {
        ("system", "announce") => return Inbound::Announce(check_announce(p)),
        ("global", "clearAll") => return Inbound::ClearAll,
        _ => {}
    }
    match (kind.as_ref(), target) {
        ("spawn", Some(target)) => Inbound::Spawn {
            component,
            target,
            parent: p.parent.into_str(),
        },
        ("update", Some(target)) => {
            let o = p.options;
            let buffer = match &o.buffer_id {
                Loose::Null => Some(0),
                v => v.as_index(),
            };
            let has_cell = !matches!(o.x, Loose::Null) || !matches!(o.y, Loose::Null);
            Inbound::Update {
                component,
                target,
                update: Update {
                    action: p.action.into_str(),
                    new_parent: o.parent.into_str(),
                    x: o.x.as_index(),
                    y: o.y.as_index(),
                    has_cell,
                    buffer,
                    source_buffer: o.source_buffer_id.as_index(),
                    target_buffer: o.target_buffer_id.as_index(),
                    variable: p.variable_name.into_str(),
                    root_path: o.path == Loose::Array { empty: true },
                },
            }
        }
        ("remove", Some(target)) => Inbound::Remove { target },
        _ => Inbound::Other,
    }
}

impl Inbound<'_> {
    /// The same, owning its names (for a frame read through a temporary copy).
    fn into_owned(self) -> Inbound<'static> {
        let own = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        match self {
            Inbound::Announce(a) => Inbound::Announce(a),
            Inbound::ClearAll => Inbound::ClearAll,
            Inbound::Spawn {
                component,
                target,
                parent,
            } => Inbound::Spawn {
                component: own(component),
                target: own(target),
                parent: parent.map(own),
            },
            Inbound::Update {
                component,
                target,
                update,
            } => Inbound::Update {
                component: own(component),
                target: own(target),
                update: Update {
                    action: update.action.map(own),
                    new_parent: update.new_parent.map(own),
                    variable: update.variable.map(own),
                    x: update.x,
                    y: update.y,
                    has_cell: update.has_cell,
                    buffer: update.buffer,
                    source_buffer: update.source_buffer,
                    target_buffer: update.target_buffer,
                    root_path: update.root_path,
                },
            },
            Inbound::Remove { target } => Inbound::Remove {
                target: own(target),
            },
            Inbound::Other => Inbound::Other,
            Inbound::Opaque => Inbound::Opaque,
        }
    }
}

/// A copy of `text` with the bare tokens `NaN`, `Infinity` and `-Infinity` outside strings
/// replaced by `null`, or `None` when there are none.
pub(crate) fn replace_nonfinite(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `text` already accounted for in `out`
    let mut i = 0;
    let mut in_string = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        let token: Option<usize> = if c == b'"' {
            in_string = true;
            None
        } else if b[i..].starts_with(b"NaN") {
            Some(3)
        } else if b[i..].starts_with(b"Infinity") {
            Some(8)
        } else if b[i..].starts_with(b"-Infinity") {
            Some(9)
        } else {
            None
        };
        match token {
            Some(len) => {
                let s = out.get_or_insert_with(|| String::with_capacity(text.len()));
                // Token boundaries are ASCII, so these slices are on char boundaries.
                s.push_str(&text[copied..i]);
                s.push_str("null");
                i += len;
                copied = i;
            }
            None => i += 1,
        }
    }
    let mut s = out?;
    s.push_str(text.get(copied..).unwrap_or(""));
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_spawn_and_an_update() {
        let spawn = r#"{"id": 0, "component": "row", "type": "spawn", "target": "row", "payload": {"parent": "col"}}"#;
        assert_eq!(
            inspect(spawn),
            Inbound::Spawn {
                component: "row".into(),
                target: "row".into(),
                parent: Some("col".into())
            }
        );
        let update = r#"{"id": 0, "component": "grid", "type": "update", "target": "g", "payload": {"action": "setColor", "options": {"x": 0, "y": 1.0, "color": "red"}}}"#;
        let Inbound::Update { update: u, .. } = inspect(update) else {
            panic!("not an update");
        };
        assert_eq!(u.action.as_deref(), Some("setColor"));
        assert_eq!(
            (u.x, u.y, u.has_cell, u.buffer),
            (Some(0), Some(1), true, Some(0))
        );
    }

    #[test]
    fn nan_and_infinity_are_read_through_a_copy() {
        let text = r#"{"component":"viz","type":"update","target":"v","payload":{"action":"set","variableName":"x","options":{"path":[],"valueRepresentation":{"value":NaN,"s":"NaN \" Infinity"},"y":-Infinity,"z":Infinity}}}"#;
        let Inbound::Update { update, .. } = inspect(text) else {
            panic!("not an update: {:?}", inspect(text));
        };
        assert!(update.root_path);
        assert_eq!(update.variable.as_deref(), Some("x"));
        let fixed = replace_nonfinite(text).unwrap_or_default();
        assert!(fixed.contains(r#""value":null"#) && fixed.contains(r#""NaN \" Infinity""#));
        assert!(fixed.contains(r#""y":null"#) && fixed.contains(r#""z":null"#));
        assert_eq!(replace_nonfinite(r#"{"a":"NaN"}"#), None);
    }

    #[test]
    fn what_cannot_be_read_is_opaque() {
        for text in [
            "",
            "nope",
            "[1,2]",
            "42",
            r#"{"component":"x"}"#,
            r#"{"type":"spawn"}"#,
            "{\"component\":1,\"type\":\"spawn\"}",
            "{",
        ] {
            assert_eq!(inspect(text), Inbound::Opaque, "{text}");
        }
        assert_eq!(
            inspect(r#"{"component":"grid","type":"event","src":"g"}"#),
            Inbound::Other
        );
        // A spawn without a string target is not logged.
        assert_eq!(
            inspect(r#"{"component":"label","type":"spawn","target":3}"#),
            Inbound::Other
        );
    }

    #[test]
    fn announces_are_checked() {
        let ok = r#"{"id":0,"component":"system","type":"announce","payload":{"peerId":"hero-py-1","role":"hero","status":"online","version":"0.0.7","timestamp":1795321171285}}"#;
        assert_eq!(
            inspect(ok),
            Inbound::Announce(Ok(Announce {
                peer_id: "hero-py-1".into(),
                role: Role::Hero,
                online: true,
                version: "0.0.7".into()
            }))
        );
        for bad in [
            r#"{"component":"system","type":"announce","payload":{"role":"hero","status":"online","version":"1","timestamp":1}}"#,
            r#"{"component":"system","type":"announce","payload":{"peerId":"p","role":"villain","status":"online","version":"1","timestamp":1}}"#,
            r#"{"component":"system","type":"announce","payload":{"peerId":"p","role":"hero","status":"away","version":"1","timestamp":1}}"#,
            r#"{"component":"system","type":"announce","payload":{"peerId":"p","role":"hero","status":"online","timestamp":1}}"#,
            r#"{"component":"system","type":"announce","payload":{"peerId":"p","role":"hero","status":"online","version":"1","timestamp":"now"}}"#,
            r#"{"component":"system","type":"announce","payload":{"peerId":"p","role":"hero","status":"online","version":"1","timestamp":NaN}}"#,
            r#"{"component":"system","type":"announce","payload":7}"#,
        ] {
            assert!(matches!(inspect(bad), Inbound::Announce(Err(_))), "{bad}");
        }
    }

    #[test]
    fn duplicate_keys_take_the_last_value() {
        let text =
            r#"{"component":"a","component":"label","type":"remove","target":"x","target":"y"}"#;
        assert_eq!(inspect(text), Inbound::Remove { target: "y".into() });
    }
}
