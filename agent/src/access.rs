//! Who may ask what. Two kinds of access on the agent's one port:
//!
//! - **Read-only**: `GET /metrics`, `GET /debug/pprof/tasks` (without
//!   stacks) and `GET /`: counts per spawn location, nothing a task holds.
//!   Always served, to anyone who reaches the port (Prometheus and Grafana
//!   Alloy scrape them from other hosts).
//! - **Inspection**: every gRPC service (the hooks source's groups and a
//!   group's tasks, the tasks' waits and stacks, console-subscriber's
//!   task and resource data in console mode): anything that reveals what
//!   tasks hold or costs the service work. With a token configured
//!   (`TASKSCOPE_TOKEN_FILE`, `TASKSCOPE_TOKEN`, or
//!   [`crate::Builder::token`]), only requests that carry it
//!   (`authorization: Bearer TOKEN`, compared in constant time) get it,
//!   wherever the agent listens. Without one, it is served on a loopback
//!   address or a Unix socket (development as easy as before) and refused
//!   on any other address, which then serves read-only only and says so
//!   when it starts.
//!
//! Nothing here prints: what a token file's owner should hear of (it can
//! be read by others, it changed) is returned to the caller, which says
//! it through the agent's warnings (`Builder::on_warning`).

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Tokens shorter than this are refused: a guessable token is no lock.
pub(crate) const MIN_TOKEN_LEN: usize = 16;

/// Why a token is not one the agent accepts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Shorter than 16 bytes (surrounding whitespace aside): a guessable
    /// token is no lock.
    #[error("the token is {len} bytes long; at least {MIN_TOKEN_LEN} are needed")]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// Not printable ASCII, or with spaces inside.
    #[error("the token must be printable ASCII without spaces")]
    NotPrintable,
    /// The token file cannot be read.
    #[error("cannot read it: {0}")]
    Unreadable(#[source] std::io::Error),
}

/// How often the agent's server looks at a token file again (on a blocking
/// thread of its own: a hung file system holds that check, never a
/// request): a rotated secret is in force within this long.
pub(crate) const TOKEN_RECHECK: Duration = Duration::from_secs(5);

/// A shared secret, kept out of `Debug` output: fixed (set in code or in
/// `TASKSCOPE_TOKEN`), or read from a file and read again when the file
/// changes (a rotated Kubernetes secret, a new file moved in place).
#[derive(Clone)]
pub struct Token(Arc<Source>);

enum Source {
    Fixed(Arc<[u8]>),
    File(FileToken),
}

/// A token file and what was last read from it.
struct FileToken {
    path: PathBuf,
    state: Mutex<FileState>,
}

struct FileState {
    /// `None` when the file, changed, no longer holds a valid token:
    /// nothing is admitted then (an agent never falls back to open, nor
    /// keeps a secret that was rotated away).
    secret: Option<Arc<[u8]>>,
    stamp: Option<Stamp>,
}

/// What tells a file changed: its modification time, length, inode and
/// mode (a `chmod` that makes it readable counts).
type Stamp = (Option<std::time::SystemTime>, u64, u64, u32);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let (ino, mode) = {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        (m.ino(), m.permissions().mode())
    };
    #[cfg(not(unix))]
    let (ino, mode) = (0, 0);
    Some((m.modified().ok(), m.len(), ino, mode))
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// The secret in `text` (surrounding whitespace, such as a file's final
/// newline, is not part of it).
fn secret(text: &str) -> Result<Arc<[u8]>, TokenError> {
    let t = text.trim();
    if t.len() < MIN_TOKEN_LEN {
        return Err(TokenError::TooShort { len: t.len() });
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::NotPrintable);
    }
    Ok(Arc::from(t.as_bytes()))
}

fn read_secret(path: &Path) -> Result<Arc<[u8]>, TokenError> {
    let text = std::fs::read_to_string(path).map_err(TokenError::Unreadable)?;
    secret(&text)
}

/// The warning for a token file other users may read (`mode`: its
/// permission bits), if they may.
fn loose_mode_warning(path: &Path, mode: u32) -> Option<String> {
    (mode & 0o077 != 0).then(|| {
        format!(
            "taskscope-agent: warning: the token file {} can be read by other users (mode {:04o}): chmod 600 it (Kubernetes: defaultMode: 0400 on the secret's volume)",
            path.display(),
            mode & 0o7777
        )
    })
}

