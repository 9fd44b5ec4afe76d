//! Every process a connection's command started, wherever it went, so that none outlives the
//! connection: the command's process group, the descendants of any of its processes by parent,
//! and every process whose environment carries the connection's mark (`TETHER_EXEC_CONN`, set
//! on the command and inherited), found in `/proc`. The mark is what finds a descendant that left
//! the group and the session (`setsid`) and whose parent exited, so that it was re-parented.
//!
//! The `tether` binary is a child subreaper ([`become_subreaper`]): orphaned descendants come
//! back to it instead of PID 1, it reaps those that exit on their own ([`reap_adopted`]) and on
//! shutdown kills and reaps whatever is left ([`sweep`]). Embedded in another program (the Python
//! package) it is not, so that the host's own orphans stay with init; there the connection's
//! teardown still finds and kills its marked processes, and init reaps them.
//!
//! Reaping never uses `waitpid(-1)`: only a zombie child of ours identified as an exec
//! descendant (and not a direct child, which tokio reaps) is waited for, by pid. Signals go
//! through a pidfd opened and checked against the process's start time, so a pid reused since
//! the scan is never signalled.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use tether_exec::Signal;
use tokio::process::{Child, Command};

/// The environment variable that marks a connection's processes; its value is
/// `<server pid>.<sequence>`, unique per spawn.
pub const MARK_VAR: &str = "TETHER_EXEC_CONN";

/// After SIGKILL, how long a teardown waits for its processes to be gone before it gives up
/// (a process in uninterruptible sleep) with a warning.
const KILL_WAIT: Duration = Duration::from_secs(2);
/// Longest pause between two looks at `/proc` while waiting for processes to die (without
/// pidfds, or for zombies whose parents are going).
const POLL_MAX: Duration = Duration::from_millis(50);
/// After a SIGCHLD, how long to wait before looking for adopted zombies.
const REAP_DEBOUNCE: Duration = Duration::from_millis(100);

/// Set once this process is a child subreaper.
static SUBREAPER: AtomicBool = AtomicBool::new(false);
/// The next mark's sequence number (process-wide: servers embedded side by side differ).
static NEXT_MARK: AtomicU64 = AtomicU64::new(1);
/// Held for reading around a spawn (until its pid is in [`DIRECT`]) and for writing around a
/// reap, so that a direct child that exits at once is never taken for an adopted one.
static GATE: RwLock<()> = RwLock::new(());
/// Pids of exec processes we spawned and tokio has not reaped: never waited for here.
static DIRECT: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

fn direct() -> MutexGuard<'static, Option<HashSet<i32>>> {
    DIRECT.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_direct(pid: i32) -> bool {
    direct().as_ref().is_some_and(|d| d.contains(&pid))
}

/// Makes this process a child subreaper (Linux), so that every orphaned descendant of an exec
/// process is re-parented to it, where it can be found, killed and reaped. Only for a process
/// whose children are all exec processes (the `tether` binary): an adopted orphan is then
/// always an exec descendant, which [`reap_adopted`] and [`sweep`] rely on.
pub fn become_subreaper() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) sets a flag of this process; no memory is
        // passed.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        SUBREAPER.store(true, Ordering::SeqCst);
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "child subreaper is Linux-only",
        ))
    }
}

/// Whether [`become_subreaper`] succeeded.
pub fn is_subreaper() -> bool {
    SUBREAPER.load(Ordering::SeqCst)
}

/// One process as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Its pid.
    pub pid: i32,
    /// Its parent.
    pub ppid: i32,
    /// Its process group.
    pub pgrp: i32,
    /// Dead, waiting to be reaped.
    pub zombie: bool,
    /// Start time in clock ticks since boot: with the pid, names one process for good.
    pub start: u64,
}

