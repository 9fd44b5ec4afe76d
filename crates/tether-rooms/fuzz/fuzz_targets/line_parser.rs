//! Arbitrary bytes through the line splitter, the parser and the hub: no panic, every reply
//! one `OK`/`ERROR` block, the splitter never holding more than one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_rooms::line::{LineEvent, LineSplitter, encode_reply, event_error, parse_line};
use tether_rooms::{Door, Hub, Limits};

fuzz_target!(|data: &[u8]| {
    let mut hub = Hub::new(Limits::default());
    let conns = [hub.connect(Door::Tcp), hub.connect(Door::Tcp)];
    let mut splitter = LineSplitter::new(256);
    // Split the input in two chunks at a data-chosen point to exercise partial lines.
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut events = splitter.push(&data[..cut]);
    assert!(splitter.buf_len() <= 257);
    events.extend(splitter.push(&data[cut..]));
    events.extend(splitter.finish());
    for (i, ev) in events.into_iter().enumerate() {
        let result = match &ev {
            LineEvent::Line(l) => match parse_line(l) {
                Ok(Some(cmd)) => hub.handle_command(conns[i % 2], cmd),
                Ok(None) => continue,
                Err(e) => Err(e),
            },
            other => Err(event_error(other).expect("non-line events are errors")),
        };
        let reply = encode_reply(&result);
        assert!(reply.starts_with(b"OK") || reply.starts_with(b"ERROR "));
        assert!(reply.ends_with(b"\n"));
        while hub.poll_output().is_some() {}
    }
});