/// The warning for the token file at `path` if other users may read it.
pub(crate) fn file_mode_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        let m = std::fs::metadata(path).ok()?;
        loose_mode_warning(
            path,
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()),
        )
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl Token {
    /// A fixed token from its text.
    pub fn new(text: &str) -> Result<Token, TokenError> {
        Ok(Token(Arc::new(Source::Fixed(secret(text)?))))
    }

    /// The token in the file at `path`, read again by [`Token::refresh`]
    /// when the file changed (the agent's server calls it every
    /// [`TOKEN_RECHECK`]). A file that cannot be read or holds no valid
    /// token now is an error (nothing is served); one that later does
    /// admits nothing until it holds a valid token again.
    pub(crate) fn from_file(path: &Path) -> Result<Token, TokenError> {
        let stamp = stamp(path);
        let secret = read_secret(path)?;
        Ok(Token(Arc::new(Source::File(FileToken {
            path: path.to_path_buf(),
            state: Mutex::new(FileState {
                secret: Some(secret),
                stamp,
            }),
        }))))
    }

    /// Whether an `authorization` header's value presents this token, in
    /// time that does not depend on where the two differ.
    pub(crate) fn admits(&self, header: Option<&[u8]>) -> bool {
        let Some(presented) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return false;
        };
        match &*self.0 {
            Source::Fixed(s) => constant_time_eq(presented, s),
            Source::File(f) => f.current().is_some_and(|s| constant_time_eq(presented, &s)),
        }
    }

    /// Whether this token follows a file (and wants [`Token::refresh`]).
    pub(crate) fn follows_a_file(&self) -> bool {
        matches!(&*self.0, Source::File(_))
    }

    /// Looks at the token file again and reads it if it changed; blocking
    /// file I/O, so off the server's thread. Nothing for a fixed token.
    /// Returns what the service's owner should hear of the change, if
    /// anything.
    pub(crate) fn refresh(&self) -> Option<String> {
        match &*self.0 {
            Source::File(f) => f.refresh(),
            Source::Fixed(_) => None,
        }
    }
}

impl FileToken {
    /// The secret in force (no I/O: a request never waits on the file).
    fn current(&self) -> Option<Arc<[u8]>> {
        self.state.lock().secret.clone()
    }

    fn refresh(&self) -> Option<String> {
        let now = stamp(&self.path);
        let was = {
            let st = self.state.lock();
            if now == st.stamp && now.is_some() {
                return None;
            }
            st.secret.is_some()
        };
        // Read without the lock held: requests go on meanwhile.
        let read = read_secret(&self.path);
        let said = match &read {
            Ok(_) => Some(format!(
                "taskscope-agent: the token file {} changed: its token is in force",
                self.path.display()
            )),
            Err(e) if was => Some(format!(
                "taskscope-agent: the token file {} changed and {e}: inspection is refused until it holds a token",
                self.path.display()
            )),
            Err(_) => None,
        };
        let mut st = self.state.lock();
        st.stamp = now;
        st.secret = read.ok();
        said
    }
}

/// Equal slices, compared without an early exit (the length is not
/// secret: a token's length is public in the docs' minimum anyway).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    // Keep the optimiser from turning the fold back into an early exit.
    std::hint::black_box(diff) == 0
}

/// What a listening agent serves to whom.
#[derive(Clone, Debug)]
pub struct Policy {
    pub token: Option<Token>,
    /// The agent listens on a loopback address or a Unix socket.
    pub local: bool,
}

/// Why an inspection request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A token is configured and the request did not present it.
    Unauthenticated,
    /// No token is configured and the agent listens beyond this host.
    ReadOnly,
}

impl Refusal {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => {
                "taskscope-agent: this needs the agent's token (taskscope connect --token-file FILE); only GET /metrics and the task profile's counts are open"
            }
            Refusal::ReadOnly => {
                "taskscope-agent: serving read-only (GET /metrics, GET /debug/pprof/tasks without stacks) on a non-loopback address without a token: set TASKSCOPE_TOKEN_FILE in the service to allow inspection to clients that present it"
            }
        }
    }
}

impl Policy {
    /// Whether an inspection request with this `authorization` header is
    /// served.
    pub fn inspect(&self, authorization: Option<&[u8]>) -> Result<(), Refusal> {
        match &self.token {
            Some(t) if t.admits(authorization) => Ok(()),
            Some(_) => Err(Refusal::Unauthenticated),
            None if self.local => Ok(()),
            None => Err(Refusal::ReadOnly),
        }
    }

