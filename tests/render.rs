//! Render tests: each view drawn on ratatui's TestBackend from a model fed
//! with fabricated updates, compared with reviewed snapshots.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::{Duration, Instant};
use taskscope::analysis::Params;
use taskscope::conn::Status;
use taskscope::model::Ts;
use taskscope::model::update::{Field, FieldValue, NewTask, SourceLoc, TaskStats, Update};
use taskscope::ui::app::App;
use taskscope::ui::{draw, input};

const T0: i64 = 1_800_000_000;

fn ts(secs: f64) -> Option<Ts> {
    Some(Ts::from_nanos(T0 * 1_000_000_000 + (secs * 1e9) as i64))
}

fn task(id: u64, file: &str, line: u32, name: &str) -> NewTask {
    NewTask {
        id,
        location: Some(SourceLoc {
            file: file.into(),
            line: Some(line),
            column: Some(9),
        }),
        fields: vec![
            Field {
                name: "kind".into(),
                value: FieldValue::Debug("task".into()),
            },
            Field {
                name: "task.name".into(),
                value: FieldValue::Debug(name.into()),
            },
            Field {
                name: "task.id".into(),
                value: FieldValue::U64(id),
            },
            Field {
                name: "size.bytes".into(),
                value: FieldValue::U64(1096),
            },
        ],
    }
}

/// Idle since `ended`, created at `created`, one waker outstanding.
fn idle(created: f64, ended: f64) -> TaskStats {
    TaskStats {
        created_at: ts(created),
        polls: 1,
        first_poll: ts(created),
        last_poll_started: ts(created),
        last_poll_ended: ts(ended),
        waker_clones: 1,
        ..TaskStats::default()
    }
}

/// A target with a growing connection-handler group, a pool and churn.
fn app() -> App {
    let mut app = App::new("127.0.0.1:6669".into(), Params::default(), false);
    app.conn.status = Status::Connected;
    let mut up = Update {
        now: ts(300.0),
        has_metadata: true,
        ..Update::default()
    };
    for i in 0..40u64 {
        let t = 20.0 + i as f64 * 7.0;
        up.tasks
            .push(task(100 + i, "src/server.rs", 88, "conn-handler"));
        up.task_stats.push((100 + i, idle(t, t)));
    }
    for i in 0..4u64 {
        up.tasks
            .push(task(10 + i, "src/pool.rs", 12, &format!("pool-worker-{i}")));
        up.task_stats.push((10 + i, idle(1.0, 299.5)));
    }
    for i in 0..3u64 {
        up.tasks
            .push(task(50 + i, "src/api.rs", 40, "request\u{1b}[31m<evil>"));
        up.task_stats.push((50 + i, idle(299.0, 299.2)));
    }
    // A request that finished 290 s ago: the target retains finished
    // tasks at least that long, so the history is rebuilt that far back.
    up.tasks.push(task(60, "src/api.rs", 40, "request"));
    up.task_stats.push((
        60,
        TaskStats {
            dropped_at: ts(10.0),
            ..idle(9.0, 9.5)
        },
    ));
    app.local[0].begin_stream();
    app.local[0].apply(up);
    app.recompute();
    app
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    term.draw(|f| draw::draw(f, app)).expect("draw");
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The current analysis as the baseline, taken at a fixed time.
fn mark_baseline(app: &mut App, taken_at_unix_ns: Option<i64>) {
    let base = app.analysis.clone().expect("analysis");
    app.baseline = Some((
        base,
        taskscope::report::diff::Side {
            label: "baseline".into(),
            target: "127.0.0.1:6669".into(),
            taken_at_unix_ns,
        },
    ));
}

fn key(app: &mut App, code: KeyCode) {
    input::on_key(app, KeyEvent::new(code, KeyModifiers::NONE), Instant::now());
}

#[test]
fn groups_view() {
    let app = app();
    let screen = render(&app, 140, 14);
    assert!(screen.contains("src/server.rs:88:9 [conn-handler]"));
    insta::assert_snapshot!("groups_view", screen);
}

#[test]
fn group_detail_view() {
    let mut app = app();
    app.page_rows = draw::list_rows(&app, 20);
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 120, 20);
    assert!(
        screen.contains("40 tasks @ src/server.rs:88:9 (task)"),
        "{screen}"
    );
    insta::assert_snapshot!("group_detail_view", screen);
    key(&mut app, KeyCode::Esc);
    assert!(render(&app, 120, 20).contains("Tasks▼"));
}

