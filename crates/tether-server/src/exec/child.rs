//! Starting exec processes: no shell, a cleared environment (but for the allow-list and the
//! connection's mark), their own process group, killed if the task holding them is dropped
//! (with every descendant: see [`super::tree`]).

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use tether_exec::{Endpoint, Exit};
use tokio::process::{Child, Command};

use super::tree::{self, Tree};

/// Spawns `argv` for `ep`, with the [`Tree`] that answers for everything it starts. `argv` is
/// never empty (templates refuse that).
pub fn spawn(ep: &Endpoint, argv: &[String]) -> std::io::Result<(Child, Tree)> {
    let Some((program, args)) = argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty argv",
        ));
    };
    // Resolved here rather than by the spawn: with the child's PATH set explicitly, std would
    // fork and search PATH in the child; with a full path it uses posix_spawn (vfork-fast).
    let mut cmd = Command::new(resolve(program, std::env::var_os("PATH").as_deref()));
    cmd.arg0(program).args(args).env_clear();
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
    tree::spawn(&mut cmd)
}

/// `program` looked up in `path` (the PATH the child gets) like execvp does: a name with a `/`
/// is used as is; otherwise the first executable regular file `DIR/program`. Not found: the
/// name itself, so that the spawn fails with the OS's error.
fn resolve(program: &str, path: Option<&std::ffi::OsStr>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') || program.is_empty() {
        return PathBuf::from(program);
    }
    let Some(path) = path else {
        return PathBuf::from(program);
    };
    for dir in std::env::split_paths(path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(program);
        if let Ok(meta) = std::fs::metadata(&candidate)
            && meta.is_file()
            && meta.permissions().mode() & 0o111 != 0
        {
            return candidate;
        }
    }
    PathBuf::from(program)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_in_path_like_execvp() {
        let path = std::ffi::OsString::from("/nonexistent:/bin:/usr/bin");
        let sh = resolve("sh", Some(&path));
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{sh:?}");
        assert_eq!(resolve("./x", Some(&path)), PathBuf::from("./x"));
        assert_eq!(
            resolve("tether-no-such-program", Some(&path)),
            PathBuf::from("tether-no-such-program")
        );
        assert_eq!(resolve("sh", None), PathBuf::from("sh"));
    }
}
