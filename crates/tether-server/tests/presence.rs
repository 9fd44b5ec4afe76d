//! Presence under load (docs/protocol/rooms.md §10): a room's joins and leaves are handed out in
//! one batch per tick, so a storm of joins or leaves in one big room costs every member one queue
//! item per tick. Members that keep reading are never evicted with the default queue, and every
//! door still shows each join and leave, in order, before any message of the client concerned.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Raises this process's open-file limit (inherited by the server it spawns) to at least `need`.
fn raise_nofile(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < need {
            assert!(
                lim.rlim_max >= need,
                "this test needs {need} open files per process; the hard limit is {} \
                 (raise it, e.g. `ulimit -Hn {need}` as root)",
                lim.rlim_max
            );
            lim.rlim_cur = need;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
}

async fn ws_open(http: std::net::SocketAddr, query: &str) -> Ws {
    let url = format!("ws://{http}/ws/rooms{query}");
    let (ws, resp) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(&url))
        .await
        .unwrap_or_else(|_| panic!("WebSocket handshake with {url} timed out"))
        .unwrap_or_else(|e| panic!("WebSocket handshake with {url} failed: {e}"));
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

// ---------------------------------------------------------------------------------------------
// The storm
// ---------------------------------------------------------------------------------------------

/// Members of the storm.
const STORM: usize = 5000;

/// How a storm member talks to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    /// `/ws/rooms`: one `join` / `leave` frame per event.
    Ws,
    /// `/ws/rooms?presence=batch`: one `presence_batch` frame per batch.
    WsBatch,
}

/// Most members are TCP (the lightest to read for the test); 300 are WebSocket, half of them
/// with batch frames; a fifth of all (WebSocket ones included) quit after the join storm.
fn kind_of(i: usize) -> Kind {
    match (i % 50, i % 100) {
        (0, _) | (_, 1) => Kind::Ws,
        (25, _) | (_, 51) => Kind::WsBatch,
        _ => Kind::Tcp,
    }
}

fn quits(i: usize) -> bool {
    i % 5 == 1
}

fn name_of(i: usize) -> String {
    format!("m{i:04}")
}

/// What one member's reader saw.
#[derive(Default)]
struct Seen {
    /// The hello was answered (for WebSocket: with this member count).
    replied: AtomicBool,
    reply_count: AtomicU64,
    joins: AtomicU64,
    leaves: AtomicU64,
    /// `presence_batch` frames, and the `count` of the last one.
    batches: AtomicU64,
    batch_count: AtomicU64,
    /// The final message arrived (or, for its sender, how many it was delivered to).
    final_msg: AtomicBool,
    delivered: AtomicU64,
    /// The server said goodbye after a QUIT (`OK BYE`, or the reply to `quit`).
    bye: AtomicBool,
    /// Why the connection ended (EOF, close frame, error), if it did.
    ended: Mutex<Option<String>>,
    /// Something the reader found wrong.
    wrong: Mutex<Option<String>>,
}

struct Totals {
    joins: AtomicU64,
    leaves: AtomicU64,
    changed: Notify,
}

impl Seen {
    fn end(&self, why: String) {
        self.ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(why);
    }

    fn wrong(&self, what: String) {
        self.wrong
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(what);
    }
}

const FINAL_TEXT: &str = "storm-over";

