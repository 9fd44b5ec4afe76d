//! The per-session replay log: the hero's `spawn`/`update`/`remove` frames since the last
//! `clearAll`, compacted so that replaying it into an empty UI gives the page the live UI shows.
//!
//! Compaction is exact (replaying the compacted log gives the same page as replaying every
//! frame), and conservative where exactness cannot be proven: an entry is only dropped when
//! the rules below show that no later entry depends on it. The rules, with their reasons, are
//! in `docs/protocol/ui.md` §6:
//!
//! - `clearAll` empties the log.
//! - An `update` or `remove` of a component that is not live is not logged (the UI ignores it).
//! - `remove` of a live component drops its history and that of its descendants, unless a
//!   surviving entry depends on them (a component moved out of the subtree, or a child whose
//!   attachment the UI may have refused); then the history is kept and the `remove` logged.
//! - Repeated property setters fold: `setText` (label, markdown, button), `setValue` and
//!   `setPlaceholder` (textbox), grid `setColor`/`setText` per cell; grid `clearCell` and
//!   `clear` drop what they clear; console `clear` drops earlier output.
//! - Canvas: `clear {bufferId: b}` drops the drawing into buffer `b` since the last operation
//!   that read `b` (`drawBuffer` from `b`, `createBuffer`/`destroyBuffer` of `b`).
//! - Viz: a root `set` of a variable drops that variable's earlier history; `removeVariable`
//!   drops it all.
//!
//! Over its byte bound the log drops its oldest canvas drawing operations, then its oldest
//! console output (both only lose pixels or scrollback); if the structure alone is still over
//! the bound the log is suspended until the next `clearAll`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::envelope::{Inbound, Update};
use crate::frame::Frame;
use crate::{Map, Set};

/// The instance of an entry whose target was not live when it was logged.
const NO_INSTANCE: u64 = u64::MAX;

/// Bytes an entry costs beyond its frame, for the bound (indexes, map node).
pub const ENTRY_OVERHEAD: usize = 64;

/// The frame a replay starts with: the UI drops what it showed before.
pub static CLEAR_ALL: Frame =
    Frame::from_static(r#"{"id":0,"component":"global","type":"clearAll"}"#);

/// Which entries the byte bound may drop, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// Structure and state: never dropped for space.
    Kept,
    /// Canvas drawing (`clear`, `draw*`, `drawBuffer`): dropped first.
    Canvas,
    /// Console `append`: dropped next.
    Console,
}

/// What an entry is to its component's indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// A spawn or an update that no rule folds.
    Plain,
    /// The latest value of a property setter (the action name).
    Replace(String),
    /// Console output or clear.
    ConsoleWrite,
    /// A grid cell setter; `attr` 0 is the colour, 1 the text.
    Cell { x: i64, y: i64, attr: usize },
    /// A grid cell entry with coordinates that are not integers.
    CellIrregular,
    /// Drawing into canvas buffer `b`.
    CanvasWrite(i64),
    /// A change of a viz variable.
    VizVar(String),
    /// A `remove` kept because surviving entries depend on the removed subtree.
    Pinned,
}

#[derive(Debug)]
struct Entry {
    frame: Frame,
    /// The [`Comp::instance`] it belongs to ([`NO_INSTANCE`] when its target was not live).
    instance: u64,
    /// Shared with the component's key ([`Comp::id`]): no allocation per entry.
    target: Arc<str>,
    role: Role,
    tier: Tier,
}

impl Entry {
    fn cost(&self) -> usize {
        self.frame.len() + self.target.len() + ENTRY_OVERHEAD
    }
}

/// A live component: its place in the tree and the entries that made its state.
#[derive(Debug, Default)]
struct Comp {
    /// The component's id, shared by its entries.
    id: Arc<str>,
    ctype: String,
    parent: String,
    /// False once the UI may have refused an attachment of this component (the parent was not
    /// a live row or column then) or kept a children entry for a parent that does not exist:
    /// removing it or an ancestor then keeps the history. Never becomes true again.
    parent_certain: bool,
    /// This instance of the id (a re-spawn after a remove is another): the sequence number its
    /// spawn entry got. Its entries carry it; an entry of another instance is not its own.
    instance: u64,
    replace: Map<String, u64>,
    console: BTreeSet<u64>,
    /// The latest colour and text entry of each cell (a grid `clear` drops them all).
    cells: Map<(i64, i64), [Option<u64>; 2]>,
    /// Cell entries with coordinates that are not integers, and the `clearCell`s kept after
    /// one (a grid `clear` drops them too). Kept apart from `cells` so that a setter costs no
    /// index besides its cell.
    irregular_seqs: BTreeSet<u64>,
    irregular: bool,
    /// Canvas writes per buffer since the last read of that buffer.
    buffers: Map<i64, BTreeSet<u64>>,
    vars: Map<String, BTreeSet<u64>>,
}

