//! A hostile or broken target: generated wire updates with values no real
//! subscriber sends (timestamps at the ends of the i64 range, clocks that
//! jump by years, counters at `u64::MAX`, negative durations, drops before
//! creation, reused and unknown ids, megabyte strings) go through the same
//! path as live data — wire conversion, model, analysis, snapshot, reports
//! and a TUI frame — and must neither panic nor grow memory without bound.

use console_api as api;
use proptest::prelude::*;
use std::time::Duration;
use taskscope::analysis::{Analysis, Params};
use taskscope::model::State;

/// Live and peak heap bytes of the test's own thread bound what hostile
/// input costs (this binary's allocator counts them).
#[global_allocator]
static ALLOC: taskscope_count_alloc::Counting = taskscope_count_alloc::Counting;

const NOW: i64 = 1_800_000_000;
const YEAR: i64 = 365 * 86_400;

/// Seconds values a hostile clock picks from.
fn secs() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => NOW - 600..NOW + 600,
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => Just(0i64),
        1 => Just(-1i64),
        1 => (-100i64..100).prop_map(|y| NOW + y * YEAR),
        1 => any::<i64>(),
    ]
}

fn timestamp() -> impl Strategy<Value = prost_types::Timestamp> {
    (
        secs(),
        prop_oneof![Just(0i32), any::<i32>(), Just(-1i32), Just(999_999_999)],
    )
        .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos })
}

fn opt_ts() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    proptest::option::weighted(0.7, timestamp())
}

fn duration() -> impl Strategy<Value = Option<prost_types::Duration>> {
    proptest::option::of(
        (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }),
    )
}

/// Ids from a small set (so they collide and are reused), and the ends.
fn id() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 1u64..40,
        1 => Just(0u64),
        1 => Just(u64::MAX),
    ]
}

fn counter() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..100, 1 => Just(u64::MAX), 1 => any::<u64>()]
}

/// Strings: ordinary, with escape sequences, or a megabyte.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z/._:]{0,24}",
        1 => Just("\u{1b}]0;owned\u{7}\u{1b}[2J\u{202e}".to_string()),
        1 => Just("é".repeat(600_000)),
    ]
}

fn field() -> impl Strategy<Value = api::Field> {
    let name = prop_oneof![
        Just("task.name".to_string()),
        Just("task.id".to_string()),
        Just("kind".to_string()),
        Just("size.bytes".to_string()),
        string(),
    ];
    let value = prop_oneof![
        string().prop_map(api::field::Value::StrVal),
        string().prop_map(api::field::Value::DebugVal),
        any::<u64>().prop_map(api::field::Value::U64Val),
        any::<i64>().prop_map(api::field::Value::I64Val),
        any::<bool>().prop_map(api::field::Value::BoolVal),
    ];
    (name, proptest::option::weighted(0.9, value)).prop_map(|(n, value)| api::Field {
        name: Some(api::field::Name::StrName(n)),
        value,
        metadata_id: None,
    })
}

