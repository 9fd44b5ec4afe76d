//! Unit tests of the hub and codecs together, driven through the line protocol.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::line::{LineEvent, LineSplitter, encode_push, encode_reply, parse_line};
use crate::*;

pub(crate) struct World {
    pub(crate) hub: Hub,
    /// The hub's clock: moves only when a test says so (or when `drain` runs the due ticks).
    pub(crate) now: Instant,
    /// Each room's members and the first presence event each sees, kept from `Joined` / `Left`
    /// the way an adapter keeps them.
    members: HashMap<Name, BTreeMap<ConnId, u64>>,
}

/// An output with its room-wide deliveries expanded into the connections that get them.
pub(crate) enum Share {
    /// These connections get this push.
    Push(Vec<ConnId>, Push),
    /// Each connection gets the events from its index on; the room count after them.
    Batch(Vec<(ConnId, usize)>, Vec<Push>, usize),
    /// Close this connection.
    Close(ConnId),
}

impl World {
    pub(crate) fn new(limits: Limits) -> World {
        World {
            hub: Hub::new(limits),
            now: Instant::now(),
            members: HashMap::new(),
        }
    }

    /// The next output with room-wide deliveries expanded; membership outputs update the
    /// members and are not returned.
    pub(crate) fn poll(&mut self) -> Option<Share> {
        loop {
            match self.hub.poll_output()? {
                Output::Deliver { to, push } => return Some(Share::Push(to, push)),
                Output::Joined { conn, room, since } => {
                    let fresh = self
                        .members
                        .entry(room)
                        .or_default()
                        .insert(conn, since)
                        .is_none();
                    assert!(fresh, "{conn:?} joined twice without leaving");
                }
                Output::Left { conn, room } => {
                    let known = self
                        .members
                        .get_mut(&room)
                        .and_then(|m| m.remove(&conn))
                        .is_some();
                    assert!(known, "{conn:?} left {room} without having joined");
                }
                Output::Broadcast { room, push, skip } => {
                    let to = self
                        .members
                        .get(&room)
                        .into_iter()
                        .flat_map(|m| m.keys())
                        .filter(|c| !skip.contains(c))
                        .copied()
                        .collect();
                    return Some(Share::Push(to, push));
                }
                Output::DeliverBatch {
                    room,
                    first,
                    pushes,
                    count,
                } => {
                    let to: Vec<(ConnId, usize)> = self
                        .members
                        .get(&room)
                        .into_iter()
                        .flat_map(|m| m.iter())
                        .filter_map(|(c, since)| {
                            Output::batch_share(*since, first, pushes.len()).map(|f| (*c, f))
                        })
                        .collect();
                    assert!(!to.is_empty(), "a batch nobody gets in {room}");
                    return Some(Share::Batch(to, pushes, count));
                }
                Output::Close { conn } => return Some(Share::Close(conn)),
                Output::RoomCreated { .. } | Output::RoomDeleted { .. } => {}
            }
        }
    }

    /// Runs a line and returns the reply text.
    pub(crate) fn run(&mut self, conn: ConnId, text: &str) -> String {
        let result = match parse_line(text) {
            Ok(Some(cmd)) => self.hub.handle_command(conn, cmd, self.now),
            Ok(None) => return String::new(),
            Err(e) => Err(e),
        };
        String::from_utf8(encode_reply(&result).to_vec()).unwrap()
    }

