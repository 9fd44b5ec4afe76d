//! A model of the sidekick UI (what sidekick-py 0.0.7's stock page does with each message) and
//! helpers to drive a relay with a hero, a live UI and a late UI.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use tether_relay::{ConnId, Output, Relay};

/// What one component shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Comp {
    pub ctype: String,
    pub parent: String,
    /// Label/markdown/button/textbox properties and unknown actions.
    pub props: BTreeMap<String, String>,
    pub console: Vec<String>,
    /// Grid cells by "x,y" (JavaScript number formatting): (colour, text).
    pub cells: BTreeMap<String, (Option<String>, Option<String>)>,
    /// Canvas buffers: the drawing operations each one shows.
    pub buffers: BTreeMap<i64, Vec<String>>,
    /// Viz variables: the root set and the changes applied since.
    pub vars: BTreeMap<String, Vec<String>>,
}

/// The page: components and the children lists in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ui {
    pub comps: BTreeMap<String, Comp>,
    pub children: HashMap<String, Vec<String>>,
}

fn is_container(t: &str) -> bool {
    t == "row" || t == "column"
}

fn js_number(v: &Value) -> Option<String> {
    let n = v.as_f64()?;
    Some(if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    })
}

fn index(v: Option<&Value>) -> Option<i64> {
    let n = v?.as_f64()?;
    (n.fract() == 0.0 && n.abs() < 1e15).then_some(n as i64)
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

impl Ui {
    pub fn new() -> Ui {
        let mut ui = Ui::default();
        ui.children.insert("root".into(), Vec::new());
        ui
    }

    /// Applies one frame as the page would (frames that are not strict JSON are skipped).
    pub fn apply(&mut self, frame: &str) {
        let Ok(m) = serde_json::from_str::<Value>(frame) else {
            return;
        };
        let kind = m["type"].as_str().unwrap_or("");
        let target = m["target"].as_str().unwrap_or("").to_owned();
        let payload = &m["payload"];
        match (m["component"].as_str().unwrap_or(""), kind) {
            ("global", "clearAll") => *self = Ui::new(),
            (_, "announce") => {}
            (c, "spawn") => self.spawn(c, &target, payload),
            (_, "update") => self.update(&target, payload),
            (_, "remove") => self.remove(&target),
            _ => {}
        }
    }

    fn spawn(&mut self, ctype: &str, id: &str, payload: &Value) {
        if id.is_empty() || self.comps.contains_key(id) {
            return;
        }
        let parent = payload["parent"].as_str().unwrap_or("root").to_owned();
        let mut c = Comp {
            ctype: ctype.to_owned(),
            parent: parent.clone(),
            ..Comp::default()
        };
        if ctype == "canvas" {
            c.buffers.insert(0, Vec::new());
        }
        if let Some(t) = payload["text"].as_str() {
            c.props.insert("text".into(), t.to_owned());
            if ctype == "console" {
                c.console.push(t.to_owned());
            }
        }
        self.comps.insert(id.to_owned(), c);
        self.children.entry(parent).or_default().push(id.to_owned());
    }

    fn update(&mut self, id: &str, payload: &Value) {
        let Some(ctype) = self.comps.get(id).map(|c| c.ctype.clone()) else {
            return;
        };
        let action = payload["action"].as_str().unwrap_or("");
        let o = &payload["options"];
        if action == "changeParent" {
            let Some(p) = o["parent"].as_str() else {
                return;
            };
            let valid = p == "root"
                || self.comps.get(p).is_some_and(|c| is_container(&c.ctype))
                || self.children.contains_key(p);
            let old = self
                .comps
                .get(id)
                .map(|c| c.parent.clone())
                .unwrap_or_default();
            if !valid || old == p {
                return;
            }
            if let Some(list) = self.children.get_mut(&old) {
                list.retain(|k| k != id);
            }
            self.children
                .entry(p.to_owned())
                .or_default()
                .push(id.to_owned());
            if let Some(c) = self.comps.get_mut(id) {
                c.parent = p.to_owned();
            }
            return;
        }
        let Some(c) = self.comps.get_mut(id) else {
            return;
        };
        match (ctype.as_str(), action) {
            ("label" | "markdown" | "button", "setText") => {
                c.props
                    .insert("text".into(), text(o.get("text")).unwrap_or_default());
            }
            ("textbox", "setValue" | "setPlaceholder") => {
                c.props.insert(
                    action.into(),
                    text(o.get(if action == "setValue" {
                        "value"
                    } else {
                        "placeholder"
                    }))
                    .unwrap_or_default(),
                );
            }
            ("console", "append") => c.console.push(text(o.get("text")).unwrap_or_default()),
            ("console", "clear") => c.console.clear(),
            ("grid", "setColor" | "setText" | "clearCell") => {
                let (Some(x), Some(y)) = (js_number(&o["x"]), js_number(&o["y"])) else {
                    return;
                };
                let key = format!("{x},{y}");
                if action == "clearCell" {
                    c.cells.remove(&key);
                    return;
                }
                let cell = c.cells.entry(key.clone()).or_default();
                if action == "setColor" {
                    cell.0 = text(o.get("color"));
                } else {
                    cell.1 = text(o.get("text")).filter(|t| !t.is_empty());
                }
                if cell.0.is_none() && cell.1.is_none() {
                    c.cells.remove(&key);
                }
            }
            ("grid", "clear") => c.cells.clear(),
            ("canvas", a) => {
                let b = if o.get("bufferId").is_none() {
                    Some(0)
                } else {
                    index(o.get("bufferId"))
                };
                match a {
                    "clear" => {
                        if let Some(buf) = b.and_then(|b| c.buffers.get_mut(&b)) {
                            buf.clear();
                        }
                    }
                    "createBuffer" => {
                        if let Some(b) = b {
                            c.buffers.insert(b, Vec::new());
                        }
                    }
                    "destroyBuffer" => {
                        if let Some(b) = b.filter(|b| *b != 0) {
                            c.buffers.remove(&b);
                        }
                    }
                    "drawBuffer" => {
                        let (s, t) = (
                            index(o.get("sourceBufferId")),
                            index(o.get("targetBufferId")),
                        );
                        if let (Some(s), Some(t)) = (s, t)
                            && let Some(src) = c.buffers.get(&s).cloned()
                            && let Some(dst) = c.buffers.get_mut(&t)
                        {
                            dst.extend(src);
                        }
                    }
                    _ if a.starts_with("draw") => {
                        if let Some(buf) = b.and_then(|b| c.buffers.get_mut(&b)) {
                            buf.push(payload.to_string());
                        }
                    }
                    _ => {
                        c.props.insert(format!("?{a}"), o.to_string());
                    }
                }
            }
            ("viz", a) => {
                let Some(v) = payload["variableName"].as_str() else {
                    return;
                };
                let root = o["path"].as_array().is_some_and(Vec::is_empty);
                match a {
                    "set" if root => {
                        c.vars.insert(v.to_owned(), vec![payload.to_string()]);
                    }
                    "removeVariable" => {
                        c.vars.remove(v);
                    }
                    _ => {
                        if let Some(list) = c.vars.get_mut(v) {
                            list.push(payload.to_string());
                        }
                    }
                }
            }
            (_, a) => {
                c.props.insert(format!("?{a}"), o.to_string());
            }
        }
    }

    fn remove(&mut self, id: &str) {
        let Some(c) = self.comps.remove(id) else {
            return;
        };
        if let Some(list) = self.children.get_mut(&c.parent) {
            list.retain(|k| k != id);
        }
        if is_container(&c.ctype) {
            let mut queue: Vec<String> = self.children.remove(id).unwrap_or_default();
            while let Some(k) = queue.pop() {
                if let Some(kc) = self.comps.remove(&k)
                    && is_container(&kc.ctype)
                {
                    queue.extend(self.children.remove(&k).unwrap_or_default());
                }
            }
        }
    }

    /// What the page shows: live components and, for root and each of them, the live children
    /// in order.
    pub fn view(&self) -> (BTreeMap<String, Comp>, BTreeMap<String, Vec<String>>) {
        let mut lists = BTreeMap::new();
        for id in std::iter::once("root").chain(self.comps.keys().map(String::as_str)) {
            let kids: Vec<String> = self
                .children
                .get(id)
                .map(|l| {
                    l.iter()
                        .filter(|k| self.comps.contains_key(*k))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            lists.insert(id.to_owned(), kids);
        }
        (self.comps.clone(), lists)
    }
}

pub const NOW: u64 = 1_795_321_174_173;

pub fn announce(peer: &str, role: &str, status: &str) -> String {
    format!(
        r#"{{"id": 0, "component": "system", "type": "announce", "payload": {{"peerId": "{peer}", "role": "{role}", "status": "{status}", "version": "0.0.7", "timestamp": 1795321171285}}}}"#
    )
}

/// The outputs since the last drain: frames sent to each connection, and closes.
#[derive(Debug, Default)]
pub struct Drained {
    pub sends: Vec<(ConnId, String)>,
    pub closes: Vec<(ConnId, u16, String)>,
}

impl Drained {
    pub fn to(&self, conn: u64) -> Vec<String> {
        self.sends
            .iter()
            .filter(|(c, _)| c.0 == conn)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

pub fn drain(r: &mut Relay) -> Drained {
    let mut d = Drained::default();
    while let Some(e) = r.poll_output() {
        match e {
            Output::Send { conn, frame } => d.sends.push((conn, frame.as_str().to_owned())),
            Output::Close { conn, code, reason } => d.closes.push((conn, code, reason)),
        }
    }
    d
}

/// Frames that are not announces.
pub fn content(frames: Vec<String>) -> Vec<String> {
    frames
        .into_iter()
        .filter(|f| !f.contains(r#""type": "announce""#) && !f.contains(r#""type":"announce""#))
        .collect()
}

/// Connects a UI on `conn` in session "" and returns the frames it is sent (announces removed).
pub fn late_ui(r: &mut Relay, conn: u64) -> Vec<String> {
    drain(r);
    r.handle_connect(ConnId(conn), "");
    r.handle_text(
        ConnId(conn),
        &announce(&format!("sidekick-{conn}"), "sidekick", "online"),
        NOW,
    );
    let d = drain(r);
    r.handle_sent(ConnId(conn), usize::MAX);
    content(d.to(conn))
}

/// The captured run of stock sidekick-py 0.0.7: the frames the hero sent, in order.
pub fn trace() -> Vec<String> {
    // Read when the test runs, not compiled in: cargo reuses a test binary built in another
    // checkout that shares the target dir, and that checkout may be gone.
    let path = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("../../tests/fixtures/ui/sidekick-trace-0.0.7.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(r#"{"_"#))
        .map(str::to_owned)
        .collect()
}
