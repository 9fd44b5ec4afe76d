//! Arbitrary bytes as WebSocket frames: no panic, and every reply is valid JSON with `ok`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_rooms::{Door, Hub, Limits, json};

fuzz_target!(|data: &[u8]| {
    let mut hub = Hub::new(Limits::default());
    let conn = hub.connect(Door::Ws);
    for frame in data.split(|&b| b == 0) {
        let req = json::parse_frame(frame);
        let result = req.command.and_then(|cmd| hub.handle_command(conn, cmd));
        let out = json::encode_reply(&req.id, &result);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("replies are JSON");
        assert!(v.get("ok").is_some());
        while let Some(tether_rooms::Output::Deliver { push, .. }) = hub.poll_output() {
            let _ = json::encode_push(&push);
        }
    }
});
