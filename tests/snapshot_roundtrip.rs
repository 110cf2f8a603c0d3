//! Any model state → snapshot → file → load gives the same analysis as the
//! live view computed (property test over fabricated states).

use proptest::prelude::*;
use taskscope::analysis::{Analysis, Group, Params};
use taskscope::model::update::{
    AsyncOpStats, Field, FieldValue, NewAsyncOp, NewResource, NewTask, ResourceKind, ResourceStats,
    SourceLoc, TaskStats, Update,
};
use taskscope::model::{State, Ts};
use taskscope::snapshot::{self, Loaded, Meta};

const T0: i64 = 1_800_000_000_000_000_000;

fn ts(ms: i64) -> Option<Ts> {
    Some(Ts::from_nanos(T0 + ms * 1_000_000))
}

#[derive(Debug, Clone)]
struct Spec {
    loc: u8,
    kind: u8,
    name: Option<String>,
    created_ms: i64,
    idle_ms: i64,
    dropped: bool,
    in_poll: bool,
    wakers: u32,
    sending: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..6,
        0u8..3,
        proptest::option::of("[a-z<>\u{1b}\\[]{0,12}"),
        0i64..600_000,
        0i64..5_000,
        any::<bool>(),
        any::<bool>(),
        0u32..3,
        any::<bool>(),
    )
        .prop_map(
            |(loc, kind, name, created_ms, idle_ms, dropped, in_poll, wakers, sending)| Spec {
                loc,
                kind,
                name,
                created_ms,
                idle_ms,
                dropped,
                in_poll,
                wakers,
                sending,
            },
        )
}

fn state_of(specs: &[Spec]) -> State {
    let now_ms = 700_000;
    let mut up = Update {
        now: ts(now_ms),
        has_metadata: true,
        ..Update::default()
    };
    for (i, s) in specs.iter().enumerate() {
        let id = i as u64 + 1;
        let kind = ["task", "blocking", "local"][s.kind as usize];
        let mut fields = vec![
            Field {
                name: "kind".into(),
                value: FieldValue::Debug(kind.into()),
            },
            Field {
                name: "task.id".into(),
                value: FieldValue::U64(id),
            },
        ];
        if let Some(n) = &s.name {
            fields.push(Field {
                name: "task.name".into(),
                value: FieldValue::Debug(n.clone()),
            });
        }
        up.tasks.push(NewTask {
            id,
            location: Some(SourceLoc {
                file: format!("src/m{}.rs", s.loc),
                line: Some(7),
                column: Some(3),
            }),
            fields,
        });
        let ended = s.created_ms + s.idle_ms.min(1000);
        up.task_stats.push((
            id,
            TaskStats {
                created_at: ts(s.created_ms),
                dropped_at: if s.dropped { ts(ended + 10) } else { None },
                polls: 3,
                first_poll: ts(s.created_ms),
                last_poll_started: ts(if s.in_poll { ended + 5 } else { s.created_ms }),
                last_poll_ended: ts(ended),
                waker_clones: s.wakers,
                ..TaskStats::default()
            },
        ));
        if s.sending {
            // A full-channel send: internal semaphore, Acquire::new op.
            let (rid, oid) = (10_000 + id, 20_000 + id);
            up.resources.push(NewResource {
                id: rid,
                concrete_type: "Semaphore".into(),
                kind: ResourceKind::Other("Sync".into()),
                location: None,
                parent: None,
                internal: true,
            });
            up.resource_stats.push((
                rid,
                ResourceStats {
                    created_at: ts(s.created_ms),
                    ..ResourceStats::default()
                },
            ));
            up.async_ops.push(NewAsyncOp {
                id: oid,
                source: taskscope::model::OpSource::Acquire,
                parent: None,
                resource: Some(rid),
            });
            up.async_op_stats.push((
                oid,
                AsyncOpStats {
                    created_at: ts(s.created_ms),
                    task: Some(id),
                    ..AsyncOpStats::default()
                },
            ));
        }
    }
    let mut st = State::default();
    st.begin_stream();
    st.apply(up);
    st
}

/// A group without its interned key, which differs between processes.
fn project(g: &Group) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        (
            &g.location,
            g.kind,
            g.live,
            g.running,
            g.scheduled,
            g.idle,
            g.finished,
        ),
        (
            g.oldest,
            g.longest_idle,
            &g.reasons,
            &g.names,
            g.distinct_names,
            g.delta,
        ),
        (&g.spark, &g.tasks, &g.growth, &g.suspect),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn snapshot_round_trip_keeps_the_analysis(specs in proptest::collection::vec(spec(), 0..80)) {
        let st = state_of(&specs);
        let params = Params::default();
        let Some(now) = st.log.now else { return Ok(()) };
        let live = Analysis::run(&st, now, &params);
        let meta = Meta {
            target: "127.0.0.1:6669".into(),
            taken_at_unix_ns: 1,
            watched: std::time::Duration::from_secs(3),
            window: params.window,
        };
        let snap = snapshot::take(&st, &meta).expect("snapshot");
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        for name in ["s.json", "s.json.gz"] {
            let path = dir.join(name);
            snapshot::save(&snap, &path).expect("save");
            let loaded: Loaded = snapshot::open(&path).expect("load");
            let again = loaded.analyze(&params);
            prop_assert_eq!(again.now, live.now);
            prop_assert_eq!(again.totals, live.totals);
            prop_assert_eq!(&again.health, &live.health);
            prop_assert_eq!(again.groups.len(), live.groups.len());
            for (a, b) in again.groups.iter().zip(&live.groups) {
                prop_assert_eq!(project(a), project(b));
            }
        }
    }
}
