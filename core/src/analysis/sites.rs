//! Spawn sites taskscope knows: the lines inside libraries where servers
//! and clients spawn their own tasks (axum's and tonic's connection tasks,
//! hyper-util's executor that runs reqwest's pooled connections and
//! HTTP/2 streams). A group at such a site is out of the agent's reach
//! (the library spawned its tasks itself, unwrapped), so its waits are not
//! captured; what the site is, how to reach it and, where the library's
//! shape says it, what its idle tasks wait on (marked inferred, never `*`)
//! come from here.

use super::reason::Reason;
use taskscope_proto::names::unsplit_location;

/// What taskscope knows of a library's spawn site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownSite {
    /// What the tasks are: "axum server connections".
    pub what: &'static str,
    /// How to make their waits exact.
    pub reach: &'static str,
    /// What an idle task of the site waits on, by the library's shape
    /// (inferred), when it has one.
    pub shape: Option<Reason>,
}

/// axum's `serve`: one task per connection.
const AXUM: KnownSite = KnownSite {
    what: "axum server connections",
    reach: "serve with taskscope_agent::axum::serve (a one-line drop-in for axum::serve)",
    shape: Some(Reason::RequestRead),
};

/// tonic's `Server::serve*`: one task per connection.
const TONIC: KnownSite = KnownSite {
    what: "tonic server connections",
    reach: "serve with taskscope_agent::tonic::serve (a drop-in for tonic's Server::serve)",
    shape: Some(Reason::RequestRead),
};

/// hyper-util's `TokioExecutor` spawning for a user's task: the pooled
/// connections of hyper-util's client (reqwest's, or one built directly).
const CLIENT: KnownSite = KnownSite {
    what: "HTTP client connections (hyper-util's pool, as reqwest's)",
    reach: "reqwest spawns them itself; a hyper-util client built with taskscope_agent::TracedExecutor::new() is reachable",
    shape: Some(Reason::ResponseRead),
};

const AXUM_STREAMS: KnownSite = KnownSite {
    what: "HTTP/2 streams of axum connections",
    reach: "serve with taskscope_agent::axum::serve",
    shape: None,
};

const TONIC_STREAMS: KnownSite = KnownSite {
    what: "gRPC calls of tonic connections",
    reach: "serve with taskscope_agent::tonic::serve",
    shape: None,
};

/// tonic's client channel: its connection and its buffer worker.
const TONIC_CHANNEL: KnownSite = KnownSite {
    what: "tonic client channel tasks",
    reach: "give the endpoint taskscope_agent::TracedExecutor::new() (Endpoint::executor)",
    shape: None,
};

/// The known site a group's place names, if any: its location, or for a
/// place split by spawner, the executor's line and who spawned through it.
pub fn known(place: &str) -> Option<KnownSite> {
    let (at, spawner) = unsplit_location(place);
    let file = at.split(':').next().unwrap_or(at);
    if in_crate(file, "axum", "src/serve/mod.rs") {
        return Some(AXUM);
    }
    if in_crate(file, "tonic", "src/transport/server/mod.rs") {
        return Some(TONIC);
    }
    if in_crate(file, "tonic", "src/transport/channel/") || in_crate(file, "tower", "src/buffer/") {
        return Some(TONIC_CHANNEL);
    }
    if in_crate(file, "hyper-util", "src/rt/tokio.rs") {
        let by = spawner.map(|s| s.split(':').next().unwrap_or(s));
        return Some(match by {
            Some(s) if in_crate(s, "axum", "src/serve/mod.rs") => AXUM_STREAMS,
            Some(s) if in_crate(s, "tonic", "src/transport/server/mod.rs") => TONIC_STREAMS,
            Some(s) if in_crate(s, "tonic", "src/transport/channel/") => TONIC_CHANNEL,
            _ => CLIENT,
        });
    }
    None
}

/// Whether `file` (as the target names it: `axum-0.8.9/src/serve/mod.rs`,
/// or a full path into the cargo registry) is `rest` inside crate `krate`;
/// a `rest` ending in `/` names a directory.
fn in_crate(file: &str, krate: &str, rest: &str) -> bool {
    let Some(i) = file.find(&format!("/{rest}")).or_else(|| {
        // At the start of a shortened path: `axum-0.8.9/src/…`.
        file.find(rest)
            .filter(|&i| i > 0 && file[..i].ends_with('/'))
    }) else {
        return false;
    };
    let dir = file[..i].trim_end_matches('/');
    let last = dir.rsplit('/').next().unwrap_or(dir);
    last == krate
        || last
            .strip_prefix(krate)
            .and_then(|v| v.strip_prefix('-'))
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_sites_are_known_by_their_file() {
        assert_eq!(known("axum-0.8.9/src/serve/mod.rs:389:5"), Some(AXUM));
        assert_eq!(
            known("/root/.cargo/registry/src/index.crates.io-x/axum-0.8.9/src/serve/mod.rs:389:5"),
            Some(AXUM)
        );
        assert_eq!(
            known("tonic-0.14.5/src/transport/server/mod.rs:925:5"),
            Some(TONIC)
        );
        assert_eq!(known("src/serve/mod.rs:1:1"), None);
        assert_eq!(known("axum-extra-0.10.0/src/serve/mod.rs:1:1"), None);
        assert_eq!(known("src/main.rs:12:5"), None);
    }

    #[test]
    fn the_executors_line_is_known_by_who_spawned_through_it() {
        let split = |by: &str| {
            taskscope_proto::names::split_location("hyper-util-0.1.21/src/rt/tokio.rs:127:9", by)
        };
        assert_eq!(known(&split("src/fetch.rs:40:5")), Some(CLIENT));
        assert_eq!(known(&split("")), Some(CLIENT));
        assert_eq!(
            known(&split("axum-0.8.9/src/serve/mod.rs:389:5")),
            Some(AXUM_STREAMS)
        );
        assert_eq!(
            known(&split("tonic-0.14.5/src/transport/server/mod.rs:925:5")),
            Some(TONIC_STREAMS)
        );
        // Not split (an agent before splits): still an executor's line.
        assert_eq!(
            known("hyper-util-0.1.21/src/rt/tokio.rs:127:9"),
            Some(CLIENT)
        );
    }
}
