//! Presence coalescing through the hub: what each member sees, in which order, in how many
//! queue items, when joins and leaves come faster than the tick.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use crate::tests::{Share, World, lines_for};
use crate::*;

fn world(max_clients: usize) -> World {
    World::new(Limits {
        max_clients,
        ..Limits::default()
    })
}

/// Connects and says HELLO in `room`; returns the connection.
fn hello(w: &mut World, room: &str, client: &str) -> ConnId {
    let c = w.hub.handle_connect(Door::Tcp);
    let reply = w.run(c, &format!("HELLO {room}:{client}"));
    assert_eq!(reply, format!("OK HELLO {room}:{client}\n"));
    c
}

/// Every output ready now, counted as queue items per connection (a batch is one item).
fn items_per_conn(w: &mut World) -> HashMap<ConnId, usize> {
    let mut items = HashMap::new();
    while let Some(out) = w.poll() {
        match out {
            Share::Push(to, _) => to.iter().for_each(|c| *items.entry(*c).or_default() += 1),
            Share::Batch(to, ..) => to
                .iter()
                .for_each(|(c, _)| *items.entry(*c).or_default() += 1),
            Share::Close(_) => {}
        }
    }
    items
}

#[test]
fn a_join_in_a_quiet_room_goes_out_at_once() {
    let mut w = world(100);
    let a = hello(&mut w, "main", "alice");
    w.ready();
    hello(&mut w, "main", "bob");
    // No tick needed: nothing else happened in the room within the last tick.
    assert_eq!(w.hub.poll_timeout(), None);
    let (got, _) = w.ready();
    assert_eq!(lines_for(&got, a), ["JOINED main:bob"]);
    // A tick later the room is quiet again: the next leave goes out at once too.
    w.advance(PRESENCE_TICK);
    w.run(a, "LEAVE main:alice");
    assert_eq!(w.hub.poll_timeout(), None);
    let (got, _) = w.ready();
    assert_eq!(got.len(), 1, "{got:?}");
}

#[test]
fn a_storm_of_joins_costs_each_member_one_item_per_tick() {
    let mut w = world(1000);
    let first = hello(&mut w, "main", "m000");
    w.ready();
    let mut conns = vec![first];
    // 200 joins within one tick: the first goes out at once, the rest gather.
    for i in 1..200 {
        conns.push(hello(&mut w, "main", &format!("m{i:03}")));
    }
    let due = w.hub.poll_timeout().expect("the storm waits for the tick");
    assert_eq!(due, w.now + PRESENCE_TICK);
    let now_items = items_per_conn(&mut w);
    // Right now: every joiner got its member list, `first` got the first join, nothing more.
    assert_eq!(now_items[&first], 1);
    assert!(conns[1..].iter().all(|c| now_items[c] == 1));
    // Half a tick: nothing due yet.
    w.advance(PRESENCE_TICK / 2);
    assert!(w.hub.poll_output().is_none());
    // At the tick: one batch, one queue item per member, whatever its size.
    w.advance(PRESENCE_TICK / 2);
    let mut batches = 0;
    while let Some(out) = w.poll() {
        let Share::Batch(to, pushes, _) = out else {
            panic!("only the batch is due");
        };
        batches += 1;
        assert_eq!(pushes.len(), 198, "joins of m002..m199");
        // m000 and m001 were in before the batch; m(i) sees the joins after its own.
        assert_eq!(to.len(), 199, "all but m199, whose own join is the last");
        for (k, (c, from)) in to.iter().enumerate() {
            assert_eq!((*c, *from), (conns[k], k.saturating_sub(1)));
        }
    }
    assert_eq!(batches, 1);
    assert_eq!(w.hub.poll_timeout(), None);
}

#[test]
fn a_message_never_overtakes_its_senders_join() {
    let mut w = world(100);
    let a = hello(&mut w, "main", "alice");
    let b = hello(&mut w, "main", "bob"); // at once: the room was quiet
    w.ready();
    let c = hello(&mut w, "main", "carol"); // gathers: bob's join went out this tick
    assert!(w.hub.poll_timeout().is_some());
    w.run(c, "SEND main:carol hi");
    // The message hands out the room's gathered presence first, so no tick waits any more.
    assert_eq!(w.hub.poll_timeout(), None);
    let (got, _) = w.ready();
    assert_eq!(
        lines_for(&got, a),
        ["JOINED main:carol", "MSG main:carol hi"]
    );
    assert_eq!(
        lines_for(&got, b),
        ["JOINED main:carol", "MSG main:carol hi"]
    );
    // Same for a direct message.
    let d = hello(&mut w, "main", "dave");
    assert!(w.hub.poll_timeout().is_some());
    w.run(d, "TO main:dave alice psst");
    let (got, _) = w.ready();
    assert_eq!(
        lines_for(&got, a),
        ["JOINED main:dave", "MSG FROM main:dave psst"]
    );
    assert_eq!(lines_for(&got, b), ["JOINED main:dave"]);
    assert_eq!(lines_for(&got, c), ["JOINED main:dave"]);
}