/// What the session does on its tick: analyses the models and sends the
/// view with the open screen's rows.
fn publish(app: &mut App) {
    use std::sync::Arc;
    let st = &app.local[0];
    let analysis = Arc::new(taskscope::analysis::Analysis::run(
        st,
        st.log.now.expect("now"),
        &Params::default(),
    ));
    let page = taskscope::session::Page::build(app.lens(), &analysis, &[st]);
    let view = taskscope::session::View {
        analysis,
        page: Arc::new(page),
    };
    app.on_worker(taskscope::session::ToUi::View(view), Instant::now());
}

#[test]
fn a_frozen_view_holds_its_rows_still() {
    let mut app = app();
    app.page_rows = draw::list_rows(&app, 20);
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char(' '));
    let frozen = render(&app, 120, 20);
    assert!(frozen.contains("conn-handler"), "{frozen}");
    // The target moves on: every connection handler polled 77 times more,
    // and the session publishes that.
    let mut up = Update {
        now: ts(301.0),
        ..Update::default()
    };
    for i in 0..40u64 {
        let t = 20.0 + i as f64 * 7.0;
        up.task_stats.push((
            100 + i,
            TaskStats {
                polls: 78,
                ..idle(t, t)
            },
        ));
    }
    app.local[0].apply(up);
    publish(&mut app);
    // Frozen: the rows too, not only the groups (they used to be read
    // from the live model on every frame).
    let still = render(&app, 120, 20);
    assert_eq!(still.replace("frozen", ""), frozen.replace("frozen", ""));
    assert!(!still.contains(" 78 "), "{still}");
    key(&mut app, KeyCode::Char(' '));
    let live = render(&app, 120, 20);
    assert!(live.contains(" 78 "), "resumed: {live}");
}

#[test]
fn help_overlay() {
    let mut app = app();
    key(&mut app, KeyCode::Char('?'));
    let screen = render(&app, 100, 26);
    assert!(screen.contains("resources by location"), "{screen}");
    // A short terminal: two columns when wide, else a line says what is cut.
    let wide = render(&app, 160, 16);
    assert!(
        wide.contains("move the selection") && wide.contains("q / Ctrl-C"),
        "{wide}"
    );
    let narrow = render(&app, 100, 16);
    assert!(
        narrow.contains("a taller terminal shows every key"),
        "{narrow}"
    );
    assert!(screen.contains("freeze / resume the view"));
    insta::assert_snapshot!("help_overlay", screen);
}

#[test]
fn tiny_terminal() {
    let app = app();
    let screen = render(&app, 20, 5);
    assert!(screen.starts_with("terminal too small"), "{screen}");
    insta::assert_snapshot!("tiny_terminal", screen);
}

#[test]
fn filter_narrows_the_groups() {
    let mut app = app();
    key(&mut app, KeyCode::Char('/'));
    for c in "pool".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 140, 14);
    assert!(screen.contains("src/pool.rs:12:9"));
    assert!(!screen.contains("src/server.rs"), "{screen}");
    assert!(screen.contains("filter: pool"));
}

#[test]
fn hostile_names_are_inert() {
    let app = app();
    let screen = render(&app, 140, 14);
    assert!(!screen.contains('\u{1b}'));
    assert!(screen.contains("[request<evil>]"), "{screen}");
}

#[test]
fn reconnecting_status_is_shown() {
    let mut app = app();
    app.conn.status = Status::Reconnecting {
        at: tokio::time::Instant::now() + Duration::from_secs(3),
        error: taskscope::conn::ConnError::Refused("127.0.0.1:6669".into()),
        attempt: 2,
    };
    let screen = render(&app, 160, 14);
    assert!(
        screen.contains("⟳ reconnecting in 3s: connection refused by 127.0.0.1:6669"),
        "{screen}"
    );
}

#[test]
fn diff_view_against_a_baseline() {
    let mut app = app();
    mark_baseline(&mut app, Some(1_800_000_000_000_000_000));
    // Thirty seconds later: five more connection handlers, one pool worker gone.
    let mut up = Update {
        now: ts(330.0),
        ..Update::default()
    };
    for i in 0..5u64 {
        up.tasks
            .push(task(200 + i, "src/server.rs", 88, "conn-handler"));
        up.task_stats
            .push((200 + i, idle(305.0 + i as f64, 305.0 + i as f64)));
    }
    up.task_stats.push((
        13,
        TaskStats {
            dropped_at: ts(320.0),
            ..idle(1.0, 299.5)
        },
    ));
    app.local[0].apply(up);
    app.recompute();
    key(&mut app, KeyCode::Char('d'));
    let screen = render(&app, 140, 12);
    assert!(screen.contains("+5"), "{screen}");
    insta::assert_snapshot!("diff_view", screen);
    key(&mut app, KeyCode::Char('d'));
    assert!(render(&app, 140, 12).contains("Tasks▼"));
}

