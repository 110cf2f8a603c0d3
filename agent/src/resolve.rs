//! Captured stacks to names, on the agent's own thread (never on a worker
//! of the service's runtime), each stack and each address resolved once.

use crate::proto::{Frame, Leaf, Trace};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most addresses whose names are kept (a service has as many as its
/// stacks have distinct frames).
const MAX_ADDRESSES: usize = 65_536;

#[derive(Default)]
pub struct Resolver {
    inner: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    traces: HashMap<u32, Arc<Trace>>,
    frames: HashMap<usize, Arc<[Frame]>>,
}

/// Frames of the capture itself, above the task's own future: the
/// wrapper's closures, tokio's `trace_with` and `poll_fn`. Release builds
/// name inlined frames without their module (`{closure#0}`,
/// `trace_with`), so their source file says whose they are.
fn machinery(f: &Frame) -> bool {
    let file = f.file.as_str();
    f.name.starts_with("taskscope_agent::capture::")
        || f.name.contains("tokio::runtime::task::trace::trace_with")
        || f.name.contains("core::future::poll_fn::PollFn")
        || f.name.starts_with("taskscope_agent::untraced::")
        || ((file.ends_with("src/capture.rs") || file.ends_with("src/untraced.rs"))
            && (file.contains("taskscope-agent")
                || file.ends_with("agent/src/capture.rs")
                || file.ends_with("agent/src/untraced.rs")))
        || file.ends_with("src/runtime/task/trace/mod.rs")
        || file.ends_with("core/src/future/poll_fn.rs")
}

impl Resolver {
    /// The trace of stack `id` (`ips`: leaf after leaf, each ended by 0).
    pub fn trace(&self, id: u32, ips: &[usize]) -> Arc<Trace> {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = c.traces.get(&id) {
            return t.clone();
        }
        let leaves = crate::capture::leaves(ips)
            .map(|leaf| {
                // Innermost first, as walked; sent outermost first.
                let mut frames: Vec<Frame> =
                    leaf.iter().flat_map(|&ip| c.frames(ip).to_vec()).collect();
                frames.reverse();
                let skip = frames.iter().take_while(|f| machinery(f)).count();
                let task = frames[..skip].iter().find_map(|f| task_future(&f.name));
                frames.drain(..skip);
                if let (Some(path), Some(first)) = (task, frames.first_mut()) {
                    name_async_body(first, &path);
                }
                Leaf { frames }
            })
            .collect();
        let t = Arc::new(Trace { leaves });
        c.traces.insert(id, t.clone());
        t
    }
}

/// The task's future type as the wrapper's frames name it in release
/// builds (`poll<app::server::handle_conn::{async_fn_env#0}>` in the
/// agent's `capture.rs`): the task's own async fn, which the same build
/// names only `{async_fn#0}` where its body was inlined.
fn task_future(name: &str) -> Option<String> {
    let (_, args) = name.split_once('<')?;
    let args = args.strip_suffix('>')?;
    // The first generic argument, at depth 0.
    let mut depth = 0;
    let end = args
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                ',' if depth == 0 => return true,
                _ => {}
            }
            false
        })
        .map_or(args.len(), |(i, _)| i);
    let mut ty = args[..end].trim();
    // Through the agent's own wrappers to the task's future.
    for wrapper in [
        "taskscope_agent::capture::Traced<",
        "taskscope_agent::spawn::Placed<",
    ] {
        if let Some(inner) = ty.strip_prefix(wrapper).and_then(|t| t.strip_suffix('>')) {
            ty = inner;
        }
    }
    // The capture's own closures and tokio's and core's types are not the
    // task's future.
    let machinery = [
        "taskscope_agent::capture::",
        "tokio::",
        "core::",
        "std::",
        "alloc::",
    ];
    let body = ["{async_fn_env#", "{async_block_env#", "{closure_env#"];
    (ty.contains("::")
        && !machinery.iter().any(|m| ty.starts_with(m))
        && body.iter().any(|b| ty.contains(b)))
    .then(|| ty.to_string())
}

/// Names a frame of an inlined async body (`{async_fn#0}`) by the task's
/// future type path when it is that body: `app::server::handle_conn`.
fn name_async_body(frame: &mut Frame, future: &str) {
    let bare = frame.name.split('<').next().unwrap_or(&frame.name);
    let unnamed = ["{async_fn#", "{async_block#", "{closure#"]
        .iter()
        .any(|p| bare.starts_with(p));
    if !unnamed {
        return;
    }
    // The future's own body: `…::handle_conn::{async_fn_env#0}` names
    // `…::handle_conn`; a block or closure keeps its place in its fn.
    let future = &taskscope_proto::names::plain(future);
    let named = match future.rsplit_once("::{async_fn_env#") {
        Some((path, _)) => path.to_string(),
        None => future
            .replace("{async_block_env#", "{async_block#")
            .replace("{closure_env#", "{closure#"),
    };
    // Only when the kinds agree (an async fn's body, a block's …).
    let kind = |s: &str| {
        if s.contains("{async_fn") {
            "fn"
        } else if s.contains("{async_block") {
            "block"
        } else {
            "closure"
        }
    };
    let last = future.rsplit("::").next().unwrap_or(future);
    if kind(bare) == kind(last) {
        frame.name = named;
    }
}