/// Reads TCP lines until EOF, counting `JOINED` / `LEFT` without keeping them.
async fn read_tcp(mut rd: impl AsyncRead + Unpin, me: String, seen: Arc<Seen>, t: Arc<Totals>) {
    let reply = format!("OK HELLO main:{me}");
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let classify = |line: &[u8]| {
        if line.starts_with(b"JOINED main:") {
            (1, 0)
        } else if line.starts_with(b"LEFT main:") {
            (0, 1)
        } else {
            if line == reply.as_bytes() {
                seen.replied.store(true, Ordering::SeqCst);
            } else if let Some(n) = line.strip_prefix(b"OK SEND main ") {
                let n = std::str::from_utf8(n).ok().and_then(|n| n.parse().ok());
                seen.delivered
                    .store(n.unwrap_or(u64::MAX), Ordering::SeqCst);
            } else if line == b"OK BYE" {
                seen.bye.store(true, Ordering::SeqCst);
            } else if line.starts_with(b"MSG main:") && line.ends_with(FINAL_TEXT.as_bytes()) {
                seen.final_msg.store(true, Ordering::SeqCst);
            } else {
                seen.wrong(format!(
                    "unexpected line {:?}",
                    String::from_utf8_lossy(line)
                ));
            }
            (0, 0)
        }
    };
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => return seen.end("EOF".into()),
            Ok(n) => n,
            Err(e) => return seen.end(format!("read error: {e}")),
        };
        let (mut joins, mut leaves) = (0, 0);
        let data = &buf[..n];
        let mut start = 0;
        while let Some(off) = data[start..].iter().position(|&b| b == b'\n') {
            let end = start + off;
            let (j, l) = if carry.is_empty() {
                classify(&data[start..end])
            } else {
                carry.extend_from_slice(&data[start..end]);
                let r = classify(&carry);
                carry.clear();
                r
            };
            joins += j;
            leaves += l;
            start = end + 1;
        }
        carry.extend_from_slice(&data[start..]);
        if joins + leaves > 0 {
            seen.joins.fetch_add(joins, Ordering::SeqCst);
            seen.leaves.fetch_add(leaves, Ordering::SeqCst);
            t.joins.fetch_add(joins, Ordering::SeqCst);
            t.leaves.fetch_add(leaves, Ordering::SeqCst);
            t.changed.notify_waiters();
        }
    }
}

/// Reads WebSocket frames until the connection ends, checking each batch's `count` against the
/// member's own tally (its hello reply's count plus the joins, minus the leaves, it saw).
async fn read_ws(mut rd: SplitStream<Ws>, seen: Arc<Seen>, t: Arc<Totals>) {
    let mut tally: i64 = 0;
    loop {
        let frame = match rd.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(f))) => return seen.end(format!("close frame {f:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return seen.end(format!("read error: {e}")),
            None => return seen.end("stream ended".into()),
        };
        let b = frame.as_bytes();
        let (joins, leaves) = if b.starts_with(br#"{"type":"join""#) {
            (1, 0)
        } else if b.starts_with(br#"{"type":"leave""#) {
            (0, 1)
        } else {
            let v: Value = match serde_json::from_slice(b) {
                Ok(v) => v,
                Err(e) => return seen.wrong(format!("frame is not JSON ({e}): {frame}")),
            };
            if v["type"] == "presence_batch" {
                let events = v["events"].as_array().cloned().unwrap_or_default();
                let joins = events.iter().filter(|e| e["type"] == "join").count() as u64;
                let leaves = events.iter().filter(|e| e["type"] == "leave").count() as u64;
                if v["room"] != "main" || events.is_empty() || joins + leaves != events.len() as u64
                {
                    seen.wrong(format!("bad presence_batch {v}"));
                }
                tally += joins as i64 - leaves as i64;
                if v["count"].as_i64() != Some(tally) {
                    seen.wrong(format!(
                        "batch count {} but the member counted {tally}",
                        v["count"]
                    ));
                }
                seen.batches.fetch_add(1, Ordering::SeqCst);
                seen.batch_count
                    .store(v["count"].as_u64().unwrap_or(0), Ordering::SeqCst);
                (joins, leaves)
            } else if v["ok"] == true && v["cmd"].is_null() && v.get("count").is_some() {
                let count = v["count"].as_u64().unwrap_or(0);
                tally = count as i64;
                seen.reply_count.store(count, Ordering::SeqCst);
                seen.replied.store(true, Ordering::SeqCst);
                (0, 0)
            } else if v["ok"] == true {
                seen.bye.store(true, Ordering::SeqCst); // the reply to quit
                (0, 0)
            } else if v["type"] == "presence" {
                if v["count"] != json!(tally) {
                    seen.wrong(format!("presence after the reply disagrees: {v}"));
                }
                (0, 0)
            } else if v["type"] == "message" && v["text"] == FINAL_TEXT {
                seen.final_msg.store(true, Ordering::SeqCst);
                (0, 0)
            } else {
                seen.wrong(format!("unexpected frame {v}"));
                (0, 0)
            }
        };
        if joins + leaves > 0 {
            if !b.starts_with(br#"{"type":"presence_batch""#) {
                tally += joins as i64 - leaves as i64;
            }
            seen.joins.fetch_add(joins, Ordering::SeqCst);
            seen.leaves.fetch_add(leaves, Ordering::SeqCst);
            t.joins.fetch_add(joins, Ordering::SeqCst);
            t.leaves.fetch_add(leaves, Ordering::SeqCst);
            t.changed.notify_waiters();
        }
    }
}