/// Parses `/proc/PID/stat` (bytes: the name in parentheses may be anything).
fn parse_stat(pid: i32, raw: &[u8]) -> Option<ProcStat> {
    // "pid (comm) state ppid pgrp session tty tpgid flags … starttime …"; comm may hold
    // spaces and parentheses, so fields are counted from the last ')'.
    let close = raw.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&raw[close + 1..]).ok()?;
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    // session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    // priority nice num_threads itrealvalue, then starttime.
    let start = f.nth(16)?.parse().ok()?;
    Some(ProcStat {
        pid,
        zombie: state.starts_with(['Z', 'X']),
        ppid,
        pgrp,
        start,
    })
}

/// One process's stat, if it exists. One open and one read (procfs hands the whole small file
/// at once): a scan does this for every process, so it stays lean.
fn stat_of(pid: i32) -> Option<ProcStat> {
    use std::io::Read;
    let mut buf = [0u8; 2048];
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let n = f.read(&mut buf).ok()?;
    parse_stat(pid, &buf[..n])
}

/// Every process on the machine (visible in our `/proc`).
fn scan() -> Vec<ProcStat> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(p) = stat_of(pid) {
            out.push(p);
        }
    }
    out
}

/// What a process's environment says about marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// It carries this mark.
    Ours,
    /// It carries another connection's mark.
    Other,
    /// None (or it cannot be read: another user's process, a zombie).
    Absent,
}

/// Looks for `TETHER_EXEC_CONN=` in `/proc/PID/environ` (the environment it started with).
fn mark_of(pid: i32, entry: &[u8]) -> Mark {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return Mark::Absent;
    };
    let prefix = &entry[..=MARK_VAR.len()];
    let mut found = Mark::Absent;
    for var in env.split(|&b| b == 0) {
        if var == entry {
            return Mark::Ours;
        }
        if var.starts_with(prefix) {
            found = Mark::Other;
        }
    }
    found
}

/// A pidfd for the very process `p` names (checked against its start time after opening, so a
/// pid reused since the scan is never touched); `None` if it is gone or pidfds are missing.
fn pidfd(p: &ProcStat) -> Option<std::os::fd::OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, p.pid, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: a fresh fd that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int) };
        stat_of(p.pid)
            .is_some_and(|now| now.start == p.start)
            .then_some(fd)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = p;
        None
    }
}

/// Sends `sig` through a pidfd; true if delivered.
fn signal_fd(fd: &std::os::fd::OwnedFd, sig: libc::c_int) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a pidfd we own; the siginfo pointer may be null.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            ) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, sig);
        false
    }
}

/// Sends `sig` to the process `p` names, unless its pid now names another process.
fn send(p: &ProcStat, sig: libc::c_int) -> bool {
    if let Some(fd) = pidfd(p) {
        return signal_fd(&fd, sig);
    }
    // No pidfd (an old kernel, no fd left, or gone): check, then signal; a narrow window for
    // reuse remains.
    if stat_of(p.pid).is_some_and(|now| now.start == p.start) {
        // SAFETY: kill(2) touches no memory.
        unsafe { libc::kill(p.pid, sig) == 0 }
    } else {
        false
    }
}

/// Signals the processes `live` (if `sig`) and waits until they have all exited or `until`
/// passed. Without pidfds, waits a little and lets the caller look again.
async fn signal_and_wait(live: &[ProcStat], sig: Option<libc::c_int>, until: Instant) {
    use tokio::io::unix::AsyncFd;
    let mut exits = Vec::new();
    let mut blind = false;
    for p in live {
        match pidfd(p) {
            Some(fd) => {
                if let Some(sig) = sig {
                    signal_fd(&fd, sig);
                }
                // A pidfd turns readable when its process exits.
                // SAFETY: an OwnedFd, moved in: it stays open and the same for the AsyncFd's life.
                match unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
                {
                    Ok(fd) => exits.push(fd),
                    Err(_) => blind = true,
                }
            }
            None => {
                if let Some(sig) = sig {
                    send(p, sig);
                }
                blind = blind || stat_of(p.pid).is_some_and(|now| now.start == p.start);
            }
        }
    }
    let until = tokio::time::Instant::from_std(until);
    let all = futures_util::future::join_all(exits.iter().map(|fd| fd.readable()));
    if blind {
        let soon = tokio::time::Instant::now() + POLL_MAX;
        let _ = tokio::time::timeout_at(until.min(soon), all).await;
    } else {
        let _ = tokio::time::timeout_at(until, all).await;
    }
}

