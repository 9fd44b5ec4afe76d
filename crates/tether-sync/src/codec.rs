//! The ws-sync frame codec: parsing what a browser sends and encoding what the server sends.
//! Pure functions with no session state, so adapters can also use them before a session exists
//! (e.g. the `_REQUEST_USER_SESSION` handshake).

use std::fmt::Write as _;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value};
use tether_patch::PatchOp;
use thiserror::Error;

/// Prefix of the full-state event, `_SET:KEY`.
pub const SET: &str = "_SET";
/// Prefix of the state-request event, `_GET:KEY`.
pub const GET: &str = "_GET";
/// Prefix of the JSON Patch event, `_PATCH:KEY`.
pub const PATCH: &str = "_PATCH";
/// Prefix of the remote-action event, `_ACTION:KEY`.
pub const ACTION: &str = "_ACTION";
/// Prefix of the task-start event, `_TASK_START:KEY`.
pub const TASK_START: &str = "_TASK_START";
/// Prefix of the task-cancel event, `_TASK_CANCEL:KEY`.
pub const TASK_CANCEL: &str = "_TASK_CANCEL";
/// The global toast event.
pub const TOAST: &str = "_TOAST";
/// The file-download event (base64 payload).
pub const DOWNLOAD: &str = "_DOWNLOAD";
/// The event telling a client it is being disconnected (it then stops reconnecting).
pub const DISCONNECT: &str = "_DISCONNECT";
/// The event announcing that the next frame is binary.
pub const BIN_META: &str = "_BIN_META";
/// The server's identification request; the only frame without a `data` key.
pub const REQUEST_USER_SESSION: &str = "_REQUEST_USER_SESSION";
/// The client's identification reply.
pub const USER_SESSION: &str = "_USER_SESSION";

/// The whole `_REQUEST_USER_SESSION` frame, as ws-sync sends it.
pub const REQUEST_USER_SESSION_FRAME: &str = r#"{"type":"_REQUEST_USER_SESSION"}"#;

/// What ws-sync tells a connection that another one has taken its session over.
pub const DEFAULT_DISCONNECT_MESSAGE: &str =
    "Seems like you're logged in somewhere else. If this is a mistake, please refresh the page.";

/// Builds a keyed event name such as `_PATCH:NOTES`; keys are never escaped.
pub fn event_name(prefix: &str, key: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 1 + key.len());
    s.push_str(prefix);
    s.push(':');
    s.push_str(key);
    s
}

/// One text frame from a client, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientFrame {
    /// `_SET:KEY`: the client's full state for a key.
    Set {
        /// The synced key.
        key: String,
        /// The client's state (always an object).
        state: Map<String, Value>,
    },
    /// `_GET:KEY`: the client asks for a fresh `_SET`.
    Get {
        /// The synced key.
        key: String,
    },
    /// `_PATCH:KEY`: the client changed its state (paths may be unescaped).
    Patch {
        /// The synced key.
        key: String,
        /// The ops as sent.
        ops: Vec<PatchOp>,
    },
    /// `_ACTION:KEY`: run a remote action.
    Action {
        /// The synced key.
        key: String,
        /// The action name (`type`).
        name: String,
        /// The other fields of the action object.
        args: Map<String, Value>,
    },
    /// `_TASK_START:KEY`: start a named task.
    TaskStart {
        /// The synced key.
        key: String,
        /// The task name (`type`).
        name: String,
        /// The other fields.
        args: Map<String, Value>,
    },
    /// `_TASK_CANCEL:KEY`: cancel a named task.
    TaskCancel {
        /// The synced key.
        key: String,
        /// The task name (`type`).
        name: String,
    },
    /// `_BIN_META`: the next frame is binary and belongs to `event`.
    BinMeta {
        /// The inner event, e.g. `_ACTION:FILES`.
        event: String,
        /// The metadata object (for actions it carries `type`).
        metadata: Map<String, Value>,
    },
    /// `_USER_SESSION`: the identification reply.
    UserSession {
        /// Client user id (persisted in the browser's localStorage).
        user: String,
        /// Client session id (per tab).
        session: String,
    },
    /// A well-formed frame whose type no one handles here.
    Unknown {
        /// The `type` string.
        event: String,
    },
}

/// Why a client text frame could not be parsed; its `Display` is the error toast's text.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Not JSON at all.
    #[error("malformed frame: invalid JSON")]
    InvalidJson,
    /// JSON, but not `{"type": string, ...}`.
    #[error(r#"malformed frame: expected {{"type": string, "data": ...}}"#)]
    NotAFrame,
    /// A known event whose `data` has the wrong shape.
    #[error("bad data for {event}: {expected}")]
    BadData {
        /// The frame's `type`.
        event: String,
        /// What the data should have been.
        expected: &'static str,
    },
}

