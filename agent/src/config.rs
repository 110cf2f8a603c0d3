//! The agent's configuration: one [`Builder`], whose settings come from
//! code or from the environment variables of the crate doc's table
//! ([`Builder::with_default_env`]), checked once, when the agent is built.

use crate::access::{Token, TokenError};
use crate::hooks::{Budget, SplitRules};
use crate::limits::Limits;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The environment variables [`Builder::with_default_env`] reads (the
/// crate doc's table names each: a test keeps the two together).
pub(crate) mod var {
    pub(crate) const BIND: &str = "TASKSCOPE_AGENT_BIND";
    pub(crate) const CONSOLE_BIND: &str = "TOKIO_CONSOLE_BIND";
    pub(crate) const TOKEN_FILE: &str = "TASKSCOPE_TOKEN_FILE";
    pub(crate) const TOKEN: &str = "TASKSCOPE_TOKEN";
    pub(crate) const CAPTURES_PER_SITE: &str = "TASKSCOPE_CAPTURES_PER_SITE";
    pub(crate) const CAPTURES_PER_ROUND: &str = "TASKSCOPE_CAPTURES_PER_ROUND";
    pub(crate) const METRICS_MAX_LOCATIONS: &str = "TASKSCOPE_METRICS_MAX_LOCATIONS";
    pub(crate) const SPLIT_SITES: &str = "TASKSCOPE_SPLIT_SITES";

    #[cfg(test)]
    pub(crate) const ALL: [&str; 8] = [
        BIND,
        CONSOLE_BIND,
        TOKEN_FILE,
        TOKEN,
        CAPTURES_PER_SITE,
        CAPTURES_PER_ROUND,
        METRICS_MAX_LOCATIONS,
        SPLIT_SITES,
    ];
}

/// Where the agent listens by default: loopback, taskscope's port.
const DEFAULT_BIND: ([u8; 4], u16) = ([127, 0, 0, 1], 6669);
/// The least time between two capture rounds a client can cause by
/// default (the server's own rounds, while someone watches, are once a
/// second).
const DEFAULT_MIN_INTERVAL: Duration = Duration::from_millis(250);
/// The most tasks a round may ask, per spawn location and in all.
const MAX_CAPTURES_PER_SITE: usize = 1024;
const MAX_CAPTURES_PER_ROUND: usize = 65_536;

/// Where the agent listens: a TCP address or a Unix socket.
///
/// Written (and read from `TASKSCOPE_AGENT_BIND`) as taskscope's
/// addresses are: `host:port`, or `file:///path` for a Unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAddr {
    /// A TCP address.
    Tcp(std::net::SocketAddr),
    /// A Unix socket's path (the agent makes it `0600`: the service's own
    /// user's only).
    #[cfg(unix)]
    Unix(PathBuf),
}

impl From<std::net::SocketAddr> for ServerAddr {
    fn from(a: std::net::SocketAddr) -> Self {
        ServerAddr::Tcp(a)
    }
}

#[cfg(unix)]
impl From<PathBuf> for ServerAddr {
    fn from(p: PathBuf) -> Self {
        ServerAddr::Unix(p)
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddr::Tcp(a) => write!(f, "{a}"),
            #[cfg(unix)]
            ServerAddr::Unix(p) => write!(f, "file://{}", p.display()),
        }
    }
}

impl ServerAddr {
    /// `host:port` (resolved: the first address), or `file:///path`.
    fn parse(s: &str) -> Option<ServerAddr> {
        if let Some(path) = s.strip_prefix("file://") {
            #[cfg(unix)]
            return (!path.is_empty()).then(|| ServerAddr::Unix(PathBuf::from(path)));
            #[cfg(not(unix))]
            return None;
        }
        std::net::ToSocketAddrs::to_socket_addrs(s)
            .ok()?
            .next()
            .map(ServerAddr::Tcp)
    }
}

#[cfg(feature = "console")]
impl From<ServerAddr> for console_subscriber::ServerAddr {
    fn from(a: ServerAddr) -> Self {
        match a {
            ServerAddr::Tcp(a) => console_subscriber::ServerAddr::Tcp(a),
            #[cfg(unix)]
            ServerAddr::Unix(p) => console_subscriber::ServerAddr::Unix(p),
        }
    }
}

