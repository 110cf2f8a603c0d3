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
/// wrapper's closures, tokio's `trace_with` and `poll_fn`.
fn machinery(name: &str) -> bool {
    name.starts_with("taskscope_agent::capture::")
        || name.contains("tokio::runtime::task::trace::trace_with")
        || name.contains("core::future::poll_fn::PollFn")
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
                let skip = frames.iter().take_while(|f| machinery(&f.name)).count();
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

    #[test]
    fn the_capture_machinery_is_not_part_of_a_stack() {
        assert!(machinery("taskscope_agent::capture::capture::{{closure}}"));
        assert!(machinery("tokio::runtime::task::trace::trace_with"));
        assert!(machinery(
            "<core::future::poll_fn::PollFn<F> as core::future::future::Future>::poll"
        ));
        assert!(!machinery("app::serve::{{closure}}"));
        assert!(!machinery("tokio::time::sleep::Sleep::poll_elapsed"));
    }
}