/// Reaps `pid` if it is a zombie child of ours that tokio does not own.
fn reap(pid: i32) -> bool {
    let _gate = GATE.write().unwrap_or_else(|p| p.into_inner());
    if is_direct(pid) {
        return false;
    }
    let mut status = 0;
    // SAFETY: waitpid on one pid with WNOHANG; `status` is a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
}

fn signo(sig: Signal) -> libc::c_int {
    match sig {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    }
}

/// Signals the process group `pgid`; false if it is empty.
fn killpg(pgid: i32, sig: Signal) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with a negative pid signals that process group; it touches no memory.
    unsafe { libc::kill(-pgid, signo(sig)) == 0 }
}

/// Whether the process group `pgid` has no process left (false when unsure).
fn group_empty(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks; it touches no memory.
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// This process's threads (`/proc/self/task`), sorted; `None` if they cannot be listed.
fn own_threads() -> Option<Vec<u32>> {
    let mut tids: Vec<u32> = std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Some(tids)
}

/// Whether every child of this process is a direct exec child (none adopted, none other);
/// false when unsure. Reads each thread's `children` list (a child belongs to the thread that
/// forked it, an adopted one to any live thread) with one read each, and lists the threads
/// again after: a thread that exited meanwhile may have handed its children to one read
/// before, so then the answer is "unsure".
fn only_direct_children() -> bool {
    use std::io::Read;
    let Some(before) = own_threads() else {
        return false;
    };
    let mut buf = [0u8; 4096];
    for tid in &before {
        let Ok(mut f) = std::fs::File::open(format!("/proc/self/task/{tid}/children")) else {
            return false;
        };
        let Ok(n) = f.read(&mut buf) else {
            return false;
        };
        if n == buf.len() {
            return false; // more than one read's worth: the list may not be consistent
        }
        let Ok(list) = std::str::from_utf8(&buf[..n]) else {
            return false;
        };
        for pid in list.split_ascii_whitespace() {
            match pid.parse::<i32>() {
                Ok(pid) if is_direct(pid) => {}
                _ => return false,
            }
        }
    }
    own_threads().is_some_and(|after| after == before)
}

/// Spawns `cmd` (its own process group) marked with a new mark, and returns the child with the
/// [`Tree`] that answers for every process it starts.
pub fn spawn(cmd: &mut Command) -> std::io::Result<(Child, Tree)> {
    let value = format!(
        "{}.{}",
        std::process::id(),
        NEXT_MARK.fetch_add(1, Ordering::Relaxed)
    );
    cmd.env(MARK_VAR, &value);
    let gate = GATE.read().unwrap_or_else(|p| p.into_inner());
    let child = cmd.spawn()?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    direct().get_or_insert_with(HashSet::new).insert(pid);
    drop(gate);
    let start = stat_of(pid).map_or(0, |p| p.start);
    Ok((
        child,
        Tree {
            id: Ident {
                leader: pid,
                leader_start: start,
                mark: format!("{MARK_VAR}={value}").into_bytes().into(),
                leader_reaped: false,
            },
            known: HashMap::new(),
            term_at: None,
            finished: false,
        },
    ))
}

/// What names a tree's members; cheap to clone into a blocking task.
#[derive(Debug, Clone)]
struct Ident {
    /// The command's pid, which is also its process group.
    leader: i32,
    leader_start: u64,
    /// `TETHER_EXEC_CONN=<value>`, as it appears in an environment.
    mark: std::sync::Arc<[u8]>,
    /// Tokio reaped the leader: its group id may be reused once the group is empty.
    leader_reaped: bool,
}

/// The processes one exec command started; dropped without [`Tree::teardown`] (a panic, an
/// aborted task), it SIGKILLs them all.
#[derive(Debug)]
pub struct Tree {
    id: Ident,
    /// Members seen so far (pid → start time): a member that cleared its environment and was
    /// re-parented is still known by them.
    known: HashMap<i32, u64>,
    /// When SIGTERM first went to the tree.
    term_at: Option<Instant>,
    /// Teardown completed: nothing to kill on drop.
    finished: bool,
}

/// The members of `id`'s tree among `table` (the leader included while it is unreaped), zombies
/// too, and the new set of known members.
fn members(
    id: &Ident,
    known: &HashMap<i32, u64>,
    table: &[ProcStat],
) -> (Vec<ProcStat>, HashMap<i32, u64>) {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    // While the leader is unreaped its group id cannot be reused; after that, a process holding
    // the leader's pid means it was.
    let group_ours = !id.leader_reaped || !table.iter().any(|p| p.pid == id.leader);
    let adopted_only = is_subreaper();
    let mut ours: HashMap<i32, ProcStat> = HashMap::new();
    for p in table {
        if p.pid == me || p.start < id.leader_start {
            continue;
        }
        if p.pid == id.leader {
            if !id.leader_reaped && p.start == id.leader_start {
                ours.insert(p.pid, *p);
            }
            continue;
        }
        if is_direct(p.pid) {
            continue; // another connection's command
        }
        let member = if known.get(&p.pid) == Some(&p.start) {
            true
        } else if group_ours && p.pgrp == id.leader {
            mark_of(p.pid, &id.mark) != Mark::Other
        } else if p.zombie || (adopted_only && p.ppid != me) {
            // With the subreaper, a marked process outside the leader's subtree is one of our
            // adopted children (or below one, found by parent next).
            false
        } else {
            mark_of(p.pid, &id.mark) == Mark::Ours
        };
        if member {
            ours.insert(p.pid, *p);
        }
    }
    // Everything below a member is a member.
    let mut children: HashMap<i32, Vec<&ProcStat>> = HashMap::new();
    for p in table {
        if p.pid != me && p.start >= id.leader_start && !is_direct(p.pid) {
            children.entry(p.ppid).or_default().push(p);
        }
    }
    let mut stack: Vec<i32> = ours.keys().copied().collect();
    while let Some(pid) = stack.pop() {
        for c in children.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            if ours.insert(c.pid, **c).is_none() {
                stack.push(c.pid);
            }
        }
    }
    let known = ours
        .values()
        .filter(|p| p.pid != id.leader)
        .map(|p| (p.pid, p.start))
        .collect();
    (ours.into_values().collect(), known)
}

