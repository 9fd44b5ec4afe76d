//! What nodes say to each other through Redis: the key and channel names, and the JSON events
//! published on a room's channel and on the control channel.

use serde::{Deserialize, Serialize};
use tether_rooms::{Name, Status};

/// Every key and channel of the cluster starts with this.
pub const PREFIX: &str = "tether:";

/// The channel every node listens to: rooms created and removed.
pub const CONTROL: &str = "tether:control";

/// The set of rooms of the cluster (`main` excluded: it always exists).
pub const ROOMS: &str = "tether:rooms";

/// The pub/sub channel of a room's messages, joins and leaves.
pub fn room_channel(room: &str) -> String {
    format!("{PREFIX}room:{room}")
}

/// The room a channel name belongs to, if it is a room channel.
pub fn channel_room(channel: &str) -> Option<&str> {
    channel.strip_prefix(PREFIX)?.strip_prefix("room:")
}

/// The hash of a room's members on every node: client → "node STATUS".
pub fn presence_key(room: &str) -> String {
    format!("{PREFIX}presence:{room}")
}

/// A node's heartbeat, alive while its TTL runs.
pub fn node_key(node: &str) -> String {
    format!("{PREFIX}node:{node}")
}

/// A client name's claim: the node that holds it, while its TTL runs.
pub fn client_key(client: &str) -> String {
    format!("{PREFIX}client:{client}")
}

/// The hash of a room's cluster-wide position: `epoch` and `top` (its last offset).
pub fn meta_key(room: &str) -> String {
    format!("{PREFIX}meta:{{{room}}}")
}

/// The Stream of a room's kept messages: entry id `<offset>-0`, fields `f` (sender), `t`
/// (text), `ms` (when published, Unix milliseconds).
pub fn stream_key(room: &str) -> String {
    format!("{PREFIX}stream:{{{room}}}")
}

/// Positions and publishes one room message, atomically, so that offsets are assigned in the
/// order Redis publishes them. `KEYS`: meta, stream. `ARGV`: an epoch for a room that has none
/// (new, or lost by Redis), sender, text, ms, how many messages to keep (0: none), their TTL in
/// seconds, the room's channel, and the event's JSON after its `{` (the script puts the
/// position first). Returns `{offset, epoch}`.
pub const PUBLISH: &str = r#"redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
if offset == 1 then redis.call('DEL', KEYS[2]) end
local keep = tonumber(ARGV[5])
if keep > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', keep, offset .. '-0', 'f', ARGV[2], 't', ARGV[3], 'ms', ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
redis.call('PUBLISH', ARGV[7], '{"k":"m","o":' .. offset .. ',"e":"' .. epoch .. '",' .. ARGV[8])
return {offset, epoch}"#;

/// A room's position and its newest `ARGV[2]` kept messages (newest first), giving the room
/// the epoch `ARGV[1]` if it has none. `KEYS`: meta, stream. Returns `{epoch, top, entries}`.
pub const READ: &str = r#"redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local top = tonumber(redis.call('HGET', KEYS[1], 'top') or '0')
local entries = {}
if tonumber(ARGV[2]) > 0 then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])
end
return {epoch, top, entries}"#;

/// The JSON of a room message event after its `{`, for [`PUBLISH`] to put the position before.
pub fn message_tail(node: &str, from: &str, text: &str) -> String {
    let body = serde_json::json!({"n": node, "f": from, "t": text}).to_string();
    body.strip_prefix('{').unwrap_or_default().to_owned()
}

/// Claims `KEYS[1]` for node `ARGV[1]` for `ARGV[2]` seconds unless another node holds it.
pub const CLAIM: &str = "local v = redis.call('GET', KEYS[1]) \
    if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end \
    return 0";

/// Deletes `KEYS[1]` if node `ARGV[1]` holds it.
pub const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end \
    return 0";

/// One event on a room's channel or the control channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub enum Event {
    /// A room message, positioned by [`PUBLISH`].
    #[serde(rename = "m")]
    Message {
        /// Its offset in the room.
        o: u64,
        /// The room's epoch.
        e: String,
        /// The node that published it.
        n: String,
        /// The sender.
        f: String,
        /// The text.
        t: String,
    },
    /// A member joined the room on node `n`.
    #[serde(rename = "j")]
    Join {
        /// The node.
        n: String,
        /// The client.
        c: String,
    },
    /// A member left the room on node `n`.
    #[serde(rename = "l")]
    Leave {
        /// The node.
        n: String,
        /// The client.
        c: String,
    },
    /// A room was created (control channel).
    #[serde(rename = "room+")]
    RoomCreated {
        /// The node.
        n: String,
        /// The room.
        r: String,
    },
    /// A room was removed (control channel).
    #[serde(rename = "room-")]
    RoomRemoved {
        /// The node.
        n: String,
        /// The room.
        r: String,
    },
}

impl Event {
    /// The node that published the event.
    pub fn node(&self) -> &str {
        match self {
            Event::Message { n, .. }
            | Event::Join { n, .. }
            | Event::Leave { n, .. }
            | Event::RoomCreated { n, .. }
            | Event::RoomRemoved { n, .. } => n,
        }
    }

    /// The JSON payload.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a payload; `None` for anything that is not one of ours.
    pub fn decode(payload: &[u8]) -> Option<Event> {
        serde_json::from_slice(payload).ok()
    }
}

/// A presence hash value: which node holds the member, in which status.
pub fn presence_value(node: &str, status: Status) -> String {
    format!("{node} {}", status.as_str())
}

/// Parses a presence hash value.
pub fn parse_presence(value: &str) -> Option<(&str, Status)> {
    let (node, status) = value.split_once(' ')?;
    let status = match status {
        "NEW" => Status::New,
        "CONNECTED" => Status::Connected,
        "ACTIVE" => Status::Active,
        "SUSPENDED" => Status::Suspended,
        "ERROR" => Status::Error,
        "CLOSING" => Status::Closing,
        "CLOSED" => Status::Closed,
        _ => return None,
    };
    Some((node, status))
}

/// A name from another node, checked as a local one would be.
pub fn name(s: &str) -> Option<Name> {
    Name::parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_foreign_payloads_are_ignored() {
        let e = Event::Message {
            o: 3,
            e: "abc".into(),
            n: "n1".into(),
            f: "alice".into(),
            t: "hi \"there\"\n".into(),
        };
        assert_eq!(Event::decode(e.encode().as_bytes()), Some(e.clone()));
        assert_eq!(e.node(), "n1");
        assert_eq!(
            Event::decode(br#"{"k":"j","n":"n2","c":"bob"}"#),
            Some(Event::Join {
                n: "n2".into(),
                c: "bob".into()
            })
        );
        assert_eq!(Event::decode(b"not json"), None);
        // What the PUBLISH script writes decodes as a message.
        let built = format!(
            r#"{{"k":"m","o":3,"e":"abc",{}"#,
            message_tail("n1", "alice", "hi \"there\"\n")
        );
        assert_eq!(Event::decode(built.as_bytes()), Some(e.clone()));
        assert_eq!(Event::decode(br#"{"k":"zz"}"#), None);
    }

    #[test]
    fn names_and_values_parse_back() {
        assert_eq!(channel_room(&room_channel("lobby")), Some("lobby"));
        assert_eq!(channel_room(CONTROL), None);
        let v = presence_value("n1", Status::Suspended);
        assert_eq!(parse_presence(&v), Some(("n1", Status::Suspended)));
        assert_eq!(parse_presence("n1 BOGUS"), None);
        assert_eq!(parse_presence("n1"), None);
    }
}
