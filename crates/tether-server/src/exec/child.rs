//! Starting and signalling exec processes: no shell, a cleared environment, their own process
//! group (so a signal reaches the grandchildren too), killed if the task holding them is dropped.

use std::process::{ExitStatus, Stdio};

use tether_exec::{Endpoint, Exit, Signal};
use tokio::process::{Child, Command};

/// Spawns `argv` for `ep`. `argv` is never empty (templates refuse that).
pub fn spawn(ep: &Endpoint, argv: &[String]) -> std::io::Result<Child> {
    let Some((program, args)) = argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty argv",
        ));
    };
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear();
    for name in &ep.env {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    if let Some(dir) = &ep.cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(if ep.stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    cmd.spawn()
}

/// Signals the process group led by `pid`; false if it is already gone.
pub fn killpg(pid: u32, sig: Signal) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    let signo = match sig {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) with a negative pid signals that process group; it touches no memory.
    unsafe { libc::kill(-pgid, signo) == 0 }
}

/// The session's view of a wait status.
pub fn exit_of(status: ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::Code(-1),
    }
}