impl Tree {
    /// The leader's pid.
    pub fn pid(&self) -> u32 {
        u32::try_from(self.id.leader).unwrap_or(0)
    }

    /// Tokio reaped the leader.
    pub fn leader_reaped(&mut self) {
        self.id.leader_reaped = true;
        if let Some(d) = direct().as_mut() {
            d.remove(&self.id.leader);
        }
    }

    /// Whether nothing of the tree is left, known without reading every process in `/proc`
    /// (which costs about as much CPU as the rest of a short command's connection). As a
    /// subreaper, once the leader is reaped, a live member is either in the leader's group or
    /// below a child of ours: its ancestors up to the leader that died handed it on to the
    /// nearest subreaper, this process. So an empty group, no member seen before and no child
    /// but other connections' commands mean that none is left. Unsure: false (then the scan).
    fn gone_without_scan(&self) -> bool {
        is_subreaper()
            && self.id.leader_reaped
            && self.known.is_empty()
            && group_empty(self.id.leader)
            && only_direct_children()
    }

    /// Looks for the members in `/proc` (off the async threads: a scan reads every process).
    async fn look(&mut self) -> Vec<ProcStat> {
        let id = self.id.clone();
        let known = std::mem::take(&mut self.known);
        let (found, known) = tokio::task::spawn_blocking(move || members(&id, &known, &scan()))
            .await
            .unwrap_or_default();
        self.known = known;
        found
    }

    /// Signals the leader's process group (atomically, forks included) while the leader is
    /// unreaped; true if delivered.
    pub fn signal_group(&mut self, sig: Signal) -> bool {
        if sig == Signal::Term && self.term_at.is_none() {
            self.term_at = Some(Instant::now());
        }
        !self.id.leader_reaped && killpg(self.id.leader, sig)
    }

