//! Offsets, epochs and recovery through the hub and the codecs.

use std::time::Duration;

use crate::line::{encode_push_offsets, encode_reply_with, parse_line};
use crate::tests::{Share, World};
use crate::*;

/// Runs a line on a connection that shows offsets and returns the reply text.
fn run(w: &mut World, conn: ConnId, text: &str) -> String {
    let result = match parse_line(text) {
        Ok(Some(cmd)) => w.hub.handle_command(conn, cmd, w.now),
        Ok(None) => return String::new(),
        Err(e) => Err(e),
    };
    String::from_utf8(encode_reply_with(&result, true).to_vec()).unwrap()
}

/// The lines each connection gets, with `OFFSET` lines before room messages.
fn lines(w: &mut World, c: ConnId) -> Vec<String> {
    w.drain_ticks();
    let mut got = Vec::new();
    while let Some(share) = w.poll() {
        let pushes: Vec<Push> = match share {
            Share::Push(to, p) if to.contains(&c) => vec![p],
            Share::Batch(to, pushes, _) => match to.iter().find(|(x, _)| *x == c) {
                Some((_, from)) => pushes[*from..].to_vec(),
                None => continue,
            },
            _ => continue,
        };
        for p in pushes {
            if let Some(b) = encode_push_offsets(&p) {
                let text = String::from_utf8(b.to_vec()).unwrap();
                got.extend(text.lines().map(str::to_string));
            }
        }
    }
    got
}

fn epoch(w: &World, room: &str) -> String {
    w.hub.position(room).unwrap().epoch.to_string()
}

#[test]
fn offsets_count_per_room_and_the_epoch_stays() {
    let mut w = World::new(Limits::default());
    let (a, b) = (
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Tcp),
    );
    let e_main = epoch(&w, "main");
    assert_eq!(run(&mut w, a, "NEW r1:alice"), "OK NEW r1:alice\n");
    let e_r1 = epoch(&w, "r1");
    assert_ne!(e_main, e_r1, "every room has its own epoch");
    assert_eq!(
        run(&mut w, b, "JOIN r1:bob OFFSETS"),
        format!("OK JOIN r1:bob AT 0 {e_r1}\n")
    );
    run(&mut w, a, "HELLO main:alice");
    lines(&mut w, b);
    for i in 1..=3 {
        assert_eq!(
            run(&mut w, a, &format!("SEND r1:alice m{i}")),
            format!("OK SEND r1 1 {i} {e_r1}\n")
        );
    }
    assert_eq!(
        run(&mut w, a, "SEND main:alice hi"),
        format!("OK SEND main 0 1 {e_main}\n"),
        "main counts on its own, even with nobody to hear it"
    );
    assert_eq!(
        lines(&mut w, b),
        [
            format!("OFFSET r1 1 {e_r1}"),
            "MSG r1:alice m1".into(),
            format!("OFFSET r1 2 {e_r1}"),
            "MSG r1:alice m2".into(),
            format!("OFFSET r1 3 {e_r1}"),
            "MSG r1:alice m3".into(),
        ]
    );
    assert_eq!(epoch(&w, "r1"), e_r1);
    assert_eq!(w.hub.position("r1").unwrap().offset, 3);
    assert_eq!(w.hub.position("main").unwrap().offset, 1);
}

