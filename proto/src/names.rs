//! Frame names for people and for tools that show one name per function
//! (pprof, Pyroscope): the same rule in the agent's task profiles and the
//! viewer's.

/// The name without generic arguments; `<T as Trait>::m` becomes `T::m`,
/// `{{closure}}` becomes `{closure}`.
pub fn plain(name: &str) -> String {
    let mut s = name.to_string();
    if let Some(rest) = s.strip_prefix('<')
        && let Some((ty, _)) = rest.split_once(" as ")
        && let Some((_, method)) = rest.rsplit_once(">::")
    {
        s = format!("{ty}::{method}");
    }
    let mut out = String::with_capacity(s.len());
    let mut depth = 0u32;
    for c in s.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.replace("{{closure}}", "{closure}")
}

/// The name of a split place (a generic executor's line, counted per
/// spawner: see the agent's `GroupRow::split`): `LOCATION ← SPAWNER`, or
/// `LOCATION ← (outside tasks)` for tasks spawned outside any task. The
/// agent's `/metrics` and task profile and the viewer name it alike.
pub fn split_location(location: &str, spawner: &str) -> String {
    if spawner.is_empty() {
        format!("{location} {SPLIT_MARK} {OUTSIDE_TASKS}")
    } else {
        format!("{location} {SPLIT_MARK} {spawner}")
    }
}

/// What separates a split place's line from its spawner's.
pub const SPLIT_MARK: &str = "←";
/// A split place's spawner when its tasks were spawned outside any task.
pub const OUTSIDE_TASKS: &str = "(outside tasks)";

/// A split place's name cut into its line and its spawner (`None`: not a
/// split place's name).
pub fn unsplit_location(name: &str) -> (&str, Option<&str>) {
    match name.split_once(&format!(" {SPLIT_MARK} ")) {
        Some((at, by)) => (at, Some(by)),
        None => (name, None),
    }
}

/// Whether a frame only watches whether the other side is still there: a
/// oneshot or mpsc `Sender::closed` / `poll_closed`, hyper's
/// `poll_canceled`, a `CancellationToken`'s `cancelled()`. Raced against
/// the real work (hyper's client connection reads a socket while it
/// watches its caller's `poll_closed`), such a leaf is not what the task
/// waits on; the agent's profiles and the viewer both pass it over.
pub fn is_cancellation_watch(name: &str, file: Option<&str>) -> bool {
    const WATCHES: [&str; 5] = [
        "closed",
        "poll_closed",
        "poll_canceled",
        "cancelled",
        "cancelled_owned",
    ];
    let raw = name;
    let name = plain(name);
    // The last segment that names a function (an async fn's body is a
    // closure of it: `Sender::closed::{closure}`).
    let last = name
        .rsplit("::")
        .find(|s| !s.starts_with('{'))
        .unwrap_or(&name);
    // Release builds name an inlined async fn `{async_fn#0}`; the frames
    // around it name it in their generic arguments
    // (`poll<…::closed::{async_fn#0}…>`).
    WATCHES.contains(&last)
        || WATCHES
            .iter()
            .any(|w| raw.contains(&format!("::{w}::{{async_fn")))
        || name.contains("WaitForCancellationFuture")
        || file.is_some_and(|file| file.contains("/sync/cancellation_token"))
}

/// A frame's function with its module, without generics: `poll<u64>` in
/// `tokio-1.54.1/src/sync/oneshot.rs` → `tokio::sync::oneshot::poll`.
/// Release builds name inlined frames without their path (`poll`,
/// `{async_fn#0}`); their file gives it back, so that one function's
/// frames are not merged with every other `poll`. Names that already carry
/// a path keep it.
pub fn qualified(name: &str, file: Option<&str>) -> String {
    let plain = plain(name);
    if plain.contains("::") {
        return plain;
    }
    match file.and_then(module_path) {
        Some(module) => format!("{module}::{plain}"),
        None => plain,
    }
}

/// `tokio-1.54.1/src/time/sleep.rs` → `tokio::time::sleep`;
/// `library/core/src/future/mod.rs` → `core::future`; `src/server.rs` →
/// `server` (the crate's name is not in the path).
fn module_path(file: &str) -> Option<String> {
    let file = file.strip_suffix(".rs")?;
    let (krate, rest) = match file.rsplit_once("/src/") {
        Some((dir, rest)) => {
            let dir = dir.rsplit('/').next().unwrap_or(dir);
            // `tokio-1.54.1` → `tokio`.
            let name = match dir.rsplit_once('-') {
                Some((n, v)) if v.starts_with(|c: char| c.is_ascii_digit()) => n,
                _ => dir,
            };
            (Some(name.replace('-', "_")), rest)
        }
        None => (None, file.strip_prefix("src/").unwrap_or(file)),
    };
    let mut parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    if matches!(parts.last(), Some(&"mod") | Some(&"lib") | Some(&"main")) {
        parts.pop();
    }
    let mut path: Vec<String> = krate.into_iter().collect();
    path.extend(parts.iter().map(|p| p.to_string()));
    (!path.is_empty()).then(|| path.join("::"))
}