    /// SIGTERM to the whole tree: looks for the members first (the leader, still alive, ties
    /// its unmarked descendants to the tree, which then knows them after they are re-parented),
    /// then signals the group and every member outside it. True if any signal was delivered.
    pub async fn terminate(&mut self) -> bool {
        let members = self.look().await;
        let mut any = self.signal_group(Signal::Term);
        for p in members {
            if !p.zombie && p.pid != self.id.leader {
                any |= send(&p, libc::SIGTERM);
            }
        }
        any
    }

    /// After the connection: SIGTERM to what is left (unless it had it), SIGKILL once `grace`
    /// has passed since the first SIGTERM, then reaps our adopted members, until none is left.
    /// Waits on pidfds between looks at `/proc`. Returns how many processes it found running.
    pub async fn teardown(mut self, grace: Duration) -> usize {
        if self.gone_without_scan() {
            self.finished = true;
            return 0;
        }
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        let mut found: HashSet<(i32, u64)> = HashSet::new();
        let mut killed_at: Option<Instant> = None;
        loop {
            let mut live = Vec::new();
            let mut left = false;
            for p in self.look().await {
                if p.pid == self.id.leader {
                    continue; // tokio's to reap (teardown comes after it anyway)
                }
                if p.zombie {
                    if p.ppid == me && !reap(p.pid) {
                        left = true;
                    }
                } else {
                    found.insert((p.pid, p.start));
                    live.push(p);
                }
            }
            if live.is_empty() && !left {
                self.finished = true;
                return found.len();
            }
            let now = Instant::now();
            let (sig, until) = match self.term_at {
                None => {
                    self.term_at = Some(now);
                    (Some(libc::SIGTERM), now + grace)
                }
                Some(t) if now >= t + grace => {
                    let at = *killed_at.get_or_insert(now);
                    if now > at + KILL_WAIT {
                        tracing::warn!(
                            "exec: {} process(es) of pid {} still there {KILL_WAIT:?} after SIGKILL",
                            live.len(),
                            self.id.leader
                        );
                        self.finished = true;
                        return found.len();
                    }
                    (Some(libc::SIGKILL), at + KILL_WAIT)
                }
                Some(t) => (None, t + grace),
            };
            if live.is_empty() {
                // Only zombies that are not ours to reap yet: their parents are going.
                tokio::time::sleep(POLL_MAX).await;
            } else {
                signal_and_wait(&live, sig, until).await;
            }
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if let Some(d) = direct().as_mut() {
            d.remove(&self.id.leader);
        }
        if self.finished {
            return;
        }
        // No await here: SIGKILL to the group, then to every member found now.
        if !self.id.leader_reaped {
            killpg(self.id.leader, Signal::Kill);
        }
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        let (found, _) = members(&self.id, &self.known, &scan());
        for p in found {
            if p.pid == self.id.leader {
                continue;
            }
            if !p.zombie {
                send(&p, libc::SIGKILL);
            } else if p.ppid == me {
                reap(p.pid);
            }
        }
    }
}

/// Whether some child of ours is a zombie (without reaping it).
fn any_zombie_child() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero siginfo_t is valid; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with WNOWAIT only looks; `info` is a valid out-pointer.
        let rc = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is set (or left 0) by a successful waitid.
        rc == 0 && unsafe { info.si_pid() } != 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// As a subreaper: reaps every adopted zombie child (none of our direct exec children); the
/// number reaped. Not a subreaper (embedded), a zombie child is the host's: left alone.
fn reap_adopted_now() -> usize {
    if !is_subreaper() || !any_zombie_child() {
        return 0;
    }
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    scan()
        .into_iter()
        .filter(|p| p.ppid == me && p.zombie && reap(p.pid))
        .count()
}

/// While the server runs as a subreaper: reaps adopted orphans that exit on their own, so that
/// their zombies do not pile up. Ends when `stop` is cancelled.
pub async fn reap_adopted(stop: tokio_util::sync::CancellationToken) {
    if !is_subreaper() {
        return;
    }
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigchld = match signal(SignalKind::child()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "exec: cannot watch SIGCHLD ({e}); adopted orphans are reaped on shutdown only"
            );
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            got = sigchld.recv() => if got.is_none() { return },
        }
        // Let tokio reap the direct children first (most SIGCHLDs are theirs) and let a burst
        // of exits come in: one look serves them all.
        tokio::time::sleep(REAP_DEBOUNCE).await;
        // Mostly tokio reaped them all: one non-blocking waitid says so without waking a
        // blocking thread for the scan.
        if any_zombie_child() {
            let _ = tokio::task::spawn_blocking(reap_adopted_now).await;
        }
    }
}

