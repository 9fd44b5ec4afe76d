//! Arbitrary bytes as a script of relay events: chunks split on NUL, the first byte of each
//! picks the event and the connection, the rest is the frame. No panic; no echo; no frame to a
//! connection that is not open; the log and the queues (each, and all together) stay within their bounds.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tether_relay::{Config, ConnId, Output, Relay};

const HERO: &str = r#"{"id":0,"component":"system","type":"announce","payload":{"peerId":"hero","role":"hero","status":"online","version":"0.0.7","timestamp":1}}"#;
const UI: &str = r#"{"id":0,"component":"system","type":"announce","payload":{"peerId":"ui","role":"sidekick","status":"online","version":"0.0.8","timestamp":1}}"#;

fuzz_target!(|data: &[u8]| {
    let config = Config {
        max_frame_bytes: 512,
        max_log_bytes: 2048,
        max_total_log_bytes: 4096,
        max_queue_bytes: 4096,
        max_total_queue_bytes: 8192,
        max_connections: 6,
        max_sessions: 3,
        max_session_id_bytes: 8,
    };
    let Ok(mut relay) = Relay::new(config) else {
        return;
    };
    let mut open: HashSet<u64> = HashSet::new();
    let mut now = 0u64;
    for chunk in data.split(|&b| b == 0) {
        let Some((&op, rest)) = chunk.split_first() else {
            continue;
        };
        now += 1;
        let conn = ConnId(u64::from(op & 7));
        let text = String::from_utf8_lossy(rest);
        let mut sender = None;
        match op >> 3 {
            0 => {
                relay.handle_connect(conn, &text);
                open.insert(conn.0);
            }
            1 => relay.handle_text(conn, HERO, now),
            2 => relay.handle_text(conn, UI, now),
            3 => relay.handle_binary(conn, now),
            4 => relay.handle_sent(conn, rest.len() * 64),
            5 => {
                relay.handle_close(conn, now);
                open.remove(&conn.0);
            }
            6 => {
                relay.handle_shutdown(1001, "bye");
                open.clear();
            }
            _ => {
                relay.handle_text(conn, &text, now);
                sender = Some((conn, text.into_owned()));
            }
        }
        while let Some(output) = relay.poll_output() {
            match output {
                Output::Send { conn, frame } => {
                    assert!(open.contains(&conn.0), "send to {conn} which is not open");
                    if let Some((from, text)) = &sender {
                        assert!(!(*from == conn && frame.as_str() == text), "echo");
                    }
                }
                Output::Close { conn, .. } => {
                    open.remove(&conn.0);
                }
            }
        }
        assert!(relay.log_bytes() <= 4096);
        assert!(relay.connection_count() <= 6);
        let mut total = 0;
        for &c in &open {
            let q = relay.queued_bytes(ConnId(c)).unwrap_or(0);
            assert!(q <= 4096);
            total += q;
        }
        assert_eq!(total, relay.total_queued_bytes());
        assert!(total <= 8192);
    }
});