const EXPECT_OBJECT: &str = "expected an object";
const EXPECT_TYPED: &str = r#"expected an object with a string "type""#;
const EXPECT_OPS: &str = "expected an array of JSON Patch operations";
const EXPECT_META: &str = r#"expected {"type": string, "metadata": object}"#;
const EXPECT_USER: &str = r#"expected {"user": string, "session": string}"#;

#[derive(serde::Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: Value,
    #[serde(default)]
    data: Option<Value>,
}

/// Parses one client text frame; unknown types come back as [`ClientFrame::Unknown`].
pub fn parse_client(text: &str) -> Result<ClientFrame, FrameError> {
    let raw: RawFrame = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(e) if e.is_syntax() || e.is_eof() => return Err(FrameError::InvalidJson),
        Err(_) => return Err(FrameError::NotAFrame),
    };
    let Value::String(event) = raw.kind else {
        return Err(FrameError::NotAFrame);
    };
    let data = raw.data.unwrap_or(Value::Null);
    let bad = |event: &str, expected| FrameError::BadData {
        event: event.to_owned(),
        expected,
    };
    let Some((prefix, key)) = event.split_once(':') else {
        return match event.as_str() {
            BIN_META => parse_bin_meta(data).ok_or_else(|| bad(&event, EXPECT_META)),
            USER_SESSION => parse_user_session_data(data).ok_or_else(|| bad(&event, EXPECT_USER)),
            _ => Ok(ClientFrame::Unknown { event }),
        };
    };
    let key = key.to_owned();
    match prefix {
        SET => match data {
            Value::Object(state) => Ok(ClientFrame::Set { key, state }),
            _ => Err(bad(&event, EXPECT_OBJECT)),
        },
        GET => Ok(ClientFrame::Get { key }),
        PATCH => match serde_json::from_value::<Vec<PatchOp>>(data) {
            Ok(ops) => Ok(ClientFrame::Patch { key, ops }),
            Err(_) => Err(bad(&event, EXPECT_OPS)),
        },
        ACTION | TASK_START | TASK_CANCEL => {
            let Some((name, args)) = split_typed(data) else {
                return Err(bad(&event, EXPECT_TYPED));
            };
            Ok(match prefix {
                ACTION => ClientFrame::Action { key, name, args },
                TASK_START => ClientFrame::TaskStart { key, name, args },
                _ => ClientFrame::TaskCancel { key, name },
            })
        }
        _ => Ok(ClientFrame::Unknown { event }),
    }
}

/// Reads any frame as `(type, data)` (data null when absent), whatever its type; `None` when it
/// is not `{"type": string, ...}` JSON. For app-registered event types.
pub fn parse_any(text: &str) -> Option<(String, Value)> {
    let raw: RawFrame = serde_json::from_str(text).ok()?;
    match raw.kind {
        Value::String(event) => Some((event, raw.data.unwrap_or(Value::Null))),
        _ => None,
    }
}

/// Splits `{"type": name, ...rest}` into the name and the rest.
pub fn split_typed(data: Value) -> Option<(String, Map<String, Value>)> {
    let Value::Object(mut map) = data else {
        return None;
    };
    match map.shift_remove("type") {
        Some(Value::String(name)) => Some((name, map)),
        _ => None,
    }
}

fn parse_bin_meta(data: Value) -> Option<ClientFrame> {
    let Value::Object(mut map) = data else {
        return None;
    };
    let (Some(Value::String(event)), Some(Value::Object(metadata))) =
        (map.shift_remove("type"), map.shift_remove("metadata"))
    else {
        return None;
    };
    Some(ClientFrame::BinMeta { event, metadata })
}

fn parse_user_session_data(data: Value) -> Option<ClientFrame> {
    let Value::Object(mut map) = data else {
        return None;
    };
    match (map.shift_remove("user"), map.shift_remove("session")) {
        (Some(Value::String(user)), Some(Value::String(session)))
            if !user.is_empty() && !session.is_empty() =>
        {
            Some(ClientFrame::UserSession { user, session })
        }
        _ => None,
    }
}

/// Reads a `_USER_SESSION` reply for an adapter's pre-session handshake: `(user, session)`.
pub fn parse_user_session(text: &str) -> Option<(String, String)> {
    match parse_client(text) {
        Ok(ClientFrame::UserSession { user, session }) => Some((user, session)),
        _ => None,
    }
}

/// Encodes `{"type": event, "data": data}` compactly (ws-sync's `separators=(",", ":")`).
pub fn encode<T: Serialize + ?Sized>(event: &str, data: &T) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Frame<'a, T: ?Sized> {
        #[serde(rename = "type")]
        kind: &'a str,
        data: &'a T,
    }
    serde_json::to_string(&Frame { kind: event, data })
}