#[test]
fn export_to_an_unwritable_place_is_reported_and_the_view_goes_on() {
    let mut app = app();
    app.save_dir = std::path::PathBuf::from("/nonexistent/taskscope");
    key(&mut app, KeyCode::Char('e'));
    let notice = app.notice.clone().map(|n| n.0).unwrap_or_default();
    assert!(
        notice.starts_with(
            "report not written to /nonexistent/taskscope/taskscope-report-127.0.0.1-6669-"
        ),
        "{notice}"
    );
    key(&mut app, KeyCode::Char('s'));
    let notice = app.notice.clone().map(|n| n.0).unwrap_or_default();
    assert!(
        notice.starts_with("snapshot not saved: /nonexistent/taskscope/"),
        "{notice}"
    );
    assert!(!app.should_quit);
    let screen = render(&app, 160, 14);
    assert!(screen.contains("snapshot not saved"), "{screen}");
}

#[test]
fn sorting_by_blocked_on_reason() {
    let mut app = app();
    for _ in 0..4 {
        key(&mut app, KeyCode::Char('l'));
    }
    let screen = render(&app, 140, 14);
    assert!(screen.contains("Blocked on▼"), "{screen}");
    assert!(screen.contains("sort: blocked on"), "{screen}");
    key(&mut app, KeyCode::Char('h'));
    assert!(render(&app, 140, 14).contains("Max idle▼"));
}

#[test]
fn incomplete_data_is_said_in_the_status_line() {
    let mut app = app();
    app.local[0].log.health.dropped_events.tasks = 1200;
    app.local[0].log.health.lag = Duration::from_secs(12);
    app.local[0].log.health.unseen_tasks = 13_134;
    app.local[0].log.health.full_state = Some(false);
    app.recompute();
    let screen = render(&app, 400, 14);
    assert!(
        screen.contains("⚠ target dropped 1 200 events: counts are lower bounds"),
        "{screen}"
    );
    assert!(
        screen.contains("⚠ target's console lags 12s: shorten TOKIO_CONSOLE_PUBLISH_INTERVAL"),
        "{screen}"
    );
    assert!(screen.contains("⚠ 13 134 live tasks unseen"), "{screen}");
    assert!(
        screen
            .contains("⚠ target sent no initial state (over console-subscriber's fixed 4 MiB cap)"),
        "{screen}"
    );
}

#[test]
fn time_without_data_shows_as_a_gap_in_the_trend() {
    let mut app = app();
    // The stream broke at t=300 and a new one delivered data at t=310.
    app.local[0].begin_stream();
    app.local[0].apply(Update {
        now: ts(310.0),
        ..Update::default()
    });
    app.recompute();
    let g = &app.analysis.as_ref().expect("analysis").groups[0];
    let blanks = g.spark.iter().filter(|p| p.is_none()).count();
    assert_eq!(blanks, 10, "{:?}", g.spark);
    let line = taskscope::text::sparkline_gaps(&g.spark, 16);
    assert!(line.contains("          "), "{line:?}");
}

#[test]
fn a_diff_across_a_target_restart_says_so() {
    let mut app = app();
    mark_baseline(&mut app, None);
    app.local[0].log.health.restarts = 1;
    app.recompute();
    key(&mut app, KeyCode::Char('d'));
    let screen = render(&app, 200, 12);
    assert!(
        screen.contains("the target restarted since the baseline"),
        "{screen}"
    );
}

