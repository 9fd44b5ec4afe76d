//! The TCP line protocol: a bounded line splitter, the command parser and the encoders.

use bytes::{BufMut, Bytes, BytesMut};

use crate::command::{Command, ListType, Register};
use crate::error::{ErrorCode, HubError};
use crate::event::{Push, Reply, RoomInfo};
use crate::history::Position;
use crate::name::{Name, truncate_for_message};

/// Longest accepted command line in bytes, without its newline.
pub const MAX_LINE: usize = 16 * 1024;

/// One unit the splitter yields.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete line, newline (and a `\r` before it) removed.
    Line(String),
    /// A line over the limit was skipped, unread.
    TooLong,
    /// A line that is not UTF-8 was skipped.
    BadEncoding,
}

/// Splits a byte stream into lines without ever holding more than the limit of one line.
pub struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
    /// Inside an over-long line: drop bytes up to the next newline.
    discarding: bool,
}

impl LineSplitter {
    /// A splitter for lines of at most `max` bytes.
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter {
            buf: Vec::new(),
            max,
            discarding: false,
        }
    }

    /// Feeds bytes in and returns the events they complete, in order.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<LineEvent> {
        let mut events = Vec::new();
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let (head, rest) = (&data[..i], &data[i + 1..]);
                    data = rest;
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    if self.buf.len() + head.len() > self.max + 1 {
                        // +1 tolerates a `\r` before the newline.
                        self.buf.clear();
                        events.push(LineEvent::TooLong);
                        continue;
                    }
                    self.buf.extend_from_slice(head);
                    let line = std::mem::take(&mut self.buf);
                    if let Some(ev) = finish_line(line, self.max) {
                        events.push(ev);
                    }
                }
                None => {
                    if !self.discarding {
                        if self.buf.len() + data.len() > self.max + 1 {
                            self.buf.clear();
                            self.discarding = true;
                            events.push(LineEvent::TooLong);
                        } else {
                            self.buf.extend_from_slice(data);
                        }
                    }
                    data = &[];
                }
            }
        }
        events
    }

    /// The stream ended: a last line without its newline still counts.
    pub fn finish(&mut self) -> Option<LineEvent> {
        if self.discarding {
            self.discarding = false;
            return None;
        }
        let line = std::mem::take(&mut self.buf);
        if line.is_empty() {
            return None;
        }
        finish_line(line, self.max)
    }
}

fn finish_line(mut line: Vec<u8>, max: usize) -> Option<LineEvent> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() > max {
        return Some(LineEvent::TooLong);
    }
    match String::from_utf8(line) {
        Ok(s) => Some(LineEvent::Line(s)),
        Err(_) => Some(LineEvent::BadEncoding),
    }
}

/// The error a splitter event stands for, for the reply.
pub fn event_error(ev: &LineEvent) -> Option<HubError> {
    match ev {
        LineEvent::Line(_) => None,
        LineEvent::TooLong => Some(HubError::new(
            ErrorCode::LineTooLong,
            format!("line exceeds {MAX_LINE} bytes"),
        )),
        LineEvent::BadEncoding => Some(HubError::new(
            ErrorCode::BadEncoding,
            "the line is not valid UTF-8",
        )),
    }
}

fn is_sep(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits off the next token; returns it and the rest with leading separators removed.
fn next_token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(is_sep);
    if s.is_empty() {
        return None;
    }
    let end = s.find(is_sep).unwrap_or(s.len());
    Some((&s[..end], s[end..].trim_start_matches(is_sep)))
}

fn syntax(msg: impl Into<String>) -> HubError {
    HubError::new(ErrorCode::BadSyntax, msg)
}

/// Parses `room:client`.
fn parse_room_client(token: &str, word: &str) -> Result<(Name, Name), HubError> {
    let Some((room, client)) = token.split_once(':') else {
        return Err(syntax(format!(
            "{word} expects room:client, got '{}'",
            truncate_for_message(token)
        )));
    };
    Ok((Name::parse(room)?, Name::parse(client)?))
}

