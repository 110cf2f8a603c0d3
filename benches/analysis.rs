//! Analysis cost at scale, on synthetic data: `cargo bench --bench analysis`.
//! Prints the median of several runs per case. `-- --quick` runs one
//! iteration of each (CI smoke mode).

use std::time::{Duration, Instant};
use taskscope::analysis::trend::{Cohort, TrendInput, assess};
use taskscope::analysis::{Analysis, Params};
use taskscope::model::update::{
    Attribute, Field, FieldValue, NewResource, NewTask, ResourceKind, ResourceStats, SourceLoc,
    TaskStats, Update,
};
use taskscope::model::{State, Ts};

/// Counts live heap bytes, for the model's bytes per task.
#[global_allocator]
static ALLOC: taskscope_count_alloc::Counting = taskscope_count_alloc::Counting;

const T0: i64 = 1_800_000_000_000_000_000;

fn ts(secs: f64) -> Option<Ts> {
    Some(Ts::from_nanos(T0 + (secs * 1e9) as i64))
}

/// `tasks` idle tasks over `locations` spawn sites, created over 10 minutes.
fn state(tasks: u64, locations: u64) -> State {
    let mut s = State::default();
    s.begin_stream();
    s.apply(update(tasks, locations, false));
    s
}

/// The first update of `tasks` idle tasks; with `sleeps`, each task waits on
/// its own `Sleep` (as the demo's idle scenario does).
fn update(tasks: u64, locations: u64, sleeps: bool) -> Update {
    let mut up = Update {
        now: ts(600.0),
        has_metadata: true,
        ..Update::default()
    };
    for i in 0..tasks {
        let created = (i as f64 / tasks as f64) * 590.0;
        up.tasks.push(NewTask {
            id: i + 1,
            location: Some(SourceLoc {
                file: format!("src/service_{}.rs", i % locations),
                line: Some(10),
                column: Some(5),
            }),
            fields: vec![
                Field {
                    name: "kind".into(),
                    value: FieldValue::Debug("task".into()),
                },
                Field {
                    name: "task.name".into(),
                    value: FieldValue::Debug(format!("conn-{}", i % 7)),
                },
                Field {
                    name: "task.id".into(),
                    value: FieldValue::U64(i + 1),
                },
            ],
        });
        up.task_stats.push((
            i + 1,
            TaskStats {
                created_at: ts(created),
                polls: 1,
                first_poll: ts(created),
                last_poll_started: ts(created),
                last_poll_ended: ts(created + 0.001),
                waker_clones: 1,
                ..TaskStats::default()
            },
        ));
        if sleeps {
            let id = (1 << 40) + i;
            up.resources.push(NewResource {
                id,
                concrete_type: "Sleep".into(),
                kind: ResourceKind::Timer,
                location: Some(SourceLoc {
                    file: "src/service.rs".into(),
                    line: Some(20),
                    column: Some(9),
                }),
                parent: None,
                internal: false,
            });
            up.resource_stats.push((
                id,
                ResourceStats {
                    created_at: ts(created + 0.0005),
                    dropped_at: None,
                    attributes: vec![Attribute {
                        field: Field {
                            name: "duration".into(),
                            value: FieldValue::U64(86_400_000),
                        },
                        unit: Some("ms".into()),
                    }],
                },
            ));
        }
    }
    up
}