    /// Moves the clock on by `d` and runs the presence ticks due by then.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.hub.handle_timeout(self.now);
    }

    /// Drains what is ready now, without running any tick.
    pub(crate) fn ready(&mut self) -> (Vec<(ConnId, String)>, Vec<ConnId>) {
        let (mut got, mut closed) = (Vec::new(), Vec::new());
        while let Some(out) = self.poll() {
            match out {
                Share::Push(to, push) => {
                    if let Some(b) = encode_push(&push) {
                        for c in to {
                            got.push((c, String::from_utf8(b.to_vec()).unwrap()));
                        }
                    }
                }
                Share::Batch(to, pushes, _) => {
                    for (c, from) in to {
                        assert!(from < pushes.len(), "empty share of a batch for {c:?}");
                        for p in &pushes[from..] {
                            let b = encode_push(p).unwrap();
                            got.push((c, String::from_utf8(b.to_vec()).unwrap()));
                        }
                    }
                }
                Share::Close(conn) => closed.push(conn),
            }
        }
        (got, closed)
    }

    /// Runs every pending presence tick (moving the clock to it), then drains deliveries and
    /// returns the lines each connection got, plus closes.
    pub(crate) fn drain(&mut self) -> (Vec<(ConnId, String)>, Vec<ConnId>) {
        self.drain_ticks();
        self.ready()
    }

    /// Moves the clock to each pending presence tick in turn and runs it; says how many ran.
    pub(crate) fn drain_ticks(&mut self) -> usize {
        let mut ticks = 0;
        while let Some(at) = self.hub.poll_timeout() {
            assert!(at > self.now, "a tick due by now was not run");
            self.now = at;
            self.hub.handle_timeout(self.now);
            ticks += 1;
        }
        ticks
    }
}

pub(crate) fn lines_for(got: &[(ConnId, String)], c: ConnId) -> Vec<&str> {
    got.iter()
        .filter(|(to, _)| *to == c)
        .map(|(_, l)| l.trim_end())
        .collect()
}

#[test]
fn main_exists_and_cannot_be_created() {
    let mut w = World::new(Limits::default());
    let a = w.hub.handle_connect(Door::Tcp);
    assert_eq!(w.run(a, "HELLO main:alice"), "OK HELLO main:alice\n");
    assert!(w.run(a, "NEW main:alice").starts_with("ERROR MAIN_ROOM"));
    assert_eq!(
        w.hub.delete_room("main").unwrap_err().code,
        ErrorCode::MainRoom
    );
}

#[test]
fn send_reaches_other_members_with_sender_and_room() {
    let mut w = World::new(Limits::default());
    let (a, b, c) = (
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Ws),
        w.hub.handle_connect(Door::Rest),
    );
    w.run(a, "HELLO main:alice");
    w.run(b, "hello main:bob");
    w.run(c, "NEW r1:carol");
    w.drain();
    assert_eq!(w.run(a, "SEND main:alice  hi   there "), "OK SEND main 1\n");
    let (got, _) = w.drain();
    assert_eq!(lines_for(&got, b), ["MSG main:alice hi   there"]);
    assert!(lines_for(&got, a).is_empty());
    assert!(lines_for(&got, c).is_empty());
}

#[test]
fn joins_and_leaves_are_pushed() {
    let mut w = World::new(Limits::default());
    let (a, b) = (
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Tcp),
    );
    w.run(a, "HELLO main:alice");
    w.drain();
    w.run(b, "JOIN main:bob");
    let (got, _) = w.drain();
    assert_eq!(lines_for(&got, a), ["JOINED main:bob"]);
    assert_eq!(
        w.run(b, "JOIN main:bob").split(' ').nth(1),
        Some("ALREADY_JOINED")
    );
    assert_eq!(w.run(b, "HELLO main:bob"), "OK HELLO main:bob\n");
    assert_eq!(w.run(b, "QUIT main:bob"), "OK BYE\n");
    let (got, closed) = w.drain();
    assert_eq!(lines_for(&got, a), ["LEFT main:bob"]);
    assert_eq!(closed, [b]);
    assert_eq!(w.hub.client_count(), 1);
}

#[test]
fn statuses_follow_the_documented_transitions() {
    let mut w = World::new(Limits::default());
    let (a, b) = (
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Tcp),
    );
    assert_eq!(w.hub.conn_status(a), Status::New);
    w.run(a, "HELLO main:alice");
    w.run(b, "HELLO main:bob");
    assert_eq!(
        w.hub.member_status("main", "alice"),
        Some(Status::Connected)
    );
    w.run(a, "SEND main:alice x");
    assert_eq!(w.hub.member_status("main", "alice"), Some(Status::Active));
    w.run(b, "PAUSE main:bob");
    assert_eq!(w.hub.member_status("main", "bob"), Some(Status::Suspended));
    w.drain();
    assert_eq!(w.run(a, "SEND main:alice y"), "OK SEND main 0\n");
    assert!(w.drain().0.is_empty());
    w.run(b, "RESUME main:bob");
    assert_eq!(w.hub.member_status("main", "bob"), Some(Status::Connected));
    w.run(a, "PAUSE main:alice");
    w.run(a, "RESUME main:alice");
    assert_eq!(w.hub.member_status("main", "alice"), Some(Status::Active));
    w.run(b, "PAUSE main:bob");
    w.run(b, "SEND main:bob back");
    assert_eq!(w.hub.member_status("main", "bob"), Some(Status::Active));
    let list = w.run(a, "LIST ALL");
    assert_eq!(
        list,
        "OK LIST ALL 3\nROOM main 2\nCLIENT alice ACTIVE\nCLIENT bob ACTIVE\nEND\n"
    );
}