#[test]
fn a_rejoin_since_a_position_gets_exactly_what_it_missed_then_live() {
    let mut w = World::new(Limits::default());
    let (a, b) = (
        w.hub.handle_connect(Door::Tcp),
        w.hub.handle_connect(Door::Tcp),
    );
    run(&mut w, a, "HELLO main:alice");
    run(&mut w, b, "HELLO main:bob");
    let e = epoch(&w, "main");
    for i in 1..=4 {
        run(&mut w, a, &format!("SEND main:alice m{i}"));
    }
    lines(&mut w, b);
    // bob goes away at offset 4; alice sends 5..=7 (one of them while nobody else listens).
    w.hub.handle_close(b, CloseReason::Closed, w.now);
    for i in 5..=7 {
        run(&mut w, a, &format!("SEND main:alice m{i}"));
    }
    lines(&mut w, a);
    let b2 = w.hub.handle_connect(Door::Tcp);
    assert_eq!(
        run(&mut w, b2, &format!("JOIN main:bob SINCE 4 {e}")),
        format!("OK JOIN main:bob RECOVERED 7 {e}\n")
    );
    run(&mut w, a, "SEND main:alice live");
    let got = lines(&mut w, b2);
    let want: Vec<String> = (5..=7)
        .flat_map(|i| {
            [
                format!("OFFSET main {i} {e}"),
                format!("MSG main:alice m{i}"),
            ]
        })
        .chain([format!("OFFSET main 8 {e}"), "MSG main:alice live".into()])
        .collect();
    assert_eq!(got, want, "no gap, no duplicate, the missed ones first");
}

#[test]
fn window_edges_resync_or_recover_nothing() {
    let policy = HistoryPolicy {
        default: HistoryLimits {
            messages: 3,
            age: Duration::from_secs(60),
            bytes: 1 << 20,
        },
        rules: vec![],
    };
    let mut w = World::new(Limits::default());
    w.hub = Hub::with_history(Limits::default(), policy, 7);
    let a = w.hub.handle_connect(Door::Tcp);
    run(&mut w, a, "HELLO main:alice");
    let e = epoch(&w, "main");
    for i in 1..=5 {
        run(&mut w, a, &format!("SEND main:alice m{i}"));
    }
    let join = |w: &mut World, since: &str| {
        let c = w.hub.handle_connect(Door::Tcp);
        let reply = run(w, c, &format!("JOIN main:bob SINCE {since}"));
        let got = lines(w, c);
        w.hub.handle_close(c, CloseReason::Closed, w.now);
        (reply, got)
    };
    // The ring keeps 3..=5: 2 is the oldest position that recovers.
    let (reply, got) = join(&mut w, &format!("2 {e}"));
    assert_eq!(reply, format!("OK JOIN main:bob RECOVERED 5 {e}\n"));
    assert_eq!(got.len(), 6);
    let (reply, got) = join(&mut w, &format!("1 {e}"));
    assert_eq!(
        reply,
        format!("OK JOIN main:bob RESYNC 5 {e}\n"),
        "older than the ring"
    );
    assert!(got.is_empty());
    assert_eq!(
        join(&mut w, &format!("6 {e}")).0,
        format!("OK JOIN main:bob RESYNC 5 {e}\n"),
        "ahead of the top"
    );
    assert_eq!(
        join(&mut w, "5 otherepoch").0,
        format!("OK JOIN main:bob RESYNC 5 {e}\n"),
        "another epoch"
    );
    assert_eq!(
        join(&mut w, &format!("5 {e}")),
        (format!("OK JOIN main:bob RECOVERED 5 {e}\n"), vec![]),
        "at the top: recovered with nothing"
    );
    // Past the age bound the messages are gone, but the top still recovers.
    w.advance(Duration::from_secs(61));
    assert_eq!(
        join(&mut w, &format!("4 {e}")).0,
        format!("OK JOIN main:bob RESYNC 5 {e}\n")
    );
    assert_eq!(
        join(&mut w, &format!("5 {e}")).0,
        format!("OK JOIN main:bob RECOVERED 5 {e}\n")
    );
}

