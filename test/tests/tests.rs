//! taskscope-test's integration tests, one binary (each is a link of the
//! agent's whole tree): real tokio runtimes, real leaks.
//!
//! - `leaks`: each of the demo's leak kinds fails the check, named by its
//!   place and its wait (the function API, asserting on the report);
//! - `passes`: what must not fail it (tasks ending within the grace
//!   period, aborted `JoinSet`s, `spawn_blocking`, another runtime's tasks,
//!   ignores);
//! - `attribute`: `#[taskscope_test::test]` in its flavors, failing with
//!   `#[should_panic]`;
//! - `shared`: tests on the shared runtime, in parallel, blaming none but
//!   themselves;
//! - `gate`: the error a build without `--cfg tokio_unstable` gets.
//!
//! The whole-binary mode (`taskscope_test::main`) has its own binary,
//! `tests/binary.rs`.

mod attribute;
mod common;
mod gate;
mod leaks;
mod passes;
mod shared;
