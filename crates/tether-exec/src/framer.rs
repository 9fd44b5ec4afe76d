//! Line framing of a byte stream: bytes in (any chunking), lines out, each valid UTF-8 and at
//! most `max_line` bytes of input, so a client sees whole lines whatever the pipe's chunking and
//! one line can never take unbounded memory.

/// Splits a byte stream into lines that keep their trailing `\n`.
///
/// Invalid UTF-8 becomes U+FFFD (lossy decoding per line). A line longer than `max_line` bytes is
/// cut into pieces of at most `max_line` bytes at a character boundary (when one is within the
/// last 3 bytes), so a multi-byte character is never split by the cap.
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    max_line: usize,
}

impl LineFramer {
    /// A framer with this line cap (at least 4 bytes, so a character always fits).
    pub fn new(max_line: usize) -> LineFramer {
        LineFramer {
            buf: Vec::new(),
            max_line: max_line.max(4),
        }
    }

    /// Bytes held for an unfinished line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes; calls `emit` with every line completed (or cut) by them.
    pub fn push(&mut self, mut bytes: &[u8], emit: &mut impl FnMut(String)) {
        while !bytes.is_empty() {
            let room = self.max_line - self.buf.len();
            let window = &bytes[..bytes.len().min(room)];
            match memchr::memchr(b'\n', window) {
                Some(i) => {
                    let (line, rest) = bytes.split_at(i + 1);
                    if self.buf.is_empty() {
                        emit(decode(line.to_vec()));
                    } else {
                        self.buf.extend_from_slice(line);
                        emit(decode(std::mem::take(&mut self.buf)));
                    }
                    bytes = rest;
                }
                None if bytes.len() < room => {
                    self.buf.extend_from_slice(bytes);
                    return;
                }
                None => {
                    // The line reaches the cap: emit a piece and keep the tail of a character.
                    self.buf.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                    let cut = char_cut(&self.buf);
                    let tail = self.buf.split_off(cut);
                    emit(decode(std::mem::replace(&mut self.buf, tail)));
                }
            }
        }
    }

    /// End of stream: the last line if it had no `\n`.
    pub fn finish(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            None
        } else {
            Some(decode(std::mem::take(&mut self.buf)))
        }
    }
}

/// Where to cut a full buffer: before a character that starts in the last 3 bytes and does not
/// end in the buffer, else at the end.
fn char_cut(buf: &[u8]) -> usize {
    let n = buf.len();
    for back in 1..=3.min(n) {
        let i = n - back;
        let b = buf[i];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: look further back for the lead
        }
        let width = match b {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if back < width && i > 0 { i } else { n };
    }
    n
}

fn decode(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut f = LineFramer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut |l| out.push(l));
        }
        out.extend(f.finish());
        out
    }

    #[test]
    fn lines_keep_their_newline_whatever_the_chunking() {
        let want = vec!["{\"a\":1}\n", "\n", "{\"b\":2}\n", "tail"];
        assert_eq!(frame(1024, &[b"{\"a\":1}\n\n{\"b\":2}\ntail"]), want);
        assert_eq!(
            frame(1024, &[b"{\"a\"", b":1}", b"\n", b"\n{\"b\":2}\nta", b"il"]),
            want
        );
        assert_eq!(frame(1024, &[]), Vec::<String>::new());
    }

    #[test]
    fn a_character_split_across_chunks_survives() {
        let euro = "€".as_bytes();
        let out = frame(1024, &[b"a", &euro[..1], &euro[1..2], &euro[2..], b"\n"]);
        assert_eq!(out, vec!["a€\n"]);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(frame(1024, &[b"a\xffb\n"]), vec!["a\u{FFFD}b\n"]);
    }

    #[test]
    fn long_lines_are_cut_at_character_boundaries() {
        assert_eq!(frame(4, &[b"abcdefghij\n"]), vec!["abcd", "efgh", "ij\n"]);
        // 5-byte cap, "a€€": a(1) + €(3) = 4, the next € does not fit.
        let out = frame(5, &["a€€\n".as_bytes()]);
        assert_eq!(out, vec!["a€", "€\n"]);
        for max in 4..12 {
            let s = "x€y😀z€€😀\n".repeat(3);
            let out = frame(max, &[s.as_bytes()]);
            assert_eq!(out.concat(), s, "max {max}");
            assert!(out.iter().all(|l| l.len() <= max), "max {max}: {out:?}");
        }
    }
}