/// The fixture after a capture that caught the connection handlers in a
/// socket read (as `taskscope-agent` reports it) and the pool in a recv.
fn app_with_captures() -> App {
    use std::sync::Arc;
    use taskscope::model::{Agent, Captures, Trace};
    let mut app = app();
    let read = Arc::new(Trace {
        leaves: vec![vec![
            "app::server::handle::{{closure}}".into(),
            "<tokio::io::util::read::Read<R> as core::future::future::Future>::poll".into(),
            "tokio::net::tcp::stream::TcpStream::poll_read_priv".into(),
            "tokio::runtime::io::registration::Registration::poll_read_ready".into(),
        ]],
    });
    let recv = Arc::new(Trace {
        leaves: vec![vec![
            "app::pool::worker::{{closure}}".into(),
            "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}".into(),
            "tokio::sync::mpsc::chan::Rx<T,S>::recv".into(),
        ]],
    });
    let mut by_task: std::collections::HashMap<u64, u32> = (100..140).map(|id| (id, 0)).collect();
    by_task.extend((10..14).map(|id| (id, 1)));
    {
        let st = &mut app.local[0];
        st.set_agent(
            Agent::Ready {
                version: "0.1.0".into(),
                min_interval: Duration::from_secs(10),
                holds_wakers: false,
            },
            &[],
        );
        st.apply_captures(Ok(Captures {
            taken_at: ts(299.9).expect("ts"),
            capture: Duration::from_millis(3),
            round: Duration::ZERO,
            resolve: Duration::from_millis(40),
            bytes: 2048,
            traces: vec![read, recv],
            by_task,
            captured_at: Default::default(),
            agent_wakers: Default::default(),
            by_location: Default::default(),
        }));
    }
    app.recompute();
    app
}

#[test]
fn task_dump_reasons_are_marked_and_stacks_shown() {
    let mut app = app_with_captures();
    let screen = render(&app, 160, 14);
    assert!(screen.contains("100% socket read*"), "{screen}");
    assert!(screen.contains("100% chan recv*"), "{screen}");
    assert!(
        screen.contains("◆ waits captured 100ms ago: 44 tasks, paused 3ms (* = captured, t = new)"),
        "{screen}"
    );
    // The detail view: grouped stack, and the selected task's stack.
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 160, 24);
    insta::assert_snapshot!(screen);
    assert!(
        screen.contains(" stacks: 40 @ server::handle::{closure} → Read::poll"),
        "{screen}"
    );
    assert!(screen.contains("(from its captured stack)"), "{screen}");
    assert!(
        screen.contains(" stack: server::handle::{closure} → Read::poll → TcpStream::poll_read_priv → Registration::poll_read_ready"),
        "{screen}"
    );
}

#[test]
fn without_an_agent_the_status_line_says_how_to_get_exact_waits() {
    let mut app = app();
    app.local[0].set_agent(taskscope::model::Agent::Absent, &[]);
    app.recompute();
    let screen = render(&app, 160, 14);
    assert!(
        screen.contains("◇ console data only (add taskscope-agent for exact waits)"),
        "{screen}"
    );
    key(&mut app, KeyCode::Char('t'));
    let screen = render(&app, 160, 14);
    assert!(
        screen.contains("the target captures no waits: add taskscope-agent to it (see README)"),
        "{screen}"
    );
}

/// Two replicas in one view (`connect A B`): the first is `app()`'s
/// target, the second holds 5 more connection handlers and is
/// reconnecting.
fn fleet_app() -> App {
    use std::sync::Arc;
    use taskscope::analysis::Analysis;
    use taskscope::analysis::fleet::Merger;
    use taskscope::ui::app::Member;
    let mut a = app();
    let mut b = taskscope::model::State::default();
    let mut up = Update {
        now: ts(300.0),
        has_metadata: true,
        ..Update::default()
    };
    for i in 0..5u64 {
        up.tasks
            .push(task(100 + i, "src/server.rs", 88, "conn-handler-b"));
        up.task_stats.push((100 + i, idle(250.0, 250.0)));
    }
    b.begin_stream();
    b.apply(up);
    let mut app = App::new(
        "a:6669, b:6669 (2 targets)".into(),
        Params::default(),
        false,
    );
    let mut down = a.conn.clone();
    down.status = Status::Reconnecting {
        at: tokio::time::Instant::now() + Duration::from_secs(3),
        error: taskscope::conn::ConnError::Refused("b:6669".into()),
        attempt: 2,
    };
    app.conn = a.conn.clone();
    app.fleet = vec![
        Member {
            label: "a:6669".into(),
            conn: a.conn.clone(),
        },
        Member {
            label: "b:6669".into(),
            conn: down,
        },
    ];
    let analyse = |st: &taskscope::model::State| {
        Analysis::run(st, st.log.now.expect("now"), &Params::default())
    };
    let (aa, ab) = (analyse(&a.local[0]), analyse(&b));
    app.local = vec![std::mem::take(&mut a.local[0]), b];
    let merged = Merger::default()
        .merge(&[("a:6669".into(), &aa), ("b:6669".into(), &ab)])
        .expect("merged");
    app.set_analysis(Arc::new(merged));
    app
}

