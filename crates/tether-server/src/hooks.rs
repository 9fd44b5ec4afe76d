//! Room hooks: a JS module per room whose `onMessage(msg)` filters or rewrites each SEND and TO
//! before the hub sees it, run in a sandboxed QuickJS runtime per room (`tether-js`) with a time
//! and a memory limit. A failing, slow or refusing hook costs the sender that one message, never
//! the room or the server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tether_js::{HostValue, JsError, Runtime};
use tether_rooms::{Command, ErrorCode, HubError, Name};
use tokio::sync::oneshot;

/// The module name the hook source is registered under inside its runtime.
const MODULE: &str = "hook";
/// The export every hook must have.
const EXPORT: &str = "onMessage";
/// Messages one room's hook may have queued or running; more are refused at once.
pub const MAX_IN_FLIGHT: usize = 64;
/// Room name that stands for every room without a hook of its own.
pub const ANY_ROOM: &str = "*";

/// One configured hook: which room, and the module source read from `path`.
#[derive(Debug, Clone)]
pub struct HookSource {
    /// The room name, or `*` for every room without its own hook.
    pub room: String,
    /// Where the source came from (for messages).
    pub path: PathBuf,
    /// The ES module source.
    pub source: Arc<str>,
}

/// The limits every hook runtime gets.
#[derive(Debug, Clone, Copy)]
pub struct HookLimits {
    /// Time one `onMessage` call may take, promises included.
    pub timeout: Duration,
    /// Heap limit of one room's runtime.
    pub memory: usize,
    /// Rooms whose runtime is kept at once (the hub's room limit).
    pub max_runtimes: usize,
}

/// A room's live runtime and its `onMessage` handle.
struct RoomHook {
    rt: Runtime,
    func: u64,
    in_flight: AtomicUsize,
}

impl Drop for RoomHook {
    fn drop(&mut self) {
        self.rt.close();
    }
}

/// The configured hooks and the runtimes started for rooms so far.
pub struct Hooks {
    sources: HashMap<String, HookSource>,
    limits: HookLimits,
    live: Mutex<HashMap<Name, Arc<RoomHook>>>,
}

