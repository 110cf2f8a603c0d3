//! How the demo target spawns its tasks: through tokio's task `Builder`,
//! each future wrapped for the agent's captures.

/// tokio's task `Builder`, with every task's future wrapped in
/// `taskscope_agent::traced`, so the demo's agent can capture what each
/// task waits on (on either source; with `--no-agent` the wrapper only
/// passes polls through). The spawn location stays the caller's.
pub struct Builder<'a>(tokio::task::Builder<'a>);

impl<'a> Builder<'a> {
    pub fn new() -> Self {
        Builder(tokio::task::Builder::new())
    }

    pub fn name(self, name: &'a str) -> Self {
        Builder(self.0.name(name))
    }

    #[track_caller]
    pub fn spawn<F>(self, future: F) -> std::io::Result<tokio::task::JoinHandle<F::Output>>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(taskscope_agent::traced(future))
    }
}