    /// The line the agent prints when it starts listening, if any.
    pub(crate) fn announcement(&self, bound: &str) -> Option<String> {
        match (&self.token, self.local) {
            (None, false) => Some(format!(
                "taskscope-agent: serving read-only on {bound} (GET /metrics and /debug/pprof/tasks: counts per spawn location): inspection (tasks, waits, stacks, console data) is refused on a non-loopback address without a token; set TASKSCOPE_TOKEN_FILE to a file holding a secret of at least {MIN_TOKEN_LEN} characters to allow it to clients that present it (taskscope connect --token-file FILE)"
            )),
            (Some(_), _) => Some(format!(
                "taskscope-agent: serving on {bound}: GET /metrics and the task profile's counts to anyone, inspection and stacks to clients that present the token"
            )),
            (None, true) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_whole_and_short_ones_refused() {
        assert!(matches!(
            Token::new("short"),
            Err(TokenError::TooShort { len: 5 })
        ));
        assert!(matches!(
            Token::new("has a space in it, long enough"),
            Err(TokenError::NotPrintable)
        ));
        let t = Token::new("  0123456789abcdef\n").expect("token");
        assert!(t.admits(Some(b"Bearer 0123456789abcdef")));
        assert!(!t.admits(Some(b"Bearer 0123456789abcdeg")));
        assert!(!t.admits(Some(b"Bearer 0123456789abcde")));
        assert!(!t.admits(Some(b"Bearer 0123456789abcdef0")));
        assert!(!t.admits(Some(b"bearer 0123456789abcdef")));
        assert!(!t.admits(Some(b"0123456789abcdef")));
        assert!(!t.admits(None));
        assert_eq!(format!("{t:?}"), "Token(…)");
    }

    #[test]
    fn a_token_file_is_followed_as_it_changes_and_fails_closed() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        let path = dir.join("token");
        let write = |text: &str| {
            // A new file moved in place, as a rotated secret arrives.
            let tmp = dir.join("token.new");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        write("first-token-0123456789\n");
        let t = Token::from_file(&path).expect("token");
        assert!(t.follows_a_file());
        assert!(t.admits(Some(b"Bearer first-token-0123456789")));
        write("second-token-0123456789\n");
        // Until the file is looked at again, the last read holds.
        assert!(t.admits(Some(b"Bearer first-token-0123456789")));
        let said = t.refresh().expect("a change is said");
        assert!(said.contains("its token is in force"), "{said}");
        assert!(t.refresh().is_none(), "unchanged: nothing to say");
        assert!(
            !t.admits(Some(b"Bearer first-token-0123456789")),
            "rotated away"
        );
        assert!(t.admits(Some(b"Bearer second-token-0123456789")));
        write("short");
        let said = t.refresh().expect("a change is said");
        assert!(said.contains("inspection is refused"), "{said}");
        assert!(
            !t.admits(Some(b"Bearer second-token-0123456789")),
            "fails closed"
        );
        assert!(!t.admits(Some(b"Bearer short")));
        std::fs::remove_file(&path).unwrap();
        t.refresh();
        assert!(!t.admits(Some(b"Bearer second-token-0123456789")), "gone");
        write("third-token-0123456789");
        t.refresh();
        assert!(t.admits(Some(b"Bearer third-token-0123456789")), "back");
        #[cfg(unix)]
        {
            // Unreadable, then made readable by a chmod alone.
            use std::os::unix::fs::PermissionsExt;
            let is_root = std::fs::read_to_string("/proc/self/status")
                .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")));
            if !is_root {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
                t.refresh();
                assert!(
                    !t.admits(Some(b"Bearer third-token-0123456789")),
                    "unreadable"
                );
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
                t.refresh();
                assert!(t.admits(Some(b"Bearer third-token-0123456789")), "chmod");
            }
        }
        // A file that holds no token at the start serves nothing.
        write("short");
        assert!(Token::from_file(&path).is_err());
        assert!(matches!(
            Token::from_file(&dir.join("missing")),
            Err(TokenError::Unreadable(_))
        ));
    }

    #[test]
    fn a_token_file_others_may_read_is_warned_of() {
        let p = Path::new("/run/secrets/taskscope");
        assert!(loose_mode_warning(p, 0o100600).is_none());
        assert!(loose_mode_warning(p, 0o100400).is_none());
        let w = loose_mode_warning(p, 0o100644).expect("warned");
        assert!(
            w.contains("/run/secrets/taskscope") && w.contains("0644") && w.contains("chmod 600"),
            "{w}"
        );
        assert!(loose_mode_warning(p, 0o100640).is_some());
    }

    #[test]
    fn without_a_token_only_a_local_agent_is_inspected() {
        let local = Policy {
            token: None,
            local: true,
        };
        assert_eq!(local.inspect(None), Ok(()));
        assert!(local.announcement("127.0.0.1:6669").is_none());
        let exposed = Policy {
            token: None,
            local: false,
        };
        assert_eq!(exposed.inspect(None), Err(Refusal::ReadOnly));
        assert_eq!(
            exposed.inspect(Some(b"Bearer anything")),
            Err(Refusal::ReadOnly)
        );
        assert!(
            exposed
                .announcement("0.0.0.0:6669")
                .unwrap()
                .contains("read-only")
        );
        let token = Token::new("0123456789abcdef").unwrap();
        for local in [true, false] {
            let p = Policy {
                token: Some(token.clone()),
                local,
            };
            assert_eq!(p.inspect(None), Err(Refusal::Unauthenticated));
            assert_eq!(p.inspect(Some(b"Bearer 0123456789abcdef")), Ok(()));
        }
    }
}