/// Heap the model keeps per task after the first update of `n` tasks.
fn memory(n: u64) {
    for sleeps in [false, true] {
        // The update is consumed by `apply`, so what stays is the model's.
        let before = taskscope_count_alloc::live();
        let up = update(n, 10, sleeps);
        let mut st = State::default();
        st.begin_stream();
        st.apply(up);
        let bytes = taskscope_count_alloc::live().saturating_sub(before);
        println!(
            "model heap for {n} idle tasks{}: {:.1} MiB ({:.0} B/task)",
            if sleeps { " each with its Sleep" } else { "" },
            bytes as f64 / 1048576.0,
            bytes as f64 / n as f64
        );
        drop(st);
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 1 } else { 9 };
    let n = if quick { 10_000 } else { 100_000 };
    reconnect(n);
    if std::env::args().any(|a| a == "reconnect") {
        return;
    }

    memory(n);
    let t = Instant::now();
    let st = state(n, 10);
    println!("apply first update of {n} tasks: {:?}", t.elapsed());
    let now = st.log.now.expect("now");
    let params = Params::default();
    let d = time(runs, || Analysis::run(&st, now, &params));
    println!("classify + group {n} tasks (10 locations): {d:?}");

    let st = state(n, 10_000.min(n));
    let d = time(runs, || Analysis::run(&st, now, &params));
    println!("classify + group {n} tasks (10 000 locations): {d:?}");

    let groups = if quick { 1_000 } else { 10_000 };
    let inputs: Vec<TrendInput> = (0..groups)
        .map(|g| TrendInput {
            counts: (0..=60).map(|s| 100 + (s * g) % 7).collect(),
            cohort: Cohort {
                growth: 3,
                alive: 3,
            },
            turning: 100,
        })
        .collect();
    let d = time(runs, || inputs.iter().filter(|i| assess(i).growing).count());
    println!("trend test for {groups} groups (61 points each): {d:?}");

    // The whole growth test as the analysis runs it, over groups watched
    // for 30 minutes (every window evaluated: 1, 4, 16 and 64 min).
    let t0 = taskscope::model::Ts::from_secs(1_800_000_000);
    let histories: Vec<taskscope::model::CountHistory> = (0..groups)
        .map(|g| {
            // 100 tasks coming and going: flat, with noise.
            let mut h = taskscope::model::CountHistory::new(t0);
            h.flow(t0, 100, 0);
            for s in 1..1800i64 {
                let at = t0.plus(std::time::Duration::from_secs(s as u64));
                h.flow(at, 3 + (s as u64 * g as u64) % 3, 4);
            }
            h
        })
        .collect();
    let horizon = t0.plus(std::time::Duration::from_secs(1800));
    let ages = taskscope::analysis::trend::ExactAges(
        (0..10)
            .map(|i| std::time::Duration::from_secs(i * 7))
            .collect(),
    );
    let d = time(runs, || {
        histories
            .iter()
            .filter(|h| {
                taskscope::analysis::trend::growth_over(
                    h,
                    t0,
                    horizon,
                    std::time::Duration::from_secs(60),
                    std::time::Duration::from_secs(2),
                    &ages,
                )
                .growing
            })
            .count()
    });
    println!("growth test for {groups} groups watched 30 min (four windows each): {d:?}");

    ui(n, 10, runs);
    ui(n, 10_000.min(n), runs);

    // The flat task list (`a`): listing and sorting every task.
    let st = state(n, 10);
    let a = Analysis::run(&st, now, &params);
    use taskscope::session::{Lens, Page};
    // What the session copies out of the model for the open screen, each
    // publication: every task (the flat list), one group's tasks.
    let d = time(runs, || Page::build(Lens::Tasks, &a, &[&st]));
    println!("page of the flat list, {n} tasks: {d:?}");
    let big = a
        .groups
        .iter()
        .max_by_key(|g| g.tasks.len())
        .expect("a group");
    let d = time(runs, || Page::build(Lens::Group(big.key), &a, &[&st]));
    println!("page of a group of {} tasks: {d:?}", big.tasks.len());
    let page = Page::build(Lens::Tasks, &a, &[&st]);
    for col in [
        taskscope::ui::tasks::Column::Total,
        taskscope::ui::tasks::Column::Name,
    ] {
        let d = time(runs, || {
            taskscope::ui::tasks::order(&a, &page, col, false, "")
        });
        println!("task list of {n} tasks sorted by {}: {d:?}", col.label());
    }
    let d = time(runs, || {
        taskscope::ui::tasks::order(
            &a,
            &page,
            taskscope::ui::tasks::Column::Total,
            false,
            "conn",
        )
    });
    println!("task list of {n} tasks filtered: {d:?}");
    snapshots(if quick { 20_000 } else { 1_000_000 });
}

