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

/// Polls `observe` until `done` holds for what it returns, and returns
/// that; panics after `within` naming `what` and the last value seen. What
/// a test asserts after "a while" it waits for with this, never a sleep.
pub fn wait_until<T: std::fmt::Debug>(
    what: &str,
    within: std::time::Duration,
    mut observe: impl FnMut() -> T,
    mut done: impl FnMut(&T) -> bool,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        let seen = observe();
        if done(&seen) {
            return seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}; last seen: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
