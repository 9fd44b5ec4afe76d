//! WebSocket JSON frames: the request parser and the reply / push encoders.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::command::{Command, ListType, Register};
use crate::error::{ErrorCode, HubError};
use crate::event::{Push, Reply};
use crate::history::Position;
use crate::name::{Name, truncate_for_message};

/// A parsed request frame: its `id` (echoed verbatim) and the command or why it was refused.
#[derive(Debug)]
pub struct Request {
    /// The request id, `Value::Null` when absent or unreadable.
    pub id: Value,
    /// The command.
    pub command: Result<Command, HubError>,
}

fn bad(code: ErrorCode, msg: impl Into<String>) -> HubError {
    HubError::new(code, msg)
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, HubError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(
            ErrorCode::BadSyntax,
            format!("field '{key}' must be a string"),
        )),
    }
}

fn name(obj: &Map<String, Value>, key: &str) -> Result<Option<Name>, HubError> {
    field(obj, key)?.map(Name::parse).transpose()
}

fn required_name(obj: &Map<String, Value>, key: &str, cmd: &str) -> Result<Name, HubError> {
    name(obj, key)?.ok_or_else(|| {
        bad(
            ErrorCode::BadSyntax,
            format!("'{cmd}' needs the field '{key}'"),
        )
    })
}

fn required_text(obj: &Map<String, Value>, cmd: &str) -> Result<String, HubError> {
    match field(obj, "text")? {
        Some(t) if !t.is_empty() => Ok(t.to_string()),
        _ => Err(bad(
            ErrorCode::BadSyntax,
            format!("'{cmd}' needs a non-empty 'text'"),
        )),
    }
}

/// The optional `presence` field of hello / new / join: `false` asks for a quiet membership.
fn presence_flag(obj: &Map<String, Value>) -> Result<bool, HubError> {
    match obj.get("presence") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(
            ErrorCode::BadSyntax,
            "field 'presence' must be true or false",
        )),
    }
}

/// Parses one text frame.
pub fn parse_frame(frame: &[u8]) -> Request {
    let value: Value = match serde_json::from_slice(frame) {
        Ok(v) => v,
        Err(e) => {
            return Request {
                id: Value::Null,
                command: Err(bad(ErrorCode::BadJson, format!("frame is not JSON: {e}"))),
            };
        }
    };
    let Value::Object(obj) = value else {
        return Request {
            id: Value::Null,
            command: Err(bad(ErrorCode::BadJson, "frame must be a JSON object")),
        };
    };
    let id = match obj.get("id") {
        Some(v @ (Value::Number(_) | Value::String(_))) => v.clone(),
        _ => Value::Null,
    };
    Request {
        id,
        command: parse_command(&obj),
    }
}

fn parse_command(obj: &Map<String, Value>) -> Result<Command, HubError> {
    let cmd = field(obj, "cmd")?
        .ok_or_else(|| bad(ErrorCode::BadSyntax, "the frame needs a 'cmd' field"))?
        .to_ascii_lowercase();
    let client = name(obj, "client")?;
    Ok(match cmd.as_str() {
        "hello" | "new" | "join" => Command::Register {
            kind: match cmd.as_str() {
                "hello" => Register::Hello,
                "new" => Register::New,
                _ => Register::Join,
            },
            room: required_name(obj, "room", &cmd)?,
            client,
            presence: presence_flag(obj)?,
            since: since(obj)?,
            offsets: true,
        },
        "send" => Command::Send {
            room: required_name(obj, "room", &cmd)?,
            client,
            text: required_text(obj, &cmd)?,
        },
        "to" => Command::To {
            room: required_name(obj, "room", &cmd)?,
            client,
            target: required_name(obj, "target", &cmd)?,
            text: required_text(obj, &cmd)?,
        },
        "list" => {
            let kind = match field(obj, "type")? {
                Some(t) => ListType::parse(t)?,
                None => {
                    return Err(bad(ErrorCode::BadSyntax, "'list' needs the field 'type'"));
                }
            };
            let arg = name(obj, "arg")?;
            if kind.needs_arg() && arg.is_none() {
                return Err(bad(
                    ErrorCode::BadSyntax,
                    format!("list {} needs the field 'arg'", kind.as_str()),
                ));
            }
            Command::List { kind, arg }
        }
        "pause" => Command::Pause {
            room: Some(required_name(obj, "room", &cmd)?),
            client,
        },
        "resume" => Command::Resume {
            room: Some(required_name(obj, "room", &cmd)?),
            client,
        },
        "leave" => Command::Leave {
            room: required_name(obj, "room", &cmd)?,
            client,
        },
        "quit" => Command::Quit { client },
        other => {
            return Err(bad(
                ErrorCode::BadCommand,
                format!(
                    "unknown cmd '{}': use hello, new, join, send, to, list, pause, resume, leave or quit",
                    truncate_for_message(other)
                ),
            ));
        }
    })
}

