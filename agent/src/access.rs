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
//!   [`crate::Agent::set_token`]), only requests that carry it
//!   (`authorization: Bearer TOKEN`, compared in constant time) get it,
//!   wherever the agent listens. Without one, it is served on a loopback
//!   address or a Unix socket (development as easy as before) and refused
//!   on any other address, which then serves read-only only and says so
//!   when it starts.

use std::sync::Arc;

/// Tokens shorter than this are refused: a guessable token is no lock.
pub const MIN_TOKEN_LEN: usize = 16;

/// A shared secret, kept out of `Debug` output.
#[derive(Clone)]
pub struct Token(Arc<[u8]>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// A token from its text (surrounding whitespace, such as a file's
    /// final newline, is not part of it).
    pub fn new(text: &str) -> Result<Token, String> {
        let t = text.trim();
        if t.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the token is {} bytes long; at least {MIN_TOKEN_LEN} are needed",
                t.len()
            ));
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".into());
        }
        Ok(Token(Arc::from(t.as_bytes())))
    }

    /// The token from `TASKSCOPE_TOKEN_FILE` (a file holding it), else
    /// `TASKSCOPE_TOKEN`; `Ok(None)` when neither is set.
    pub fn from_env() -> Result<Option<Token>, String> {
        if let Some(path) = std::env::var_os("TASKSCOPE_TOKEN_FILE") {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "TASKSCOPE_TOKEN_FILE={}: cannot read it: {e}",
                    std::path::Path::new(&path).display()
                )
            })?;
            return Token::new(&text)
                .map(Some)
                .map_err(|e| format!("TASKSCOPE_TOKEN_FILE: {e}"));
        }
        match std::env::var("TASKSCOPE_TOKEN") {
            Ok(t) => Token::new(&t)
                .map(Some)
                .map_err(|e| format!("TASKSCOPE_TOKEN: {e}")),
            Err(_) => Ok(None),
        }
    }

    /// Whether an `authorization` header's value presents this token, in
    /// time that does not depend on where the two differ.
    pub fn admits(&self, header: Option<&[u8]>) -> bool {
        let Some(presented) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return false;
        };
        constant_time_eq(presented, &self.0)
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
    pub fn message(self) -> &'static str {
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
    pub fn announcement(&self, bound: &str) -> Option<String> {
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
        assert!(Token::new("short").is_err());
        assert!(Token::new("has a space in it, long enough").is_err());
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
