//! Arbitrary bytes as WebSocket frames: no panic, and every reply is valid JSON with `ok`; pushes
//! and presence batches (the clock moves a data-chosen step per frame) encode as JSON.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tether_rooms::{Door, Hub, Limits, Output, json};

fuzz_target!(|data: &[u8]| {
    let mut hub = Hub::new(Limits::default());
    let conn = hub.handle_connect(Door::Ws);
    let mut now = Instant::now();
    for frame in data.split(|&b| b == 0) {
        now += Duration::from_millis(u64::from(frame.first().copied().unwrap_or(0) % 64));
        if hub.poll_timeout().is_some_and(|at| at <= now) {
            hub.handle_timeout(now);
        }
        let req = json::parse_frame(frame);
        let result = req
            .command
            .and_then(|cmd| hub.handle_command(conn, cmd, now));
        let out = json::encode_reply(&req.id, &result);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("replies are JSON");
        assert!(v.get("ok").is_some());
        while let Some(out) = hub.poll_output() {
            match out {
                Output::Deliver { push, .. } | Output::Broadcast { push, .. } => {
                    let _ = json::encode_push(&push);
                }
                Output::DeliverBatch { pushes, .. } => {
                    assert!(!pushes.is_empty());
                    for p in &pushes {
                        let _ = json::encode_push(p);
                    }
                }
                Output::Joined { .. }
                | Output::Left { .. }
                | Output::Close { .. }
                | Output::RoomCreated { .. }
                | Output::RoomDeleted { .. } => {}
            }
        }
    }
});