/// Why an agent could not be built from its settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds a value it does not take.
    #[error("{var}={value:?}: expected {expected}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value (lossily decoded, if not UTF-8).
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// The inspection token is not one the agent accepts, or its file
    /// cannot be read. The agent never falls back to serving without it.
    #[error("{origin}: {source}")]
    Token {
        /// Where it was set: `TASKSCOPE_TOKEN_FILE=PATH`, `TASKSCOPE_TOKEN`,
        /// or in code.
        origin: String,
        /// What is wrong with it.
        #[source]
        source: TokenError,
    },
}

/// What the agent says to the service's owner (see
/// [`Builder::on_warning`]).
pub(crate) type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// Where the token comes from, read when the agent is built.
#[derive(Clone)]
enum TokenSetting {
    Text { origin: String, text: String },
    File { origin: String, path: PathBuf },
}

/// Settings for an [`Agent`](crate::Agent): where it listens, who may
/// inspect, how hard clients may push it, and where its warnings go.
///
/// Made by [`Agent::builder`](crate::Agent::builder) with every default;
/// [`with_default_env`](Builder::with_default_env) reads the environment
/// variables of the [crate doc's table](crate#environment), and the other
/// methods set one setting each. Settings are checked by
/// [`build`](Builder::build), which reads the token file, if any.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use taskscope_agent::{Agent, Limits};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let agent = Agent::builder()
///     .with_default_env()
///     .bind("0.0.0.0:6669".parse::<std::net::SocketAddr>()?)
///     .token_file("/run/secrets/taskscope")
///     .limits(Limits {
///         connections: 16,
///         ..Limits::default()
///     })
///     .min_interval(Duration::from_secs(1))
///     .build()?;
/// # let _ = agent;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until built"]
pub struct Builder {
    bind: ServerAddr,
    token: Option<TokenSetting>,
    limits: Limits,
    min_interval: Duration,
    budget: Budget,
    metrics_max_locations: usize,
    split: SplitRules,
    warn: Warn,
    /// The first environment variable whose value was not taken.
    env_error: Option<(&'static str, String, &'static str)>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            bind: std::net::SocketAddr::from(DEFAULT_BIND).into(),
            token: None,
            limits: Limits::default(),
            min_interval: DEFAULT_MIN_INTERVAL,
            budget: Budget::default(),
            metrics_max_locations: crate::metrics::DEFAULT_MAX_LOCATIONS,
            split: SplitRules::default(),
            warn: Arc::new(|w: &str| eprintln!("{w}")),
            env_error: None,
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token's text is a secret: only where it comes from.
        let token = self.token.as_ref().map(|t| match t {
            TokenSetting::Text { origin, .. } | TokenSetting::File { origin, .. } => origin,
        });
        f.debug_struct("Builder")
            .field("bind", &self.bind)
            .field("token", &token)
            .field("limits", &self.limits)
            .field("min_interval", &self.min_interval)
            .field("captures_per_site", &self.budget.per_site)
            .field("captures_per_round", &self.budget.total)
            .field("metrics_max_locations", &self.metrics_max_locations)
            .field("split_sites", &self.split)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Reads the environment variables of the [crate doc's
    /// table](crate#environment), each that is set replacing the setting
    /// made before this call; settings made after it replace the
    /// environment's. A value a variable does not take is reported by
    /// [`build`](Builder::build) (as console-subscriber's
    /// `with_default_env` would panic), naming the variable.
    pub fn with_default_env(self) -> Self {
        self.with_env(|name| std::env::var_os(name))
    }

    /// [`with_default_env`](Builder::with_default_env) over `lookup`.
    fn with_env(mut self, lookup: impl Fn(&str) -> Option<OsString>) -> Self {
        let mut read = |name: &'static str| -> Option<String> {
            let v = lookup(name)?;
            match v.into_string() {
                Ok(s) => Some(s),
                Err(v) => {
                    // A secret is never repeated in an error (the service
                    // prints it, or logs it).
                    let shown = match name {
                        var::TOKEN => "(the token, not shown)".to_string(),
                        _ => v.to_string_lossy().into_owned(),
                    };
                    self.env_error.get_or_insert((name, shown, "UTF-8 text"));
                    None
                }
            }
        };
        let bind = read(var::BIND)
            .map(|v| (var::BIND, v))
            .or_else(|| read(var::CONSOLE_BIND).map(|v| (var::CONSOLE_BIND, v)));
        let token = match read(var::TOKEN_FILE) {
            Some(path) => Some(TokenSetting::File {
                origin: format!("{}={path}", var::TOKEN_FILE),
                path: path.into(),
            }),
            None => read(var::TOKEN).map(|text| TokenSetting::Text {
                origin: var::TOKEN.into(),
                text,
            }),
        };
        let per_site = read(var::CAPTURES_PER_SITE).map(|v| (var::CAPTURES_PER_SITE, v));
        let per_round = read(var::CAPTURES_PER_ROUND).map(|v| (var::CAPTURES_PER_ROUND, v));
        let max_locations =
            read(var::METRICS_MAX_LOCATIONS).map(|v| (var::METRICS_MAX_LOCATIONS, v));
        let split = read(var::SPLIT_SITES);

        if let Some((name, v)) = bind {
            match ServerAddr::parse(v.trim()) {
                Some(a) => self.bind = a,
                None => self.env_invalid(name, v, "host:port or file:///path"),
            }
        }
        if token.is_some() {
            self.token = token;
        }
        let number = |(name, v): (&'static str, String)| match v.trim().parse::<usize>() {
            Ok(n) => Ok(n),
            Err(_) => Err((name, v, "a whole number")),
        };
        match per_site.map(number) {
            Some(Ok(n)) => self = self.captures_per_site(n),
            Some(Err((name, v, e))) => self.env_invalid(name, v, e),
            None => {}
        }
        match per_round.map(number) {
            Some(Ok(n)) => self = self.captures_per_round(n),
            Some(Err((name, v, e))) => self.env_invalid(name, v, e),
            None => {}
        }
        match max_locations.map(number) {
            Some(Ok(n)) => self = self.metrics_max_locations(n),
            Some(Err((name, v, e))) => self.env_invalid(name, v, e),
            None => {}
        }
        if let Some(spec) = split {
            self = self.split_sites(&spec);
        }
        self
    }

