//! Helpers the agent's integration tests share.
#![allow(dead_code)]

/// A runtime with the agent's hooks source: 2 workers, or a
/// `current_thread` one; every driver enabled.
pub fn hooked_runtime(
    agent: &taskscope_agent::Agent,
    current_thread: bool,
) -> tokio::runtime::Runtime {
    let mut b = if current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    };
    b.enable_all();
    agent.install_hooks(&mut b);
    b.build().expect("runtime")
}