fn location() -> impl Strategy<Value = Option<api::Location>> {
    proptest::option::weighted(
        0.8,
        (
            proptest::option::weighted(0.9, string()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
        )
            .prop_map(|(file, line, column)| api::Location {
                file,
                module_path: None,
                line,
                column,
            }),
    )
}

fn task() -> impl Strategy<Value = api::tasks::Task> {
    (
        proptest::option::weighted(0.95, id()),
        proptest::collection::vec(field(), 0..4),
        location(),
    )
        .prop_map(|(id, fields, location)| api::tasks::Task {
            id: id.map(|id| api::Id { id }),
            metadata: None,
            kind: 0,
            fields,
            parents: Vec::new(),
            location,
        })
}

fn task_stats() -> impl Strategy<Value = api::tasks::Stats> {
    (
        (opt_ts(), opt_ts(), opt_ts()),
        (counter(), counter(), counter(), counter()),
        (opt_ts(), opt_ts(), opt_ts()),
        (duration(), duration()),
    )
        .prop_map(
            |(
                (created_at, dropped_at, last_wake),
                (polls, waker_clones, waker_drops, wakes),
                (first_poll, last_poll_started, last_poll_ended),
                (busy_time, scheduled_time),
            )| api::tasks::Stats {
                created_at,
                dropped_at,
                wakes,
                waker_clones,
                waker_drops,
                last_wake,
                poll_stats: Some(api::PollStats {
                    polls,
                    first_poll,
                    last_poll_started,
                    last_poll_ended,
                    busy_time,
                }),
                self_wakes: wakes,
                scheduled_time,
            },
        )
}

fn resource() -> impl Strategy<Value = api::resources::Resource> {
    (
        id(),
        prop_oneof![
            Just("Sleep".to_string()),
            Just("Mutex".to_string()),
            Just("Semaphore".to_string()),
            Just("Sender|Receiver".to_string()),
            string()
        ],
        location(),
        proptest::option::of(id()),
        any::<bool>(),
        0i32..3,
    )
        .prop_map(|(id, concrete_type, location, parent, is_internal, kind)| {
            api::resources::Resource {
                id: Some(api::Id { id }),
                metadata: None,
                kind: Some(api::resources::resource::Kind {
                    kind: Some(if kind == 2 {
                        api::resources::resource::kind::Kind::Other("x".into())
                    } else {
                        api::resources::resource::kind::Kind::Known(kind)
                    }),
                }),
                concrete_type,
                location,
                parent_resource_id: parent.map(|id| api::Id { id }),
                is_internal,
            }
        })
}

fn resource_stats() -> impl Strategy<Value = api::resources::Stats> {
    (opt_ts(), opt_ts(), proptest::collection::vec(field(), 0..2)).prop_map(
        |(created_at, dropped_at, fields)| api::resources::Stats {
            created_at,
            dropped_at,
            attributes: fields
                .into_iter()
                .map(|f| api::Attribute {
                    field: Some(f),
                    unit: Some("ms".into()),
                })
                .collect(),
        },
    )
}

fn async_op() -> impl Strategy<Value = api::async_ops::AsyncOp> {
    (
        id(),
        prop_oneof![
            Just("Mutex::lock".to_string()),
            Just("Acquire::new".to_string()),
            Just("Receiver::await".to_string()),
            string()
        ],
        proptest::option::of(id()),
        proptest::option::of(id()),
    )
        .prop_map(|(id, source, parent, resource)| api::async_ops::AsyncOp {
            id: Some(api::Id { id }),
            metadata: None,
            source,
            parent_async_op_id: parent.map(|id| api::Id { id }),
            resource_id: resource.map(|id| api::Id { id }),
        })
}

fn async_op_stats() -> impl Strategy<Value = api::async_ops::Stats> {
    (opt_ts(), opt_ts(), proptest::option::of(id()), counter()).prop_map(
        |(created_at, dropped_at, task, polls)| api::async_ops::Stats {
            created_at,
            dropped_at,
            task_id: task.map(|id| api::Id { id }),
            attributes: Vec::new(),
            poll_stats: Some(api::PollStats {
                polls,
                ..api::PollStats::default()
            }),
        },
    )
}

fn poll_op() -> impl Strategy<Value = api::resources::PollOp> {
    (id(), id(), id(), any::<bool>()).prop_map(|(t, r, o, ready)| api::resources::PollOp {
        metadata: None,
        resource_id: Some(api::Id { id: r }),
        name: "poll_acquire".into(),
        task_id: Some(api::Id { id: t }),
        async_op_id: Some(api::Id { id: o }),
        is_ready: ready,
    })
}

fn update() -> impl Strategy<Value = api::instrument::Update> {
    (
        proptest::option::weighted(0.95, timestamp()),
        proptest::collection::vec(task(), 0..6),
        proptest::collection::hash_map(id(), task_stats(), 0..6),
        counter(),
        (
            proptest::collection::vec(resource(), 0..4),
            proptest::collection::hash_map(id(), resource_stats(), 0..4),
            proptest::collection::vec(poll_op(), 0..3),
        ),
        (
            proptest::collection::vec(async_op(), 0..4),
            proptest::collection::hash_map(id(), async_op_stats(), 0..4),
        ),
        any::<bool>(),
    )
        .prop_map(
            |(now, new_tasks, stats, dropped, (res, res_stats, polls), (ops, op_stats), meta)| {
                api::instrument::Update {
                    now,
                    task_update: Some(api::tasks::TaskUpdate {
                        new_tasks,
                        stats_update: stats,
                        dropped_events: dropped,
                    }),
                    resource_update: Some(api::resources::ResourceUpdate {
                        new_resources: res,
                        stats_update: res_stats,
                        new_poll_ops: polls,
                        dropped_events: dropped,
                    }),
                    async_op_update: Some(api::async_ops::AsyncOpUpdate {
                        new_async_ops: ops,
                        stats_update: op_stats,
                        dropped_events: dropped,
                    }),
                    new_metadata: meta.then(api::RegisterMetadata::default),
                }
            },
        )
}

/// Everything a user can get from the state: analysis, a snapshot written
/// and read back, the three report formats, a TUI frame.
fn exercise(state: &State, dir: &std::path::Path) {
    let Some(now) = state.log.now else { return };
    let params = Params::default();
    let analysis = Analysis::run(state, now, &params);
    let ctx = taskscope::report::build::Context {
        target: "hostile".into(),
        source: "live".into(),
        watched: Duration::from_secs(20),
        window: params.window,
        generated_at_unix_ns: 1,
    };
    let report = taskscope::report::build::build(&analysis, state, &ctx, None);
    for f in [
        taskscope::report::Format::Md,
        taskscope::report::Format::Json,
        taskscope::report::Format::Html,
    ] {
        let out = f.render(&report);
        assert!(!out.contains('\u{1b}'), "escape in a {f:?} report");
    }
    let meta = taskscope::snapshot::Meta {
        target: "hostile".into(),
        taken_at_unix_ns: 1,
        watched: Duration::from_secs(20),
        window: params.window,
    };
    if let Some(snap) = taskscope::snapshot::take(state, &meta) {
        let path = dir.join("s.json");
        taskscope::snapshot::save(&snap, &path).expect("save");
        let loaded = taskscope::snapshot::open(&path).expect("a snapshot of any state loads");
        let again = loaded.analyze(&params);
        assert_eq!(again.groups.len(), analysis.groups.len());
    }
    let mut app = taskscope::ui::app::App::new("hostile".into(), params, true);
    app.analysis = Some(std::sync::Arc::new(analysis));
    app.rebuild_visible(None);
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 30)).unwrap();
    term.draw(|f| taskscope::ui::draw::draw(f, &app)).unwrap();
    let screen: String = term
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(!screen.contains('\u{1b}'), "escape on screen");
}

