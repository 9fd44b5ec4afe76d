//! The fan-out on its own: order per member across its queue and its rooms' logs, the byte bound
//! and slow members, joining mid-stream, memory after members leave, wake-ups.

use std::time::Duration;

use bytes::Bytes;

use super::*;

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn msg(room: &str, from: &str, text: &str) -> Arc<EncodedPush> {
    Arc::new(EncodedPush::new(Push::Message {
        room: name(room),
        from: name(from),
        text: Arc::from(text),
        offset: 1,
        epoch: Arc::from("e"),
    }))
}

fn reply(text: &str) -> Own {
    Own::Out(Outgoing::Line(Box::new(Bytes::from(format!("{text}\n")))))
}

/// Everything the feed has ready now, as the lines the TCP door writes.
fn lines(feed: &mut Feed) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(item) = feed.try_recv() {
        let bytes = match item {
            Outgoing::Line(b) | Outgoing::LineOffsets(b) => (*b).clone(),
            Outgoing::Push(p) => p.line().cloned().unwrap_or_default(),
            Outgoing::Batch(b, from) => b.lines(from),
            Outgoing::Text(_) => Bytes::from_static(b"(text)\n"),
            Outgoing::Close(_) => Bytes::from_static(b"(close)\n"),
        };
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        got.extend(text.lines().map(str::to_owned));
    }
    got
}

struct Member {
    id: ConnId,
    queue: Arc<ConnQueue>,
    feed: Feed,
}

fn open(fan: &Fanout, id: u64) -> Member {
    let (queue, feed) = fan.open(ConnId(id));
    Member {
        id: ConnId(id),
        queue,
        feed,
    }
}

fn join(fan: &mut Fanout, m: &Member, room: &str) {
    fan.join(&m.queue, m.id, &name(room), 0).unwrap();
}

#[test]
fn each_member_reads_its_queue_and_its_rooms_in_the_order_they_were_filled() {
    let mut fan = Fanout::new(1 << 20, 64);
    let (a, mut b) = (open(&fan, 1), open(&fan, 2));
    join(&mut fan, &a, "r1");
    join(&mut fan, &b, "r1");
    join(&mut fan, &b, "r2");
    fan.push(&b.queue, reply("OK JOIN r2:b")).unwrap();
    fan.broadcast(&name("r1"), msg("r1", "a", "one"), vec![a.id]);
    fan.broadcast(&name("r2"), msg("r2", "c", "two"), vec![]);
    fan.push(&b.queue, reply("DM three")).unwrap();
    fan.broadcast(&name("r1"), msg("r1", "a", "four"), vec![a.id]);
    fan.push(&b.queue, reply("OK LIST")).unwrap();
    fan.broadcast(&name("r2"), msg("r2", "c", "five"), vec![]);
    // Nothing is readable before it is published.
    assert!(lines(&mut b.feed).is_empty());
    fan.publish();
    assert_eq!(
        lines(&mut b.feed),
        [
            "OK JOIN r2:b",
            "MSG r1:a one",
            "MSG r2:c two",
            "DM three",
            "MSG r1:a four",
            "OK LIST",
            "MSG r2:c five",
        ]
    );
}

