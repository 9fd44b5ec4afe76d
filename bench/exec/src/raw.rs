//! A minimal blocking WebSocket client for the bench: the upgrade written and checked by hand,
//! masked client text frames, and server frames parsed in place from one large read buffer, so
//! that the client spends a few nanoseconds per frame and is never what a run measures
//! (tokio-tungstenite, which this replaced, used 92 % of its core at 7.6 M frames/s).
//!
//! It speaks only what the bench needs: `ws://` URLs, unmasked server frames (RFC 6455 forbids
//! masked ones: refused), text, continuation, close, ping and pong (pings are not answered: a run
//! lasts seconds), no extensions.

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{Context, bail};

/// Bytes read from the socket at once.
const READ_BUF: usize = 256 * 1024;
/// Longest wait for the server's next bytes.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// Largest server frame accepted (tether's line cap is 1 MiB by default).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// An open WebSocket: the stream and the bytes read but not parsed yet.
pub struct Ws {
    sock: TcpStream,
    buf: Vec<u8>,
    /// Parsed up to here.
    start: usize,
    /// Filled up to here.
    end: usize,
}

/// One server frame, borrowed from the read buffer.
pub enum Frame<'a> {
    /// A text or continuation frame's payload; `first` for the frame that starts a message,
    /// `fin` for the one that ends it.
    Text {
        payload: &'a [u8],
        first: bool,
        fin: bool,
    },
    /// The close frame's code (1005 without one).
    Close(u16),
    /// Anything else (binary, ping, pong).
    Other,
    /// The connection ended without a close frame.
    Eof,
}

/// `ws://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("ws://")
        .with_context(|| format!("{url}: only ws:// URLs"))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

impl Ws {
    /// Connects and upgrades; frames the server sent right behind its 101 stay buffered.
    pub fn connect(url: &str) -> anyhow::Result<Ws> {
        let (host, path) = split_url(url)?;
        let mut sock = TcpStream::connect(host).with_context(|| format!("connect {host}"))?;
        sock.set_nodelay(true)?;
        // A server that stops answering fails the run instead of hanging it.
        sock.set_read_timeout(Some(READ_TIMEOUT))?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        sock.write_all(req.as_bytes()).context("send the upgrade")?;
        let mut ws = Ws {
            sock,
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
        };
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&ws.buf[..ws.end], b"\r\n\r\n") {
                break i + 4;
            }
            if ws.end == ws.buf.len() {
                bail!("{url}: upgrade response too long");
            }
            let n = ws.sock.read(&mut ws.buf[ws.end..])?;
            if n == 0 {
                bail!("{url}: connection closed during the upgrade");
            }
            ws.end += n;
        };
        let head = &ws.buf[..head_end];
        if !head.starts_with(b"HTTP/1.1 101") {
            let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
            bail!("{url}: upgrade refused: {}", String::from_utf8_lossy(line));
        }
        // The accept key of the fixed client key (RFC 6455 §1.3's example).
        if memchr::memmem::find(head, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=").is_none() {
            bail!("{url}: wrong Sec-WebSocket-Accept");
        }
        ws.start = head_end;
        Ok(ws)
    }

    /// Sends one text frame (masked, as a client must).
    pub fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        let p = text.as_bytes();
        let mask = [0x5a, 0x1c, 0xe3, 0x07];
        let mut f = Vec::with_capacity(p.len() + 14);
        f.push(0x81);
        match p.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(p.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.sock.write_all(&f).context("send a frame")
    }

    /// Reads until a whole frame is buffered (moving a partial one to the front first).
    fn fill(&mut self, need: usize) -> anyhow::Result<bool> {
        if need > self.buf.len() {
            self.buf.resize(need, 0);
        }
        if self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < need {
            let n = self.sock.read(&mut self.buf[self.end..])?;
            if n == 0 {
                return Ok(false);
            }
            self.end += n;
        }
        Ok(true)
    }

    /// The next frame from the server.
    pub fn next(&mut self) -> anyhow::Result<Frame<'_>> {
        if !self.fill(2)? {
            return Ok(Frame::Eof);
        }
        let b = &self.buf[self.start..self.end];
        let (fin, opcode) = (b[0] & 0x80 != 0, b[0] & 0x0f);
        if b[1] & 0x80 != 0 {
            bail!("a masked server frame");
        }
        let (hdr, len) = match b[1] & 0x7f {
            126 => {
                if !self.fill(4)? {
                    return Ok(Frame::Eof);
                }
                let b = &self.buf[self.start..];
                (4, u16::from_be_bytes([b[2], b[3]]) as usize)
            }
            127 => {
                if !self.fill(10)? {
                    return Ok(Frame::Eof);
                }
                let b = &self.buf[self.start..];
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (
                    10,
                    usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX),
                )
            }
            n => (2, n as usize),
        };
        if len > MAX_FRAME {
            bail!("a server frame of {len} bytes");
        }
        if !self.fill(hdr + len)? {
            return Ok(Frame::Eof);
        }
        let at = self.start + hdr;
        self.start = at + len;
        let payload = &self.buf[at..at + len];
        Ok(match opcode {
            0x1 | 0x0 => Frame::Text {
                payload,
                first: opcode == 0x1,
                fin,
            },
            0x8 => Frame::Close(if len >= 2 {
                u16::from_be_bytes([payload[0], payload[1]])
            } else {
                1005
            }),
            _ => Frame::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_path() {
        assert_eq!(
            split_url("ws://127.0.0.1:9/ws/exec/one").unwrap(),
            ("127.0.0.1:9", "/ws/exec/one")
        );
        assert_eq!(split_url("ws://h:1").unwrap(), ("h:1", "/"));
        assert!(split_url("wss://h:1/").is_err());
    }
}