#[test]
fn max_clients_is_exact_and_never_drifts() {
    let mut w = World::new(Limits {
        max_clients: 2,
        ..Limits::default()
    });
    for round in 0..5 {
        let (a, b, c) = (
            w.hub.handle_connect(Door::Tcp),
            w.hub.handle_connect(Door::Tcp),
            w.hub.handle_connect(Door::Tcp),
        );
        assert!(w.run(a, &format!("HELLO main:a{round}")).starts_with("OK"));
        assert!(w.run(b, &format!("HELLO main:b{round}")).starts_with("OK"));
        assert!(
            w.run(c, &format!("HELLO main:c{round}"))
                .starts_with("ERROR SERVER_FULL")
        );
        let (_, closed) = w.drain();
        assert_eq!(closed, [c]);
        w.hub.handle_close(c, CloseReason::Closed, w.now);
        assert_eq!(w.hub.client_count(), 2);
        w.run(a, &format!("QUIT main:a{round}"));
        w.hub.handle_close(a, CloseReason::Closed, w.now);
        w.hub.handle_close(b, CloseReason::Failed, w.now);
        w.hub.handle_close(b, CloseReason::Failed, w.now);
        assert_eq!(w.hub.client_count(), 0);
        w.drain();
    }
}

#[test]
fn message_length_counts_characters() {
    let mut w = World::new(Limits {
        max_message_length: 5,
        ..Limits::default()
    });
    let a = w.hub.handle_connect(Door::Tcp);
    w.run(a, "HELLO main:alice");
    assert_eq!(w.run(a, "SEND main:alice ééééé"), "OK SEND main 0\n");
    assert!(
        w.run(a, "SEND main:alice éééééé")
            .starts_with("ERROR TOO_LONG")
    );
}

#[test]
fn direct_messages_reach_only_the_target() {
    let mut w = World::new(Limits::default());
    let (a, b, c) = (
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Tcp),
    );
    w.run(a, "HELLO main:alice");
    w.run(b, "HELLO main:bob");
    w.run(c, "HELLO main:carol");
    w.drain();
    assert_eq!(
        w.run(a, "TO main:alice bob psst  there"),
        "OK TO main:bob 1\n"
    );
    let (got, _) = w.drain();
    assert_eq!(lines_for(&got, b), ["MSG FROM main:alice psst  there"]);
    assert!(lines_for(&got, c).is_empty());
    assert!(
        w.run(a, "TO main:alice zed hi")
            .starts_with("ERROR NO_SUCH_CLIENT")
    );
}

#[test]
fn identity_and_registration_errors() {
    let mut w = World::new(Limits::default());
    let (a, b) = (
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Tcp),
    );
    assert!(
        w.run(a, "SEND main:alice hi")
            .starts_with("ERROR NOT_REGISTERED")
    );
    w.run(a, "HELLO main:alice");
    assert!(w.run(a, "SEND main:bob hi").starts_with("ERROR IDENTITY"));
    assert!(w.run(b, "HELLO main:alice").starts_with("ERROR NAME_TAKEN"));
    assert!(w.run(b, "JOIN nope:bob").starts_with("ERROR NO_SUCH_ROOM"));
    assert!(w.run(a, "NEW r1:alice").starts_with("OK NEW"));
    assert!(w.run(b, "NEW r1:bob").starts_with("ERROR ROOM_EXISTS"));
    assert!(
        w.run(a, "FROM main:alice x")
            .starts_with("ERROR BAD_COMMAND")
    );
    assert!(w.run(a, "HELLO mainalice").starts_with("ERROR BAD_SYNTAX"));
    assert!(w.run(a, "HELLO main:al/ice").starts_with("ERROR BAD_NAME"));
    assert!(w.run(a, "LIST NOPE").starts_with("ERROR BAD_LIST_TYPE"));
    assert!(
        w.run(a, "LIST CLIENT_CHAT_ROOMS")
            .starts_with("ERROR BAD_SYNTAX")
    );
    assert!(
        w.run(a, "LIST CLIENT_CHAT_ROOMS zed")
            .starts_with("ERROR NO_SUCH_CLIENT")
    );
}

