//! Connection failures, described so a person knows what to check.

use std::error::Error as StdError;
use std::io;

/// Why a connection attempt or stream failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    #[error(
        "connection refused by {0}: is the target running with console-subscriber on that port?"
    )]
    Refused(String),
    #[error("nothing listens at {0}: is the target's console serving on that socket?")]
    NoSocket(String),
    #[error("cannot resolve {0}: check the host name")]
    Resolve(String),
    #[error("no answer from {0} within {1}s: wrong host, a firewall, or a stalled target")]
    Timeout(String, u64),
    #[error("{0} is not a tokio-console endpoint (it does not speak gRPC): check the port")]
    NotGrpc(String),
    #[error("{0} speaks gRPC but is not a tokio-console endpoint (no Instrument service)")]
    NotConsole(String),
    #[error(
        "an update from {target} was {size} bytes, over the limit of {limit} bytes: raise {flag}"
    )]
    TooLarge {
        target: String,
        size: String,
        limit: String,
        /// The flag that sets the limit (console-subscriber's updates, or
        /// taskscope-agent's messages).
        flag: &'static str,
    },
    #[error("stream from {0} broke: {1}")]
    Broken(String, String),
    /// The agent refused inspection (no token, or not its token): retrying
    /// cannot help.
    #[error("{0} refused to be inspected: {1}")]
    NotAllowed(String, String),
    #[error("cannot connect to {0}: {1}")]
    Other(String, String),
}

impl ConnError {
    /// A failure no retry can mend (the agent refused this client).
    pub fn is_permanent(&self) -> bool {
        matches!(self, ConnError::NotAllowed(..))
    }

    /// Classifies a failure to open the channel.
    pub fn from_transport(target: &str, err: &tonic::transport::Error) -> ConnError {
        classify_io(target, err).unwrap_or_else(|| {
            ConnError::Other(
                target.into(),
                crate::text::sanitize(&chain(err), MAX_REASON),
            )
        })
    }

    /// The same failure of a call to taskscope-agent (the hooks source),
    /// whose messages have their own size limit.
    pub fn for_agent(self) -> ConnError {
        match self {
            ConnError::TooLarge {
                target,
                size,
                limit,
                ..
            } => ConnError::TooLarge {
                target,
                size,
                limit,
                flag: "--max-agent-message-size",
            },
            e => e,
        }
    }

    /// Classifies a failed call or a failed stream message.
    pub fn from_status(target: &str, status: &tonic::Status, mid_stream: bool) -> ConnError {
        use tonic::Code;
        let msg = status.message();
        if status.code() == Code::OutOfRange && msg.contains("message length too large") {
            let (size, limit) = parse_too_large(msg);
            return ConnError::TooLarge {
                target: target.into(),
                size,
                limit,
                flag: "--max-message-size",
            };
        }
        if status.code() == Code::Unimplemented {
            return ConnError::NotConsole(target.into());
        }
        if matches!(
            status.code(),
            Code::Unauthenticated | Code::PermissionDenied
        ) {
            return ConnError::NotAllowed(target.into(), short_reason(status));
        }
        if let Some(e) = classify_io(target, status) {
            return e;
        }
        if mid_stream {
            return ConnError::Broken(target.into(), short_reason(status));
        }
        match status.code() {
            // An HTTP/1 server or other non-gRPC peer: hyper sees the stream
            // closed or a protocol error before any gRPC response.
            Code::Unknown | Code::Cancelled | Code::Internal | Code::Unavailable => {
                ConnError::NotGrpc(target.into())
            }
            _ => ConnError::Other(target.into(), short_reason(status)),
        }
    }
}

/// Longest target-supplied text kept in an error or warning.
pub const MAX_REASON: usize = 300;

/// A status's text (the target's words) made inert for a terminal.
fn short_reason(status: &tonic::Status) -> String {
    crate::text::sanitize(&raw_reason(status), MAX_REASON)
}

fn raw_reason(status: &tonic::Status) -> String {
    let mut s = status.message().to_string();
    if let Some(src) = status.source() {
        let tail = chain(src);
        if !tail.is_empty() && !s.contains(&tail) {
            s = format!("{s}: {tail}");
        }
    }
    if s.is_empty() {
        format!("{:?}", status.code())
    } else {
        s
    }
}

/// Messages of an error and its sources, deduplicated, joined with ": ".
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let m = e.to_string();
        if !m.is_empty() && !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = e.source();
    }
    parts.join(": ")
}

fn classify_io(target: &str, err: &(dyn StdError + 'static)) -> Option<ConnError> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(match io.kind() {
                io::ErrorKind::ConnectionRefused if target.starts_with("file://") => {
                    ConnError::NoSocket(target.into())
                }
                io::ErrorKind::ConnectionRefused => ConnError::Refused(target.into()),
                io::ErrorKind::NotFound => ConnError::NoSocket(target.into()),
                io::ErrorKind::TimedOut => ConnError::Timeout(target.into(), 0),
                io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::UnexpectedEof => {
                    return None;
                }
                _ => {
                    let m = io.to_string();
                    if m.contains("failed to lookup") || m.contains("Name or service not known") {
                        ConnError::Resolve(target.into())
                    } else {
                        ConnError::Other(target.into(), crate::text::sanitize(&m, MAX_REASON))
                    }
                }
            });
        }
        let m = e.to_string();
        if m.contains("dns error") || m.contains("failed to lookup address") {
            return Some(ConnError::Resolve(target.into()));
        }
        cur = e.source();
    }
    None
}

/// "found 16214347 bytes, the limit is: 4194304 bytes" → sizes as text.
fn parse_too_large(msg: &str) -> (String, String) {
    let nums: Vec<&str> = msg
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    match nums.as_slice() {
        [size, limit, ..] => (size.to_string(), limit.to_string()),
        _ => ("?".into(), "?".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_names_the_limit() {
        let st = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 16214347 bytes, the limit is: 4194304 bytes",
        );
        let e = ConnError::from_status("h:1", &st, true);
        assert_eq!(
            e.to_string(),
            "an update from h:1 was 16214347 bytes, over the limit of 4194304 bytes: raise --max-message-size"
        );
    }

    #[test]
    fn unimplemented_is_not_console() {
        let e = ConnError::from_status("h:1", &tonic::Status::unimplemented(""), false);
        assert_eq!(e, ConnError::NotConsole("h:1".into()));
    }

    #[test]
    fn unknown_before_stream_is_not_grpc() {
        let e = ConnError::from_status("h:1", &tonic::Status::unknown("transport error"), false);
        assert_eq!(e, ConnError::NotGrpc("h:1".into()));
        let e = ConnError::from_status("h:1", &tonic::Status::unknown("h2 protocol error"), true);
        assert!(matches!(e, ConnError::Broken(..)));
    }
}