/// Parses one command line. `Ok(None)` for a blank line, which is ignored.
pub fn parse_line(line: &str) -> Result<Option<Command>, HubError> {
    let line = line.trim_matches(is_sep);
    let Some((word, rest)) = next_token(line) else {
        return Ok(None);
    };
    let upper = word.to_ascii_uppercase();
    let word = upper.as_str();
    // The `room:client` token, required by every command but LIST.
    let rc = |rest: &str| -> Result<((Name, Name), String), HubError> {
        let Some((tok, rest)) = next_token(rest) else {
            return Err(syntax(format!("{word} expects room:client")));
        };
        Ok((parse_room_client(tok, word)?, rest.to_string()))
    };
    let no_more = |rest: &str| -> Result<(), HubError> {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(syntax(format!(
                "{word} takes no text after room:client, got '{}'",
                truncate_for_message(rest)
            )))
        }
    };
    let cmd = match word {
        "HELLO" | "NEW" | "JOIN" => {
            let ((room, client), rest) = rc(rest)?;
            let (since, offsets, presence) = parse_join_option(word, &rest)?;
            let kind = match word {
                "HELLO" => Register::Hello,
                "NEW" => Register::New,
                _ => Register::Join,
            };
            Command::Register {
                kind,
                room,
                client: Some(client),
                presence,
                since,
                offsets,
            }
        }
        "SEND" => {
            let ((room, client), text) = rc(rest)?;
            if text.is_empty() {
                return Err(syntax("SEND expects room:client text"));
            }
            Command::Send {
                room,
                client: Some(client),
                text,
            }
        }
        "TO" => {
            let ((room, client), rest) = rc(rest)?;
            let Some((target, text)) = next_token(&rest) else {
                return Err(syntax("TO expects room:client target text"));
            };
            if text.is_empty() {
                return Err(syntax("TO expects room:client target text"));
            }
            Command::To {
                room,
                client: Some(client),
                target: Name::parse(target)?,
                text: text.to_string(),
            }
        }
        "LIST" => {
            let Some((mut tok, mut rest)) = next_token(rest) else {
                return Err(syntax(
                    "LIST expects a type: CHAT_ROOMS, ALL, CHAT_ROOM_AND_CLIENTS, CLIENT_CHAT_ROOMS <client> or CLIENTS_FOR_CHAT_ROOM <room>",
                ));
            };
            if tok.contains(':') {
                // The seed's form: LIST room:client TYPE [arg].
                let Some((t, r)) = next_token(rest) else {
                    return Err(syntax("LIST expects a type"));
                };
                (tok, rest) = (t, r);
            }
            let kind = ListType::parse(tok)?;
            let arg = match next_token(rest) {
                Some((a, more)) => {
                    if !kind.needs_arg() || !more.is_empty() {
                        return Err(syntax(format!(
                            "too many arguments for LIST {}",
                            kind.as_str()
                        )));
                    }
                    Some(Name::parse(a)?)
                }
                None => None,
            };
            if kind.needs_arg() && arg.is_none() {
                return Err(syntax(format!(
                    "LIST {} needs a {} name",
                    kind.as_str(),
                    if kind == ListType::ClientChatRooms {
                        "client"
                    } else {
                        "room"
                    }
                )));
            }
            Command::List { kind, arg }
        }
        "PAUSE" | "RESUME" | "LEAVE" | "QUIT" => {
            let ((room, client), rest) = rc(rest)?;
            no_more(&rest)?;
            match word {
                "PAUSE" => Command::Pause {
                    room: Some(room),
                    client: Some(client),
                },
                "RESUME" => Command::Resume {
                    room: Some(room),
                    client: Some(client),
                },
                "LEAVE" => Command::Leave {
                    room,
                    client: Some(client),
                },
                _ => Command::Quit {
                    client: Some(client),
                },
            }
        }
        _ => {
            return Err(HubError::new(
                ErrorCode::BadCommand,
                format!(
                    "unknown command '{}': use HELLO, NEW, JOIN, SEND, TO, LIST, PAUSE, RESUME, LEAVE or QUIT",
                    truncate_for_message(word)
                ),
            ));
        }
    };
    Ok(Some(cmd))
}