/// Every process below this one: the live ones, and whether a zombie child that is not a
/// direct exec child (tokio's) is left after reaping them.
fn below_me() -> (Vec<ProcStat>, bool) {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let table = scan();
    let mut below: HashSet<i32> = HashSet::from([me]);
    // /proc lists parents before children only mostly: repeat until nothing is added.
    loop {
        let before = below.len();
        for p in &table {
            if below.contains(&p.ppid) {
                below.insert(p.pid);
            }
        }
        if below.len() == before {
            break;
        }
    }
    let mut live = Vec::new();
    let mut left = false;
    for p in table
        .iter()
        .filter(|p| p.pid != me && below.contains(&p.pid))
    {
        if p.zombie {
            if p.ppid == me && !reap(p.pid) && !is_direct(p.pid) {
                left = true;
            }
        } else {
            live.push(*p);
        }
    }
    (live, left)
}

/// On shutdown, as a subreaper: SIGTERM to every descendant of this process that is left (each
/// one an exec descendant), SIGKILL after `grace`, then reaps the adopted ones. Returns how many
/// it found. Does nothing when not a subreaper (embedded: each connection's teardown is all).
pub async fn sweep(grace: Duration) -> usize {
    if !is_subreaper() {
        return 0;
    }
    let mut found: HashSet<(i32, u64)> = HashSet::new();
    let t0 = Instant::now();
    let mut pause = Duration::from_millis(5);
    let mut termed = false;
    loop {
        let (live, left) = tokio::task::spawn_blocking(below_me)
            .await
            .unwrap_or_default();
        found.extend(live.iter().map(|p| (p.pid, p.start)));
        if live.is_empty() && !left {
            return found.len();
        }
        let elapsed = t0.elapsed();
        let sig = if !termed {
            termed = true;
            Some(libc::SIGTERM)
        } else if elapsed >= grace + KILL_WAIT {
            tracing::warn!("exec: {} process(es) left at shutdown", live.len());
            return found.len();
        } else if elapsed >= grace {
            Some(libc::SIGKILL)
        } else {
            None
        };
        if let Some(sig) = sig {
            for p in &live {
                send(p, sig);
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(POLL_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let line =
            b"4242 (a b) (c\xff)) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1 10";
        let p = parse_stat(4242, line).unwrap();
        assert_eq!(
            p,
            ProcStat {
                pid: 4242,
                ppid: 17,
                pgrp: 4242,
                zombie: false,
                start: 98765
            }
        );
        let z = b"7 (sleep) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        assert!(parse_stat(7, z).unwrap().zombie);
        assert_eq!(parse_stat(7, b"7 (x) S 1"), None);
    }

    /// What lets a teardown skip the scan: a group with a live member is not empty, and a
    /// child of ours that is not a direct exec child (an adopted one, say) is seen.
    #[test]
    fn a_live_group_and_a_foreign_child_are_seen_without_a_scan() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = i32::try_from(child.id()).unwrap();
        assert!(!group_empty(pid), "its own group, alive");
        assert!(!only_direct_children(), "a child not spawned for exec");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(group_empty(pid), "the group is gone with its only member");
    }

    #[test]
    fn this_process_is_in_the_table_with_its_start_time() {
        let me = i32::try_from(std::process::id()).unwrap();
        let table = scan();
        let mine = table.iter().find(|p| p.pid == me).expect("self in /proc");
        assert_eq!(stat_of(me).map(|p| p.start), Some(mine.start));
        assert!(mine.start > 0);
    }

    #[test]
    fn marks_are_told_apart() {
        // Our own environment has no mark.
        let me = i32::try_from(std::process::id()).unwrap();
        assert_eq!(mark_of(me, b"TETHER_EXEC_CONN=1.1"), Mark::Absent);
    }

    /// `sh -c SCRIPT` as the exec adapter starts it (own group, piped stdout), through [`spawn`].
    fn sh(script: &str) -> (Child, Tree) {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        spawn(&mut cmd).expect("spawn sh")
    }

    async fn first_line(child: &mut Child) -> String {
        use tokio::io::AsyncBufReadExt;
        let out = child.stdout.take().expect("piped");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::BufReader::new(out).read_line(&mut line),
        )
        .await
        .expect("a line in time")
        .expect("read");
        line
    }

    /// Live processes carrying `tree`'s mark whose argv is `argv`.
    fn marked(tree: &Tree, argv: &[u8]) -> Vec<ProcStat> {
        scan()
            .into_iter()
            .filter(|p| !p.zombie && mark_of(p.pid, &tree.id.mark) == Mark::Ours)
            .filter(|p| std::fs::read(format!("/proc/{}/cmdline", p.pid)).is_ok_and(|c| c == argv))
            .collect()
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn running(p: &ProcStat) -> bool {
        stat_of(p.pid).is_some_and(|q| q.start == p.start && !q.zombie)
    }

    #[tokio::test]
    async fn a_dropped_tree_kills_the_group_and_the_escaped_descendants() {
        // Not a subreaper here (as embedded): the escaped one is found by its mark.
        assert!(!is_subreaper());
        let (mut child, tree) = sh(
            "(setsid sh -c 'trap \"\" TERM; sleep 305') & (trap '' TERM; sleep 306) & \
             echo started; sleep 300",
        );
        assert_eq!(first_line(&mut child).await, "started\n");
        let mut left = Vec::new();
        wait_for("both sleeps", || {
            left = marked(&tree, b"sleep\x00305\x00");
            left.extend(marked(&tree, b"sleep\x00306\x00"));
            left.len() == 2
        })
        .await;
        // As when the task holding them panics or is aborted.
        drop(tree);
        drop(child);
        wait_for("both killed", || !left.iter().any(running)).await;
    }

    #[tokio::test]
    async fn teardown_finds_a_marked_escapee_after_its_parent_exited() {
        let (mut child, mut tree) =
            sh("(setsid sh -c 'trap \"\" TERM; sleep 307') >/dev/null 2>&1 & echo started");
        assert_eq!(first_line(&mut child).await, "started\n");
        let mut left = Vec::new();
        wait_for("the escapee", || {
            left = marked(&tree, b"sleep\x00307\x00");
            left.len() == 1
        })
        .await;
        assert!(child.wait().await.expect("wait").success());
        tree.leader_reaped();
        // Re-parented away from us (no subreaper here), out of the group and the session: only
        // the mark names it. It ignores SIGTERM, so SIGKILL after the grace.
        let found = tree.teardown(Duration::from_millis(100)).await;
        assert!(found >= 1, "{found}");
        assert!(!left.iter().any(running));
    }

    #[tokio::test]
    async fn teardown_and_reaping_leave_other_children_alone() {
        // A child of the host program (not exec's), exiting while exec trees are torn down and
        // adopted zombies reaped: its exit status is still its parent's to collect.
        let mut host = std::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .spawn()
            .expect("spawn host child");
        let host_pid = i32::try_from(host.id()).unwrap();
        wait_for("the host child a zombie", || {
            stat_of(host_pid).is_some_and(|p| p.zombie)
        })
        .await;
        let (mut child, mut tree) = sh("sleep 0.05 & echo started");
        assert_eq!(first_line(&mut child).await, "started\n");
        assert!(child.wait().await.expect("wait").success());
        tree.leader_reaped();
        tree.teardown(Duration::from_millis(100)).await;
        reap_adopted_now();
        assert_eq!(host.wait().expect("wait host").code(), Some(7));
    }
}