#[test]
fn a_leave_after_a_join_in_the_same_tick_keeps_its_order() {
    let mut w = world(100);
    let a = hello(&mut w, "main", "alice");
    hello(&mut w, "main", "zed"); // at once
    w.ready();
    let b = hello(&mut w, "main", "bob"); // gathers from here on
    let c = hello(&mut w, "main", "carol");
    w.run(b, "LEAVE main:bob");
    let (got, _) = w.ready();
    // carol's member list showed bob, who had joined before her.
    assert!(lines_for(&got, a).is_empty());
    let (got, _) = w.drain();
    assert_eq!(
        lines_for(&got, a),
        ["JOINED main:bob", "JOINED main:carol", "LEFT main:bob"]
    );
    // carol saw bob in her member list, so she only needs his leave.
    assert_eq!(lines_for(&got, c), ["LEFT main:bob"]);
    // bob left: nothing more for him, not even his own events.
    assert!(lines_for(&got, b).is_empty());
}

#[test]
fn a_member_joining_mid_batch_sees_only_what_followed_its_join() {
    let mut w = world(100);
    let a = hello(&mut w, "main", "alice");
    hello(&mut w, "main", "bob"); // at once
    w.ready();
    let x = hello(&mut w, "main", "xavier"); // gathers
    let m = w.hub.handle_connect(Door::Ws);
    let result = w.hub.handle_command(
        m,
        line::parse_line("HELLO main:mid").unwrap().unwrap(),
        w.now,
    );
    let Ok(Reply::Registered { members, count, .. }) = result else {
        panic!("{result:?}");
    };
    // Its member list already has xavier (joined before it, not handed out yet).
    let names: Vec<&str> = members.iter().map(|m| m.client.as_str()).collect();
    assert_eq!((names, count), (vec!["alice", "bob", "mid", "xavier"], 4));
    let y = hello(&mut w, "main", "yann");
    w.run(x, "QUIT main:xavier");
    let (got, _) = w.drain();
    assert_eq!(
        lines_for(&got, a),
        [
            "JOINED main:xavier",
            "JOINED main:mid",
            "JOINED main:yann",
            "LEFT main:xavier"
        ]
    );
    assert_eq!(lines_for(&got, m), ["JOINED main:yann", "LEFT main:xavier"]);
    assert_eq!(lines_for(&got, y), ["LEFT main:xavier"]);
}

#[test]
fn a_rejoin_within_a_tick_starts_over_after_its_last_join() {
    let mut w = world(100);
    let a = hello(&mut w, "main", "alice");
    let b = hello(&mut w, "main", "bob");
    w.ready();
    hello(&mut w, "main", "carol"); // gathers
    w.run(b, "LEAVE main:bob");
    hello(&mut w, "main", "dave");
    w.run(b, "JOIN main:bob");
    hello(&mut w, "main", "erin");
    let (got, _) = w.drain();
    assert_eq!(
        lines_for(&got, a),
        [
            "JOINED main:carol",
            "LEFT main:bob",
            "JOINED main:dave",
            "JOINED main:bob",
            "JOINED main:erin"
        ]
    );
    // bob's new membership began with a fresh member list: only erin's join follows it.
    assert_eq!(lines_for(&got, b), ["JOINED main:erin"]);
}

#[test]
fn shutdown_hands_out_gathered_presence_before_bye() {
    let mut w = world(100);
    let a = hello(&mut w, "main", "alice");
    hello(&mut w, "main", "bob");
    w.ready();
    hello(&mut w, "main", "carol"); // gathers
    w.hub.handle_shutdown("server shutting down", w.now);
    assert_eq!(w.hub.poll_timeout(), None);
    let (got, _) = w.ready();
    assert_eq!(
        lines_for(&got, a),
        ["JOINED main:carol", "BYE server shutting down"]
    );
}

