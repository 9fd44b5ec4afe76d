//! Arbitrary bytes as (1) a request frame for the claude protocol and a params endpoint and (2)
//! a stdout byte stream for the line framer. The first byte picks the line cap (4..=67), the
//! bytes up to the first NUL are the request, the rest is fed to the framer in chunks split on
//! NUL. No panic; a valid request expands to the template's argv with the prompt as one element;
//! lines end only at their `\n`; for valid UTF-8 input every line is within the cap and the lines
//! put together are the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_exec::{ExecSpec, default_specs};
use tether_exec::{LineFramer, Protocol};

fuzz_target!(|data: &[u8]| {
    let Some((&cap, rest)) = data.split_first() else {
        return;
    };
    let max_line = 4 + usize::from(cap & 63);
    let (request, stream) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };

    // Requests.
    let request = String::from_utf8_lossy(request);
    let specs: Vec<ExecSpec> = default_specs();
    for spec in &specs {
        let Ok(ep) = spec.compile() else {
            panic!("built-in endpoint {} does not compile", spec.name);
        };
        match ep.schema.validate(&request) {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(mut values) => {
                if ep.protocol == Protocol::Claude {
                    let prompt = values.get("prompt").cloned().unwrap_or_default();
                    assert!(!prompt.is_empty() && prompt.len() <= 8192);
                    if let Some(meta) = values.get("meta") {
                        assert!(meta.bytes().all(|b| b.is_ascii_uppercase()
                            || b.is_ascii_digit()
                            || b == b'_'
                            || b == b'-'));
                    }
                    tether_exec::claude_prompt(&mut values);
                    let argv = ep.template.expand(&values);
                    assert_eq!(argv.len(), 7);
                    assert_eq!(argv[5], "--");
                    assert!(argv[6].starts_with(&prompt));
                }
            }
        }
    }

    // Framing.
    let mut framer = LineFramer::new(max_line);
    let mut lines: Vec<String> = Vec::new();
    for chunk in stream.split(|&b| b == 0) {
        framer.push(chunk, &mut |l| lines.push(l));
    }
    lines.extend(framer.finish());
    for l in &lines {
        assert!(!l.is_empty());
        if let Some(i) = l.find('\n') {
            assert_eq!(i, l.len() - 1, "a newline only at the end: {l:?}");
        }
    }
    let input: Vec<u8> = stream.iter().copied().filter(|&b| b != 0).collect();
    if let Ok(text) = std::str::from_utf8(&input) {
        assert_eq!(lines.concat(), text);
        assert!(lines.iter().all(|l| l.len() <= max_line), "{lines:?}");
    }
});