#[test]
fn join_options_are_checked() {
    let mut w = World::new(Limits::default());
    let a = w.hub.handle_connect(Door::Tcp);
    for bad in [
        "JOIN main:a SINCE",
        "JOIN main:a SINCE 1",
        "JOIN main:a SINCE x abc",
        "JOIN main:a SINCE -1 abc",
        "JOIN main:a SINCE 1 abc extra",
        "JOIN main:a SINCE 1 bad!epoch",
        "NEW r9:a SINCE 1 abc",
        "JOIN main:a OFFSETS extra",
        "JOIN main:a LATER",
    ] {
        assert!(
            run(&mut w, a, bad).starts_with("ERROR BAD_SYNTAX"),
            "{bad}: {}",
            run(&mut w, a, bad)
        );
    }
    run(&mut w, a, "HELLO main:a");
    let e = epoch(&w, "main");
    assert!(
        run(&mut w, a, &format!("HELLO main:a SINCE 0 {e}")).starts_with("ERROR ALREADY_JOINED")
    );
    // Old clients keep the old replies.
    assert_eq!(
        String::from_utf8(
            line::encode_reply(&w.hub.handle_command(
                a,
                parse_line("SEND main:a x").unwrap().unwrap(),
                w.now
            ))
            .to_vec()
        )
        .unwrap(),
        "OK SEND main 0\n"
    );
}

#[test]
fn websocket_frames_carry_offsets_and_since() {
    let mut w = World::new(Limits::default());
    let (a, b) = (
        w.hub.handle_connect(Door::Ws),
        w.hub.handle_connect(Door::Ws),
    );
    let e = epoch(&w, "main");
    let req = json::parse_frame(br#"{"id":1,"cmd":"hello","room":"main","client":"a"}"#);
    let r = w.hub.handle_command(a, req.command.unwrap(), w.now);
    let reply: serde_json::Value =
        serde_json::from_slice(&json::encode_reply(&req.id, &r)).unwrap();
    assert_eq!(reply["offset"], 0);
    assert_eq!(reply["epoch"], e.as_str());
    assert!(reply.get("recovered").is_none());
    let req = json::parse_frame(br#"{"id":2,"cmd":"send","room":"main","text":"one"}"#);
    let r = w.hub.handle_command(a, req.command.unwrap(), w.now);
    let reply: serde_json::Value =
        serde_json::from_slice(&json::encode_reply(&req.id, &r)).unwrap();
    assert_eq!(
        (reply["offset"].as_u64(), reply["epoch"].as_str()),
        (Some(1), Some(e.as_str()))
    );
    let frame = format!(
        r#"{{"id":3,"cmd":"join","room":"main","client":"b","since":{{"offset":0,"epoch":"{e}"}}}}"#
    );
    let req = json::parse_frame(frame.as_bytes());
    let r = w.hub.handle_command(b, req.command.unwrap(), w.now);
    let reply: serde_json::Value =
        serde_json::from_slice(&json::encode_reply(&req.id, &r)).unwrap();
    assert_eq!(reply["recovered"], true);
    assert_eq!(reply["offset"], 1);
    let mut pushes = Vec::new();
    while let Some(s) = w.poll() {
        if let Share::Push(to, p) = s
            && to == [b]
        {
            pushes.push(json::push_value(&p));
        }
    }
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    assert_eq!(pushes[0]["type"], "presence");
    assert_eq!(
        pushes[1],
        serde_json::json!({"type":"message","room":"main","from":"a","text":"one","offset":1,"epoch":e})
    );
    for bad in [
        r#"{"cmd":"join","room":"main","client":"c","since":5}"#,
        r#"{"cmd":"join","room":"main","client":"c","since":{"offset":-1,"epoch":"x"}}"#,
        r#"{"cmd":"join","room":"main","client":"c","since":{"offset":1}}"#,
        r#"{"cmd":"join","room":"main","client":"c","since":{"offset":1,"epoch":"a b"}}"#,
    ] {
        let err = json::parse_frame(bad.as_bytes()).command.unwrap_err();
        assert_eq!(err.code, ErrorCode::BadSyntax, "{bad}");
    }
}

#[test]
fn restored_rooms_recover_across_a_restart_and_deleted_ones_start_over() {
    let mut w = World::new(Limits::default());
    let r1 = Name::parse("r1").unwrap();
    let bob = Name::parse("bob").unwrap();
    let stored = (8..=10)
        .map(|o| Stored {
            offset: o,
            from: bob.clone(),
            text: format!("m{o}").into(),
            at: w.now,
        })
        .collect();
    let pos = Position::parse(10, "saved").unwrap();
    w.hub
        .restore_room(r1.clone(), pos.clone(), stored, w.now)
        .unwrap();
    assert_eq!(w.hub.position("r1"), Some(pos));
    let a = w.hub.handle_connect(Door::Tcp);
    assert_eq!(
        run(&mut w, a, "JOIN r1:alice SINCE 8 saved"),
        "OK JOIN r1:alice RECOVERED 10 saved\n"
    );
    assert_eq!(lines(&mut w, a).len(), 4);
    let (_, page) = w.hub.history("r1", None, 2, w.now).unwrap();
    let Recovery::Recovered(page) = page else {
        panic!("no page")
    };
    assert_eq!(
        page.iter().map(|s| s.offset).collect::<Vec<_>>(),
        [9, 10],
        "the newest 2"
    );
    // A lost tail: a new epoch, the offsets go on.
    let fresh = w.hub.new_epoch("r1").unwrap();
    assert_ne!(&*fresh.epoch, "saved");
    assert_eq!(fresh.offset, 10);
    run(&mut w, a, "LEAVE r1:alice");
    w.hub.delete_room("r1").unwrap();
    let outs: Vec<Output> = std::iter::from_fn(|| w.hub.poll_output()).collect();
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::RoomDeleted { room } if room.as_str() == "r1")),
        "{outs:?}"
    );
    run(&mut w, a, "NEW r1:alice");
    let again = w.hub.position("r1").unwrap();
    assert_eq!(again.offset, 0);
    assert_ne!(
        again.epoch, fresh.epoch,
        "a deleted room's history is gone: new epoch"
    );
    // The restored rooms count against max_rooms.
    let mut hub = Hub::new(Limits {
        max_rooms: 1,
        ..Limits::default()
    });
    let err = hub
        .restore_room(r1, Position::parse(1, "x").unwrap(), vec![], w.now)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyRooms);
}

