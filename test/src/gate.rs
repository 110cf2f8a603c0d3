// The one error a build without `--cfg tokio_unstable` gets: tokio's task
// hooks, which the check is built on, exist only with it. (Kept in a file
// of its own so that tests/gate.rs can compile it alone, without the
// crate's dependencies.)
#[cfg(not(tokio_unstable))]
compile_error!(
    "taskscope-test needs `--cfg tokio_unstable` (tokio's task hooks, which the leak check is built on, exist only with it). \
Add to .cargo/config.toml at your workspace root:\n\
\n\
[build]\n\
rustflags = [\"--cfg\", \"tokio_unstable\"]\n\
\n\
or run the tests with RUSTFLAGS=\"--cfg tokio_unstable\" cargo test"
);