/// Decrements a room hook's in-flight count however the call ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hooks {
    /// Hooks for these sources; nothing runs until [`Hooks::check`] or the first message.
    pub fn new(sources: Vec<HookSource>, limits: HookLimits) -> Hooks {
        Hooks {
            sources: sources.into_iter().map(|s| (s.room.clone(), s)).collect(),
            limits,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any hook is configured (so doors can skip the step entirely).
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Loads every hook once so that a syntax error or a missing `onMessage` stops the server
    /// at start, with the file named, instead of failing every message later.
    pub fn check(&self) -> Result<(), String> {
        for src in self.sources.values() {
            start(src, self.limits).map_err(|e| {
                format!(
                    "room hook {} for room {:?}: {e}",
                    src.path.display(),
                    src.room
                )
            })?;
        }
        Ok(())
    }

    /// Runs the room's hook on a SEND or TO and returns the command to execute (its text
    /// rewritten), or the error the sender gets instead. Other commands pass untouched.
    pub async fn apply(&self, sender: Option<Name>, cmd: Command) -> Result<Command, HubError> {
        let (room, client, target, text) = match &cmd {
            Command::Send { room, client, text } => (room, client, None, text),
            Command::To {
                room,
                client,
                target,
                text,
            } => (room, client, Some(target), text),
            _ => return Ok(cmd),
        };
        let Some(src) = self
            .sources
            .get(room.as_str())
            .or_else(|| self.sources.get(ANY_ROOM))
        else {
            return Ok(cmd);
        };
        let from = client.clone().or(sender);
        let mut msg = json!({ "room": room.as_str(), "text": text });
        if let Some(from) = &from {
            msg["from"] = json!(from.as_str());
        }
        if let Some(to) = target {
            msg["to"] = json!(to.as_str());
        }
        let hook = self.runtime(room, src).await?;
        if hook.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            hook.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(failed(format!(
                "the room's hook is busy ({MAX_IN_FLIGHT} messages waiting); try again"
            )));
        }
        let _guard = InFlight(&hook.in_flight);
        let out = match self.call(&hook, msg).await {
            Ok(v) => v,
            Err(e) => {
                if e.as_ref().is_none_or(JsError::is_fatal) {
                    // Heap limit or a dead thread: the next message gets a fresh runtime.
                    self.forget(room, &hook);
                }
                return Err(failed(e.map_or_else(
                    || "the room's hook stopped".to_owned(),
                    |e| describe(&e),
                )));
            }
        };
        let text = verdict(out)?;
        Ok(match cmd {
            Command::Send { room, client, .. } => Command::Send { room, client, text },
            Command::To {
                room,
                client,
                target,
                ..
            } => Command::To {
                room,
                client,
                target,
                text,
            },
            other => other,
        })
    }

    /// Calls `onMessage(msg)` without blocking the caller's thread (under the runtime's own
    /// time limit, the hook timeout); `Err(None)` when the runtime's thread is gone.
    async fn call(&self, hook: &RoomHook, msg: Value) -> Result<HostValue, Option<JsError>> {
        let (tx, rx) = oneshot::channel();
        hook.rt
            .call_with(hook.func, vec![HostValue::from_json(&msg)], move |r| {
                let _ = tx.send(r);
            });
        match rx.await {
            Ok(r) => r.map_err(Some),
            Err(_) => Err(None),
        }
    }

    /// The room's runtime, started on first use (off the async threads: loading runs JS).
    async fn runtime(&self, room: &Name, src: &HookSource) -> Result<Arc<RoomHook>, HubError> {
        if let Some(h) = self.lock().get(room) {
            return Ok(h.clone());
        }
        let (src, limits) = (src.clone(), self.limits);
        let hook = tokio::task::spawn_blocking(move || start(&src, limits))
            .await
            .map_err(|e| failed(format!("the room's hook could not start: {e}")))?
            .map_err(|e| failed(format!("the room's hook could not start: {e}")))?;
        let hook = Arc::new(hook);
        let mut live = self.lock();
        if let Some(h) = live.get(room) {
            // Another message started one meanwhile: use that one so the room has one state.
            return Ok(h.clone());
        }
        if live.len() >= self.limits.max_runtimes {
            // Bounded: drop an idle runtime; its room starts afresh on its next message.
            let idle = live
                .iter()
                .find(|(_, h)| h.in_flight.load(Ordering::SeqCst) == 0)
                .map(|(k, _)| k.clone());
            match idle {
                Some(k) => {
                    live.remove(&k);
                }
                None => return Err(failed("too many rooms with busy hooks; try again".into())),
            }
        }
        live.insert(room.clone(), hook.clone());
        Ok(hook)
    }

    /// Drops a room's runtime that terminated (heap limit), so the next message starts a new one.
    fn forget(&self, room: &Name, hook: &Arc<RoomHook>) {
        let mut live = self.lock();
        if live.get(room).is_some_and(|h| Arc::ptr_eq(h, hook)) {
            live.remove(room);
        }
    }

    /// Rooms with a running hook runtime (for status and tests).
    pub fn live_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Name, Arc<RoomHook>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts a runtime with the hook loaded and its `onMessage` found.
fn start(src: &HookSource, limits: HookLimits) -> Result<RoomHook, String> {
    let rt = Runtime::new(tether_js::Config {
        memory_limit: Some(limits.memory),
        timeout: Some(limits.timeout),
        ..tether_js::Config::default()
    })
    .map_err(|e| describe(&e))?;
    let loaded = rt
        .add_static_module(MODULE, &src.source)
        .and_then(|()| rt.module_export(MODULE, EXPORT));
    match loaded {
        Ok(func) => Ok(RoomHook {
            rt,
            func,
            in_flight: AtomicUsize::new(0),
        }),
        Err(e) => {
            rt.close();
            Err(describe(&e))
        }
    }
}

/// What the hook's answer means: a string (or `{text}`) is the new text; `null`, `undefined` or
/// `false` drops the message.
fn verdict(v: HostValue) -> Result<String, HubError> {
    match v {
        HostValue::String(s) => Ok(s),
        HostValue::Object(props) => match props.into_iter().find(|(k, _)| k == "text") {
            Some((_, HostValue::String(s))) => Ok(s),
            _ => Err(failed(
                "the room's hook returned an object without a string 'text'".into(),
            )),
        },
        HostValue::Null | HostValue::Undefined | HostValue::Bool(false) => Err(HubError::new(
            ErrorCode::HookRejected,
            "the room's hook dropped this message",
        )),
        other => Err(failed(format!(
            "the room's hook returned {}; expected a string, {{text}}, or null to drop",
            kind(&other)
        ))),
    }
}

fn kind(v: &HostValue) -> &'static str {
    match v {
        HostValue::Bool(_) => "a boolean",
        HostValue::Number(_) | HostValue::BigInt(_) => "a number",
        HostValue::Array(_) | HostValue::Set(_) => "an array",
        HostValue::Function(_) | HostValue::HostFunction { .. } => "a function",
        _ => "an unsupported value",
    }
}