/// A reconnect to a target holding `n` tasks, each with its `Sleep`: the
/// new stream's full state is reconciled with what the model held.
fn reconnect(n: u64) {
    let mut st = State::default();
    st.begin_stream();
    st.apply(update(n, 10, true));
    let mut again = update(n, 10, true);
    again.now = ts(601.0);
    st.begin_stream();
    let t = Instant::now();
    st.apply(again);
    println!(
        "reconnect: reconcile and apply a full state of {n} tasks and {} resources: {:?}",
        st.console.resources.len(),
        t.elapsed()
    );
}

/// What a person at the keyboard waits for, on a 200x50 terminal: drawing a
/// frame, and a key's handling plus the frame it causes.
fn ui(n: u64, locations: u64, runs: usize) {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::{Terminal, backend::TestBackend};
    use taskscope::ui::{app::App, draw, input};
    let mut app = App::new("bench".into(), Params::default(), true);
    app.local = vec![state(n, locations)];
    app.recompute();
    let mut term = Terminal::new(TestBackend::new(200, 50)).expect("terminal");
    let mut frame = |app: &App| {
        term.draw(|f| draw::draw(f, app)).expect("draw");
    };
    let d = time(runs * 5, || frame(&app));
    println!("frame, groups view, {n} tasks in {locations} groups: {d:?}");
    let press = |app: &mut App, c: KeyCode| {
        input::on_key(
            app,
            KeyEvent::new(c, KeyModifiers::NONE),
            std::time::Instant::now(),
        );
    };
    let d = time(runs * 5, || {
        press(&mut app, KeyCode::Char('l'));
        frame(&app)
    });
    println!("key to frame, change sort ({locations} groups): {d:?}");
    let d = time(runs * 5, || {
        press(&mut app, KeyCode::Char('j'));
        frame(&app)
    });
    println!("key to frame, move down ({locations} groups): {d:?}");
    press(&mut app, KeyCode::Char('g'));
    press(&mut app, KeyCode::Char('g'));
    press(&mut app, KeyCode::Enter);
    let d = time(runs * 5, || {
        press(&mut app, KeyCode::PageDown);
        frame(&app)
    });
    let biggest = app.detail_group().map(|g| g.tasks.len()).unwrap_or(0);
    println!("key to frame, page down in a group of {biggest} tasks: {d:?}");
}

/// Write, load and diff two snapshots of `n` tasks (one run each: these
/// take seconds, and files land in the temp directory).
fn snapshots(n: u64) {
    use taskscope::analysis::diff::diff;
    use taskscope::snapshot::{self, Meta};
    let dir = std::env::temp_dir().join(format!("taskscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let meta = Meta {
        target: "127.0.0.1:6669".into(),
        taken_at_unix_ns: 1,
        watched: Duration::from_secs(60),
        window: Duration::from_secs(60),
    };
    let t = Instant::now();
    let st = state(n, 100);
    println!(
        "apply first update of {n} tasks (100 locations): {:?}",
        t.elapsed()
    );
    let params = Params::default();
    let now = st.log.now.expect("now");
    let t = Instant::now();
    let a = Analysis::run(&st, now, &params);
    println!(
        "classify + group {n} tasks: {:?} ({} groups)",
        t.elapsed(),
        a.groups.len()
    );
    let t = Instant::now();
    let snap = snapshot::take(&st, &meta).expect("snapshot");
    println!("take snapshot of {n} tasks: {:?}", t.elapsed());
    for name in ["a.json", "a.json.gz"] {
        let path = dir.join(name);
        let t = Instant::now();
        snapshot::save(&snap, &path).expect("save");
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "write {name}: {:?}, {:.1} MiB ({:.0} B/task)",
            t.elapsed(),
            size as f64 / 1048576.0,
            size as f64 / n as f64
        );
        let t = Instant::now();
        let loaded = snapshot::open(&path).expect("load");
        println!("load {name}: {:?}", t.elapsed());
        if name == "a.json" {
            let t = Instant::now();
            let a = loaded.analyze(&params);
            let b = loaded.analyze(&params);
            let analyze = t.elapsed() / 2;
            let t = Instant::now();
            let d = diff(&a, &b);
            println!(
                "analyze a loaded snapshot: {analyze:?}; diff two: {:?} ({} rows)",
                t.elapsed(),
                d.rows.len()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