    fn env_invalid(&mut self, var: &'static str, value: String, expected: &'static str) {
        self.env_error.get_or_insert((var, value, expected));
    }

    /// Where [`Agent::serve`](crate::Agent::serve) listens. Default
    /// `127.0.0.1:6669` (`TASKSCOPE_AGENT_BIND`, else `TOKIO_CONSOLE_BIND`).
    ///
    /// Without a token, inspection is served on loopback addresses and
    /// Unix sockets only: on any other address the agent serves its
    /// read-only endpoints (`/metrics`, the task profile's counts) and
    /// says so when it starts.
    pub fn bind(mut self, addr: impl Into<ServerAddr>) -> Self {
        self.bind = addr.into();
        self
    }

    /// Requires `token` of every inspection request (every gRPC method:
    /// tasks, waits, stacks, console data; the task profile's stacks),
    /// wherever the agent listens, sent as `authorization: Bearer TOKEN`
    /// (`taskscope connect --token-file FILE`). `GET /metrics` and the
    /// task profile's counts stay open. At least 16 printable ASCII
    /// characters, no spaces (surrounding whitespace is not part of it).
    /// Replaces a [`token_file`](Builder::token_file) set before.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(TokenSetting::Text {
            origin: "the token set in code".into(),
            text: token.into(),
        });
        self
    }

    /// As [`token`](Builder::token), with the token read from the file at
    /// `path` when the agent is built, and read again within 5 s of each
    /// change (a rotated secret: the old token is refused from then on;
    /// a file that no longer holds a valid token admits nothing). A file
    /// other users may read is warned of. Default: `TASKSCOPE_TOKEN_FILE`,
    /// else `TASKSCOPE_TOKEN` (the token itself), else none.
    pub fn token_file(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.token = Some(TokenSetting::File {
            origin: format!("the token file {}", path.display()),
            path,
        });
        self
    }

    /// Bounds on the agent's clients: connections at once and per peer,
    /// and how long a connection may stay silent. See [`Limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The least time between two capture rounds a client can cause
    /// (a request for waits, a task profile's scrape); requests in
    /// between are answered with the captures that hold. Default 250 ms.
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// How many tasks of one spawn location a capture round asks at most.
    /// Default 64 (`TASKSCOPE_CAPTURES_PER_SITE`); at most 1 024.
    pub fn captures_per_site(mut self, tasks: usize) -> Self {
        self.budget.per_site = tasks.min(MAX_CAPTURES_PER_SITE);
        self
    }

    /// How many tasks a capture round asks at most, in all. Default 1 024
    /// (`TASKSCOPE_CAPTURES_PER_ROUND`); at most 65 536.
    pub fn captures_per_round(mut self, tasks: usize) -> Self {
        self.budget.total = tasks.min(MAX_CAPTURES_PER_ROUND);
        self
    }

    /// How many spawn locations get `/metrics` series of their own: the
    /// first ones seen keep theirs for the life of the process, and any
    /// further ones are summed under `location="other"`. Default 1 000
    /// (`TASKSCOPE_METRICS_MAX_LOCATIONS`).
    pub fn metrics_max_locations(mut self, locations: usize) -> Self {
        self.metrics_max_locations = locations;
        self
    }

    /// Lines of the service's own that spawn on others' behalf (a helper
    /// around `tokio::spawn`): their tasks are counted per spawning task's
    /// site (`LINE ← SPAWNER`) rather than all at the helper's line.
    /// `spec` is comma-separated `FILE` or `FILE:LINE`, `FILE` matched as
    /// a path suffix (`src/spawn.rs,src/pool.rs:88`). Default none
    /// (`TASKSCOPE_SPLIT_SITES`); hyper's and hyper-util's executor lines
    /// and the agent's own are always split.
    pub fn split_sites(mut self, spec: &str) -> Self {
        self.split = SplitRules::parse(spec);
        self
    }

    /// Where the agent's warnings go: a line each, starting
    /// `taskscope-agent:` (it listens read-only; the token file can be read
    /// by other users, or changed; its server failed; [`run`](crate::run)
    /// is not serving). The agent prints nothing else.
    ///
    /// By default each line goes to the process's standard error. Pass a
    /// function that logs it, or drops it.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = taskscope_agent::Agent::builder().on_warning(|line| {
    ///     // e.g. tracing::warn!("{line}"), or log::warn!
    ///     let _ = line;
    /// });
    /// # let _ = builder;
    /// ```
    pub fn on_warning(mut self, warn: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.warn = Arc::new(warn);
        self
    }

    /// The settings checked, the token read.
    pub(crate) fn config(self) -> Result<Config, ConfigError> {
        if let Some((var, value, expected)) = self.env_error {
            return Err(ConfigError::Env {
                var,
                value,
                expected,
            });
        }
        let token = match self.token {
            None => None,
            Some(TokenSetting::Text { origin, text }) => {
                Some(Token::new(&text).map_err(|source| ConfigError::Token { origin, source })?)
            }
            Some(TokenSetting::File { origin, path }) => {
                let t = Token::from_file(&path)
                    .map_err(|source| ConfigError::Token { origin, source })?;
                if let Some(w) = crate::access::file_mode_warning(&path) {
                    (self.warn)(&w);
                }
                Some(t)
            }
        };
        Ok(Config {
            bind: self.bind,
            token,
            limits: self.limits,
            min_interval: self.min_interval,
            budget: self.budget,
            metrics_max_locations: self.metrics_max_locations,
            split: self.split,
            warn: self.warn,
        })
    }
}

