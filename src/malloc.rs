//! The viewer's memory on glibc. A viewer of 100 000 tasks frees large
//! buffers all the time (a second's update, an analysis's rows, a grown
//! hash table). glibc then raises its mmap threshold to the size of what
//! was freed, so later buffers of that size come from its arenas, and what
//! they leave behind when freed stays in the process: measured with
//! `scripts/viewer-memory.sh 100000 150`, 74–85 MiB of RSS for a 30 MiB
//! model, against 47–52 MiB with the threshold fixed at 128 KiB (buffers
//! above it are mapped and unmapped) and two arenas.
//!
//! Those settings can only be given to glibc when a process starts
//! (`GLIBC_TUNABLES`), and `mallopt` would need `unsafe`, which this crate
//! forbids. So [`tune`] executes the program again, once, at startup, with
//! the tunables added; `TASKSCOPE_MALLOC=default` turns that off, and a
//! user's own `glibc.malloc.*` tunables are left alone.

use std::ffi::OsString;

/// The tunables taskscope adds.
pub const TUNABLES: &str = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=2";
/// Set in the re-executed process: the user's own `GLIBC_TUNABLES` (empty
/// when there were none), for children that should not inherit ours.
const MARK: &str = "TASKSCOPE_MALLOC_TUNED";
const VAR: &str = "GLIBC_TUNABLES";

/// What to do, from the environment: `Some(new GLIBC_TUNABLES)` when the
/// program should run again with it.
fn plan(
    opt_out: Option<OsString>,
    mark: Option<OsString>,
    user: Option<OsString>,
) -> Option<String> {
    if mark.is_some() || opt_out.is_some_and(|v| v == "default") {
        return None;
    }
    let user = match user {
        None => String::new(),
        // A value that is not text is the user's business: leave it.
        Some(v) => v.into_string().ok()?,
    };
    if user.contains("glibc.malloc.") {
        return None;
    }
    Some(if user.is_empty() {
        TUNABLES.to_string()
    } else {
        format!("{user}:{TUNABLES}")
    })
}

/// Runs the program again with glibc's allocator tuned for a long-lived
/// viewer (see the module's doc). Returns when it does not (another libc
/// or platform, opted out, already tuned, or the exec failed: the program
/// then goes on as it is).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let Some(tunables) = plan(
            std::env::var_os("TASKSCOPE_MALLOC"),
            std::env::var_os(MARK),
            std::env::var_os(VAR),
        ) else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        let user = std::env::var_os(VAR).unwrap_or_default();
        // Only returns on failure.
        let _ = std::process::Command::new(exe)
            .arg0(arg0)
            .args(args)
            .env(VAR, tunables)
            .env(MARK, user)
            .exec();
    }
}

/// Gives a child process the `GLIBC_TUNABLES` the user started taskscope
/// with, when [`tune`] changed it.
pub fn untune(cmd: &mut tokio::process::Command) {
    let Some(user) = std::env::var_os(MARK) else {
        return;
    };
    if user.is_empty() {
        cmd.env_remove(VAR);
    } else {
        cmd.env(VAR, user);
    }
    cmd.env_remove(MARK);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(s.into())
    }

    #[test]
    fn adds_the_tunables_once_and_respects_the_user() {
        assert_eq!(plan(None, None, None).as_deref(), Some(TUNABLES));
        // Another library's tunables are kept.
        assert_eq!(
            plan(None, None, os("glibc.pthread.rseq=0")),
            Some(format!("glibc.pthread.rseq=0:{TUNABLES}"))
        );
        // Already re-executed, opted out, or the user tuned malloc.
        assert_eq!(plan(None, os(""), None), None);
        assert_eq!(plan(os("default"), None, None), None);
        assert_eq!(plan(None, None, os("glibc.malloc.arena_max=8")), None);
    }
}
