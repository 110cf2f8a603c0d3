//! Tasks that only sleep read `sleep` on the console source, whatever
//! `Sleep` spans the target's tokio sends (issue #22). tokio-console's own
//! example app (`console-subscriber/examples/app.rs`) is run here, its
//! shapes as it has them (named tasks from `tokio::task::Builder`,
//! `#[tracing::instrument]` async fns, a loop that spawns and sleeps), in
//! this process under a real console-subscriber on an ephemeral port.
//!
//! tokio before 1.53 (1.47.1 is what tokio-console's workspace builds
//! app.rs with) makes each `Sleep`'s async op inside the sleep's resource
//! span, so console-subscriber keeps it: a live `Sleep::new_timeout` op on
//! the `Sleep`, its task set by the first `poll_elapsed`. tokio 1.53+
//! sends that op no more, but `Sleep::reset` still makes one
//! (`Sleep::reset`). Either way the op names the sleeping task.

use crate::common::{describe, watch_until};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;
use taskscope::analysis::{Analysis, Group, Params, Reason, TaskState};
use taskscope::model::State;

/// A tokio runtime whose threads report to their own console-subscriber
/// (a scoped dispatcher: the other tests in this binary are not traced,
/// and no global subscriber is set).
struct AppTarget {
    addr: String,
    rt: Option<tokio::runtime::Runtime>,
    dispatch: tracing::Dispatch,
}

thread_local! {
    static TRACED: RefCell<Option<tracing::dispatcher::DefaultGuard>> =
        const { RefCell::new(None) };
}

/// A layer that takes every span, as app.rs's fmt layer does under
/// `RUST_LOG=trace`: `#[tracing::instrument]` spans are then real and
/// entered at each poll (without it they are disabled, as by default).
struct EverySpan;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EverySpan {}

impl AppTarget {
    fn start(instrument_spans: bool) -> AppTarget {
        use tracing_subscriber::prelude::*;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // As `console_subscriber::init()`, with a short publish interval.
        let layer = console_subscriber::ConsoleLayer::builder()
            .server_addr(addr)
            .publish_interval(Duration::from_millis(100))
            .spawn();
        let registry = tracing_subscriber::registry().with(layer);
        let dispatch = if instrument_spans {
            tracing::Dispatch::new(registry.with(EverySpan))
        } else {
            tracing::Dispatch::new(registry)
        };
        let on_start = dispatch.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                let guard = tracing::dispatcher::set_default(&on_start);
                TRACED.with(|g| *g.borrow_mut() = Some(guard));
            })
            .on_thread_stop(|| TRACED.with(|g| drop(g.borrow_mut().take())))
            .build()
            .expect("runtime");
        crate::common::wait_for("the console to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        AppTarget {
            addr: addr.to_string(),
            rt: Some(rt),
            dispatch,
        }
    }

    /// Runs `f` in the runtime, traced: tasks spawned there are the
    /// target's, as those of app.rs's `main`.
    fn run(&self, f: impl FnOnce()) {
        let rt = self.rt.as_ref().expect("runtime");
        tracing::dispatcher::with_default(&self.dispatch, || {
            let _in = rt.enter();
            f()
        })
    }

    fn watch_until(&self, done: impl FnMut(&Analysis) -> bool) -> (State, Analysis) {
        let target = taskscope::conn::Target::parse(&self.addr).expect("address");
        watch_until(target, Duration::from_secs(60), Params::default(), done)
    }
}

impl Drop for AppTarget {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Which tokio's `Sleep` the app awaits.
#[derive(Clone, Copy, Debug)]
enum Tokio {
    /// `tokio::time::sleep` of the tokio this test is built with.
    This,
    /// tokio 1.47–1.52's `Sleep` spans (see [`old::Sleep`]).
    Before153,
}

mod app {
    //! app.rs's tasks as it has them, with a choice of `Sleep`.
    use super::Tokio;
    use std::future::Future;
    use std::pin::Pin;
    use std::time::Duration;

    #[track_caller]
    fn sleep(d: Duration, tokio: Tokio) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        match tokio {
            Tokio::This => Box::pin(tokio::time::sleep(d)),
            Tokio::Before153 => Box::pin(super::old::Sleep::new(d)),
        }
    }

    #[tracing::instrument]
    async fn spawn_tasks(min: u64, max: u64, tokio: Tokio) {
        loop {
            for i in min..max {
                tracing::trace!(i, "spawning wait task");
                tokio::task::Builder::new()
                    .name("wait")
                    .spawn(wait(i, tokio))
                    .unwrap();

                let d = Duration::from_secs(max) - Duration::from_secs(i);
                tracing::trace!(?d, "sleeping...");
                sleep(d, tokio).await;
            }
        }
    }

    #[tracing::instrument]
    async fn wait(seconds: u64, tokio: Tokio) {
        tracing::debug!("waiting...");
        sleep(Duration::from_secs(seconds), tokio).await;
        tracing::trace!("done!");
    }

    /// app.rs's `main`, less the console's init (the target's).
    pub fn main(tokio: Tokio) {
        let task1 = tokio::task::Builder::new()
            .name("task1")
            .spawn(spawn_tasks(1, 10, tokio))
            .unwrap();
        let task2 = tokio::task::Builder::new()
            .name("task2")
            .spawn(spawn_tasks(10, 30, tokio))
            .unwrap();
        tokio::spawn(async move {
            let _ = tokio::try_join!(task1, task2);
        });
    }
}