/// The option after `HELLO|NEW|JOIN room:client`: nothing, `OFFSETS`, or `SINCE offset epoch`
/// (HELLO and JOIN only; it implies `OFFSETS`).
fn parse_join_option(word: &str, rest: &str) -> Result<(Option<Position>, bool, bool), HubError> {
    let usage = || {
        syntax(format!(
            "{word} expects room:client, optionally followed by QUIET and by OFFSETS{}",
            if word == "NEW" {
                ""
            } else {
                " or SINCE <offset> <epoch>"
            }
        ))
    };
    let (mut since, mut offsets, mut presence) = (None, false, true);
    let mut rest = rest;
    while let Some((opt, after)) = next_token(rest) {
        rest = after;
        match opt.to_ascii_uppercase().as_str() {
            // QUIET: a membership without JOINED / LEFT lines.
            "QUIET" if presence => presence = false,
            "OFFSETS" if !offsets => offsets = true,
            "SINCE" if word != "NEW" && !offsets => {
                let Some((offset, after)) = next_token(rest) else {
                    return Err(usage());
                };
                let Some((epoch, after)) = next_token(after) else {
                    return Err(usage());
                };
                rest = after;
                let offset: u64 = offset.parse().map_err(|_| {
                    syntax(format!(
                        "SINCE expects an offset (a whole number from 0), got '{}'",
                        truncate_for_message(offset)
                    ))
                })?;
                since = Some(Position::parse(offset, epoch)?);
                offsets = true;
            }
            _ => return Err(usage()),
        }
    }
    Ok((since, offsets, presence))
}

fn line(parts: &[&str]) -> Bytes {
    let len = parts.iter().map(|p| p.len() + 1).sum();
    let mut b = BytesMut::with_capacity(len);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            b.put_u8(b' ');
        }
        b.put_slice(p.as_bytes());
    }
    b.put_u8(b'\n');
    b.freeze()
}

/// Texts are one line on the wire: a newline inside (possible from the JSON doors) becomes a space.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['\n', '\r']) {
        text.replace(['\n', '\r'], " ").into()
    } else {
        text.into()
    }
}

/// The `ERROR CODE message` line.
pub fn encode_error(err: &HubError) -> Bytes {
    line(&["ERROR", err.code.as_str(), &err.message])
}

/// The reply block for a command result, as the seed's clients know it.
pub fn encode_reply(result: &Result<Reply, HubError>) -> Bytes {
    encode_reply_with(result, false)
}

/// The reply block for a command result on a connection that shows offsets (`offsets`) or not.
/// A registration that asked for offsets (`OFFSETS`, `SINCE`) is answered with the room's
/// position: `OK JOIN room:client AT|RECOVERED|RESYNC offset epoch`; on a connection that shows
/// offsets, `OK SEND room n offset epoch`.
pub fn encode_reply_with(result: &Result<Reply, HubError>, offsets: bool) -> Bytes {
    let reply = match result {
        Ok(r) => r,
        Err(e) => return encode_error(e),
    };
    match reply {
        Reply::Registered {
            kind,
            room,
            client,
            position,
            recovered,
            offsets: asked,
            ..
        } => {
            let rc = format!("{room}:{client}");
            if !asked {
                return line(&["OK", kind.word(), &rc]);
            }
            let state = match recovered {
                None => "AT",
                Some(true) => "RECOVERED",
                Some(false) => "RESYNC",
            };
            let offset = position.offset.to_string();
            line(&["OK", kind.word(), &rc, state, &offset, &position.epoch])
        }
        Reply::Sent {
            room,
            delivered,
            position,
        } => {
            let n = delivered.to_string();
            if offsets {
                let offset = position.offset.to_string();
                line(&["OK", "SEND", room.as_str(), &n, &offset, &position.epoch])
            } else {
                line(&["OK", "SEND", room.as_str(), &n])
            }
        }
        Reply::Direct {
            room,
            target,
            delivered,
        } => line(&[
            "OK",
            "TO",
            &format!("{room}:{target}"),
            &delivered.to_string(),
        ]),
        Reply::List { kind, rooms } => encode_list(*kind, rooms),
        Reply::Paused { client, rooms } => line(&["OK", "PAUSE", &rooms_of(rooms, client)]),
        Reply::Resumed { client, rooms } => line(&["OK", "RESUME", &rooms_of(rooms, client)]),
        Reply::Left { room, client } => line(&["OK", "LEAVE", &format!("{room}:{client}")]),
        Reply::Bye => line(&["OK", "BYE"]),
    }
}