/// Encodes a frame whose data is a JSON value (cannot fail: a `Value` has no non-finite floats).
pub fn encode_value(event: &str, data: &Value) -> String {
    let mut out = String::with_capacity(32);
    out.push_str(r#"{"type":"#);
    push_json_str(&mut out, event);
    out.push_str(r#","data":"#);
    // Writing a `Value` into a String cannot fail: keys are strings and numbers are finite.
    if let Ok(s) = serde_json::to_string(data) {
        out.push_str(&s);
    } else {
        out.push_str("null");
    }
    out.push('}');
    out
}

/// A state snapshot with the running-tasks list appended as its last key, serialized in one
/// pass (no copy of the snapshot).
pub(crate) struct WithRunning<'a> {
    pub state: &'a Value,
    pub running: Option<(&'a str, &'a [String])>,
}

impl Serialize for WithRunning<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.state, self.running) {
            (Value::Object(obj), Some((key, running))) => {
                let extra = usize::from(!obj.contains_key(key));
                let mut m = s.serialize_map(Some(obj.len() + extra))?;
                for (k, v) in obj {
                    if k != key {
                        m.serialize_entry(k, v)?;
                    }
                }
                m.serialize_entry(key, running)?;
                m.end()
            }
            (state, _) => state.serialize(s),
        }
    }
}

/// Encodes a `_TOAST` frame.
pub fn encode_toast(kind: ToastKind, message: &str) -> String {
    let mut out = String::with_capacity(48 + message.len());
    out.push_str(r#"{"type":"_TOAST","data":{"type":"#);
    push_json_str(&mut out, kind.as_str());
    out.push_str(r#","message":"#);
    push_json_str(&mut out, message);
    out.push_str("}}");
    out
}

/// Encodes a `_DISCONNECT` frame carrying `message`.
pub fn encode_disconnect(message: &str) -> String {
    encode_value(DISCONNECT, &Value::String(message.to_owned()))
}

/// Encodes a `_DOWNLOAD` frame: the file name and its bytes in standard base64.
pub fn encode_download(filename: &str, bytes: &[u8]) -> String {
    let mut out = String::with_capacity(48 + filename.len() + bytes.len().div_ceil(3) * 4);
    out.push_str(r#"{"type":"_DOWNLOAD","data":{"filename":"#);
    push_json_str(&mut out, filename);
    out.push_str(r#","data":""#);
    base64_into(&mut out, bytes);
    out.push_str("\"}}");
    out
}

/// Encodes the `_BIN_META` text frame that must precede a binary frame for `event`.
pub fn encode_bin_meta(event: &str, metadata: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(64);
    out.push_str(r#"{"type":"_BIN_META","data":{"type":"#);
    push_json_str(&mut out, event);
    out.push_str(r#","metadata":"#);
    if let Ok(s) = serde_json::to_string(metadata) {
        out.push_str(&s);
    } else {
        out.push_str("{}");
    }
    out.push_str("}}");
    out
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json's string escaping; a &str always serializes.
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("\"\""),
    }
}

fn base64_into(out: &mut String, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET[idx]));
            } else {
                out.push('=');
            }
        }
    }
}

/// The six toast kinds ws-sync's client maps onto sonner-style calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToastKind {
    /// `toast(msg)`.
    Default,
    /// `toast.message(msg)`.
    Message,
    /// `toast.info(msg)`.
    Info,
    /// `toast.success(msg)`.
    Success,
    /// `toast.warning(msg)`.
    Warning,
    /// `toast.error(msg)`; also what tether sends for bad input and failed handlers.
    Error,
}

impl std::str::FromStr for ToastKind {
    type Err = String;

    /// Reads the wire string (`default`, `message`, `info`, `success`, `warning`, `error`).
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "default" => Self::Default,
            "message" => Self::Message,
            "info" => Self::Info,
            "success" => Self::Success,
            "warning" => Self::Warning,
            "error" => Self::Error,
            other => return Err(format!("unknown toast type {other:?}")),
        })
    }
}