#[test]
fn rooms_stay_until_deleted_empty() {
    let mut w = World::new(Limits {
        max_rooms: 2,
        ..Limits::default()
    });
    let a = w.hub.handle_connect(Door::Tcp);
    w.run(a, "NEW r1:alice");
    assert!(w.run(a, "NEW r2:alice").starts_with("ERROR TOO_MANY_ROOMS"));
    assert_eq!(
        w.hub.delete_room("r1").unwrap_err().code,
        ErrorCode::RoomNotEmpty
    );
    w.hub.handle_close(a, CloseReason::Closed, w.now);
    assert_eq!(w.hub.room_count(), 2);
    w.hub.delete_room("r1").unwrap();
    assert_eq!(w.hub.room_count(), 1);
}

#[test]
fn list_types_and_seed_form() {
    let mut w = World::new(Limits::default());
    let (a, b) = (
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Tcp),
    );
    w.run(a, "HELLO main:alice");
    w.run(a, "NEW r1:alice");
    w.run(b, "JOIN r1:bob");
    assert_eq!(
        w.run(a, "LIST CHAT_ROOMS"),
        "OK LIST CHAT_ROOMS 2\nROOM main 1\nROOM r1 2\nEND\n"
    );
    assert_eq!(
        w.run(a, "LIST main:alice chat_rooms"),
        w.run(a, "LIST CHAT_ROOMS")
    );
    assert_eq!(
        w.run(a, "LIST CHAT_ROOM_AND_CLIENTS"),
        "OK LIST CHAT_ROOM_AND_CLIENTS 5\nROOM main 1\nCLIENT alice\nROOM r1 2\nCLIENT alice\nCLIENT bob\nEND\n"
    );
    assert_eq!(
        w.run(a, "LIST CLIENT_CHAT_ROOMS alice"),
        "OK LIST CLIENT_CHAT_ROOMS 2\nROOM main CONNECTED\nROOM r1 CONNECTED\nEND\n"
    );
    assert_eq!(
        w.run(a, "LIST CLIENTS_FOR_CHAT_ROOM r1"),
        "OK LIST CLIENTS_FOR_CHAT_ROOM 2\nCLIENT alice CONNECTED\nCLIENT bob CONNECTED\nEND\n"
    );
}

#[test]
fn shutdown_says_bye_and_closes_everyone() {
    let mut w = World::new(Limits::default());
    let (a, b) = (
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Ws),
    );
    w.run(a, "HELLO main:alice");
    w.drain();
    w.hub.handle_shutdown("server shutting down", w.now);
    let (got, closed) = w.drain();
    assert_eq!(lines_for(&got, a), ["BYE server shutting down"]);
    assert_eq!(lines_for(&got, b), ["BYE server shutting down"]);
    assert_eq!(closed.len(), 2);
}

#[test]
fn splitter_bounds_lines_and_keeps_going() {
    let mut s = LineSplitter::new(8);
    assert_eq!(s.push(b"HELLO\r\nab"), [LineEvent::Line("HELLO".into())]);
    assert_eq!(s.push(b"cdefghijkl"), [LineEvent::TooLong]);
    assert_eq!(s.push(b"more junk\nok\n"), [LineEvent::Line("ok".into())]);
    assert_eq!(s.push(b"\xff\xfe\n"), [LineEvent::BadEncoding]);
    assert_eq!(s.push(b"12345678\n"), [LineEvent::Line("12345678".into())]);
    assert_eq!(s.push(b"123456789\n"), [LineEvent::TooLong]);
    assert_eq!(s.push(b"NEW r1:a"), []);
    assert_eq!(s.finish(), Some(LineEvent::Line("NEW r1:a".into())));
    assert_eq!(s.finish(), None);
}