#[test]
fn more_queued_items_than_one_round_takes_stay_before_later_room_messages() {
    // A recovery queues the missed messages on the member's own queue, then live messages reach
    // the room's log: however many were queued, they come first.
    let mut fan = Fanout::new(1 << 20, 1024);
    let mut m = open(&fan, 1);
    join(&mut fan, &m, "r1");
    let queued = MAX_TAKE + 44;
    for i in 0..queued {
        fan.push(&m.queue, reply(&format!("missed {i}"))).unwrap();
    }
    for i in 0..5 {
        fan.broadcast(&name("r1"), msg("r1", "a", &format!("live {i}")), vec![]);
    }
    fan.publish();
    let mut got = Vec::new();
    while got.len() < queued + 5 {
        let more = lines(&mut m.feed);
        assert!(!more.is_empty(), "stalled after {got:?}");
        got.extend(more);
    }
    let want: Vec<String> = (0..queued)
        .map(|i| format!("missed {i}"))
        .chain((0..5).map(|i| format!("MSG r1:a live {i}")))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_member_that_joins_mid_stream_starts_at_the_head_of_the_log() {
    let mut fan = Fanout::new(1 << 20, 64);
    let (a, mut b) = (open(&fan, 1), open(&fan, 2));
    join(&mut fan, &a, "main");
    join(&mut fan, &b, "main");
    for i in 0..3 {
        fan.broadcast(
            &name("main"),
            msg("main", "a", &format!("m{i}")),
            vec![a.id],
        );
    }
    fan.publish();
    let mut c = open(&fan, 3);
    fan.push(&c.queue, reply("OK HELLO main:c")).unwrap();
    join(&mut fan, &c, "main");
    fan.broadcast(&name("main"), msg("main", "a", "m3"), vec![a.id]);
    fan.publish();
    assert_eq!(lines(&mut c.feed), ["OK HELLO main:c", "MSG main:a m3"]);
    assert_eq!(
        lines(&mut b.feed),
        [
            "MSG main:a m0",
            "MSG main:a m1",
            "MSG main:a m2",
            "MSG main:a m3"
        ]
    );
}

#[test]
fn a_member_behind_the_byte_bound_is_named_slow_and_the_others_get_everything() {
    // Room for about ten messages of 100 characters.
    let mut fan = Fanout::new(10 * (PUSH_OVERHEAD + 110), 64);
    let (mut publisher, mut fast, mut slow) = (open(&fan, 1), open(&fan, 2), open(&fan, 3));
    for m in [&publisher, &fast, &slow] {
        join(&mut fan, m, "main");
    }
    fan.publish();
    let pad = "x".repeat(100);
    let mut failed = Vec::new();
    let mut read = 0;
    for i in 0..40 {
        let fanned = fan.broadcast(
            &name("main"),
            msg("main", "p", &format!("{i:02}{pad}")),
            vec![publisher.id],
        );
        assert_eq!(fanned.delivered, 2 - failed.len() as u64);
        for conn in fanned.slow {
            // The rooms state fails it, and the hub says it left.
            fan.leave(None, conn, &name("main"));
            failed.push(conn);
        }
        fan.publish();
        // The publisher's writer passes over its own messages.
        assert!(lines(&mut publisher.feed).is_empty());
        // The fast member keeps up; the slow one never reads.
        for line in lines(&mut fast.feed) {
            assert_eq!(line, format!("MSG main:p {read:02}{pad}"));
            read += 1;
        }
    }
    assert_eq!(read, 40, "the fast member got every message, in order");
    assert_eq!(failed, [slow.id], "named once, when it fell behind");
    // What the log dropped is gone for the slow member: its feed gives nothing more.
    assert!(lines(&mut slow.feed).is_empty());
    assert!(slow.feed.stuck);
    // The log holds no more than its bound (the fast member read everything).
    let (_, bytes) = fan.rooms[&name("main")].log.held();
    assert!(bytes <= 10 * (PUSH_OVERHEAD + 110), "{bytes} bytes held");
}

#[test]
fn the_newest_entry_stays_even_when_it_alone_is_over_the_bound() {
    let mut fan = Fanout::new(16, 64);
    let (a, mut b) = (open(&fan, 1), open(&fan, 2));
    join(&mut fan, &a, "main");
    join(&mut fan, &b, "main");
    let fanned = fan.broadcast(
        &name("main"),
        msg("main", "a", &"y".repeat(200)),
        vec![a.id],
    );
    assert!(fanned.slow.is_empty(), "nobody is behind the newest push");
    fan.publish();
    assert_eq!(lines(&mut b.feed).len(), 1);
}

#[test]
fn logs_are_released_once_members_leave_and_read_what_came_before() {
    let mut fan = Fanout::new(1 << 20, 64);
    let (a, mut b) = (open(&fan, 1), open(&fan, 2));
    join(&mut fan, &a, "r1");
    join(&mut fan, &b, "r1");
    let log = Arc::downgrade(&fan.rooms[&name("r1")].log);
    fan.broadcast(&name("r1"), msg("r1", "a", "before"), vec![a.id]);
    fan.leave(Some(&b.queue), b.id, &name("r1"));
    fan.broadcast(&name("r1"), msg("r1", "a", "after"), vec![a.id]);
    fan.leave(Some(&a.queue), a.id, &name("r1"));
    fan.publish();
    assert_eq!(fan.room_count(), 0, "an empty room keeps no log");
    assert!(log.upgrade().is_some(), "b's writer still reads it");
    // b gets what came before its leave, not what came after.
    assert_eq!(lines(&mut b.feed), ["MSG r1:a before"]);
    assert!(b.feed.subs.is_empty());
    drop(a);
    assert!(log.upgrade().is_none(), "nobody holds the log any more");
}

#[test]
fn entries_every_member_read_are_dropped() {
    let mut fan = Fanout::new(1 << 20, 64);
    let (mut a, mut b, mut c) = (open(&fan, 1), open(&fan, 2), open(&fan, 3));
    for m in [&a, &b, &c] {
        join(&mut fan, m, "main");
    }
    for i in 0..50 {
        fan.broadcast(
            &name("main"),
            msg("main", "a", &format!("m{i}")),
            vec![a.id],
        );
        fan.publish();
        lines(&mut a.feed);
        lines(&mut b.feed);
        lines(&mut c.feed);
    }
    let (entries, _) = fan.rooms[&name("main")].log.held();
    assert!(
        entries <= 2,
        "{entries} entries held after everyone read them"
    );
    // A member that stops reading keeps what it has not read, up to the bound.
    for i in 0..50 {
        fan.broadcast(
            &name("main"),
            msg("main", "a", &format!("n{i}")),
            vec![a.id],
        );
        fan.publish();
        lines(&mut a.feed);
        lines(&mut b.feed);
    }
    let (entries, _) = fan.rooms[&name("main")].log.held();
    assert!(entries >= 50, "only {entries} entries held for c");
    assert_eq!(lines(&mut c.feed).len(), 50);
    drop(a);
}

#[test]
fn presence_batches_start_at_each_members_own_join() {
    let mut fan = Fanout::new(1 << 20, 64);
    let (a, mut b) = (open(&fan, 1), open(&fan, 2));
    fan.join(&a.queue, a.id, &name("main"), 0).unwrap();
    // b's own join is event 4: it sees the events from 5 on.
    fan.join(&b.queue, b.id, &name("main"), 5).unwrap();
    let events: Vec<Push> = (3..7)
        .map(|i| Push::Join {
            room: name("main"),
            client: name(&format!("c{i}")),
        })
        .collect();
    let batch = Arc::new(EncodedBatch::new(events, 6));
    let fanned = fan.batch(&name("main"), batch, 3);
    assert_eq!(fanned.delivered, 4 + 2);
    fan.publish();
    assert_eq!(lines(&mut b.feed), ["JOINED main:c5", "JOINED main:c6"]);
    drop(a);
}

#[test]
fn a_full_queue_refuses_and_the_end_always_gets_in() {
    let mut fan = Fanout::new(1 << 20, 2);
    let mut m = open(&fan, 1);
    fan.push(&m.queue, reply("one")).unwrap();
    fan.push(&m.queue, reply("two")).unwrap();
    assert!(fan.push(&m.queue, reply("three")).is_err());
    fan.push(&m.queue, Own::End).unwrap();
    fan.publish();
    assert_eq!(lines(&mut m.feed), ["one", "two"]);
    assert!(m.feed.ended);
}

#[tokio::test]
async fn a_waiting_writer_wakes_once_its_room_is_published() {
    let mut fan = Fanout::new(1 << 20, 64);
    let (a, b) = (open(&fan, 1), open(&fan, 2));
    join(&mut fan, &a, "main");
    join(&mut fan, &b, "main");
    fan.publish();
    let mut feed = b.feed;
    let waiter = tokio::spawn(async move {
        let first = feed.recv().await;
        (first.is_some(), lines(&mut feed))
    });
    // On this one-thread runtime, yielding runs the writer until it parks on its wake-ups.
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    fan.broadcast(&name("main"), msg("main", "a", "hi"), vec![a.id]);
    fan.broadcast(&name("main"), msg("main", "a", "again"), vec![a.id]);
    fan.publish();
    let (woke, rest) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the writer was never woken")
        .unwrap();
    assert!(woke);
    assert_eq!(rest, ["MSG main:a again"]);
}

#[tokio::test]
async fn a_waiting_writer_wakes_for_its_own_queue_and_for_each_of_its_rooms() {
    let mut fan = Fanout::new(1 << 20, 64);
    let (a, b) = (open(&fan, 1), open(&fan, 2));
    join(&mut fan, &a, "r1");
    join(&mut fan, &b, "r1");
    join(&mut fan, &b, "r2");
    fan.publish();
    let mut feed = b.feed;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn(async move {
        while let Some(item) = feed.recv().await {
            let line = match item {
                Outgoing::Line(b) => String::from_utf8(b.to_vec()).unwrap(),
                Outgoing::Push(p) => String::from_utf8(p.line().unwrap().to_vec()).unwrap(),
                _ => "(other)\n".into(),
            };
            if tx.send(line.trim_end().to_owned()).is_err() {
                break;
            }
        }
    });
    let next = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>| {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the writer was never woken")
            .unwrap()
    };
    // Each time the writer has parked on its wake-ups (yielding runs it on this one-thread
    // runtime), one source gets an item: each must wake it.
    for round in 0..3 {
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err());
        fan.push(&b.queue, reply(&format!("own {round}"))).unwrap();
        fan.publish();
        assert_eq!(next(&mut rx).await, format!("own {round}"));
        tokio::task::yield_now().await;
        fan.broadcast(&name("r2"), msg("r2", "c", &format!("two {round}")), vec![]);
        fan.publish();
        assert_eq!(next(&mut rx).await, format!("MSG r2:c two {round}"));
        tokio::task::yield_now().await;
        fan.broadcast(
            &name("r1"),
            msg("r1", "a", &format!("one {round}")),
            vec![a.id],
        );
        fan.publish();
        assert_eq!(next(&mut rx).await, format!("MSG r1:a one {round}"));
    }
    // Queued while the writer is busy (no waiter registered): the wake-up is not lost.
    fan.push(&b.queue, reply("while busy")).unwrap();
    fan.publish();
    fan.push(&b.queue, Own::End).unwrap();
    fan.publish();
    assert_eq!(next(&mut rx).await, "while busy");
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the writer did not end")
        .unwrap();
    drop(a);
}