mod old {
    //! tokio 1.47–1.52's `Sleep`, as console-subscriber sees it
    //! (tokio-1.47.1 `src/time/sleep.rs`, `new_timeout` and `poll`): the
    //! async op is made inside the resource span, so the subscriber files
    //! it under the sleep; each poll enters the resource, op and op-poll
    //! spans, and its `poll_elapsed` poll op sets the op's task. The timer
    //! behind it is a thread and a `Notify`, which tokio instruments not.
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;
    use tokio::sync::futures::OwnedNotified;

    pub struct Sleep {
        resource_span: tracing::Span,
        async_op_span: tracing::Span,
        async_op_poll_span: tracing::Span,
        elapsed: Pin<Box<OwnedNotified>>,
    }

    impl Sleep {
        #[track_caller]
        pub fn new(d: Duration) -> Sleep {
            let location = std::panic::Location::caller();
            let resource_span = tracing::trace_span!(
                parent: None,
                "runtime.resource",
                concrete_type = "Sleep",
                kind = "timer",
                loc.file = location.file(),
                loc.line = location.line(),
                loc.col = location.column(),
            );
            let async_op_span = resource_span.in_scope(|| {
                tracing::trace!(
                    target: "runtime::resource::state_update",
                    duration = d.as_millis() as u64,
                    duration.unit = "ms",
                    duration.op = "override",
                );
                tracing::trace_span!("runtime.resource.async_op", source = "Sleep::new_timeout")
            });
            let async_op_poll_span =
                async_op_span.in_scope(|| tracing::trace_span!("runtime.resource.async_op.poll"));
            let timer = Arc::new(tokio::sync::Notify::new());
            let elapsed = Box::pin(timer.clone().notified_owned());
            std::thread::spawn(move || {
                std::thread::sleep(d);
                timer.notify_one();
            });
            Sleep {
                resource_span,
                async_op_span,
                async_op_poll_span,
                elapsed,
            }
        }
    }

    impl Future for Sleep {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let _res_span = self.resource_span.clone().entered();
            let _ao_span = self.async_op_span.clone().entered();
            let _ao_poll_span = self.async_op_poll_span.clone().entered();
            let poll = self.elapsed.as_mut().poll(cx);
            tracing::trace!(
                target: "runtime::resource::poll_op",
                op_name = "poll_elapsed",
                is_ready = poll.is_ready(),
            );
            poll
        }
    }
}

/// The group of the tasks named `name`.
fn named<'a>(a: &'a Analysis, name: &str) -> Option<&'a Group> {
    a.groups
        .iter()
        .find(|g| g.names.iter().any(|(n, _)| &**n == name))
}

/// Whether the group has live tasks and every one reads `sleep`.
fn all_sleep(a: &Analysis, name: &str) -> bool {
    named(a, name).is_some_and(|g| {
        let live: Vec<_> = g
            .tasks
            .iter()
            .filter(|t| t.verdict.state != TaskState::Completed)
            .collect();
        !live.is_empty() && live.iter().all(|t| t.verdict.reason == Reason::Sleep)
    })
}

/// Every live task of the group reads `sleep`, linked to a live `Sleep`
/// for sure (`exact`: not a guess among tasks polled at that moment).
fn assert_sleeping(state: &State, a: &Analysis, name: &str, exact: bool) {
    let g = named(a, name).unwrap_or_else(|| panic!("no {name} group:\n{}", describe(Some(a))));
    assert_eq!(
        g.main_reason().map(|r| r.reason),
        Some(Reason::Sleep),
        "{name}:\n{}",
        describe(Some(a))
    );
    for t in g
        .tasks
        .iter()
        .filter(|t| t.verdict.state != TaskState::Completed)
    {
        let res = t
            .verdict
            .resource_id()
            .and_then(|r| state.console.resources.get(&r));
        assert_eq!(
            res.map(|r| &**r.concrete_type()),
            Some("Sleep"),
            "{name}: task {} is not linked to its sleep",
            t.id
        );
        if exact {
            assert!(
                !t.verdict.ambiguous,
                "{name}: task {}'s sleep is a guess",
                t.id
            );
        }
    }
}

const APP_TASKS: [&str; 3] = ["task1", "task2", "wait"];

#[test]
fn app_rs_sleepers_read_sleep_with_the_sleep_spans_of_tokio_before_1_53() {
    let target = AppTarget::start(true);
    target.run(|| app::main(Tokio::Before153));
    let (state, a) = target.watch_until(|a| APP_TASKS.iter().all(|n| all_sleep(a, n)));
    for name in APP_TASKS {
        assert_sleeping(&state, &a, name, true);
    }
}

#[test]
fn app_rs_sleepers_read_sleep_with_this_tokio() {
    let target = AppTarget::start(false);
    target.run(|| app::main(Tokio::This));
    let (state, a) = target.watch_until(|a| APP_TASKS.iter().all(|n| all_sleep(a, n)));
    for name in APP_TASKS {
        assert_sleeping(&state, &a, name, false);
    }
}

/// One `Sleep` reused round after round, re-armed with `reset` (as
/// tokio's docs suggest, rather than a new sleep per round).
async fn reuse_one_sleep(round: Duration) {
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    loop {
        (&mut sleep).await;
        sleep.as_mut().reset(tokio::time::Instant::now() + round);
    }
}

#[test]
fn a_sleep_reused_with_reset_reads_sleep() {
    let target = AppTarget::start(false);
    target.run(|| {
        for _ in 0..3 {
            tokio::task::Builder::new()
                .name("reuse")
                .spawn(reuse_one_sleep(Duration::from_secs(3600)))
                .unwrap();
        }
    });
    let (state, a) =
        target.watch_until(|a| all_sleep(a, "reuse") && named(a, "reuse").unwrap().live == 3);
    assert_sleeping(&state, &a, "reuse", true);
}
