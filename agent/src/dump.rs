//! Frames as the wire carries them, and whether this build can capture
//! stacks at all. (The agent takes no whole-runtime dumps: see `capture`.)

use crate::proto::Frame;

/// Whether this build can capture tasks' stacks, and if not, why.
pub fn support() -> Result<(), &'static str> {
    #[cfg(taskdumps)]
    {
        Ok(())
    }
    #[cfg(not(taskdumps))]
    {
        Err(
            "capturing waits needs Linux on x86, x86_64, aarch64 or s390x and a build with --cfg tokio_unstable",
        )
    }
}

/// One frame as sent, without its symbol hash. Release builds name inlined
/// frames without their module path (`poll_elapsed`), so the source file
/// is what says which type a frame belongs to. Files inside the cargo
/// registry or the standard library keep only the part from the crate's
/// directory on (`tokio-1.54.1/src/time/sleep.rs`).
pub fn frame(name: &str, file: Option<&str>, line: Option<u32>) -> Frame {
    Frame {
        name: strip_hash(name),
        file: file.map(own_path).unwrap_or_default(),
        line: line.unwrap_or(0),
    }
}

/// A file of this crate as the published crate names it
/// (`taskscope-agent-0.1.0/src/server/mod.rs`), wherever it was built
/// from: the agent's own frames (its servers' connection loop) are a
/// library's to the viewer, not the service's own code.
fn own_path(file: &str) -> String {
    let here = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");
    match file.strip_prefix(here) {
        Some(rest) => format!("taskscope-agent-{}/src/{rest}", env!("CARGO_PKG_VERSION")),
        None => short_path(file).to_string(),
    }
}

fn short_path(file: &str) -> &str {
    // …/.cargo/registry/src/index.crates.io-…/tokio-1.54.1/src/… → tokio-1.54.1/src/…
    if let Some(i) = file.find("/registry/src/") {
        let rest = &file[i + "/registry/src/".len()..];
        return rest.split_once('/').map_or(rest, |(_, r)| r);
    }
    // …/.cargo/git/checkouts/tokio-…/abc123/tokio/src/… → tokio/src/…
    if let Some(i) = file.find("/git/checkouts/") {
        let rest = &file[i + "/git/checkouts/".len()..];
        let mut parts = rest.splitn(3, '/');
        let (_, _, r) = (parts.next(), parts.next(), parts.next());
        return r.unwrap_or(rest);
    }
    // /rustc/<hash>/library/core/… → library/core/…
    if let Some(i) = file.find("/library/") {
        return &file[i + 1..];
    }
    file
}

/// `foo::bar::h0123456789abcdef` → `foo::bar`.
fn strip_hash(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((head, tail)) if tail.len() == 16 && tail.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.to_string()
        }
        _ => name.to_string(),
    }
}

pub fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(f: Frame) -> (String, String, u32) {
        (f.name, f.file, f.line)
    }

    #[test]
    fn frames_carry_their_source_file() {
        assert_eq!(
            sent(frame(
                "poll_elapsed",
                Some(
                    "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/time/sleep.rs"
                ),
                Some(420)
            )),
            (
                "poll_elapsed".into(),
                "tokio-1.54.1/src/time/sleep.rs".into(),
                420
            )
        );
        assert_eq!(
            sent(frame(
                "poll",
                Some("/rustc/abc/library/core/src/future/mod.rs"),
                None
            )),
            ("poll".into(), "library/core/src/future/mod.rs".into(), 0)
        );
        assert_eq!(
            sent(frame(
                "app::f::hfedcba9876543210",
                Some("src/server.rs"),
                Some(9)
            )),
            ("app::f".into(), "src/server.rs".into(), 9)
        );
        assert_eq!(sent(frame("f", None, Some(1))), ("f".into(), "".into(), 1));
    }

    #[test]
    fn frames_lose_their_hashes() {
        assert_eq!(
            strip_hash("tokio::sync::notify::Notified::poll_notified::h0123456789abcdef"),
            "tokio::sync::notify::Notified::poll_notified"
        );
        assert_eq!(strip_hash("a::hello"), "a::hello");
        assert_eq!(strip_hash("a::hxyz"), "a::hxyz");
    }

    #[test]
    fn this_build_can_capture_or_says_why_not() {
        let built_for_it = cfg!(taskdumps);
        match support() {
            Ok(()) => assert!(built_for_it),
            Err(why) => assert!(!built_for_it && why.contains("Linux"), "{why}"),
        }
    }
}