#[test]
fn rooms_gather_apart_and_a_deleted_room_forgets_its_tick() {
    let mut w = world(100);
    let a = hello(&mut w, "main", "alice");
    w.run(a, "NEW r1:alice");
    let b = hello(&mut w, "main", "bob");
    w.run(b, "JOIN r1:bob");
    w.ready();
    w.advance(PRESENCE_TICK / 2);
    // A message in main does not hand out r1's gathered presence.
    let c = hello(&mut w, "main", "carol"); // main gathers (bob's join went out half a tick ago)
    w.run(b, "LEAVE r1:bob"); // r1 gathers
    w.run(c, "SEND main:carol hi");
    let (got, _) = w.ready();
    assert_eq!(
        lines_for(&got, a),
        ["JOINED main:carol", "MSG main:carol hi"]
    );
    assert!(w.hub.poll_timeout().is_some(), "r1 still waits");
    w.run(a, "LEAVE r1:alice"); // r1 is empty now: its gathered leave has nobody to go to
    assert!(w.hub.delete_room("r1").is_ok());
    assert_eq!(w.hub.poll_timeout(), None);
    assert!(w.drain().0.is_empty());
}

#[test]
fn a_full_batch_does_not_wait_for_the_tick() {
    let mut w = world(PRESENCE_BATCH_MAX + 10);
    let a = hello(&mut w, "main", "first");
    hello(&mut w, "main", "second");
    w.ready();
    for i in 0..PRESENCE_BATCH_MAX {
        hello(&mut w, "main", &format!("c{i}"));
    }
    // The batch filled up and went out; the tick has nothing left to do.
    assert_eq!(w.hub.poll_timeout(), None);
    let items = items_per_conn(&mut w);
    assert_eq!(items[&a], 1);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    #[derive(Clone, Debug)]
    enum Op {
        Join(usize, usize),
        Leave(usize, usize),
        Send(usize, usize),
        Close(usize),
        Wait(u64),
    }

    const ROOMS: [&str; 2] = ["main", "r1"];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..6usize, 0..2usize).prop_map(|(c, r)| Op::Join(c, r)),
            2 => (0..6usize, 0..2usize).prop_map(|(c, r)| Op::Leave(c, r)),
            2 => (0..6usize, 0..2usize).prop_map(|(c, r)| Op::Send(c, r)),
            1 => (0..6usize).prop_map(Op::Close),
            2 => (0..45u64).prop_map(Op::Wait),
        ]
    }

    /// What one connection believes each of its rooms holds, built only from what it received.
    #[derive(Default)]
    struct View {
        rooms: BTreeMap<String, BTreeSet<String>>,
    }

    /// Applies what was handed out to the views, checking every push against them.
    fn observe(w: &mut World, views: &mut HashMap<ConnId, View>) -> Result<(), TestCaseError> {
        while let Some(out) = w.poll() {
            let mut apply = |c: ConnId, push: &Push| -> Result<(), TestCaseError> {
                let v = views.entry(c).or_default();
                match push {
                    Push::Presence { room, members, .. } => {
                        let set = members.iter().map(|m| m.client.to_string()).collect();
                        v.rooms.insert(room.to_string(), set);
                    }
                    Push::Join { room, client } => {
                        let set = v.rooms.get_mut(room.as_str());
                        prop_assert!(set.is_some(), "{c:?}: join in {room}, not a member");
                        let fresh = set.unwrap().insert(client.to_string());
                        prop_assert!(fresh, "{c:?}: {client} joined {room} twice");
                    }
                    Push::Leave { room, client } => {
                        let set = v.rooms.get_mut(room.as_str());
                        prop_assert!(set.is_some(), "{c:?}: leave in {room}, not a member");
                        let known = set.unwrap().remove(client.as_str());
                        prop_assert!(known, "{c:?}: {client} left {room} unseen");
                    }
                    Push::Message { room, from, .. } => {
                        let set = v.rooms.get(room.as_str());
                        prop_assert!(
                            set.is_some_and(|s| s.contains(from.as_str())),
                            "{c:?}: message from {from} in {room} before its join"
                        );
                    }
                    _ => {}
                }
                Ok(())
            };
            match out {
                Share::Push(to, push) => {
                    for c in to {
                        apply(c, &push)?;
                    }
                }
                Share::Batch(to, pushes, _) => {
                    for (c, from) in to {
                        prop_assert!(from < pushes.len());
                        for p in &pushes[from..] {
                            apply(c, p)?;
                        }
                    }
                }
                Share::Close(_) => {}
            }
        }
        Ok(())
    }

    #[test]
    fn every_member_sees_a_consistent_room_in_order() {
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 1000,
                failure_persistence: None,
                ..Config::default()
            },
            proptest::test_runner::TestRng::deterministic_rng(
                proptest::test_runner::RngAlgorithm::ChaCha,
            ),
        );
        runner
            .run(&proptest::collection::vec(op(), 1..60), |ops| {
                let mut w = world(100);
                let room = |r: usize| ROOMS[r];
                let founder = w.hub.handle_connect(Door::Tcp);
                w.run(founder, "NEW r1:founder");
                let mut conns: HashMap<usize, ConnId> = HashMap::new();
                let mut views: HashMap<ConnId, View> = HashMap::new();
                for op in ops {
                    match op {
                        Op::Join(c, r) => {
                            let conn = *conns
                                .entry(c)
                                .or_insert_with(|| w.hub.handle_connect(Door::Tcp));
                            w.run(conn, &format!("HELLO {}:c{c}", room(r)));
                        }
                        Op::Leave(c, r) => {
                            if let Some(&conn) = conns.get(&c) {
                                let reply = w.run(conn, &format!("LEAVE {}:c{c}", room(r)));
                                if reply.starts_with("OK") {
                                    views.entry(conn).or_default().rooms.remove(room(r));
                                }
                            }
                        }
                        Op::Send(c, r) => {
                            if let Some(&conn) = conns.get(&c) {
                                w.run(conn, &format!("SEND {}:c{c} hi", room(r)));
                            }
                        }
                        Op::Close(c) => {
                            if let Some(conn) = conns.remove(&c) {
                                w.hub.handle_close(conn, CloseReason::Closed, w.now);
                                views.remove(&conn);
                            }
                        }
                        Op::Wait(ms) => w.advance(Duration::from_millis(ms)),
                    }
                    observe(&mut w, &mut views)?;
                    if let Some(due) = w.hub.poll_timeout() {
                        prop_assert!(due <= w.now + PRESENCE_TICK);
                    }
                }
                let ticks = w.drain_ticks();
                prop_assert!(ticks <= ROOMS.len(), "one tick per gathering room: {ticks}");
                observe(&mut w, &mut views)?;
                // After the last tick, every member's view is the room as it is.
                for info in w.hub.rooms() {
                    let actual: BTreeSet<String> =
                        info.members.iter().map(|m| m.client.to_string()).collect();
                    for m in &info.members {
                        let conn = w.hub.conn_of(m.client.as_str()).unwrap();
                        let seen = views
                            .get(&conn)
                            .and_then(|v| v.rooms.get(info.name.as_str()));
                        prop_assert_eq!(seen, Some(&actual), "{} in {}", m.client, info.name);
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn a_presence_batch_frame_lists_the_events_without_their_room() {
    let (room, bob, eve) = (
        Name::parse("main").unwrap(),
        Name::parse("bob").unwrap(),
        Name::parse("eve").unwrap(),
    );
    let events = [
        Push::Join {
            room: room.clone(),
            client: bob.clone(),
        },
        Push::Leave {
            room: room.clone(),
            client: eve,
        },
    ];
    let frame: serde_json::Value =
        serde_json::from_slice(&json::encode_presence_batch(&room, 7, &events)).unwrap();
    assert_eq!(
        frame,
        serde_json::json!({"type": "presence_batch", "room": "main", "count": 7, "events": [
            {"type": "join", "client": "bob"}, {"type": "leave", "client": "eve"}]})
    );
    // The head / events / tail split the frame is built from (for suffixes) is the same frame.
    let mut pieces = json::batch_head(&room, 7).to_vec();
    pieces.extend_from_slice(&json::batch_event(&events[0]));
    pieces.extend_from_slice(b",");
    pieces.extend_from_slice(&json::batch_event(&events[1]));
    pieces.extend_from_slice(json::BATCH_TAIL);
    assert_eq!(
        pieces,
        json::encode_presence_batch(&room, 7, &events).to_vec()
    );
    // Each event is the single push's object minus its room.
    let mut single = json::push_value(&events[0]);
    single.as_object_mut().unwrap().shift_remove("room");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&json::batch_event(&events[0])).unwrap(),
        single
    );
}

#[test]
fn batches_carry_the_room_count_after_them() {
    let mut w = world(100);
    hello(&mut w, "main", "alice");
    hello(&mut w, "main", "bob");
    w.ready();
    let c = hello(&mut w, "main", "carol");
    hello(&mut w, "main", "dave");
    w.run(c, "QUIT main:carol");
    w.drain_ticks();
    let mut counts = Vec::new();
    while let Some(out) = w.poll() {
        if let Share::Batch(_, pushes, count) = out {
            counts.push((pushes.len(), count));
        }
    }
    assert_eq!(counts, [(3, 3)]);
}

#[test]
fn a_big_room_waits_longer_between_batches() {
    let mut w = world(5000);
    for i in 0..4000 {
        hello(&mut w, "main", &format!("m{i:04}"));
    }
    w.drain();
    w.advance(PRESENCE_TICK_MAX);
    hello(&mut w, "main", "late1"); // at once: the room was quiet
    assert_eq!(w.hub.poll_timeout(), None);
    hello(&mut w, "main", "late2");
    // 4,002 members: 80 ms rather than the 50 ms of a small room.
    assert_eq!(presence_tick(4002), Duration::from_micros(80_040));
    assert_eq!(w.hub.poll_timeout(), Some(w.now + presence_tick(4002)));
}

/// Connects and says `HELLO room:client QUIET`; returns the connection.
fn quiet(w: &mut World, room: &str, client: &str) -> ConnId {
    let c = w.hub.handle_connect(Door::Tcp);
    let reply = w.run(c, &format!("HELLO {room}:{client} QUIET"));
    assert_eq!(reply, format!("OK HELLO {room}:{client}\n"));
    c
}

#[test]
fn a_quiet_member_gets_messages_but_no_joins_or_leaves() {
    let mut w = world(100);
    let a = hello(&mut w, "main", "alice");
    let b = quiet(&mut w, "main", "bob");
    let (got, _) = w.drain();
    // alice hears of the quiet member's join (she wants events); bob gets nothing.
    assert_eq!(lines_for(&got, a), ["JOINED main:bob"]);
    assert!(lines_for(&got, b).is_empty());
    let c = hello(&mut w, "main", "carol");
    w.run(c, "SEND main:carol hi");
    w.run(c, "LEAVE main:carol");
    w.run(a, "SEND main:alice after");
    let (got, _) = w.drain();
    assert_eq!(
        lines_for(&got, a),
        ["JOINED main:carol", "MSG main:carol hi", "LEFT main:carol"]
    );
    assert_eq!(
        lines_for(&got, b),
        ["MSG main:carol hi", "MSG main:alice after"]
    );
    // The quiet member's own leave still reaches the others.
    w.run(b, "QUIT main:bob");
    let (got, _) = w.drain();
    assert_eq!(lines_for(&got, a), ["LEFT main:bob"]);
}

#[test]
fn a_quiet_join_gets_the_count_but_no_member_list() {
    let mut w = world(100);
    hello(&mut w, "main", "alice");
    w.drain();
    let b = w.hub.handle_connect(Door::Ws);
    let req = json::parse_frame(
        br#"{"id":1,"cmd":"hello","room":"main","client":"bob","presence":false}"#,
    );
    let reply = w
        .hub
        .handle_command(b, req.command.unwrap(), w.now)
        .unwrap();
    let Reply::Registered { count, members, .. } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!((count, members.len()), (2, 0));
    let mut to_b = Vec::new();
    while let Some(out) = w.hub.poll_output() {
        match out {
            Output::Joined { conn, since, .. } if conn == b => assert_eq!(since, QUIET_SINCE),
            Output::Deliver { to, push } if to.contains(&b) => to_b.push(push),
            _ => {}
        }
    }
    assert!(to_b.is_empty(), "a quiet joiner got {to_b:?}");
}

#[test]
fn a_room_of_quiet_members_gathers_no_presence_at_all() {
    let mut w = world(1000);
    let members: Vec<ConnId> = (0..300)
        .map(|i| quiet(&mut w, "main", &format!("q{i:03}")))
        .collect();
    let c = members[7];
    w.run(c, "LEAVE main:q007");
    // Nothing waits for a tick and no batch (nor member list) was produced: each join and leave
    // cost its own membership outputs only.
    assert_eq!(w.hub.poll_timeout(), None);
    // (`poll` keeps the memberships from Joined / Left and returns every other output.)
    assert!(w.poll().is_none(), "a quiet room produced a delivery");
    assert_eq!(w.hub.rooms()[0].count, 299);
    // One member that wants events: it hears the joins and leaves after its own, quiet or not.
    let a = hello(&mut w, "main", "alice");
    w.drain();
    quiet(&mut w, "main", "late");
    w.run(members[8], "SEND main:q008 hello");
    let (got, _) = w.drain();
    assert_eq!(
        lines_for(&got, a),
        ["JOINED main:late", "MSG main:q008 hello"]
    );
    assert_eq!(lines_for(&got, members[9]), ["MSG main:q008 hello"]);
    // Once it is gone, nothing is gathered again.
    w.run(a, "QUIT main:alice");
    quiet(&mut w, "main", "later");
    assert_eq!(w.hub.poll_timeout(), None);
    let (got, _) = w.drain();
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn a_mixed_room_keeps_each_members_order_within_a_tick() {
    let mut w = world(100);
    let a = hello(&mut w, "main", "alice");
    let b = quiet(&mut w, "main", "bob");
    w.drain();
    // Within one tick: joins gather, the message flushes them first.
    let c = hello(&mut w, "main", "carol");
    let d = quiet(&mut w, "main", "dave");
    w.run(b, "SEND main:bob one");
    w.run(c, "LEAVE main:carol");
    w.run(d, "SEND main:dave two");
    let (got, _) = w.drain();
    assert_eq!(
        lines_for(&got, a),
        [
            "JOINED main:carol",
            "JOINED main:dave",
            "MSG main:bob one",
            "LEFT main:carol",
            "MSG main:dave two"
        ]
    );
    // carol joined before dave: she heard of him, then left before the second message.
    assert_eq!(lines_for(&got, c), ["JOINED main:dave", "MSG main:bob one"]);
    assert_eq!(lines_for(&got, b), ["MSG main:dave two"]);
    assert_eq!(lines_for(&got, d), ["MSG main:bob one"]);
}

#[test]
fn the_presence_option_parses_on_both_doors() {
    let cmd = |text: &str| line::parse_line(text).map(|c| c.unwrap());
    let presence = |c: Command| match c {
        Command::Register { presence, .. } => presence,
        other => panic!("{other:?}"),
    };
    assert!(presence(cmd("HELLO main:a").unwrap()));
    assert!(!presence(cmd("hello main:a quiet").unwrap()));
    assert!(!presence(cmd("JOIN r1:a  QUIET ").unwrap()));
    assert!(!presence(cmd("NEW r1:a Quiet").unwrap()));
    assert_eq!(
        cmd("HELLO main:a LOUD").unwrap_err().code,
        ErrorCode::BadSyntax
    );
    assert_eq!(
        cmd("HELLO main:a QUIET extra").unwrap_err().code,
        ErrorCode::BadSyntax
    );
    // QUIET goes with the history options, in either order, each at most once.
    let all = |text: &str| match cmd(text).unwrap() {
        Command::Register {
            presence,
            since,
            offsets,
            ..
        } => (presence, since.map(|p| p.offset), offsets),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        all("JOIN r1:a QUIET SINCE 3 abcdefgh"),
        (false, Some(3), true)
    );
    assert_eq!(
        all("JOIN r1:a SINCE 3 abcdefgh quiet"),
        (false, Some(3), true)
    );
    assert_eq!(all("NEW r1:a OFFSETS QUIET"), (false, None, true));
    for bad in [
        "HELLO main:a QUIET QUIET",
        "HELLO main:a OFFSETS OFFSETS",
        "JOIN r1:a OFFSETS SINCE 3 abcdefgh",
        "NEW r1:a QUIET SINCE 3 abcdefgh",
    ] {
        assert_eq!(cmd(bad).unwrap_err().code, ErrorCode::BadSyntax, "{bad}");
    }
    let frame = |text: &str| json::parse_frame(text.as_bytes()).command;
    assert!(presence(
        frame(r#"{"cmd":"hello","room":"main","client":"a"}"#).unwrap()
    ));
    assert!(presence(
        frame(r#"{"cmd":"join","room":"main","client":"a","presence":true}"#).unwrap()
    ));
    assert!(!presence(
        frame(r#"{"cmd":"new","room":"r","client":"a","presence":false}"#).unwrap()
    ));
    let err = frame(r#"{"cmd":"hello","room":"main","client":"a","presence":"no"}"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::BadSyntax);
    assert!(err.message.contains("presence"), "{}", err.message);
}