enum Writer {
    Tcp(OwnedWriteHalf),
    Ws(SplitSink<Ws, Message>),
}

impl Writer {
    async fn hello(&mut self, me: &str) {
        match self {
            Writer::Tcp(w) => w
                .write_all(format!("HELLO main:{me}\n").as_bytes())
                .await
                .expect("writing HELLO"),
            Writer::Ws(w) => w
                .send(Message::text(
                    json!({"id": 1, "cmd": "hello", "room": "main", "client": me}).to_string(),
                ))
                .await
                .expect("sending hello"),
        }
    }

    async fn quit(&mut self, me: &str) {
        match self {
            Writer::Tcp(w) => w
                .write_all(format!("QUIT main:{me}\n").as_bytes())
                .await
                .expect("writing QUIT"),
            Writer::Ws(w) => w
                .send(Message::text(json!({"id": 2, "cmd": "quit"}).to_string()))
                .await
                .expect("sending quit"),
        }
    }
}

/// The first member that lost its connection (quitters excepted once `quitted`), and why.
fn lost(seen: &[Arc<Seen>], quitted: bool) -> Option<String> {
    seen.iter().enumerate().find_map(|(i, s)| {
        let why = s.ended.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        (!(quitted && quits(i))).then(|| format!("{} ({:?}): {why}", name_of(i), kind_of(i)))
    })
}

/// Waits until `done()` holds, for at most `limit`; fails at once when a member that should
/// stay lost its connection (an eviction), and says what was awaited on a timeout.
async fn settle(
    what: &str,
    limit: Duration,
    t: &Totals,
    seen: &[Arc<Seen>],
    quitted: bool,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done() {
        if let Some(l) = lost(seen, quitted) {
            panic!("waiting for {what}, a member lost its connection: {l}");
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out after {limit:?} waiting for {what}"
        );
        // Woken by any reader's progress; the timeout covers changes that do not notify.
        let _ =
            tokio::time::timeout(left.min(Duration::from_millis(50)), t.changed.notified()).await;
    }
}

fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// 5,000 members join one room within about a second, with the default queue capacity (1,024
/// items), while every one of them keeps reading; then 1,000 of them quit at once. Nobody is
/// evicted, every member ends with the right count, and every connection still carries messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_and_leave_storms_in_one_room_evict_no_reader() {
    raise_nofile(STORM as u64 + 1024);
    let server = Server::start(&["--max-clients", "6000", "--max-connections-per-ip", "6000"]);
    let totals = Arc::new(Totals {
        joins: AtomicU64::new(0),
        leaves: AtomicU64::new(0),
        changed: Notify::new(),
    });

    // Connect everyone first (not registered yet, so nobody receives anything).
    let t0 = Instant::now();
    let mut writers: Vec<Writer> = Vec::with_capacity(STORM);
    let mut seen: Vec<Arc<Seen>> = Vec::with_capacity(STORM);
    let mut readers = Vec::with_capacity(STORM);
    for i in 0..STORM {
        let s = Arc::new(Seen::default());
        let t = totals.clone();
        match kind_of(i) {
            Kind::Tcp => {
                let sock = tcp_connect(server.tcp).await;
                sock.set_nodelay(true).expect("nodelay");
                let (rd, wr) = sock.into_split();
                readers.push(tokio::spawn(read_tcp(rd, name_of(i), s.clone(), t)));
                writers.push(Writer::Tcp(wr));
            }
            kind => {
                let query = if kind == Kind::WsBatch {
                    "?presence=batch"
                } else {
                    ""
                };
                let (wr, rd) = ws_open(server.http, query).await.split();
                readers.push(tokio::spawn(read_ws(rd, s.clone(), t)));
                writers.push(Writer::Ws(wr));
            }
        }
        seen.push(s);
    }
    eprintln!("{STORM} connections open in {:?}", t0.elapsed());

    // The join storm: 50 waves of 100 hellos, one wave every 20 ms (about a second in all).
    let t1 = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    for (wave, group) in writers.chunks_mut(100).enumerate() {
        pace.tick().await;
        for (k, w) in group.iter_mut().enumerate() {
            w.hello(&name_of(wave * 100 + k)).await;
        }
    }
    let sent = t1.elapsed();
    let n = STORM as u64;
    settle(
        "every member to see every join",
        Duration::from_secs(180),
        &totals,
        &seen,
        false,
        || {
            totals.joins.load(Ordering::SeqCst) >= n * (n - 1) / 2
                && seen.iter().all(|s| s.replied.load(Ordering::SeqCst))
        },
    )
    .await;
    eprintln!(
        "join storm: hellos sent in {sent:?}, every join seen by every member after {:?}",
        t1.elapsed()
    );
    for (i, s) in seen.iter().enumerate() {
        if let Some(w) = s.wrong.lock().unwrap().as_ref() {
            panic!("{} ({:?}): {w}", name_of(i), kind_of(i));
        }
        if let Some(e) = s.ended.lock().unwrap().as_ref() {
            panic!("{} ({:?}) lost its connection: {e}", name_of(i), kind_of(i));
        }
    }
    // Each member saw the joins of exactly those who came after it: the counts are 0..N-1, once
    // each (an extra, missed or repeated join anywhere would break this).
    let mut joins: Vec<u64> = seen
        .iter()
        .map(|s| s.joins.load(Ordering::SeqCst))
        .collect();
    joins.sort_unstable();
    assert!(
        joins.iter().enumerate().all(|(k, &j)| j == k as u64),
        "join counts are not 0..{STORM}: {:?}…",
        &joins[..20]
    );
    // WebSocket members also know the count at their join: they add up to the whole room.
    let (mut batch_frames, mut batch_events) = (0, 0);
    for (i, s) in seen.iter().enumerate() {
        if kind_of(i) == Kind::Tcp {
            continue;
        }
        let total = s.reply_count.load(Ordering::SeqCst) + s.joins.load(Ordering::SeqCst);
        assert_eq!(
            total,
            n,
            "{} ({:?}) counts {total} members",
            name_of(i),
            kind_of(i)
        );
        if kind_of(i) == Kind::WsBatch && s.joins.load(Ordering::SeqCst) > 0 {
            assert_eq!(s.batch_count.load(Ordering::SeqCst), n, "{}", name_of(i));
            batch_frames += s.batches.load(Ordering::SeqCst);
            batch_events += s.joins.load(Ordering::SeqCst);
        }
    }
    eprintln!("batch members: {batch_events} joins in {batch_frames} presence_batch frames");
    assert!(batch_frames < batch_events, "joins were not batched at all");

    // The leave storm: 1,000 members quit within about 200 ms.
    let quitters: Vec<usize> = (0..STORM).filter(|&i| quits(i)).collect();
    let q = quitters.len() as u64;
    let t2 = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    for wave in quitters.chunks(100) {
        pace.tick().await;
        for &i in wave {
            writers[i].quit(&name_of(i)).await;
        }
    }
    let stay = n - q;
    settle(
        "every remaining member to see every leave",
        Duration::from_secs(120),
        &totals,
        &seen,
        true,
        || totals.leaves.load(Ordering::SeqCst) >= stay * q,
    )
    .await;
    eprintln!("leave storm: every leave seen after {:?}", t2.elapsed());

    // Nobody was dropped as a slow consumer, and the server counts exactly those who stayed.
    let metrics = server.http().get("/metrics").await.text();
    assert_eq!(
        metric(&metrics, "tether_dropped_total"),
        0.0,
        "members were dropped:\n{metrics}"
    );
    assert_eq!(
        metric(&metrics, "tether_clients "),
        stay as f64,
        "{metrics}"
    );

    // Every remaining connection still works: one message reaches all the others.
    let sender = (0..STORM)
        .find(|&i| !quits(i) && kind_of(i) == Kind::Tcp)
        .unwrap();
    if let Writer::Tcp(w) = &mut writers[sender] {
        let line = format!("SEND main:{} {FINAL_TEXT}\n", name_of(sender));
        w.write_all(line.as_bytes()).await.expect("writing SEND");
    }
    settle(
        "the final message to reach every remaining member",
        Duration::from_secs(60),
        &totals,
        &seen,
        true,
        || {
            (0..STORM)
                .filter(|&i| !quits(i) && i != sender)
                .all(|i| seen[i].final_msg.load(Ordering::SeqCst))
        },
    )
    .await;
    assert_eq!(seen[sender].delivered.load(Ordering::SeqCst), stay - 1);
    for (i, s) in seen.iter().enumerate() {
        if let Some(w) = s.wrong.lock().unwrap().as_ref() {
            panic!("{} ({:?}): {w}", name_of(i), kind_of(i));
        }
        if quits(i) {
            assert!(
                s.bye.load(Ordering::SeqCst),
                "{} quit without its reply",
                name_of(i)
            );
            continue;
        }
        assert!(
            s.ended.lock().unwrap().is_none(),
            "{} ({:?}) lost its connection: {:?}",
            name_of(i),
            kind_of(i),
            s.ended.lock().unwrap()
        );
        assert_eq!(s.leaves.load(Ordering::SeqCst), q, "{}", name_of(i));
        if kind_of(i) == Kind::WsBatch {
            assert_eq!(s.batch_count.load(Ordering::SeqCst), stay, "{}", name_of(i));
        }
    }
    for r in readers {
        r.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// What each door shows of a burst
// ---------------------------------------------------------------------------------------------

/// The presence events (`JOINED x` / `LEFT x`) an observer saw before the message `until`.
async fn tcp_events_until(c: &mut LineClient, until: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let line = c.next_push().await;
        if line == until {
            return out;
        }
        let ev = line
            .strip_prefix("JOINED main:")
            .map(|x| format!("join {x}"))
            .or_else(|| {
                line.strip_prefix("LEFT main:")
                    .map(|x| format!("leave {x}"))
            })
            .unwrap_or_else(|| panic!("unexpected push {line:?}"));
        out.push(ev);
    }
}