/// Component types whose updates a rule folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// label, markdown, button: `setText`.
    Text,
    Textbox,
    Console,
    Grid,
    Canvas,
    Viz,
    Other,
}

impl Kind {
    fn of(ctype: &str) -> Kind {
        match ctype {
            "label" | "markdown" | "button" => Kind::Text,
            "textbox" => Kind::Textbox,
            "console" => Kind::Console,
            "grid" => Kind::Grid,
            "canvas" => Kind::Canvas,
            "viz" => Kind::Viz,
            _ => Kind::Other,
        }
    }
}

fn is_container(ctype: &str) -> bool {
    matches!(ctype, "row" | "column")
}

/// Canvas actions that only draw into `bufferId`.
fn is_draw(action: &str) -> bool {
    matches!(
        action,
        "clear"
            | "drawLine"
            | "drawRect"
            | "drawCircle"
            | "drawPolyline"
            | "drawPolygon"
            | "drawEllipse"
            | "drawText"
    )
}

/// The replay log of one session.
#[derive(Debug, Default)]
pub struct Log {
    entries: BTreeMap<u64, Entry>,
    next_seq: u64,
    bytes: usize,
    /// A `clearAll` was seen: the log holds the whole state.
    known: bool,
    /// Over the bound with nothing left to drop: nothing is logged until `clearAll`.
    suspended: bool,
    comps: Map<Arc<str>, Comp>,
    /// Entries that attach a component to a parent: seq → (component, parent).
    parent_refs: BTreeMap<u64, (String, String)>,
    canvas_tier: BTreeSet<u64>,
    console_tier: BTreeSet<u64>,
}

/// What [`Log::record`] did, for counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Entries dropped by the byte bound.
    pub evicted: u64,
    /// The log was suspended by this frame.
    pub suspended: bool,
}

impl Log {
    /// Bytes the log holds (frames plus [`ENTRY_OVERHEAD`] each).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries in the log.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a replay restores the page: a `clearAll` was seen and the log is not suspended.
    pub fn is_known(&self) -> bool {
        self.known && !self.suspended
    }