#[test]
fn json_frames_parse_and_encode() {
    let r = json::parse_frame(br#"{"id":7,"cmd":"send","room":"main","text":"hi"}"#);
    assert_eq!(r.id, serde_json::json!(7));
    assert!(matches!(r.command, Ok(Command::Send { .. })));
    for (frame, code) in [
        (&b"nope"[..], ErrorCode::BadJson),
        (b"[1]", ErrorCode::BadJson),
        (br#"{"id":1}"#, ErrorCode::BadSyntax),
        (br#"{"id":1,"cmd":"fly"}"#, ErrorCode::BadCommand),
        (
            br#"{"id":1,"cmd":"send","room":"main"}"#,
            ErrorCode::BadSyntax,
        ),
        (br#"{"id":1,"cmd":"join","room":5}"#, ErrorCode::BadSyntax),
        (br#"{"id":1,"cmd":"join","room":"a b"}"#, ErrorCode::BadName),
        (
            br#"{"id":1,"cmd":"list","type":"x"}"#,
            ErrorCode::BadListType,
        ),
    ] {
        let got = json::parse_frame(frame).command.unwrap_err().code;
        assert_eq!(got, code, "{}", String::from_utf8_lossy(frame));
    }
    let err = HubError::new(ErrorCode::NoSuchRoom, "room 'x' does not exist");
    let v: serde_json::Value =
        serde_json::from_slice(&json::encode_reply(&serde_json::json!("a"), &Err(err))).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"id":"a","ok":false,"error":"NO_SUCH_ROOM","message":"room 'x' does not exist"})
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    fn runner() -> TestRunner {
        // Deterministic: the suite must not depend on the day's random seed.
        TestRunner::new_with_rng(
            Config {
                cases: 2000,
                failure_persistence: None,
                ..Config::default()
            },
            proptest::test_runner::TestRng::deterministic_rng(
                proptest::test_runner::RngAlgorithm::ChaCha,
            ),
        )
    }

    #[test]
    fn line_parser_never_panics_and_replies_one_line() {
        let words = prop::sample::select(vec![
            "HELLO ",
            "NEW ",
            "JOIN ",
            "SEND ",
            "TO ",
            "LIST ",
            "PAUSE ",
            "RESUME ",
            "LEAVE ",
            "QUIT ",
            "main:a ",
            "r:b ",
            ":",
            " ",
            "\t",
            "ALL",
            "CHAT_ROOMS",
            "é",
            "\u{0}",
        ]);
        let input =
            prop::collection::vec(prop_oneof![words.prop_map(String::from), ".{0,8}"], 0..12)
                .prop_map(|v| v.concat());
        let world = std::cell::RefCell::new(World::new(Limits::default()));
        let a = world.borrow_mut().hub.handle_connect(Door::Tcp);
        runner()
            .run(&input, |line| {
                let mut world = world.borrow_mut();
                let reply = world.run(a, &line);
                let first = reply.lines().next().unwrap_or("");
                prop_assert!(
                    reply.is_empty() || first.starts_with("OK") || first.starts_with("ERROR ")
                );
                let _ = world.drain();
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn splitter_never_holds_more_than_a_line() {
        let input = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16);
        runner()
            .run(&input, |chunks| {
                let mut s = LineSplitter::new(32);
                for c in &chunks {
                    for ev in s.push(c) {
                        if let LineEvent::Line(l) = ev {
                            prop_assert!(l.len() <= 32);
                        }
                    }
                    prop_assert!(s.buf_len() <= 33);
                }
                let _ = s.finish();
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn json_parser_never_panics() {
        let input = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            r#"\{"id":[0-9]{1,3},"cmd":"(send|join|hello|to|list|quit)","room":".{0,6}","text":".{0,6}"(,"target":".{0,4}")?\}"#
                .prop_map(String::into_bytes),
        ];
        runner()
            .run(&input, |bytes| {
                let r = json::parse_frame(&bytes);
                let out = json::encode_reply(&r.id, &r.command.map(|_| Reply::Bye));
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn presence_lists_are_capped_with_the_total_count() {
    let mut w = World::new(Limits {
        max_clients: 1000,
        ..Limits::default()
    });
    for i in 0..PRESENCE_LIMIT + 50 {
        let c = w.hub.handle_connect(Door::Ws);
        w.run(c, &format!("HELLO main:c{i:03}"));
    }
    w.drain();
    let late = w.hub.handle_connect(Door::Ws);
    let reply = w
        .hub
        .handle_command(late, parse_line("HELLO main:late").unwrap().unwrap(), w.now)
        .unwrap();
    let Reply::Registered { members, count, .. } = reply else {
        panic!("not a registration: {reply:?}");
    };
    assert_eq!(
        (members.len(), count),
        (PRESENCE_LIMIT, PRESENCE_LIMIT + 51)
    );
    let presence = std::iter::from_fn(|| w.hub.poll_output())
        .find_map(|o| match o {
            Output::Deliver {
                push: push @ Push::Presence { .. },
                ..
            } => Some(json::push_value(&push)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        presence["members"].as_array().unwrap().len(),
        PRESENCE_LIMIT
    );
    assert_eq!(presence["count"], PRESENCE_LIMIT + 51);
    assert_eq!(presence["truncated"], true);
}

#[test]
fn a_room_message_is_one_broadcast_that_skips_the_sender_and_suspended_members() {
    let mut w = World::new(Limits::default());
    let conns: Vec<ConnId> = (0..4).map(|_| w.hub.handle_connect(Door::Tcp)).collect();
    for (i, c) in conns.iter().enumerate() {
        w.run(*c, &format!("HELLO main:m{i}"));
    }
    w.drain();
    w.run(conns[2], "PAUSE main:m2");
    assert_eq!(w.run(conns[0], "SEND main:m0 hi"), "OK SEND main 2\n");
    let outs: Vec<Output> = std::iter::from_fn(|| w.hub.poll_output()).collect();
    let [Output::Broadcast { room, push, skip }] = &outs[..] else {
        panic!("one broadcast for the whole room: {outs:?}");
    };
    assert_eq!(room.as_str(), "main");
    assert!(matches!(push, Push::Message { text, .. } if &**text == "hi"));
    let mut skip = skip.clone();
    skip.sort();
    assert_eq!(skip, [conns[0], conns[2]]);
    // Alone in a room, a message reaches nobody, but is still handed out (skipping only the
    // sender), with its offset, so that an adapter can keep the room's history from broadcasts.
    w.run(conns[3], "JOIN r:m3");
    w.run(conns[3], "LEAVE main:m3");
    w.drain();
    assert!(w.run(conns[3], "NEW lonely:m3").starts_with("OK"));
    w.drain();
    assert_eq!(w.run(conns[3], "SEND lonely:m3 echo"), "OK SEND lonely 0\n");
    let outs: Vec<Output> = std::iter::from_fn(|| w.hub.poll_output()).collect();
    let [Output::Broadcast { skip, push, .. }] = &outs[..] else {
        panic!("one broadcast: {outs:?}");
    };
    assert_eq!(skip, &[conns[3]]);
    assert!(matches!(push, Push::Message { offset: 1, .. }));
}

#[test]
fn memberships_start_and_end_as_outputs_in_order() {
    let mut w = World::new(Limits::default());
    let (a, b) = (
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Ws),
    );
    w.run(a, "HELLO main:alice");
    w.run(b, "HELLO main:bob");
    w.run(b, "NEW r1:bob");
    let kinds: Vec<String> = std::iter::from_fn(|| w.hub.poll_output())
        .filter_map(|o| match o {
            Output::Joined { conn, room, since } => Some(format!("+{}{room}@{since}", conn.0)),
            Output::Left { conn, room } => Some(format!("-{}{room}", conn.0)),
            _ => None,
        })
        .collect();
    // bob's join in main is event 0 of main: his membership sees events from 1 on.
    assert_eq!(kinds, ["+1main@0", "+2main@1", "+2r1@0"]);
    w.run(b, "LEAVE r1:bob");
    w.hub.handle_close(b, CloseReason::Failed, w.now);
    let kinds: Vec<String> = std::iter::from_fn(|| w.hub.poll_output())
        .filter_map(|o| match o {
            Output::Left { conn, room } => Some(format!("-{}{room}", conn.0)),
            Output::Joined { .. } => Some("join".into()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["-2r1", "-2main"]);
}