fn describe(e: &JsError) -> String {
    match e {
        JsError::Timeout { ms, .. } | JsError::PendingTimeout { ms } => {
            format!("the room's hook timed out after {ms}ms")
        }
        JsError::Terminated(why) => format!("the room's hook was stopped: {why}"),
        other => format!("the room's hook failed: {other}"),
    }
}

fn failed(message: String) -> HubError {
    HubError::new(ErrorCode::HookFailed, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(room: &str, source: &str, timeout_ms: u64) -> Hooks {
        Hooks::new(
            vec![HookSource {
                room: room.into(),
                path: "test.js".into(),
                source: source.into(),
            }],
            HookLimits {
                timeout: Duration::from_millis(timeout_ms),
                memory: 8 << 20,
                max_runtimes: 2,
            },
        )
    }

    fn send(room: &str, text: &str) -> Command {
        Command::Send {
            room: Name::parse(room).unwrap(),
            client: Some(Name::parse("alice").unwrap()),
            text: text.into(),
        }
    }

    fn text_of(cmd: Command) -> String {
        match cmd {
            Command::Send { text, .. } | Command::To { text, .. } => text,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn rewrites_filters_and_fails_per_message() {
        let h = hooks(
            "main",
            "export function onMessage(m) {\n\
               if (m.text === 'spam') return null;\n\
               if (m.text === 'boom') throw new TypeError('bad word');\n\
               if (m.text === 'spin') while (true) {}\n\
               return m.from + ': ' + m.text.toUpperCase();\n\
             }",
            100,
        );
        h.check().unwrap();
        let out = h.apply(None, send("main", "hi")).await.unwrap();
        assert_eq!(text_of(out), "alice: HI");
        let e = h.apply(None, send("main", "spam")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::HookRejected);
        let e = h.apply(None, send("main", "boom")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::HookFailed);
        assert!(e.message.contains("TypeError: bad word"), "{}", e.message);
        let e = h.apply(None, send("main", "spin")).await.unwrap_err();
        assert!(e.message.contains("timed out after 100ms"), "{}", e.message);
        // The runtime outlives the timeout; other rooms have no hook.
        assert_eq!(
            text_of(h.apply(None, send("main", "ok")).await.unwrap()),
            "alice: OK"
        );
        assert_eq!(
            text_of(h.apply(None, send("other", "x")).await.unwrap()),
            "x"
        );
    }

    #[tokio::test]
    async fn each_room_has_its_own_state_and_runtimes_are_bounded() {
        let h = hooks(
            ANY_ROOM,
            "let n = 0; export function onMessage(m) { n += 1; return `${m.room}#${n}`; }",
            100,
        );
        assert_eq!(text_of(h.apply(None, send("a", "x")).await.unwrap()), "a#1");
        assert_eq!(text_of(h.apply(None, send("a", "x")).await.unwrap()), "a#2");
        assert_eq!(text_of(h.apply(None, send("b", "x")).await.unwrap()), "b#1");
        assert_eq!(h.live_count(), 2);
        assert_eq!(text_of(h.apply(None, send("c", "x")).await.unwrap()), "c#1");
        assert_eq!(h.live_count(), 2);
    }

    #[tokio::test]
    async fn heap_exhaustion_drops_the_message_and_restarts_the_runtime() {
        let h = hooks(
            "main",
            "export function onMessage(m) {\n\
               if (m.text === 'hog') { const a = []; for (;;) a.push('x'.repeat(1024)); }\n\
               return m.text;\n\
             }",
            2000,
        );
        let e = h.apply(None, send("main", "hog")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::HookFailed, "{}", e.message);
        assert_eq!(
            text_of(h.apply(None, send("main", "after")).await.unwrap()),
            "after"
        );
    }

    #[test]
    fn a_hook_without_on_message_is_refused_at_start() {
        let h = hooks("main", "export const x = 1;", 100);
        let e = h.check().unwrap_err();
        assert!(e.contains("onMessage") && e.contains("test.js"), "{e}");
        let h = hooks("main", "export function onMessage( {", 100);
        assert!(h.check().unwrap_err().contains("SyntaxError"));
    }
}