    /// Whether the log went over its bound and waits for a `clearAll`.
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }

    /// The frames a UI that connects now is sent: `clearAll`, then the entries in order; nothing
    /// when the relay does not know the page (no `clearAll` seen, or suspended).
    pub fn replay(&self) -> impl Iterator<Item = &Frame> {
        let known = self.is_known();
        known.then_some(&CLEAR_ALL).into_iter().chain(
            self.entries
                .values()
                .filter(move |_| known)
                .map(|e| &e.frame),
        )
    }

    /// Drops everything and forgets the page (the session is evicted or suspended).
    pub fn reset(&mut self) {
        let next_seq = self.next_seq;
        *self = Log::default();
        self.next_seq = next_seq;
    }

    /// Drops everything and logs nothing until the next `clearAll` (the total bound is hit).
    pub(crate) fn suspend(&mut self) {
        self.reset();
        self.suspended = true;
    }

    /// Records a frame a hero sent, compacting as it goes and keeping under `max_bytes`.
    pub(crate) fn record(
        &mut self,
        inbound: &Inbound,
        frame: &Frame,
        max_bytes: usize,
    ) -> Recorded {
        match inbound {
            Inbound::ClearAll => {
                self.reset();
                self.known = true;
                return Recorded::default();
            }
            _ if self.suspended => return Recorded::default(),
            Inbound::Spawn {
                component,
                target,
                parent,
            } => self.spawn(frame, component, target, parent.as_deref()),
            Inbound::Update {
                component,
                target,
                update,
            } => self.update(frame, component, target, update),
            Inbound::Remove { target } => self.remove(frame, target),
            Inbound::Announce(_) | Inbound::Other | Inbound::Opaque => {
                return Recorded::default();
            }
        }
        self.enforce(max_bytes)
    }

    fn push(&mut self, frame: &Frame, target: &str, role: Role, tier: Tier) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (target, instance) = match self.comps.get(target) {
            Some(c) => (c.id.clone(), c.instance),
            None => (Arc::from(target), NO_INSTANCE),
        };
        let entry = Entry {
            frame: frame.clone(),
            instance,
            target,
            role,
            tier,
        };
        self.bytes += entry.cost();
        match tier {
            Tier::Kept => {}
            Tier::Canvas => {
                self.canvas_tier.insert(seq);
            }
            Tier::Console => {
                self.console_tier.insert(seq);
            }
        }
        self.entries.insert(seq, entry);
        seq
    }

    /// Removes an entry and every index pointing at it.
    fn drop_seq(&mut self, seq: u64) {
        let Some(e) = self.entries.remove(&seq) else {
            return;
        };
        self.bytes = self.bytes.saturating_sub(e.cost());
        self.parent_refs.remove(&seq);
        match e.tier {
            Tier::Kept => {}
            Tier::Canvas => {
                self.canvas_tier.remove(&seq);
            }
            Tier::Console => {
                self.console_tier.remove(&seq);
            }
        }
        let Some(c) = self.comps.get_mut(&*e.target) else {
            return;
        };
        if c.instance != e.instance {
            return; // an entry of an earlier instance with the same id
        }
        match e.role {
            Role::Plain | Role::Pinned => {}
            Role::Replace(action) => {
                if c.replace.get(&action) == Some(&seq) {
                    c.replace.remove(&action);
                }
            }
            Role::ConsoleWrite => {
                c.console.remove(&seq);
            }
            Role::Cell { x, y, attr } => {
                if let Some(cell) = c.cells.get_mut(&(x, y))
                    && cell[attr] == Some(seq)
                {
                    cell[attr] = None;
                }
            }
            Role::CellIrregular => {
                c.irregular_seqs.remove(&seq);
            }
            Role::CanvasWrite(b) => {
                if let Some(w) = c.buffers.get_mut(&b) {
                    w.remove(&seq);
                }
            }
            Role::VizVar(v) => {
                if let Some(w) = c.vars.get_mut(&v) {
                    w.remove(&seq);
                }
            }
        }
    }

    fn drop_all(&mut self, seqs: impl IntoIterator<Item = u64>) {
        for seq in seqs {
            self.drop_seq(seq);
        }
    }

    fn is_live_container(&self, id: &str) -> bool {
        self.comps.get(id).is_some_and(|c| is_container(&c.ctype))
    }

    fn spawn(&mut self, frame: &Frame, component: &str, target: &str, parent: Option<&str>) {
        if !self.comps.contains_key(target) {
            let certain = match parent {
                None | Some("root") => true,
                Some(p) => p != target && self.is_live_container(p),
            };
            let id: Arc<str> = Arc::from(target);
            self.comps.insert(
                id.clone(),
                Comp {
                    id,
                    // The spawn entry below takes this number.
                    instance: self.next_seq,
                    ctype: component.to_owned(),
                    parent: parent.unwrap_or("root").to_owned(),
                    parent_certain: certain,
                    ..Comp::default()
                },
            );
        }
        // A second spawn of a live id is ignored by the UI; it is kept (in order) all the same.
        let seq = self.push(frame, target, Role::Plain, Tier::Kept);
        if let Some(p) = parent {
            self.parent_refs
                .insert(seq, (target.to_owned(), p.to_owned()));
        }
    }

    fn update(&mut self, frame: &Frame, component: &str, target: &str, u: &Update) {
        let Some(comp) = self.comps.get(target) else {
            return; // not live: the UI ignores it, and so would a replay
        };
        let kind = Kind::of(&comp.ctype);
        let mismatch = component != comp.ctype;
        let action = u.action.as_deref().unwrap_or("");
        if action == "changeParent" {
            self.change_parent(frame, target, u.new_parent.as_deref());
            return;
        }
        if mismatch {
            // The UI may apply it by the spawned type: keep it, and let nothing fold over it.
            self.push(frame, target, Role::Plain, Tier::Kept);
            self.barrier_all(target);
            return;
        }
        match (kind, action) {
            (Kind::Text, "setText") | (Kind::Textbox, "setValue" | "setPlaceholder") => {
                let old = self
                    .comps
                    .get_mut(target)
                    .and_then(|c| c.replace.remove(action));
                self.drop_all(old);
                let seq = self.push(frame, target, Role::Replace(action.to_owned()), Tier::Kept);
                if let Some(c) = self.comps.get_mut(target) {
                    c.replace.insert(action.to_owned(), seq);
                }
            }
            (Kind::Console, "append") => {
                let seq = self.push(frame, target, Role::ConsoleWrite, Tier::Console);
                if let Some(c) = self.comps.get_mut(target) {
                    c.console.insert(seq);
                }
            }
            (Kind::Console, "clear") => {
                let old = self
                    .comps
                    .get_mut(target)
                    .map(|c| std::mem::take(&mut c.console))
                    .unwrap_or_default();
                self.drop_all(old);
                // Kept: it also clears the spawn's initial text.
                let seq = self.push(frame, target, Role::ConsoleWrite, Tier::Kept);
                if let Some(c) = self.comps.get_mut(target) {
                    c.console.insert(seq);
                }
            }
            (Kind::Grid, "setColor" | "setText" | "clearCell" | "clear") => {
                self.grid(frame, target, action, u)
            }
            (Kind::Canvas, _) => self.canvas(frame, target, action, u),
            (Kind::Viz, _) => self.viz(frame, target, action, u),
            _ => {
                self.push(frame, target, Role::Plain, Tier::Kept);
            }
        }
    }

    fn change_parent(&mut self, frame: &Frame, target: &str, new_parent: Option<&str>) {
        let seq = self.push(frame, target, Role::Plain, Tier::Kept);
        let Some(p) = new_parent else {
            // Unknown effect on the tree: removing an ancestor keeps the history.
            if let Some(c) = self.comps.get_mut(target) {
                c.parent_certain = false;
            }
            return;
        };
        let certain = p == "root"
            || (p != target && self.is_live_container(p) && !self.subtree(target).contains(p));
        self.parent_refs
            .insert(seq, (target.to_owned(), p.to_owned()));
        if let Some(c) = self.comps.get_mut(target) {
            c.parent = p.to_owned();
            c.parent_certain &= certain;
        }
    }

    fn grid(&mut self, frame: &Frame, target: &str, action: &str, u: &Update) {
        let Some(c) = self.comps.get_mut(target) else {
            return;
        };
        match (action, u.x, u.y) {
            ("clear", _, _) => {
                let mut old: Vec<u64> = c
                    .cells
                    .drain()
                    .flat_map(|(_, cell)| cell)
                    .flatten()
                    .collect();
                old.extend(std::mem::take(&mut c.irregular_seqs));
                c.irregular = false;
                self.drop_all(old);
                // An empty grid after its spawn: nothing to log.
            }
            ("clearCell", Some(x), Some(y)) => {
                let old = c.cells.remove(&(x, y)).unwrap_or_default();
                let irregular = c.irregular;
                self.drop_all(old.into_iter().flatten());
                if irregular {
                    let seq = self.push(frame, target, Role::CellIrregular, Tier::Kept);
                    if let Some(c) = self.comps.get_mut(target) {
                        c.irregular_seqs.insert(seq);
                    }
                }
            }
            ("setColor" | "setText", Some(x), Some(y)) => {
                let attr = usize::from(action == "setText");
                let old = c.cells.get_mut(&(x, y)).and_then(|cell| cell[attr].take());
                self.drop_all(old);
                let seq = self.push(frame, target, Role::Cell { x, y, attr }, Tier::Kept);
                if let Some(c) = self.comps.get_mut(target) {
                    c.cells.entry((x, y)).or_default()[attr] = Some(seq);
                }
            }
            _ => {
                // Coordinates that are not integers: kept, and clearCell stops folding.
                c.irregular = true;
                let seq = self.push(frame, target, Role::CellIrregular, Tier::Kept);
                if let Some(c) = self.comps.get_mut(target) {
                    c.irregular_seqs.insert(seq);
                }
            }
        }
    }

    /// An entry that may read any buffer of `target`: nothing before it folds any more.
    fn barrier_all(&mut self, target: &str) {
        if let Some(c) = self.comps.get_mut(target) {
            c.buffers.clear();
        }
    }

    fn barrier(&mut self, target: &str, buffer: Option<i64>) {
        match (buffer, self.comps.get_mut(target)) {
            (Some(b), Some(c)) => {
                c.buffers.remove(&b);
            }
            (None, _) => self.barrier_all(target),
            (_, None) => {}
        }
    }

    fn canvas(&mut self, frame: &Frame, target: &str, action: &str, u: &Update) {
        match action {
            _ if is_draw(action) => {
                let Some(b) = u.buffer else {
                    self.barrier_all(target);
                    self.push(frame, target, Role::Plain, Tier::Canvas);
                    return;
                };
                if action == "clear" {
                    let old = self
                        .comps
                        .get_mut(target)
                        .and_then(|c| c.buffers.remove(&b))
                        .unwrap_or_default();
                    self.drop_all(old);
                }
                self.canvas_write(frame, target, b);
            }
            "drawBuffer" => match (u.source_buffer, u.target_buffer) {
                (Some(s), Some(t)) => {
                    self.barrier(target, Some(s));
                    self.canvas_write(frame, target, t);
                }
                _ => {
                    self.barrier_all(target);
                    self.push(frame, target, Role::Plain, Tier::Canvas);
                }
            },
            "createBuffer" | "destroyBuffer" => {
                self.barrier(target, u.buffer);
                self.push(frame, target, Role::Plain, Tier::Kept);
            }
            _ => {
                self.barrier_all(target);
                self.push(frame, target, Role::Plain, Tier::Kept);
            }
        }
    }

    fn canvas_write(&mut self, frame: &Frame, target: &str, buffer: i64) {
        let seq = self.push(frame, target, Role::CanvasWrite(buffer), Tier::Canvas);
        if let Some(c) = self.comps.get_mut(target) {
            c.buffers.entry(buffer).or_default().insert(seq);
        }
    }

    fn viz(&mut self, frame: &Frame, target: &str, action: &str, u: &Update) {
        let Some(var) = u.variable.as_deref() else {
            self.push(frame, target, Role::Plain, Tier::Kept);
            return;
        };
        let root_set = action == "set" && u.root_path;
        if root_set || action == "removeVariable" {
            let old = self
                .comps
                .get_mut(target)
                .and_then(|c| c.vars.remove(var))
                .unwrap_or_default();
            self.drop_all(old);
            if action == "removeVariable" {
                return; // the variable has no history left to remove
            }
        }
        let seq = self.push(frame, target, Role::VizVar(var.to_owned()), Tier::Kept);
        if let Some(c) = self.comps.get_mut(target) {
            c.vars.entry(var.to_owned()).or_default().insert(seq);
        }
    }

    /// `id` and every live component whose parent chain reaches it.
    fn subtree(&self, id: &str) -> Set<String> {
        let mut children: Map<&str, Vec<&str>> = Map::default();
        for (cid, c) in &self.comps {
            children.entry(c.parent.as_str()).or_default().push(&**cid);
        }
        let mut out = Set::default();
        let mut todo = vec![id];
        while let Some(n) = todo.pop() {
            if out.insert(n.to_owned())
                && let Some(k) = children.get(n)
            {
                todo.extend(k.iter().copied());
            }
        }
        out
    }

    fn remove(&mut self, frame: &Frame, target: &str) {
        if !self.comps.contains_key(target) {
            return; // the UI ignores it
        }
        let subtree = self.subtree(target);
        let certain = subtree.iter().all(|id| {
            self.comps.get(id.as_str()).is_some_and(|c| {
                c.parent_certain
                    && (id == target
                        || self
                            .comps
                            .get(c.parent.as_str())
                            .is_some_and(|p| is_container(&p.ctype)))
            })
        });
        let referenced = self
            .parent_refs
            .values()
            .any(|(child, parent)| subtree.contains(parent) && !subtree.contains(child));
        if certain && !referenced {
            // Indexes die with the components; drop_seq then finds no component. An instance's
            // entries all come after its spawn, so the scan starts at the oldest removed one.
            let mut removed = Set::default();
            for id in &subtree {
                if let Some(c) = self.comps.remove(id.as_str()) {
                    removed.insert(c.instance);
                }
            }
            let from = removed.iter().copied().min().unwrap_or(NO_INSTANCE);
            let dead: Vec<u64> = self
                .entries
                .range(from..)
                .filter(|(_, e)| removed.contains(&e.instance))
                .map(|(&seq, _)| seq)
                .collect();
            self.drop_all(dead);
        } else {
            // Keep the history (later entries depend on it) and the remove itself. Which
            // descendants the UI removed is not certain: they stay live here (their later updates
            // are logged; a UI without them ignores them) and never count as certain again.
            self.comps.remove(target);
            for id in &subtree {
                if let Some(c) = self.comps.get_mut(id.as_str()) {
                    c.parent_certain = false;
                }
            }
            self.push(frame, target, Role::Pinned, Tier::Kept);
        }
    }

    /// Keeps the log under `max_bytes`: oldest canvas drawing, then oldest console output, then
    /// suspension.
    fn enforce(&mut self, max_bytes: usize) -> Recorded {
        let mut rec = Recorded::default();
        while self.bytes > max_bytes {
            let next = self
                .canvas_tier
                .first()
                .or_else(|| self.console_tier.first())
                .copied();
            match next {
                Some(seq) => {
                    self.drop_seq(seq);
                    rec.evicted += 1;
                }
                None => {
                    rec.evicted += self.entries.len() as u64;
                    self.reset();
                    self.suspended = true;
                    rec.suspended = true;
                    break;
                }
            }
        }
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::inspect;

    fn log_of(frames: &[&str]) -> Log {
        log_with(frames, usize::MAX)
    }

    fn log_with(frames: &[&str], max: usize) -> Log {
        let mut log = Log::default();
        for f in frames {
            let frame = Frame::new(f);
            log.record(&inspect(f), &frame, max);
        }
        log
    }

    fn replay(log: &Log) -> Vec<String> {
        log.replay().map(|f| f.as_str().to_owned()).collect()
    }

    fn spawn(c: &str, t: &str, payload: &str) -> String {
        format!(r#"{{"id":0,"component":"{c}","type":"spawn","target":"{t}","payload":{payload}}}"#)
    }

    fn update(c: &str, t: &str, payload: &str) -> String {
        format!(
            r#"{{"id":0,"component":"{c}","type":"update","target":"{t}","payload":{payload}}}"#
        )
    }

    fn remove(c: &str, t: &str) -> String {
        format!(r#"{{"id":0,"component":"{c}","type":"remove","target":"{t}"}}"#)
    }

    const CLEAR: &str = r#"{"id":0,"component":"global","type":"clearAll"}"#;

    #[test]
    fn nothing_is_replayed_before_a_clear_all() {
        let s = spawn("label", "a", r#"{"text":"x"}"#);
        let log = log_of(&[&s]);
        assert!(replay(&log).is_empty());
        let log = log_of(&[CLEAR, &s]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned(), s]);
    }

    #[test]
    fn clear_all_empties_the_log() {
        let s = spawn("label", "a", r#"{"text":"x"}"#);
        let log = log_of(&[CLEAR, &s, CLEAR]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned()]);
        assert_eq!(log.bytes(), 0);
    }

    #[test]
    fn setters_fold_and_updates_of_unknown_targets_are_dropped() {
        let s = spawn("label", "a", r#"{"text":"x"}"#);
        let u1 = update(
            "label",
            "a",
            r#"{"action":"setText","options":{"text":"1"}}"#,
        );
        let u2 = update(
            "label",
            "a",
            r#"{"action":"setText","options":{"text":"2"}}"#,
        );
        let ghost = update(
            "label",
            "nope",
            r#"{"action":"setText","options":{"text":"2"}}"#,
        );
        let tb = spawn("textbox", "t", "{}");
        let v = update(
            "textbox",
            "t",
            r#"{"action":"setValue","options":{"value":"v"}}"#,
        );
        let p = update(
            "textbox",
            "t",
            r#"{"action":"setPlaceholder","options":{"placeholder":"p"}}"#,
        );
        let v2 = update(
            "textbox",
            "t",
            r#"{"action":"setValue","options":{"value":"w"}}"#,
        );
        let log = log_of(&[CLEAR, &s, &u1, &ghost, &tb, &v, &p, &u2, &v2]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned(), s, tb, p, u2, v2]);
    }

    #[test]
    fn remove_drops_a_subtree_and_its_history() {
        let col = spawn("column", "col", "{}");
        let row = spawn("row", "row", r#"{"parent":"col"}"#);
        let lab = spawn("label", "lab", "{}");
        let mv = update(
            "label",
            "lab",
            r#"{"action":"changeParent","options":{"parent":"row"}}"#,
        );
        let set = update(
            "label",
            "lab",
            r#"{"action":"setText","options":{"text":"t"}}"#,
        );
        let other = spawn("button", "b", "{}");
        let log = log_of(&[
            CLEAR,
            &col,
            &row,
            &lab,
            &mv,
            &set,
            &other,
            &remove("column", "col"),
        ]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned(), other]);
        // A later update of a removed child is not logged.
        let log = log_of(&[CLEAR, &col, &row, &remove("column", "col"), &set]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned()]);
    }

    #[test]
    fn remove_keeps_history_that_later_entries_depend_on() {
        let row = spawn("row", "row", "{}");
        let lab = spawn("label", "lab", "{}");
        let into = update(
            "label",
            "lab",
            r#"{"action":"changeParent","options":{"parent":"row"}}"#,
        );
        let out = update(
            "label",
            "lab",
            r#"{"action":"changeParent","options":{"parent":"root"}}"#,
        );
        let rm = remove("row", "row");
        // lab was moved into row and out again: its move into row needs row to exist.
        let log = log_of(&[CLEAR, &row, &lab, &into, &out, &rm]);
        assert_eq!(
            replay(&log),
            vec![CLEAR.to_owned(), row, lab, into, out, rm]
        );
    }

    #[test]
    fn remove_keeps_history_when_an_attachment_is_uncertain() {
        // A child spawned into a parent that does not exist yet: the UI keeps it as an orphan
        // entry that the parent may adopt later; the relay does not guess.
        let lab = spawn("label", "lab", r#"{"parent":"row"}"#);
        let row = spawn("row", "row", "{}");
        let rm = remove("row", "row");
        let log = log_of(&[CLEAR, &lab, &row, &rm]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned(), lab.clone(), row, rm]);
        // Attached to a label (not a container): uncertain too.
        let host = spawn("label", "host", "{}");
        let kid = spawn("label", "kid", r#"{"parent":"host"}"#);
        let rm = remove("label", "host");
        let log = log_of(&[CLEAR, &host, &kid, &rm]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned(), host, kid, rm]);
        // Spawned under a missing parent, then moved to root: the UI still has a children
        // entry for the missing parent, which a replay without the spawn would not have.
        let home = update(
            "label",
            "lab",
            r#"{"action":"changeParent","options":{"parent":"root"}}"#,
        );
        let rm = remove("label", "lab");
        let log = log_of(&[CLEAR, &lab, &home, &rm]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned(), lab, home, rm]);
    }

    #[test]
    fn grid_cells_fold() {
        let g = spawn("grid", "g", r#"{"numColumns":3,"numRows":2}"#);
        let c1 = update(
            "grid",
            "g",
            r#"{"action":"setColor","options":{"x":0,"y":1,"color":"red"}}"#,
        );
        let c2 = update(
            "grid",
            "g",
            r#"{"action":"setColor","options":{"x":0,"y":1.0,"color":"blue"}}"#,
        );
        let t1 = update(
            "grid",
            "g",
            r#"{"action":"setText","options":{"x":0,"y":1,"text":"a"}}"#,
        );
        let other = update(
            "grid",
            "g",
            r#"{"action":"setText","options":{"x":2,"y":1,"text":"b"}}"#,
        );
        let cc = update(
            "grid",
            "g",
            r#"{"action":"clearCell","options":{"x":0,"y":1}}"#,
        );
        let log = log_of(&[CLEAR, &g, &c1, &c2, &t1, &other]);
        assert_eq!(
            replay(&log),
            vec![
                CLEAR.to_owned(),
                g.clone(),
                c2.clone(),
                t1.clone(),
                other.clone()
            ]
        );
        let log = log_of(&[CLEAR, &g, &c1, &c2, &t1, &other, &cc]);
        assert_eq!(
            replay(&log),
            vec![CLEAR.to_owned(), g.clone(), other.clone()]
        );
        let clear = update("grid", "g", r#"{"action":"clear"}"#);
        let log = log_of(&[CLEAR, &g, &c1, &other, &clear]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned(), g.clone()]);
        // Coordinates that are not integers are kept, and clearCell is kept after them.
        let odd = update(
            "grid",
            "g",
            r#"{"action":"setColor","options":{"x":0.5,"y":1,"color":"red"}}"#,
        );
        let log = log_of(&[CLEAR, &g, &odd, &c1, &cc]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned(), g, odd, cc]);
    }

    #[test]
    fn console_clear_drops_earlier_output() {
        let c = spawn("console", "c", r#"{"showInput":false,"text":"hi"}"#);
        let a1 = update(
            "console",
            "c",
            r#"{"action":"append","options":{"text":"1\n"}}"#,
        );
        let clear = update("console", "c", r#"{"action":"clear"}"#);
        let a2 = update(
            "console",
            "c",
            r#"{"action":"append","options":{"text":"2\n"}}"#,
        );
        let log = log_of(&[CLEAR, &c, &a1, &clear, &a2, &clear]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned(), c, clear]);
    }

    fn draw(b: i64) -> String {
        update(
            "canvas",
            "cv",
            &format!(
                r#"{{"action":"drawRect","options":{{"bufferId":{b},"x":0,"y":0,"width":1,"height":1}}}}"#
            ),
        )
    }

    fn cclear(b: i64) -> String {
        update(
            "canvas",
            "cv",
            &format!(r#"{{"action":"clear","options":{{"bufferId":{b}}}}}"#),
        )
    }

    fn blit(s: i64, t: i64) -> String {
        update(
            "canvas",
            "cv",
            &format!(
                r#"{{"action":"drawBuffer","options":{{"sourceBufferId":{s},"targetBufferId":{t}}}}}"#
            ),
        )
    }

    #[test]
    fn canvas_clear_folds_drawing_nobody_read() {
        let cv = spawn("canvas", "cv", r#"{"width":10,"height":10}"#);
        let log = log_of(&[CLEAR, &cv, &draw(0), &draw(0), &cclear(0), &draw(0)]);
        assert_eq!(
            replay(&log),
            vec![CLEAR.to_owned(), cv.clone(), cclear(0), draw(0)]
        );
        // Buffer 1 was blitted onto 0 before its clear: its drawing stays.
        let create = update(
            "canvas",
            "cv",
            r#"{"action":"createBuffer","options":{"bufferId":1}}"#,
        );
        let frames = [
            CLEAR.to_owned(),
            cv.clone(),
            create.clone(),
            cclear(1),
            draw(1),
            blit(1, 0),
            cclear(1),
            draw(1),
            blit(1, 0),
        ];
        let refs: Vec<&str> = frames.iter().map(String::as_str).collect();
        let log = log_of(&refs);
        assert_eq!(replay(&log), frames.to_vec());
        // Clearing buffer 0 drops the blits; what they read stays (conservative).
        let mut more = frames.to_vec();
        more.push(cclear(0));
        let refs: Vec<&str> = more.iter().map(String::as_str).collect();
        let log = log_of(&refs);
        assert_eq!(
            replay(&log),
            vec![
                CLEAR.to_owned(),
                cv,
                create,
                cclear(1),
                draw(1),
                cclear(1),
                draw(1),
                cclear(0)
            ]
        );
    }

    #[test]
    fn viz_root_set_and_remove_variable_fold() {
        let v = spawn("viz", "v", "{}");
        let set = |n: i64| {
            update(
                "viz",
                "v",
                &format!(
                    r#"{{"action":"set","variableName":"x","options":{{"path":[],"valueRepresentation":{{"value":{n}}}}}}}"#
                ),
            )
        };
        let app = update(
            "viz",
            "v",
            r#"{"action":"append","variableName":"x","options":{"path":[0],"valueRepresentation":{}}}"#,
        );
        let y = update(
            "viz",
            "v",
            r#"{"action":"set","variableName":"y","options":{"path":[]}}"#,
        );
        let rm = update(
            "viz",
            "v",
            r#"{"action":"removeVariable","variableName":"y","options":{}}"#,
        );
        let log = log_of(&[CLEAR, &v, &set(1), &app, &y, &set(2), &app]);
        assert_eq!(
            replay(&log),
            vec![CLEAR.to_owned(), v.clone(), y.clone(), set(2), app.clone()]
        );
        let log = log_of(&[CLEAR, &v, &y, &set(1), &rm]);
        assert_eq!(replay(&log), vec![CLEAR.to_owned(), v, set(1)]);
    }

    #[test]
    fn the_bound_drops_canvas_then_console_then_suspends() {
        let cv = spawn("canvas", "cv", r#"{"width":10,"height":10}"#);
        let con = spawn("console", "c", r#"{"showInput":false}"#);
        let line = update(
            "console",
            "c",
            r#"{"action":"append","options":{"text":"x\n"}}"#,
        );
        let mut frames = vec![CLEAR.to_owned(), cv.clone(), con.clone()];
        for _ in 0..10 {
            frames.push(blit(0, 0));
            frames.push(line.clone());
        }
        let refs: Vec<&str> = frames.iter().map(String::as_str).collect();
        let full = log_of(&refs);
        let cost = |s: &str| s.len() + "cv".len() + ENTRY_OVERHEAD;
        // Room for everything but three blits.
        let max = full.bytes() - 3 * cost(&blit(0, 0)) + 1;
        let log = log_with(&refs, max);
        assert!(log.bytes() <= max);
        let r = replay(&log);
        assert_eq!(r.iter().filter(|f| **f == blit(0, 0)).count(), 7);
        assert_eq!(r.iter().filter(|f| **f == line).count(), 10);
        // Room for the spawns only: every blit and line goes, the structure stays.
        let max = log_of(&[CLEAR, &cv, &con]).bytes();
        let log = log_with(&refs, max);
        assert_eq!(
            replay(&log),
            vec![CLEAR.to_owned(), cv.clone(), con.clone()]
        );
        // Not even that: suspended, nothing replayed, until the next clearAll.
        let log = log_with(&refs, 10);
        assert!(log.is_suspended());
        assert!(replay(&log).is_empty());
        let mut again = refs.clone();
        again.push(CLEAR);
        let log = log_with(&again, 10);
        assert_eq!(replay(&log), vec![CLEAR.to_owned()]);
    }
}