/// The settings of a built agent.
pub(crate) struct Config {
    pub(crate) bind: ServerAddr,
    pub(crate) token: Option<Token>,
    pub(crate) limits: Limits,
    pub(crate) min_interval: Duration,
    pub(crate) budget: Budget,
    pub(crate) metrics_max_locations: usize,
    /// Read when the hooks are installed (`--cfg tokio_unstable` only).
    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) split: SplitRules,
    pub(crate) warn: Warn,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| vars.get(k).cloned()
    }

    fn config(b: Builder) -> Config {
        b.config().expect("config")
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let c = config(Builder::default().with_env(env(&[])));
        assert_eq!(c.bind.to_string(), "127.0.0.1:6669");
        assert!(c.token.is_none());
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.min_interval, Duration::from_millis(250));
        assert_eq!((c.budget.per_site, c.budget.total), (64, 1024));
        assert_eq!(c.metrics_max_locations, 1000);
    }

    #[test]
    fn every_variable_is_read_and_the_agent_s_own_bind_wins() {
        let c = config(Builder::default().with_env(env(&[
            (var::BIND, "127.0.0.1:7000"),
            (var::CONSOLE_BIND, "127.0.0.1:7001"),
            (var::TOKEN, "0123456789abcdef"),
            (var::CAPTURES_PER_SITE, " 8 "),
            (var::CAPTURES_PER_ROUND, "100000"),
            (var::METRICS_MAX_LOCATIONS, "10"),
            (var::SPLIT_SITES, "src/spawn.rs"),
        ])));
        assert_eq!(c.bind.to_string(), "127.0.0.1:7000");
        assert!(
            c.token
                .is_some_and(|t| t.admits(Some(b"Bearer 0123456789abcdef")))
        );
        // Clamped to the most a round may ask.
        assert_eq!((c.budget.per_site, c.budget.total), (8, 65_536));
        assert_eq!(c.metrics_max_locations, 10);
        assert!(format!("{:?}", c.split).contains("src/spawn.rs"));
        let c = config(Builder::default().with_env(env(&[(var::CONSOLE_BIND, "127.0.0.1:7001")])));
        assert_eq!(c.bind.to_string(), "127.0.0.1:7001");
    }

    #[cfg(unix)]
    #[test]
    fn a_unix_socket_is_written_as_a_file_url() {
        let c = config(Builder::default().with_env(env(&[(var::BIND, "file:///tmp/agent.sock")])));
        assert_eq!(c.bind, ServerAddr::Unix("/tmp/agent.sock".into()));
        assert_eq!(c.bind.to_string(), "file:///tmp/agent.sock");
    }

    #[test]
    fn a_value_a_variable_does_not_take_is_an_error_naming_it() {
        for (name, value) in [
            (var::CAPTURES_PER_SITE, "lots"),
            (var::METRICS_MAX_LOCATIONS, "-1"),
            (var::BIND, "not an address"),
        ] {
            let e = Builder::default()
                .with_env(env(&[(name, value)]))
                .config()
                .err()
                .expect("an error");
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("{name}=\"{value}\": expected ")),
                "{text}"
            );
        }
    }

    #[test]
    fn settings_made_after_the_environment_replace_it() {
        let vars = env(&[(var::CAPTURES_PER_SITE, "8"), (var::TOKEN, "short")]);
        let c = config(
            Builder::default()
                .with_env(vars)
                .captures_per_site(3)
                .token("0123456789abcdef"),
        );
        assert_eq!(c.budget.per_site, 3);
        let vars = env(&[(var::CAPTURES_PER_SITE, "8")]);
        let c = config(Builder::default().captures_per_site(3).with_env(vars));
        assert_eq!(c.budget.per_site, 8);
    }

    #[test]
    fn a_token_that_cannot_serve_is_an_error_that_says_where_it_was_set() {
        let e = Builder::default()
            .with_env(env(&[(var::TOKEN, "short")]))
            .config()
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            "TASKSCOPE_TOKEN: the token is 5 bytes long; at least 16 are needed"
        );
        // The file wins over the token itself, and a missing one serves
        // nothing.
        let e = Builder::default()
            .with_env(env(&[
                (var::TOKEN_FILE, "/nonexistent/taskscope-token"),
                (var::TOKEN, "0123456789abcdef"),
            ]))
            .config()
            .err()
            .expect("refused");
        assert!(
            e.to_string()
                .starts_with("TASKSCOPE_TOKEN_FILE=/nonexistent/taskscope-token: cannot read it"),
            "{e}"
        );
        let e = Builder::default()
            .token("has a space in it, long enough")
            .config()
            .err()
            .expect("refused");
        assert!(e.to_string().starts_with("the token set in code: "), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_token_that_is_not_text_is_refused_without_being_shown() {
        use std::os::unix::ffi::OsStringExt;
        let secret = b"secret-token-\xff-0123456789".to_vec();
        let e = Builder::default()
            .with_env(move |name| (name == var::TOKEN).then(|| OsString::from_vec(secret.clone())))
            .config()
            .err()
            .expect("refused");
        let said = e.to_string();
        assert!(said.starts_with("TASKSCOPE_TOKEN="), "{said}");
        assert!(
            !said.contains("secret-token"),
            "the token is not repeated: {said}"
        );
    }

    #[test]
    fn a_token_file_others_may_read_is_warned_of_once_built() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        let said = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
        let heard = said.clone();
        let c = config(
            Builder::default()
                .token_file(&path)
                .on_warning(move |w| heard.lock().push(w.to_string())),
        );
        assert!(c.token.is_some_and(|t| t.follows_a_file()));
        #[cfg(unix)]
        assert!(
            said.lock().iter().any(|w| w.contains("chmod 600")),
            "{:?}",
            said.lock()
        );
    }

    #[test]
    fn the_debug_form_never_shows_the_token() {
        let b = Builder::default().token("0123456789abcdef");
        let shown = format!("{b:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("the token set in code"), "{shown}");
    }

    /// One table: the crate doc names every variable read here.
    #[test]
    fn the_crate_doc_s_table_names_every_variable() {
        let doc = include_str!("../README.md");
        for name in var::ALL {
            assert!(
                doc.lines().any(|l| l.starts_with(&format!("| `{name}`"))),
                "{name} is not in the README's environment table"
            );
        }
    }
}