#[test]
fn several_targets_in_one_view() {
    let mut app = fleet_app();
    let screen = render(&app, 180, 14);
    assert!(screen.contains("!! 45 "), "the merged count: {screen}");
    assert!(
        screen.contains("@ a:6669 ×40 !!, b:6669 ×5"),
        "which replica holds the tasks: {screen}"
    );
    assert!(
        screen.contains("1 of 2 up: ● a:6669 · ⟳ b:6669 3s"),
        "{screen}"
    );
    insta::assert_snapshot!("several_targets_groups", screen);
    // The detail lists both targets' tasks, each read from its own model.
    app.page_rows = draw::list_rows(&app, 30);
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 140, 30);
    assert!(
        screen.contains("45 tasks @ src/server.rs:88:9 (task) @ a:6669 ×40 !!, b:6669 ×5"),
        "{screen}"
    );
    assert!(
        screen.contains("100        conn-handler       "),
        "{screen}"
    );
    insta::assert_snapshot!("several_targets_detail", screen);
    // The last rows are the second target's: same ids, its own names.
    key(&mut app, KeyCode::End);
    let screen = render(&app, 140, 30);
    assert!(
        screen.contains("104        conn-handler-b     "),
        "{screen}"
    );
    assert!(screen.contains(" task 104 · span 104 "), "{screen}");
}

#[test]
fn numbers_are_never_cut() {
    use std::sync::Arc;
    let mut app = app();
    let mut a = (*app.analysis.clone().expect("analysis")).clone();
    let g = &mut a.groups[0];
    g.live = 1_234_567;
    g.idle = 1_234_567;
    g.running = 100_000;
    g.scheduled = 12_345;
    g.delta = 1_234_567;
    app.set_analysis(Arc::new(a));
    let screen = render(&app, 200, 14);
    let row = screen
        .lines()
        .find(|l| l.contains("src/server.rs"))
        .expect("row");
    for n in ["1 234 567", "+1234567", "100 000", "12 345"] {
        assert!(row.contains(n), "{n} cut in: {row}");
    }
    assert_eq!(row.matches("1 234 567").count(), 2, "{row}");
}

#[test]
fn the_flat_task_list_sorts_filters_and_opens_a_task_s_group() {
    let mut app = app();
    app.page_rows = draw::list_rows(&app, 14);
    key(&mut app, KeyCode::Char('a'));
    let screen = render(&app, 160, 14);
    assert!(screen.contains("all tasks (47)"), "{screen}");
    assert!(screen.contains("Total▼"), "{screen}");
    // Oldest first: the pool workers (created at 1 s).
    let first = screen.lines().nth(2).unwrap_or_default();
    assert!(first.contains("pool-worker-"), "{screen}");
    insta::assert_snapshot!("task_list", screen);
    // Sort by name (the column left of Total), then filter.
    key(&mut app, KeyCode::Char('h'));
    let screen = render(&app, 160, 14);
    assert!(screen.contains("Name▼"), "{screen}");
    assert!(
        screen
            .lines()
            .nth(2)
            .unwrap_or_default()
            .contains("conn-handler"),
        "{screen}"
    );
    key(&mut app, KeyCode::Char('/'));
    for c in "evil".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 160, 14);
    assert!(screen.contains("all tasks (3)"), "{screen}");
    assert!(!screen.contains("conn-handler"), "{screen}");
    // Enter opens the task; Esc comes back to the list.
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 160, 20);
    assert!(
        screen.contains("task 50 · request<evil> · src/api.rs:40:9"),
        "{screen}"
    );
    key(&mut app, KeyCode::Esc);
    assert!(render(&app, 160, 20).contains("all tasks (3)"));
}