#[test]
fn messages_with_offsets_assigned_elsewhere_go_through_the_same_step() {
    // What a cluster bus does: hand the hub messages whose offsets it assigned.
    let mut w = World::new(Limits::default());
    let a = w.hub.handle_connect(Door::Tcp);
    run(&mut w, a, "HELLO main:alice OFFSETS");
    lines(&mut w, a);
    let (main, bob) = (main_room(), Name::parse("bob").unwrap());
    let at = |offset| Position::parse(offset, "bus").unwrap();
    let now = w.now;
    for (offset, kept) in [(1, true), (2, true), (2, false), (1, false), (5, true)] {
        let text = format!("b{offset}");
        assert_eq!(
            w.hub
                .commit(&main, at(offset), bob.clone(), text.into(), now),
            kept,
            "offset {offset}"
        );
    }
    assert_eq!(
        lines(&mut w, a),
        [
            // Another epoch than the room's: its member resyncs, from just before offset 1.
            "RESYNC main 0 bus",
            "OFFSET main 1 bus",
            "MSG main:bob b1",
            "OFFSET main 2 bus",
            "MSG main:bob b2",
            "RESYNC main 4 bus",
            "OFFSET main 5 bus",
            "MSG main:bob b5",
        ],
        "late duplicates dropped, the gap told as a resync before the message past it"
    );
    assert_eq!(w.hub.position("main"), Some(at(5)));
    let c = w.hub.handle_connect(Door::Tcp);
    assert_eq!(
        run(&mut w, c, "JOIN main:carol SINCE 2 bus"),
        "OK JOIN main:carol RESYNC 5 bus\n",
        "3 and 4 never came: not recoverable"
    );
    let d = w.hub.handle_connect(Door::Tcp);
    assert_eq!(
        run(&mut w, d, "JOIN main:dave SINCE 4 bus"),
        "OK JOIN main:dave RECOVERED 5 bus\n"
    );
}
