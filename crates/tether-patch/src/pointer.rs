//! RFC 6901 JSON Pointers: `""` is the whole document, `/a/0/b~1c` walks keys and indices, with
//! `~0` for `~` and `~1` for `/` inside a token.

use std::borrow::Cow;

use thiserror::Error;

/// Why a pointer string is not a valid RFC 6901 pointer.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PointerError {
    /// A non-empty pointer must start with `/`; anything else is ambiguous.
    #[error("a JSON pointer must be empty or start with '/'")]
    MissingSlash,
    /// `~` must be followed by `0` or `1`; other escapes are undefined by RFC 6901.
    #[error("invalid escape '~' at byte {offset} (only ~0 and ~1 are defined)")]
    BadEscape {
        /// Byte offset of the `~` in the whole pointer.
        offset: usize,
    },
}

/// Escapes one reference token (`~` → `~0`, `/` → `~1`) so it can be joined into a pointer.
pub fn escape(token: &str) -> Cow<'_, str> {
    if !token.contains(['~', '/']) {
        return Cow::Borrowed(token);
    }
    let mut out = String::with_capacity(token.len() + 2);
    push_escaped(&mut out, token);
    Cow::Owned(out)
}

/// Decodes one reference token (`~1` → `/`, `~0` → `~`); the reverse of [`escape`].
pub fn unescape(token: &str) -> Result<Cow<'_, str>, PointerError> {
    unescape_at(token, 0)
}

/// Splits a pointer into decoded reference tokens; `""` gives no tokens (the whole document).
pub fn parse(pointer: &str) -> Result<Vec<String>, PointerError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(PointerError::MissingSlash);
    };
    let mut offset = 1;
    let mut tokens = Vec::new();
    for raw in rest.split('/') {
        tokens.push(unescape_at(raw, offset)?.into_owned());
        offset += raw.len() + 1;
    }
    Ok(tokens)
}

/// Joins reference tokens into an escaped pointer; the reverse of [`parse`].
pub fn format<I, S>(tokens: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for token in tokens {
        push_token(&mut out, token.as_ref());
    }
    out
}

/// Appends `/` and the escaped token to a pointer being built, without a temporary string.
pub fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    push_escaped(pointer, token);
}

/// Reads an array index token the RFC 6901 way: digits only, no sign, no leading zero.
pub fn parse_index(token: &str) -> Option<usize> {
    let bytes = token.as_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return None;
    }
    token.parse().ok()
}

fn push_escaped(out: &mut String, token: &str) {
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

fn unescape_at(token: &str, base: usize) -> Result<Cow<'_, str>, PointerError> {
    let Some(first) = token.find('~') else {
        return Ok(Cow::Borrowed(token));
    };
    let mut out = String::with_capacity(token.len());
    out.push_str(&token[..first]);
    let mut chars = token[first..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, '0')) => out.push('~'),
            Some((_, '1')) => out.push('/'),
            _ => {
                return Err(PointerError::BadEscape {
                    offset: base + first + i,
                });
            }
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_and_unescape_round_trip() {
        for (raw, escaped) in [
            ("plain", "plain"),
            ("a/b", "a~1b"),
            ("m~n", "m~0n"),
            ("~1", "~01"),
            ("/~", "~1~0"),
            ("", ""),
            ("é/ü", "é~1ü"),
        ] {
            assert_eq!(escape(raw), escaped);
            assert_eq!(unescape(escaped).unwrap(), raw);
        }
    }

    #[test]
    fn unescape_is_not_repeated() {
        // `~01` is `~` followed by `1`, never `/`.
        assert_eq!(unescape("~01").unwrap(), "~1");
    }

    #[test]
    fn bad_escapes_are_errors_with_offsets() {
        assert_eq!(unescape("a~"), Err(PointerError::BadEscape { offset: 1 }));
        assert_eq!(unescape("a~2"), Err(PointerError::BadEscape { offset: 1 }));
        assert_eq!(parse("/ok/x~y"), Err(PointerError::BadEscape { offset: 5 }));
    }

    #[test]
    fn parse_rfc6901_examples() {
        assert_eq!(parse("").unwrap(), Vec::<String>::new());
        assert_eq!(parse("/").unwrap(), vec![""]);
        assert_eq!(parse("/foo/0").unwrap(), vec!["foo", "0"]);
        assert_eq!(parse("/a~1b").unwrap(), vec!["a/b"]);
        assert_eq!(parse("/m~0n").unwrap(), vec!["m~n"]);
        assert_eq!(parse("/ ").unwrap(), vec![" "]);
        assert_eq!(parse("//x").unwrap(), vec!["", "x"]);
        assert_eq!(parse("foo"), Err(PointerError::MissingSlash));
    }

    #[test]
    fn format_escapes_each_token() {
        assert_eq!(format(["a/b", "m~n", "0"]), "/a~1b/m~0n/0");
        assert_eq!(format(Vec::<String>::new()), "");
        assert_eq!(parse(&format(["x/y~z", ""])).unwrap(), vec!["x/y~z", ""]);
    }

    #[test]
    fn indices_are_canonical_decimals() {
        assert_eq!(parse_index("0"), Some(0));
        assert_eq!(parse_index("42"), Some(42));
        for bad in ["", "-", "01", "+1", "-1", "1.0", " 1", "1e3", "٣"] {
            assert_eq!(parse_index(bad), None, "{bad:?}");
        }
        assert_eq!(parse_index("99999999999999999999999"), None);
    }
}
