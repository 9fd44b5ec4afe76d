//! Typed synced values: a Rust value (`Serialize + DeserializeOwned`) bound to one key of a
//! [`Session`]. Mutations bump a revision, so a sync of an unchanged value costs one integer
//! compare; a changed value is serialized straight against the baseline (no intermediate JSON
//! tree: [`Session::sync_serialize_if_changed`]). Client `_SET`/`_PATCH`es are
//! deserialized back into the value; if that fails the client gets an error toast and a patch
//! that restores the server's state, and the value is unchanged. Still no I/O and no async.
//!
//! Non-finite floats: serde_json turns `f64::NAN` and the infinities into `null` (what the
//! browser's `JSON.stringify` does too), so the wire never carries invalid JSON. Other
//! serialization errors (e.g. a map with non-string keys) become [`SyncError::Snapshot`] plus an
//! error toast, never a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::codec::ToastKind;
use crate::session::{AppEvent, Session, SyncError, SyncOptions};

/// A typed value mirrored to the client under one key.
#[derive(Clone, Debug)]
pub struct Synced<T> {
    key: String,
    value: T,
    revision: u64,
}

impl<T: Serialize + DeserializeOwned> Synced<T> {
    /// Registers `value` under `key` (serialized once for the initial snapshot).
    pub fn register(
        session: &mut Session,
        key: impl Into<String>,
        value: T,
        options: SyncOptions,
    ) -> Result<Self, SyncError> {
        let key = key.into();
        let json = match serde_json::to_value(&value) {
            Ok(json) => json,
            Err(e) => return Err(session.snapshot_error(&key, e.to_string())),
        };
        session.register(key.clone(), json, options)?;
        Ok(Self {
            key,
            value,
            revision: 1,
        })
    }

    /// The key this value is synced under.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value, read-only (does not mark it changed).
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The value for mutation; marks it changed so the next [`Synced::sync`] compares.
    pub fn get_mut(&mut self) -> &mut T {
        self.revision += 1;
        &mut self.value
    }

    /// Replaces the value and returns the old one.
    pub fn replace(&mut self, value: T) -> T {
        self.revision += 1;
        std::mem::replace(&mut self.value, value)
    }

    /// Bumped on every mutable access; what [`Session::sync_if_changed`] compares.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Sends a `_PATCH` if the value changed since the last sync; unchanged costs no serialization,
    /// changed costs one walk that allocates only the changed parts.
    pub fn sync(&mut self, session: &mut Session) -> Result<bool, SyncError> {
        session.sync_serialize_if_changed(&self.key, self.revision, &self.value)
    }

    /// Takes a client `_SET`/`_PATCH` of this key into the value; returns whether the event was
    /// for this key. Invalid client state → error toast + a correcting patch, value unchanged.
    pub fn handle_event(
        &mut self,
        session: &mut Session,
        event: &AppEvent,
    ) -> Result<bool, SyncError> {
        let (AppEvent::Set { key, value } | AppEvent::Patched { key, value, .. }) = event else {
            return Ok(false);
        };
        if *key != self.key {
            return Ok(false);
        }
        // Either way the engine's baseline is now the client's JSON: compare at the next sync
        // (this also sends back any coercion the deserializer made).
        self.revision += 1;
        match T::deserialize(value) {
            Ok(v) => self.value = v,
            Err(e) => {
                session.reject_client_state(&self.key, &e.to_string());
                self.sync(session)?;
            }
        }
        Ok(true)
    }
}

/// Deserializes an action's or task's arguments into a typed struct (extra fields are ignored
/// unless the struct denies them); on error report `action_failed`/`task_failed` with it.
pub fn parse_args<A: DeserializeOwned>(args: Map<String, Value>) -> Result<A, serde_json::Error> {
    serde_json::from_value(Value::Object(args))
}