#[test]
fn a_task_s_view_with_its_histograms() {
    use taskscope::model::details::{Histogram, TaskDetails};
    let mut app = app();
    app.page_rows = draw::list_rows(&app, 30);
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 120, 30);
    assert!(
        screen.contains("poll times: waiting for the target's task details…"),
        "{screen}"
    );
    // The target's details arrive (a poll histogram of 1..=100 µs).
    let hist = |scale: u64| {
        let mut buckets = vec![0u64; 48];
        for us in 1..=100u64 {
            buckets[((us - 1) * 48 / 100) as usize] += 1;
        }
        Histogram {
            count: 100,
            min: Duration::from_micros(scale),
            max: Duration::from_micros(100 * scale),
            p50: Duration::from_micros(50 * scale),
            p90: Duration::from_micros(90 * scale),
            p99: Duration::from_micros(99 * scale),
            buckets,
            high_outliers: 0,
            highest_outlier: None,
        }
    };
    app.local[0].console.details = Some(TaskDetails {
        task: 100,
        at: ts(300.0),
        poll: Some(hist(1)),
        scheduled: Some(hist(10)),
    });
    // The view shows them with the session's next publication.
    app.recompute();
    let screen = render(&app, 120, 30);
    assert!(
        screen.contains("poll times (100 recorded): p50 50µs · p90 90µs · p99 99µs · max 100µs"),
        "{screen}"
    );
    assert!(
        screen.contains("wakers: 1 live (1 clones, 0 drops)"),
        "{screen}"
    );
    assert!(screen.contains("⚠ large future"), "{screen}");
    insta::assert_snapshot!("task_view", screen);
    key(&mut app, KeyCode::Esc);
    assert!(render(&app, 120, 30).contains("40 tasks @ src/server.rs:88:9"));
}

#[test]
fn the_resources_views() {
    use taskscope::model::OpSource;
    use taskscope::model::update::{
        AsyncOpStats, Attribute, NewAsyncOp, NewResource, ResourceKind, ResourceStats,
    };
    let mut app = app();
    // A mutex held by one task, three connection handlers queued on it.
    let mut up = Update {
        now: ts(300.0),
        has_metadata: true,
        ..Update::default()
    };
    up.resources.push(NewResource {
        id: 7,
        concrete_type: "Mutex".into(),
        kind: ResourceKind::Other("Sync".into()),
        location: Some(SourceLoc {
            file: "src/state.rs".into(),
            line: Some(20),
            column: Some(17),
        }),
        parent: None,
        internal: false,
    });
    up.resource_stats.push((
        7,
        ResourceStats {
            created_at: ts(5.0),
            dropped_at: None,
            attributes: vec![Attribute {
                field: Field {
                    name: "locked".into(),
                    value: FieldValue::Bool(true),
                },
                unit: None,
            }],
        },
    ));
    for (i, task) in [100u64, 101, 102].into_iter().enumerate() {
        let op = 900 + i as u64;
        up.async_ops.push(NewAsyncOp {
            id: op,
            source: OpSource::Mutex,
            parent: None,
            resource: Some(7),
        });
        up.async_op_stats.push((
            op,
            AsyncOpStats {
                created_at: ts(200.0 + i as f64),
                dropped_at: None,
                task: Some(task),
                polls: 1,
            },
        ));
    }
    app.local[0].apply(up);
    app.recompute();
    app.page_rows = draw::list_rows(&app, 14);
    key(&mut app, KeyCode::Char('r'));
    let screen = render(&app, 140, 14);
    assert!(
        screen.contains("1    3       0        4m55s  Sync Mutex src/state.rs:20:17"),
        "{screen}"
    );
    insta::assert_snapshot!("resources_grouped", screen);
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 140, 14);
    assert!(screen.contains("locked=true"), "{screen}");
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 140, 14);
    assert!(screen.contains("3 waiting"), "{screen}");
    insta::assert_snapshot!("resource_waiters", screen);
    key(&mut app, KeyCode::Enter);
    let screen = render(&app, 140, 20);
    assert!(screen.contains("task 100 · conn-handler"), "{screen}");
}