/// Same for a WebSocket observer; batch frames are unfolded. Also returns the number of frames.
async fn ws_events_until(ws: &mut Ws, until: &str, tally: &mut i64) -> (Vec<String>, usize) {
    let (mut out, mut frames) = (Vec::new(), 0);
    loop {
        let frame = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("the connection ended")
            .expect("read error");
        let Message::Text(text) = frame else {
            continue;
        };
        let v: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
        match v["type"].as_str() {
            Some("message") if v["text"] == until => return (out, frames),
            Some("presence") => {} // the member list after its own join
            Some("join" | "leave") => {
                assert_eq!(v["room"], "main", "{v}");
                *tally += if v["type"] == "join" { 1 } else { -1 };
                out.push(format!(
                    "{} {}",
                    v["type"].as_str().unwrap(),
                    v["client"].as_str().unwrap()
                ));
                frames += 1;
            }
            Some("presence_batch") => {
                assert_eq!(v["room"], "main", "{v}");
                let events = v["events"].as_array().expect("events");
                assert!(!events.is_empty(), "empty batch {v}");
                for e in events {
                    let (ty, client) = (e["type"].as_str().unwrap(), e["client"].as_str().unwrap());
                    assert!(matches!(ty, "join" | "leave"), "{v}");
                    assert_eq!(e.as_object().unwrap().len(), 2, "event fields: {e}");
                    *tally += if ty == "join" { 1 } else { -1 };
                    out.push(format!("{ty} {client}"));
                }
                assert_eq!(
                    v["count"],
                    json!(*tally),
                    "batch count vs the observer's tally"
                );
                frames += 1;
            }
            _ => panic!("unexpected frame {v}"),
        }
    }
}

