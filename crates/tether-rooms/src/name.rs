//! Validated room and client names.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use crate::error::{ErrorCode, HubError};

/// Longest accepted room or client name, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// A room or client name: 1–64 characters from `A–Z a–z 0–9 _ - .`, cheap to clone into pushes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    /// Checks the charset and length so that names can be printed in line replies unquoted.
    pub fn parse(s: &str) -> Result<Name, HubError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_NAME_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Name(Arc::from(s)))
        } else {
            Err(HubError::new(
                ErrorCode::BadName,
                format!(
                    "invalid name '{}': use 1-{MAX_NAME_LEN} characters from A-Z a-z 0-9 _ - .",
                    truncate_for_message(s)
                ),
            ))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Shortens user input quoted back in an error so that replies stay small.
pub(crate) fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// The room that always exists.
pub fn main_room() -> Name {
    Name(Arc::from("main"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_charset() {
        for ok in ["main", "a", "Room_1", "x-y.z", &"n".repeat(64)] {
            assert!(Name::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in ["", "a b", "a:b", "é", "a\n", &"n".repeat(65), "a/b"] {
            let err = Name::parse(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadName, "{bad:?}");
        }
    }
}
