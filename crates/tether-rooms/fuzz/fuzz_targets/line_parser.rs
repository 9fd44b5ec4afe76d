//! Arbitrary bytes through the line splitter, the parser and the hub: no panic, every reply
//! one `OK`/`ERROR` block, the splitter never holding more than one line. The hub's clock moves
//! by a data-chosen step per line, so presence batches are gathered and handed out too.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tether_rooms::line::{
    LineEvent, LineSplitter, encode_push_offsets, encode_reply, encode_reply_with, event_error,
    parse_line,
};
use tether_rooms::{Door, Hub, Limits};

fuzz_target!(|data: &[u8]| {
    let mut hub = Hub::new(Limits::default());
    let mut now = Instant::now();
    let conns = [hub.handle_connect(Door::Tcp), hub.handle_connect(Door::Tcp)];
    let mut splitter = LineSplitter::new(256);
    // Split the input in two chunks at a data-chosen point to exercise partial lines.
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut events = splitter.push(&data[..cut]);
    assert!(splitter.buf_len() <= 257);
    events.extend(splitter.push(&data[cut..]));
    events.extend(splitter.finish());
    for (i, ev) in events.into_iter().enumerate() {
        now += Duration::from_millis(u64::from(data.get(i).copied().unwrap_or(0) % 64));
        if hub.poll_timeout().is_some_and(|at| at <= now) {
            hub.handle_timeout(now);
        }
        let result = match &ev {
            LineEvent::Line(l) => match parse_line(l) {
                Ok(Some(cmd)) => hub.handle_command(conns[i % 2], cmd, now),
                Ok(None) => continue,
                Err(e) => Err(e),
            },
            other => Err(event_error(other).expect("non-line events are errors")),
        };
        // Both reply forms (a connection that shows offsets, one that does not) are one block.
        for reply in [encode_reply(&result), encode_reply_with(&result, i % 2 == 0)] {
            assert!(reply.starts_with(b"OK") || reply.starts_with(b"ERROR "));
            assert!(reply.ends_with(b"\n"));
        }
        while let Some(out) = hub.poll_output() {
            match out {
                tether_rooms::Output::DeliverBatch { pushes, .. } => {
                    assert!(!pushes.is_empty());
                }
                tether_rooms::Output::Broadcast { push, .. }
                | tether_rooms::Output::Deliver { push, .. } => {
                    if let Some(lines) = encode_push_offsets(&push) {
                        assert!(lines.ends_with(b"\n"));
                    }
                }
                _ => {}
            }
        }
    }
});