/// A burst of joins and leaves (faster than the tick) reads the same on every door: the TCP
/// lines, the WebSocket frames one by one, the WebSocket batch frames unfolded and the REST
/// mailbox all list the same events in the same order, each client's join before its leave and
/// before its message (sent right after its join, while the burst is still gathering).
#[tokio::test]
async fn a_burst_reads_the_same_on_every_door() {
    let server = Server::start(&[]);
    let http = server.http();
    let mut tcp = LineClient::hello(server.tcp, "main", "obs-tcp").await;
    let mut ws = ws_open(server.http, "").await;
    let mut wsb = ws_open(server.http, "?presence=batch").await;
    let (mut ws_tally, mut wsb_tally) = (0i64, 0i64);
    for (c, name, tally) in [
        (&mut ws, "obs-ws", &mut ws_tally),
        (&mut wsb, "obs-wsb", &mut wsb_tally),
    ] {
        c.send(Message::text(
            json!({"id": 1, "cmd": "hello", "room": "main", "client": name}).to_string(),
        ))
        .await
        .unwrap();
        loop {
            let f = c.next().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(f.to_text().unwrap()).unwrap();
            if v["id"] == 1 {
                assert_eq!(v["ok"], true, "{v}");
                *tally = v["count"].as_i64().unwrap();
                break;
            }
        }
    }
    let token = http.register("obs-rest", "main").await;
    // Everyone is in: a marker message, after which each observer starts from a clean slate.
    tcp.wait_push("obs-rest's join", |p| p == "JOINED main:obs-rest")
        .await;
    tcp.send("SEND main:obs-tcp ready").await;
    assert_eq!(tcp.reply().await, "OK SEND main 3");
    ws_events_until(&mut ws, "ready", &mut ws_tally).await;
    ws_events_until(&mut wsb, "ready", &mut wsb_tally).await;
    assert_eq!((ws_tally, wsb_tally), (4, 4));
    http.wait_message("obs-rest", &token, |m| m["text"] == "ready")
        .await;

    // The burst: 30 clients join, pipelined; a third of them leave; the last one speaks.
    let mut clients = Vec::new();
    for _ in 0..30 {
        clients.push(LineClient::connect(server.tcp).await);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&format!("HELLO main:b{i:02}")).await;
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.reply().await, format!("OK HELLO main:b{i:02}"));
    }
    for (i, c) in clients.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
        c.send(&format!("LEAVE main:b{i:02}")).await;
        assert_eq!(c.reply().await, format!("OK LEAVE main:b{i:02}"));
    }
    let last = clients.last_mut().unwrap();
    last.send("SEND main:b29 done").await;
    assert_eq!(last.reply().await, "OK SEND main 23");

    let on_tcp = tcp_events_until(&mut tcp, "MSG main:b29 done").await;
    let (on_ws, ws_frames) = ws_events_until(&mut ws, "done", &mut ws_tally).await;
    let (on_wsb, wsb_frames) = ws_events_until(&mut wsb, "done", &mut wsb_tally).await;
    let mut on_rest = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    'rest: loop {
        assert!(
            Instant::now() < deadline,
            "the REST mailbox never got the message"
        );
        let (msgs, dropped) = http.messages("obs-rest", &token).await;
        assert_eq!(dropped, 0);
        for m in msgs {
            match m["type"].as_str() {
                Some("join" | "leave") => on_rest.push(format!(
                    "{} {}",
                    m["type"].as_str().unwrap(),
                    m["client"].as_str().unwrap()
                )),
                Some("message") if m["text"] == "done" => break 'rest,
                _ => panic!("unexpected mailbox entry {m}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Every client's join, and the leaves of a third, each leave after its join.
    assert_eq!(on_tcp.len(), 30 + 10, "{on_tcp:?}");
    for i in 0..30 {
        let join = on_tcp.iter().position(|e| *e == format!("join b{i:02}"));
        let leave = on_tcp.iter().position(|e| *e == format!("leave b{i:02}"));
        assert!(join.is_some(), "no join of b{i:02}: {on_tcp:?}");
        assert_eq!(leave.is_some(), i % 3 == 0, "leave of b{i:02}: {on_tcp:?}");
        assert!(
            leave.is_none_or(|l| l > join.unwrap()),
            "b{i:02}: {on_tcp:?}"
        );
    }
    assert_eq!(on_ws, on_tcp, "WebSocket events");
    assert_eq!(on_wsb, on_tcp, "WebSocket batch frames");
    assert_eq!(on_rest, on_tcp, "REST mailbox");
    assert_eq!(ws_tally, 4 + 30 - 10);
    assert_eq!(wsb_tally, ws_tally);
    assert_eq!(
        ws_frames,
        on_ws.len(),
        "one frame per event without ?presence=batch"
    );
    assert!(wsb_frames <= ws_frames);
    eprintln!(
        "{} events in {wsb_frames} presence_batch frames",
        on_wsb.len()
    );
}

/// `?presence=` takes `events` (the default) or `batch`; anything else is refused before the
/// upgrade, with the reason.
#[tokio::test]
async fn an_unknown_presence_mode_is_refused() {
    let server = Server::start(&[]);
    let url = format!("ws://{}/ws/rooms?presence=bunch", server.http);
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 400);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default());
            assert!(body.contains("'batch'"), "{body}");
        }
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    // The explicit default works like no query at all.
    let mut ws = ws_open(server.http, "?presence=events").await;
    ws.send(Message::text(
        json!({"id": 1, "cmd": "hello", "room": "main", "client": "a"}).to_string(),
    ))
    .await
    .unwrap();
    let reply: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(reply["ok"], true, "{reply}");
}