/// A hooks-source target: a drop-in server's connections captured (exact),
/// axum's own connections and reqwest's client connections out of reach
/// (a library's shape, inferred), the executor line split by spawner, and
/// a group of the service's own tasks not captured yet.
fn hooks_app() -> App {
    use std::sync::Arc;
    use taskscope::model::counted::{AggGroup, AggRow, GroupsUpdate};
    use taskscope::model::{Agent, Captures, Trace};
    let mut app = App::new("127.0.0.1:6669".into(), Params::default(), false);
    app.conn.status = Status::Connected;
    let raw = |l: &str| {
        let mut p = l.rsplitn(3, ':');
        let col = p.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        let line = p.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        (p.next().unwrap_or("").to_string(), line, col)
    };
    let row = |location: &str, live: u64, reachable: u64, parent: &str| AggRow {
        location: location.into(),
        group: AggGroup {
            raw: raw(location.split(" ← ").next().unwrap_or(location)),
            split: location.contains(" ← "),
            spawner: location.split(" ← ").nth(1).map(raw),
            live,
            idle: live,
            spawned: live,
            oldest_created: ts(10.0),
            earliest_idle: ts(20.0),
            parents: vec![(Arc::from(parent), live)],
            ages: vec![0, 0, 0, 0, 0, 0, 0, 0, live],
            reachable,
            newest_wait: ts(299.0),
            ..AggGroup::default()
        },
    };
    let reqwest = "hyper-util-0.1.21/src/rt/tokio.rs:127:9 ← src/fetch.rs:40:13";
    let up = GroupsUpdate {
        now: ts(300.0).expect("ts"),
        since: ts(0.0).expect("ts"),
        groups: vec![
            row("src/main.rs:42:5", 30, 30, "src/main.rs:20:5"),
            row(
                "axum-0.8.9/src/serve/mod.rs:389:5",
                12,
                0,
                "src/admin.rs:9:5",
            ),
            row(reqwest, 25, 0, "src/fetch.rs:40:13"),
            row("src/jobs.rs:7:9", 5, 5, "src/main.rs:20:5"),
        ],
        history: Vec::new(),
        received: None,
        capped: Default::default(),
    };
    let st = &mut app.local[0];
    st.begin_stream();
    st.apply_groups(up);
    st.set_agent(
        Agent::Ready {
            version: "0.1.0".into(),
            min_interval: Duration::from_millis(250),
            holds_wakers: false,
        },
        &[],
    );
    let read = Arc::new(Trace {
        leaves: vec![vec![
            "<hyper::server::conn::http1::UpgradeableConnection<I,S> as core::future::future::Future>::poll".into(),
            "<hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T> as core::future::future::Future>::poll".into(),
            "hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_read_head".into(),
            "tokio::net::tcp::stream::TcpStream::poll_read_priv".into(),
            "tokio::runtime::io::registration::Registration::poll_read_ready".into(),
        ]],
    });
    let mut by_location = std::collections::HashMap::new();
    by_location.insert("src/main.rs:42:5".to_string(), vec![(0u32, 20u32)]);
    st.apply_captures(Ok(Captures {
        taken_at: ts(299.0).expect("ts"),
        capture: Duration::ZERO,
        round: Duration::from_millis(20),
        resolve: Duration::from_millis(1),
        bytes: 512,
        traces: vec![read],
        by_task: Default::default(),
        captured_at: Default::default(),
        agent_wakers: Default::default(),
        by_location,
    }));
    app.recompute();
    app
}

#[test]
fn hooks_groups_say_how_their_waits_are_known() {
    let mut app = hooks_app();
    let screen = render(&app, 180, 14);
    // Exact (captured, `*`), inferred from the captured ones (no mark on
    // the rest of the share: the detail says it), a library's shape
    // inferred (`~`), not captured yet; never `idle`.
    assert!(screen.contains("request read*"), "{screen}");
    assert!(screen.contains("request read~"), "{screen}");
    assert!(screen.contains("response read~"), "{screen}");
    assert!(screen.contains("not captured yet"), "{screen}");
    assert!(!screen.contains("% idle"), "{screen}");
    assert!(
        screen.contains("hyper-util-0.1.21/src/rt/tokio.rs:127:9 ← src/fetch.rs:40:13"),
        "{screen}"
    );
    insta::assert_snapshot!("hooks_groups_waits", screen);
    // The reqwest connections' detail: what they are, how to reach them,
    // and no offer of `t`.
    app.page_rows = draw::list_rows(&app, 20);
    let at = app
        .analysis
        .as_ref()
        .and_then(|a| {
            a.groups
                .iter()
                .position(|g| g.location.contains("fetch.rs"))
        })
        .expect("the reqwest group");
    for _ in 0..at {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    let detail = render(&app, 180, 20);
    assert!(detail.contains("HTTP client connections"), "{detail}");
    assert!(
        detail.contains("to capture them: reqwest spawns them itself; a hyper-util client built with taskscope_agent::TracedExecutor::new() is reachable"),
        "{detail}"
    );
    assert!(!detail.contains("t takes one"), "{detail}");
    insta::assert_snapshot!("hooks_group_out_of_reach", detail);
}