impl ToastKind {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Message => "message",
            Self::Info => "info",
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// Formats a human-readable description of a frame for logs, cut to `max` bytes.
pub(crate) fn preview(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut s = String::with_capacity(end + 16);
    s.push_str(&text[..end]);
    let _ = write!(s, "… ({} bytes)", text.len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_client_event() {
        let cases = [
            (
                r#"{"type":"_SET:K","data":{"a":1}}"#,
                ClientFrame::Set {
                    key: "K".into(),
                    state: json!({"a": 1}).as_object().cloned().unwrap_or_default(),
                },
            ),
            (
                r#"{"type":"_GET:K","data":{}}"#,
                ClientFrame::Get { key: "K".into() },
            ),
            (
                r#"{"type":"_PATCH:K","data":[{"op":"remove","path":"/a"}]}"#,
                ClientFrame::Patch {
                    key: "K".into(),
                    ops: vec![PatchOp::remove("/a")],
                },
            ),
            (
                r#"{"type":"_ACTION:a:b","data":{"type":"GO","x":1}}"#,
                ClientFrame::Action {
                    key: "a:b".into(),
                    name: "GO".into(),
                    args: json!({"x": 1}).as_object().cloned().unwrap_or_default(),
                },
            ),
            (
                r#"{"type":"_TASK_START:K","data":{"type":"T"}}"#,
                ClientFrame::TaskStart {
                    key: "K".into(),
                    name: "T".into(),
                    args: Map::new(),
                },
            ),
            (
                r#"{"type":"_TASK_CANCEL:K","data":{"type":"T"}}"#,
                ClientFrame::TaskCancel {
                    key: "K".into(),
                    name: "T".into(),
                },
            ),
            (
                r#"{"type":"_BIN_META","data":{"type":"_ACTION:K","metadata":{"type":"UP"}}}"#,
                ClientFrame::BinMeta {
                    event: "_ACTION:K".into(),
                    metadata: json!({"type": "UP"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                },
            ),
            (
                r#"{"type":"_USER_SESSION","data":{"user":"u","session":"s"}}"#,
                ClientFrame::UserSession {
                    user: "u".into(),
                    session: "s".into(),
                },
            ),
            (
                r#"{"type":"_WHAT","data":1}"#,
                ClientFrame::Unknown {
                    event: "_WHAT".into(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_client(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_frames() {
        assert_eq!(parse_client("{"), Err(FrameError::InvalidJson));
        assert_eq!(parse_client(""), Err(FrameError::InvalidJson));
        assert_eq!(parse_client("[]"), Err(FrameError::NotAFrame));
        assert_eq!(parse_client("null"), Err(FrameError::NotAFrame));
        assert_eq!(parse_client(r#"{"data":1}"#), Err(FrameError::NotAFrame));
        assert_eq!(parse_client(r#"{"type":1}"#), Err(FrameError::NotAFrame));
        for (text, expected) in [
            (r#"{"type":"_SET:K","data":[]}"#, EXPECT_OBJECT),
            (r#"{"type":"_PATCH:K","data":{}}"#, EXPECT_OPS),
            (r#"{"type":"_PATCH:K"}"#, EXPECT_OPS),
            (r#"{"type":"_ACTION:K","data":{"type":1}}"#, EXPECT_TYPED),
            (r#"{"type":"_TASK_CANCEL:K","data":"T"}"#, EXPECT_TYPED),
            (r#"{"type":"_BIN_META","data":{"type":"x"}}"#, EXPECT_META),
            (
                r#"{"type":"_USER_SESSION","data":{"user":"","session":"s"}}"#,
                EXPECT_USER,
            ),
        ] {
            match parse_client(text) {
                Err(FrameError::BadData { expected: e, .. }) => assert_eq!(e, expected, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn encodes_server_frames() {
        assert_eq!(
            encode_value("_SET:K", &json!({"b": 1, "a": "é"})),
            r#"{"type":"_SET:K","data":{"b":1,"a":"é"}}"#
        );
        assert_eq!(
            encode_toast(ToastKind::Error, "a \"b\""),
            r#"{"type":"_TOAST","data":{"type":"error","message":"a \"b\""}}"#
        );
        assert_eq!(
            encode_disconnect("bye"),
            r#"{"type":"_DISCONNECT","data":"bye"}"#
        );
        let meta = json!({"type": "P"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            encode_bin_meta("_ACTION:K", &meta),
            r#"{"type":"_BIN_META","data":{"type":"_ACTION:K","metadata":{"type":"P"}}}"#
        );
        let running = vec!["T".to_owned()];
        let with = WithRunning {
            state: &json!({"runningTasks": ["old"], "x": 1}),
            running: Some(("runningTasks", &running)),
        };
        assert_eq!(
            encode("_SET:K", &with).ok().as_deref(),
            Some(r#"{"type":"_SET:K","data":{"x":1,"runningTasks":["T"]}}"#)
        );
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        for (input, want) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"hello world", "aGVsbG8gd29ybGQ="),
            (&[0xff, 0xfe, 0x00], "//4A"),
        ] {
            let mut s = String::new();
            base64_into(&mut s, input);
            assert_eq!(s, want);
        }
        assert_eq!(
            encode_download("a.txt", b"hi"),
            r#"{"type":"_DOWNLOAD","data":{"filename":"a.txt","data":"aGk="}}"#
        );
    }

    #[test]
    fn preview_cuts_on_char_boundaries() {
        assert_eq!(preview("abc", 10), "abc");
        assert_eq!(preview("ééé", 3), "é… (6 bytes)");
    }
}