impl Cache {
    /// The frames at `ip`, innermost first (several where calls were
    /// inlined).
    fn frames(&mut self, ip: usize) -> Arc<[Frame]> {
        if let Some(f) = self.frames.get(&ip) {
            return f.clone();
        }
        let mut out = Vec::new();
        backtrace::resolve(ip as *mut std::ffi::c_void, |s| {
            if let Some(name) = s.name() {
                let name = format!("{name:#}");
                out.push(crate::dump::frame(
                    &name,
                    s.filename().and_then(|f| f.to_str()),
                    s.lineno(),
                ));
            }
        });
        if out.is_empty() {
            out.push(Frame {
                name: format!("{ip:#x}"),
                file: String::new(),
                line: 0,
            });
        }
        let f: Arc<[Frame]> = out.into();
        if self.frames.len() < MAX_ADDRESSES {
            self.frames.insert(ip, f.clone());
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, file: &str) -> Frame {
        Frame {
            name: name.into(),
            file: file.into(),
            line: 1,
        }
    }

    #[test]
    fn an_inlined_async_body_is_named_by_the_tasks_future() {
        let fut =
            task_future("poll<app::server::handle_conn::{async_fn_env#0}<tokio::net::TcpStream>>")
                .expect("a future");
        assert_eq!(
            fut,
            "app::server::handle_conn::{async_fn_env#0}<tokio::net::TcpStream>"
        );
        let mut first = f("{async_fn#0}", "src/server.rs");
        name_async_body(&mut first, &fut);
        assert_eq!(first.name, "app::server::handle_conn");
        // A block keeps its place in its function.
        let fut = task_future("capture<app::main::{async_block_env#3}, u8>").expect("a future");
        let mut first = f("{async_block#3}", "src/main.rs");
        name_async_body(&mut first, &fut);
        assert_eq!(first.name, "app::main::{async_block#3}");
        // Named frames, other kinds and other wrappers stay as they are.
        let mut named = f("app::f", "src/main.rs");
        name_async_body(&mut named, &fut);
        assert_eq!(named.name, "app::f");
        let mut other = f("{async_fn#0}", "src/main.rs");
        name_async_body(&mut other, &fut);
        assert_eq!(other.name, "{async_fn#0}");
        assert_eq!(task_future("poll<u32>"), None);
        // Through the wrapper; never the capture's own machinery.
        assert_eq!(
            task_future("{closure#0}<taskscope_agent::capture::Traced<app::f::{async_fn_env#0}>>")
                .as_deref(),
            Some("app::f::{async_fn_env#0}")
        );
        assert_eq!(
            task_future(
                "poll<core::future::poll_fn::PollFn<taskscope_agent::capture::capture::{closure_env#0}<app::f::{async_fn_env#0}>>>"
            ),
            None
        );
        assert_eq!(task_future("poll"), None);
    }

    #[test]
    fn the_capture_machinery_is_not_part_of_a_stack() {
        // Debug builds name them in full …
        assert!(machinery(&f(
            "taskscope_agent::capture::capture::{{closure}}",
            ""
        )));
        assert!(machinery(&f("tokio::runtime::task::trace::trace_with", "")));
        assert!(machinery(&f(
            "<core::future::poll_fn::PollFn<F> as core::future::future::Future>::poll",
            ""
        )));
        // … release builds by file.
        assert!(machinery(&f(
            "{closure#0}",
            "/work/main/agent/src/capture.rs"
        )));
        assert!(machinery(&f(
            "{closure#0}",
            "taskscope-agent-0.1.0/src/capture.rs"
        )));
        assert!(machinery(&f(
            "trace_with",
            "tokio-1.54.1/src/runtime/task/trace/mod.rs"
        )));
        assert!(machinery(&f("poll", "library/core/src/future/poll_fn.rs")));
        assert!(!machinery(&f("app::serve::{{closure}}", "src/serve.rs")));
        assert!(!machinery(&f("{closure#0}", "src/capture.rs")));
        assert!(!machinery(&f(
            "tokio::time::sleep::Sleep::poll_elapsed",
            "tokio-1.54.1/src/time/sleep.rs"
        )));
    }
}