/// The optional `since: {"offset": n, "epoch": "…"}` of a join.
fn since(obj: &Map<String, Value>) -> Result<Option<Position>, HubError> {
    let usage = || {
        bad(
            ErrorCode::BadSyntax,
            "'since' must be {\"offset\": <whole number from 0>, \"epoch\": <string>}",
        )
    };
    match obj.get("since") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(s)) => {
            let offset = s.get("offset").and_then(Value::as_u64).ok_or_else(usage)?;
            let epoch = s.get("epoch").and_then(Value::as_str).ok_or_else(usage)?;
            Ok(Some(Position::parse(offset, epoch)?))
        }
        Some(_) => Err(usage()),
    }
}

fn to_bytes(v: &Value) -> Bytes {
    // Serializing a Value cannot fail: keys are strings and numbers are finite.
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// The JSON object of an error, without an id: `{"ok":false,"error","message"}`.
pub fn error_object(err: &HubError) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ok".into(), Value::Bool(false));
    m.insert("error".into(), Value::from(err.code.as_str()));
    m.insert("message".into(), Value::from(err.message.clone()));
    m
}

/// The reply frame for a request.
pub fn encode_reply(id: &Value, result: &Result<Reply, HubError>) -> Bytes {
    let mut m = Map::new();
    m.insert("id".into(), id.clone());
    match result {
        Err(e) => m.extend(error_object(e)),
        Ok(r) => {
            m.insert("ok".into(), Value::Bool(true));
            if let Value::Object(fields) = reply_fields(r) {
                m.extend(fields);
            }
        }
    }
    to_bytes(&Value::Object(m))
}

fn reply_fields(r: &Reply) -> Value {
    match r {
        // The member list goes out once, in the presence push that follows the reply.
        Reply::Registered {
            room,
            client,
            count,
            position,
            recovered,
            ..
        } => {
            let mut v = json!({"room": room, "client": client, "count": count,
                "offset": position.offset, "epoch": &*position.epoch});
            if let (Some(r), Value::Object(m)) = (recovered, &mut v) {
                m.insert("recovered".into(), Value::Bool(*r));
            }
            v
        }
        Reply::Sent {
            room,
            delivered,
            position,
        } => json!({"room": room, "delivered": delivered,
            "offset": position.offset, "epoch": &*position.epoch}),
        Reply::Direct {
            room,
            target,
            delivered,
        } => json!({"room": room, "target": target, "delivered": delivered}),
        Reply::List { kind, rooms } => json!({"type": kind.as_str(), "rooms": rooms}),
        Reply::Paused { client, rooms } | Reply::Resumed { client, rooms } => {
            json!({"room": rooms.first(), "rooms": rooms, "client": client})
        }
        Reply::Left { room, client } => json!({"room": room, "client": client}),
        Reply::Bye => json!({}),
    }
}

/// The JSON value of a push (also what the REST mailbox returns).
pub fn push_value(push: &Push) -> Value {
    match push {
        Push::Message {
            room,
            from,
            text,
            offset,
            epoch,
        } => json!({"type": "message", "room": room, "from": from, "text": &**text,
            "offset": offset, "epoch": &**epoch}),
        Push::Direct {
            room,
            from,
            to,
            text,
        } => json!({"type": "direct", "room": room, "from": from, "to": to, "text": &**text}),
        Push::Join { room, client } => json!({"type": "join", "room": room, "client": client}),
        Push::Leave { room, client } => json!({"type": "leave", "room": room, "client": client}),
        Push::Presence {
            room,
            members,
            count,
        } => json!({
            "type": "presence", "room": room, "members": members,
            "count": count, "truncated": *count > members.len(),
        }),
        Push::Resync { room, position } => json!({"type": "resync", "room": room,
            "offset": position.offset, "epoch": &*position.epoch}),
        Push::Bye { reason } => json!({"type": "bye", "reason": &**reason}),
    }
}

/// The frame for a push.
pub fn encode_push(push: &Push) -> Bytes {
    to_bytes(&push_value(push))
}

/// The start of a `presence_batch` frame (for connections that asked for batches), up to and
/// including the `[` of its events: the events follow, separated by commas, then
/// [`BATCH_TAIL`]. Split this way so that a member that joined mid-batch gets a frame built from
/// the same encoded events.
pub fn batch_head(room: &Name, count: usize) -> Bytes {
    let room = serde_json::to_string(room.as_str()).unwrap_or_default();
    Bytes::from(format!(
        r#"{{"type":"presence_batch","room":{room},"count":{count},"events":["#
    ))
}

/// The end of a `presence_batch` frame, after its events.
pub const BATCH_TAIL: &[u8] = b"]}";

/// One event of a `presence_batch` frame: the push's object without its `room` (the batch's),
/// e.g. `{"type":"join","client":"bob"}`.
pub fn batch_event(push: &Push) -> Bytes {
    to_bytes(&match push {
        Push::Join { client, .. } => json!({"type": "join", "client": client}),
        Push::Leave { client, .. } => json!({"type": "leave", "client": client}),
        other => push_value(other),
    })
}

/// A whole `presence_batch` frame: `events` (joins and leaves of `room`, oldest first) and the
/// room's member `count` after them.
pub fn encode_presence_batch(room: &Name, count: usize, events: &[Push]) -> Bytes {
    let mut b = bytes::BytesMut::from(&batch_head(room, count)[..]);
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            b.extend_from_slice(b",");
        }
        b.extend_from_slice(&batch_event(e));
    }
    b.extend_from_slice(BATCH_TAIL);
    b.freeze()
}
