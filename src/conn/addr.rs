//! Target addresses as users type them.

use std::fmt;

/// The console-subscriber default port.
pub const DEFAULT_PORT: u16 = 6669;

/// Where the target's console server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `http://host:port`, as tonic wants it.
    pub uri: String,
    /// `host:port` (or `file:///path`), as people read it.
    pub display: String,
    /// A Unix socket to connect to instead of TCP.
    pub unix: Option<std::path::PathBuf>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddrError {
    #[error("empty address: give HOST:PORT, e.g. 127.0.0.1:6669")]
    Empty,
    #[error("invalid port {port:?} in {addr:?}: expected a number from 1 to 65535")]
    BadPort { addr: String, port: String },
    #[error("unsupported scheme in {0:?}: use HOST:PORT, http://HOST:PORT or file:///PATH")]
    Scheme(String),
    #[error("invalid address {0:?}: expected HOST:PORT, http://HOST:PORT or [IPv6]:PORT")]
    Malformed(String),
}

impl Target {
    /// Parses `host`, `host:port`, `http://host:port`, `[::1]:port`, and
    /// `file:///path` (or `unix:/path`) for a Unix socket.
    pub fn parse(input: &str) -> Result<Target, AddrError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AddrError::Empty);
        }
        let unix = s
            .strip_prefix("file://")
            .or_else(|| s.strip_prefix("unix:"));
        if let Some(path) = unix {
            if !path.starts_with('/') {
                return Err(AddrError::Malformed(s.to_string()));
            }
            return Ok(Target {
                uri: "http://localhost".into(),
                display: format!("file://{path}"),
                unix: Some(path.into()),
            });
        }
        let rest = match s.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) | Some(_) => return Err(AddrError::Scheme(s.to_string())),
            None => s,
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.chars().any(char::is_whitespace) {
            return Err(AddrError::Malformed(s.to_string()));
        }
        let (host, port) =
            split_host_port(rest).ok_or_else(|| AddrError::Malformed(s.to_string()))?;
        if host.is_empty() {
            return Err(AddrError::Malformed(s.to_string()));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(AddrError::BadPort {
                        addr: s.to_string(),
                        port: p.to_string(),
                    });
                }
            },
        };
        let host_part = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Ok(Target {
            uri: format!("http://{host_part}:{port}"),
            display: format!("{host_part}:{port}"),
            unix: None,
        })
    }
}

/// Splits `host:port`, `[v6]:port`, `[v6]`, `host`.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(inner) = s.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            a => Some((host, Some(a.strip_prefix(':')?))),
        };
    }
    match s.matches(':').count() {
        0 => Some((s, None)),
        1 => s.split_once(':').map(|(h, p)| (h, Some(p))),
        // A bare IPv6 address without brackets and without a port.
        _ => Some((s, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        Target::parse(s)
            .map(|t| t.uri)
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(ok("127.0.0.1:6669"), "http://127.0.0.1:6669");
        assert_eq!(ok("localhost"), "http://localhost:6669");
        assert_eq!(ok("http://host:7000/"), "http://host:7000");
        assert_eq!(ok("[::1]:6669"), "http://[::1]:6669");
        assert_eq!(ok("[::1]"), "http://[::1]:6669");
        assert_eq!(ok("::1"), "http://[::1]:6669");
        let u = Target::parse("file:///run/app/console.sock").map(|t| (t.display, t.unix));
        assert_eq!(
            u,
            Ok((
                "file:///run/app/console.sock".into(),
                Some("/run/app/console.sock".into())
            ))
        );
        assert!(matches!(
            Target::parse("file://relative"),
            Err(AddrError::Malformed(_))
        ));
    }

    #[test]
    fn rejected_forms() {
        assert_eq!(Target::parse(""), Err(AddrError::Empty));
        assert!(matches!(
            Target::parse("host:notaport"),
            Err(AddrError::BadPort { .. })
        ));
        assert!(matches!(
            Target::parse("host:0"),
            Err(AddrError::BadPort { .. })
        ));
        assert!(matches!(
            Target::parse("host:70000"),
            Err(AddrError::BadPort { .. })
        ));
        assert!(matches!(
            Target::parse("https://h:1"),
            Err(AddrError::Scheme(_))
        ));
        assert!(matches!(
            Target::parse("h:1/path"),
            Err(AddrError::Malformed(_))
        ));
        assert!(matches!(
            Target::parse(":6669"),
            Err(AddrError::Malformed(_))
        ));
    }
}