// ---------------------------------------------------------------------------------------------
// Quiet members
// ---------------------------------------------------------------------------------------------

/// A member that joined with `"presence": false` (WebSocket) or `QUIET` (TCP) gets the room's
/// messages but none of its joins and leaves, nor a member list; a normal member of the same
/// room still sees every join and leave, the quiet members' included. Absence is checked after a
/// later marker message, so it is not a matter of waiting long enough.
#[tokio::test]
async fn a_quiet_member_sees_messages_but_not_joins() {
    let server = Server::start(&[]);
    let mut normal = WsClient::hello(server.http, "main", "normal").await;
    let mut quiet = WsClient::connect(server.http).await;
    let reply = quiet
        .ok(json!({"cmd": "hello", "room": "main", "client": "quiet", "presence": false}))
        .await;
    assert_eq!(reply["count"], 2, "{reply}");
    let mut quiet_tcp = LineClient::connect(server.tcp).await;
    quiet_tcp.send("HELLO main:qtcp QUIET").await;
    assert_eq!(quiet_tcp.reply().await, "OK HELLO main:qtcp");
    normal
        .wait_push("the quiet members' joins", |p| {
            p["type"] == "join" && p["client"] == "qtcp"
        })
        .await;

    // A third client joins and leaves; then the normal member speaks.
    let third = LineClient::hello(server.tcp, "main", "third").await;
    normal
        .wait_push("third's join", |p| {
            p["type"] == "join" && p["client"] == "third"
        })
        .await;
    drop(third);
    normal
        .wait_push("third's leave", |p| {
            p["type"] == "leave" && p["client"] == "third"
        })
        .await;
    normal
        .ok(json!({"cmd": "send", "room": "main", "text": "marker"}))
        .await;

    // The quiet members' first pushes are that message: no presence, join or leave before it.
    assert_eq!(
        unpositioned(&quiet.next_push().await),
        json!({"type": "message", "room": "main", "from": "normal", "text": "marker"})
    );
    assert_eq!(quiet_tcp.next_push().await, "MSG main:normal marker");

    // A bad option is refused with the reason, on both doors, and joins nothing.
    let mut bad = WsClient::connect(server.http).await;
    let err = bad
        .err(
            json!({"cmd": "hello", "room": "main", "client": "bad", "presence": "no"}),
            "BAD_SYNTAX",
        )
        .await;
    assert!(
        err["message"].as_str().unwrap().contains("presence"),
        "{err}"
    );
    let mut bad_tcp = LineClient::connect(server.tcp).await;
    bad_tcp.send("HELLO main:badtcp LOUD").await;
    let line = bad_tcp.reply().await;
    assert_error(&line, "BAD_SYNTAX");
    assert!(line.contains("QUIET"), "{line}");
}
