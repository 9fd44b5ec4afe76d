//! [`JsError`]: everything an evaluation can fail with, with the wording jsrun uses.

/// One frame of a JS stack trace, parsed from the engine's `stack` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Function name, when the frame has one.
    pub function_name: Option<String>,
    /// Script or module name (`<eval>` for eval).
    pub file_name: String,
    /// 1-based line.
    pub line_number: u32,
    /// 1-based column.
    pub column_number: u32,
}

/// A JS exception's details, so hosts can rebuild a typed error.
#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    /// `error.name`, or `None` when a non-Error value was thrown.
    pub name: Option<String>,
    /// `error.message`, or `Uncaught <value>` for a non-Error value.
    pub message: String,
    /// `name: message` followed by the engine's stack lines.
    pub stack: Option<String>,
    /// The parsed stack.
    pub frames: Vec<Frame>,
}

impl Exception {
    /// `Name: message` (or `Error: message` for a thrown non-Error value), as jsrun prints it.
    pub fn summary(&self) -> String {
        format!(
            "{}: {}",
            self.name.as_deref().unwrap_or("Error"),
            self.message
        )
    }
}

/// Why an evaluation failed; the `Display` text is what the Python layer shows after its
/// `Evaluation failed: ` prefix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JsError {
    /// JS threw.
    #[error("{}", .0.summary())]
    Exception(Exception),
    /// Code ran past its time limit (or a module/function promise stayed pending); the runtime
    /// stays usable.
    #[error("{what} timed out after {ms}ms")]
    Timeout {
        /// What timed out: "Sync evaluation", "Async evaluation", "Module evaluation", …
        what: &'static str,
        /// The limit.
        ms: u64,
    },
    /// A promise was still pending at the deadline; the runtime stays usable.
    #[error("Evaluation timed out after {ms}ms (promise still pending)")]
    PendingTimeout {
        /// The limit.
        ms: u64,
    },
    /// The runtime was terminated (by `terminate()` or by hitting the heap limit); it is closed.
    #[error("{0}")]
    Terminated(String),
    /// The runtime is closed.
    #[error("Runtime has been closed")]
    Closed,
    /// A value could not be converted (circular, too deep, too large, symbol, …).
    #[error("{0}")]
    Conversion(String),
    /// A module could not be resolved, loaded or compiled.
    #[error("{0}")]
    Module(String),
    /// Anything else (bad arguments, engine errors).
    #[error("{0}")]
    Other(String),
}

impl JsError {
    /// Whether the runtime is gone after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, JsError::Terminated(_) | JsError::Closed)
    }
}

/// Parses QuickJS stack lines (`    at f (file:1:2)` or `    at file:1:2`) into frames.
pub fn parse_frames(stack: &str) -> Vec<Frame> {
    stack
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("at ")?;
            let (func, loc) = match rest.rfind(" (") {
                Some(i) if rest.ends_with(')') => (Some(&rest[..i]), &rest[i + 2..rest.len() - 1]),
                _ => (None, rest),
            };
            let mut parts = loc.rsplitn(3, ':');
            let col = parts.next()?.parse().ok()?;
            let line_no = parts.next()?.parse().ok()?;
            let file = parts.next()?.to_string();
            let function_name = func.filter(|f| *f != "<eval>" && *f != "<anonymous>");
            Some(Frame {
                function_name: function_name.map(str::to_string),
                file_name: file,
                line_number: line_no,
                column_number: col,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quickjs_frames() {
        let f = parse_frames("    at causeError (<eval>:1:34)\n    at <eval> (<eval>:2:1)\n");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].function_name.as_deref(), Some("causeError"));
        assert_eq!((f[0].line_number, f[0].column_number), (1, 34));
        assert_eq!(f[1].function_name, None);
        assert_eq!(f[1].file_name, "<eval>");
    }
}