fn run(updates: Vec<(bool, api::instrument::Update)>) {
    let dir_dir = tempdir();
    let dir = dir_dir.path();
    let before = taskscope_count_alloc::thread_live();
    taskscope_count_alloc::reset_thread_peak();
    let mut state = State::default();
    let mut input = 0usize;
    for (reconnect, msg) in updates {
        if reconnect || state.log.health.streams == 0 {
            state.begin_stream();
        }
        let bytes = prost::Message::encoded_len(&msg);
        input += bytes;
        state.apply(taskscope::conn::convert::update(msg, bytes));
        exercise(&state, dir);
    }
    // The state costs at most a small multiple of what was sent (strings
    // are capped), and no hostile time sizes anything.
    let kept = (taskscope_count_alloc::thread_live() - before).max(0) as usize;
    assert!(
        kept <= (4 << 20) + 4 * input.min(1 << 20),
        "state holds {kept} bytes after {input} bytes of input"
    );
    let peak = (taskscope_count_alloc::thread_peak() - before).max(0) as usize;
    assert!(peak <= 256 << 20, "peak heap {peak} bytes");
    drop(state);
}

/// A directory of its own, removed when dropped.
fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn hostile_updates_never_panic_nor_exhaust_memory(
        updates in proptest::collection::vec((proptest::bool::weighted(0.15), update()), 1..8)
    ) {
        run(updates);
    }
}

/// The update that took a viewer to 21 GB: a clock at both ends of the
/// i64 range, then one jumping back and forth by years.
#[test]
fn a_clock_at_the_ends_of_the_range_costs_nothing() {
    let mut updates = Vec::new();
    for (i, seconds) in [
        NOW,
        i64::MAX / 1_000_000_000,
        i64::MIN / 1_000_000_000,
        NOW + 50 * YEAR,
        NOW - 50 * YEAR,
        i64::MAX,
        i64::MIN,
        NOW + 1,
    ]
    .into_iter()
    .enumerate()
    {
        let ts = prost_types::Timestamp { seconds, nanos: 0 };
        let mut stats = std::collections::HashMap::new();
        stats.insert(
            i as u64 + 1,
            api::tasks::Stats {
                created_at: Some(ts),
                dropped_at: (i % 2 == 1).then_some(prost_types::Timestamp {
                    seconds: NOW - 10 * YEAR,
                    nanos: 0,
                }),
                ..api::tasks::Stats::default()
            },
        );
        let msg = api::instrument::Update {
            now: Some(ts),
            task_update: Some(api::tasks::TaskUpdate {
                new_tasks: vec![api::tasks::Task {
                    id: Some(api::Id { id: i as u64 + 1 }),
                    location: Some(api::Location {
                        file: Some("src/hostile.rs".into()),
                        line: Some(1),
                        column: Some(1),
                        module_path: None,
                    }),
                    ..api::tasks::Task::default()
                }],
                stats_update: stats,
                dropped_events: 0,
            }),
            new_metadata: (i == 0).then(api::RegisterMetadata::default),
            ..api::instrument::Update::default()
        };
        updates.push((false, msg));
    }
    let started = std::time::Instant::now();
    run(updates);
    assert!(started.elapsed() < Duration::from_secs(30));
}
