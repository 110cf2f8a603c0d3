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
                frames.drain(..skip);
                Leaf { frames }
            })
            .collect();
        let t = Arc::new(Trace { leaves });
        c.traces.insert(id, t.clone());
        t
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