impl Session {
    /// A client state for `key` did not validate: warning log and error toast.
    pub(crate) fn reject_client_state(&mut self, key: &str, error: &str) {
        let message = format!("invalid state for {key}: {error}");
        self.warn(message.clone());
        self.toast(ToastKind::Error, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnId, Output};
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Notes {
        notes: Vec<String>,
        title: String,
        total: u32,
        score: f64,
    }

    fn texts(s: &mut Session) -> (Vec<String>, Vec<AppEvent>) {
        let (mut t, mut e) = (Vec::new(), Vec::new());
        while let Some(out) = s.poll_output() {
            match out {
                Output::Text { text, .. } => t.push(text),
                Output::Event(ev) => e.push(ev),
                _ => {}
            }
        }
        (t, e)
    }

    fn setup() -> (Session, Synced<Notes>) {
        let mut s = Session::default();
        let notes = Notes {
            notes: vec![],
            title: "T".into(),
            total: 0,
            score: 0.5,
        };
        let synced =
            Synced::register(&mut s, "NOTES", notes, SyncOptions::default()).expect("register");
        s.handle_connect(ConnId(1));
        texts(&mut s);
        (s, synced)
    }

    #[test]
    fn mutate_then_sync_sends_one_patch_and_no_change_sends_nothing() {
        let (mut s, mut n) = setup();
        assert_eq!(n.sync(&mut s), Ok(false));
        n.get_mut().notes.push("a".into());
        n.get_mut().total = 1;
        assert_eq!(n.sync(&mut s), Ok(true));
        let (t, _) = texts(&mut s);
        assert_eq!(
            t,
            [
                r#"{"type":"_PATCH:NOTES","data":[{"op":"add","path":"/notes/0","value":"a"},{"op":"replace","path":"/total","value":1}]}"#
            ]
        );
        assert_eq!(n.sync(&mut s), Ok(false));
        let _ = n.get_mut(); // touched but equal: compared, nothing sent
        assert_eq!(n.sync(&mut s), Ok(false));
        assert!(!s.has_output());
    }

    #[test]
    fn client_patch_is_deserialized_into_the_value() {
        let (mut s, mut n) = setup();
        s.handle_text(
            ConnId(1),
            r#"{"type":"_PATCH:NOTES","data":[{"op":"replace","path":"/title","value":"new"}]}"#,
        );
        let (_, events) = texts(&mut s);
        assert_eq!(n.handle_event(&mut s, &events[0]), Ok(true));
        assert_eq!(n.get().title, "new");
        assert_eq!(
            n.sync(&mut s),
            Ok(false),
            "value already equals the client's"
        );
    }

    #[test]
    fn invalid_client_state_is_refused_and_corrected() {
        let (mut s, mut n) = setup();
        s.handle_text(
            ConnId(1),
            r#"{"type":"_PATCH:NOTES","data":[{"op":"replace","path":"/total","value":"many"}]}"#,
        );
        let (_, events) = texts(&mut s);
        assert_eq!(n.handle_event(&mut s, &events[0]), Ok(true));
        assert_eq!(n.get().total, 0);
        let (t, _) = texts(&mut s);
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(t[0].starts_with(
            r#"{"type":"_TOAST","data":{"type":"error","message":"invalid state for NOTES: "#
        ));
        assert_eq!(
            t[1],
            r#"{"type":"_PATCH:NOTES","data":[{"op":"replace","path":"/total","value":0}]}"#
        );
        assert_eq!(
            s.state("NOTES"),
            Some(&serde_json::to_value(n.get()).unwrap())
        );
    }

    #[test]
    fn non_finite_floats_become_null_not_invalid_json() {
        let (mut s, mut n) = setup();
        n.get_mut().score = f64::NAN;
        assert_eq!(n.sync(&mut s), Ok(true));
        let (t, _) = texts(&mut s);
        assert_eq!(
            t,
            [r#"{"type":"_PATCH:NOTES","data":[{"op":"replace","path":"/score","value":null}]}"#]
        );
        n.get_mut().score = f64::INFINITY;
        assert_eq!(n.sync(&mut s), Ok(false), "still null");
    }

    #[test]
    fn serialization_errors_are_toasts_not_panics() {
        use std::collections::HashMap;
        let mut s = Session::default();
        s.handle_connect(ConnId(1));
        texts(&mut s);
        let mut ok: HashMap<String, u8> = HashMap::new();
        ok.insert("a".into(), 1);
        let mut m = Synced::register(&mut s, "M", ok, SyncOptions::default()).expect("register");
        texts(&mut s);
        // A map with non-string keys cannot be JSON.
        let bad: Result<Synced<HashMap<Vec<u8>, u8>>, _> = Synced::register(
            &mut s,
            "BAD",
            HashMap::from([(vec![1], 1)]),
            SyncOptions::default(),
        );
        assert!(matches!(bad, Err(SyncError::Snapshot { .. })));
        let (t, _) = texts(&mut s);
        assert!(t[0].contains("server error"), "{t:?}");
        m.get_mut().insert("b".into(), 2);
        assert_eq!(m.sync(&mut s), Ok(true));
    }

    #[test]
    fn args_parse_into_structs() {
        #[derive(Deserialize)]
        struct Add {
            note: String,
        }
        let args = json!({"note": "x", "extra": 1})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            parse_args::<Add>(args).map(|a| a.note).ok().as_deref(),
            Some("x")
        );
        assert!(parse_args::<Add>(Map::new()).is_err());
    }
}
