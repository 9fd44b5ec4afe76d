//! One WebSocket text frame, shared by every recipient and the replay log.

use std::fmt;

use bytes::Bytes;

/// A text frame as it arrived: cloning is a reference-count increment, so one frame sent to
/// many peers and kept in the log is stored once.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Frame(Bytes);

impl Frame {
    /// Copies `text` into a new frame.
    pub fn new(text: &str) -> Frame {
        Frame(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// A frame of a static string (no copy).
    pub const fn from_static(text: &'static str) -> Frame {
        Frame(Bytes::from_static(text.as_bytes()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only built from `str`/`String`, so always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The bytes, for adapters that write them (valid UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The shared buffer, for adapters whose socket type takes `Bytes` (valid UTF-8).
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Frame {
    fn from(s: String) -> Frame {
        Frame(Bytes::from(s))
    }
}

impl From<&str> for Frame {
    fn from(s: &str) -> Frame {
        Frame::new(s)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