fn rooms_of(rooms: &[Name], client: &Name) -> String {
    rooms
        .iter()
        .map(|r| format!("{r}:{client}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn encode_list(kind: ListType, rooms: &[RoomInfo]) -> Bytes {
    let mut items: Vec<String> = Vec::new();
    for r in rooms {
        match kind {
            ListType::ChatRooms => items.push(format!("ROOM {} {}", r.name, r.count)),
            ListType::All => {
                items.push(format!("ROOM {} {}", r.name, r.count));
                items.extend(
                    r.members
                        .iter()
                        .map(|m| format!("CLIENT {} {}", m.client, m.status)),
                );
            }
            ListType::ChatRoomAndClients => {
                items.push(format!("ROOM {} {}", r.name, r.count));
                items.extend(r.members.iter().map(|m| format!("CLIENT {}", m.client)));
            }
            ListType::ClientChatRooms => {
                let status = r.members.first().map_or("", |m| m.status.as_str());
                items.push(format!("ROOM {} {}", r.name, status));
            }
            ListType::ClientsForChatRoom => {
                items.extend(
                    r.members
                        .iter()
                        .map(|m| format!("CLIENT {} {}", m.client, m.status)),
                );
            }
        }
    }
    let mut b = BytesMut::new();
    b.put_slice(format!("OK LIST {} {}\n", kind.as_str(), items.len()).as_bytes());
    for item in &items {
        b.put_slice(item.as_bytes());
        b.put_u8(b'\n');
    }
    b.put_slice(b"END\n");
    b.freeze()
}

/// The line for a push, or `None` for pushes the line protocol does not show (presence).
pub fn encode_push(push: &Push) -> Option<Bytes> {
    Some(match push {
        Push::Message {
            room, from, text, ..
        } => line(&["MSG", &format!("{room}:{from}"), &one_line(text)]),
        Push::Direct {
            room, from, text, ..
        } => line(&["MSG", "FROM", &format!("{room}:{from}"), &one_line(text)]),
        Push::Join { room, client } => line(&["JOINED", &format!("{room}:{client}")]),
        Push::Leave { room, client } => line(&["LEFT", &format!("{room}:{client}")]),
        Push::Presence { .. } | Push::Resync { .. } => return None,
        Push::Bye { reason } => line(&["BYE", &one_line(reason)]),
    })
}

/// The lines for a push on a connection that asked for offsets: a room message is preceded by
/// `OFFSET room offset epoch`, a resync is `RESYNC room offset epoch` (seed clients never see
/// it); every other push is as [`encode_push`] writes it.
pub fn encode_push_offsets(push: &Push) -> Option<Bytes> {
    if let Push::Resync { room, position } = push {
        return Some(line(&[
            "RESYNC",
            room.as_str(),
            &position.offset.to_string(),
            &position.epoch,
        ]));
    }
    let Push::Message {
        room,
        offset,
        epoch,
        ..
    } = push
    else {
        return encode_push(push);
    };
    let msg = encode_push(push)?;
    let head = line(&["OFFSET", room.as_str(), &offset.to_string(), epoch]);
    let mut b = BytesMut::with_capacity(head.len() + msg.len());
    b.put_slice(&head);
    b.put_slice(&msg);
    Some(b.freeze())
}

impl LineSplitter {
    /// Bytes held for the current partial line (bounded by the limit).
    pub fn buf_len(&self) -> usize {
        self.buf.len()
    }
}
