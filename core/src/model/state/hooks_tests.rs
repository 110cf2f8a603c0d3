//! The hooks source folded into the model: totals into births and
//! deaths, caps, and liars set aside so that an honest group beside them
//! is judged as it would be alone.

use super::*;
use crate::model::counted::AggRow;
use crate::model::state::Config;

fn at(s: i64) -> Ts {
    Ts::from_nanos(1_800_000_000_000_000_000 + s * 1_000_000_000)
}

fn row(location: &str, spawned: u64, terminated: u64) -> AggRow {
    AggRow {
        location: location.into(),
        group: AggGroup {
            live: spawned - terminated,
            idle: spawned - terminated,
            spawned,
            terminated,
            ..AggGroup::default()
        },
    }
}

fn update(now: i64, since: i64, groups: Vec<AggRow>) -> GroupsUpdate {
    GroupsUpdate {
        now: at(now),
        since: at(since),
        groups,
        history: Vec::new(),
        received: None,
        capped: Default::default(),
    }
}

#[test]
fn totals_become_births_and_deaths_and_a_restart_ends_everything() {
    let mut st = State::default();
    st.begin_stream();
    st.apply_groups(update(10, 0, vec![row("a.rs:1:1", 5, 1)]));
    st.apply_groups(update(11, 0, vec![row("a.rs:1:1", 9, 2)]));
    let key = *st
        .hooks
        .as_ref()
        .expect("groups")
        .groups
        .keys()
        .next()
        .expect("one");
    let h = &st.log.histories[&key];
    assert_eq!((h.total_births, h.total_deaths, h.current()), (9, 2, 7));
    // Another process on the port: its totals restart from zero.
    st.begin_stream();
    st.apply_groups(update(20, 15, vec![row("a.rs:1:1", 3, 0)]));
    assert_eq!(st.log.health.restarts, 1);
    assert_eq!(st.log.histories[&key].current(), 3);
    // Time never runs backwards.
    st.apply_groups(update(5, 15, vec![row("a.rs:1:1", 3, 0)]));
    assert_eq!(st.log.now, Some(at(20)));
}

#[test]
fn a_flood_of_groups_is_capped() {
    let mut st = State::new(Config {
        max_entities: 10,
        ..Config::default()
    });
    let rows = (0..50).map(|i| row(&format!("f.rs:{i}:1"), 1, 0)).collect();
    st.apply_groups(update(1, 0, rows));
    assert_eq!(st.hooks.as_ref().expect("groups").groups.len(), 10);
    assert_eq!(st.log.health.capped.groups, 40);
}

const YEAR: i64 = 365 * 86_400;

/// A group report no agent can send: counts at `u64::MAX`, a task older
/// than the agent's start.
fn liar(location: &str) -> AggRow {
    AggRow {
        location: location.into(),
        group: AggGroup {
            live: u64::MAX,
            running: u64::MAX,
            idle: u64::MAX,
            spawned: u64::MAX,
            oldest_created: Some(Ts::from_nanos(1)),
            ages: vec![u64::MAX; 40],
            ..AggGroup::default()
        },
    }
}

/// The honest site at second `s` of its life: 3 tasks spawned a second,
/// none ended, their ages in the agent's buckets.
fn honest(s: i64) -> AggRow {
    let mut r = row("src/honest.rs:9:1", 3 * s as u64, 0);
    let mut ages = vec![0u64; 20];
    for i in 1..=3 * s {
        let age = (3 * s - i) / 3;
        let b = if age == 0 {
            0
        } else {
            age.ilog2() as usize + 1
        };
        ages[b] += 1;
    }
    r.group.ages = ages;
    r.group.oldest_created = Some(at(0));
    r.group.earliest_idle = Some(at(0));
    r
}

/// 40 messages, one a second: the honest site's 3 tasks a second, none
/// ending, and with `liars`, a flood of liars at fresh locations, a clock
/// a year back every third second and the liars' year-old histories.
fn feed(liars: bool) -> State {
    let t0 = std::time::Instant::now();
    let mut st = State::default();
    st.begin_stream();
    for s in 1..=40i64 {
        let mut rows = vec![honest(s)];
        let mut now = s;
        let mut history = Vec::new();
        if liars {
            rows.extend((0..50).map(|i| liar(&format!("src/liar-{s}-{i}.rs:1:1"))));
            if s % 3 == 0 {
                now = s - YEAR;
            }
            if s == 1 {
                history = (0..50)
                    .map(|i| crate::model::counted::SiteHistory {
                        location: format!("src/liar-1-{i}.rs:1:1"),
                        first_unix_sec: at(-YEAR).nanos() / 1_000_000_000,
                        spawned: vec![u64::MAX; 900],
                        terminated: vec![0; 900],
                    })
                    .collect();
            }
        }
        let mut up = update(now, 0, rows);
        up.history = history;
        up.received = Some(t0 + Duration::from_secs(s as u64));
        st.apply_groups(up);
    }
    st
}

#[test]
fn liars_beside_an_honest_group_change_nothing_about_it() {
    use crate::analysis::{Analysis, Params};
    let (alone, beside) = (feed(false), feed(true));
    let judged = |st: &State| {
        let a = Analysis::run(st, st.log.now.expect("now"), &Params::default());
        let g = a
            .groups
            .iter()
            .find(|g| &*g.location == "src/honest.rs:9:1")
            .map(|g| (g.live, g.suspect.as_ref().map(|s| s.kind)));
        (a.groups.len(), g)
    };
    let (n, honest) = judged(&alone);
    assert_eq!(n, 1);
    let (live, suspect) = honest.expect("the honest group");
    assert_eq!(live, 120);
    assert!(suspect.is_some(), "the honest leak alone is a suspect");
    // (A message set aside moves its births to the next one: the counts
    // over the window may differ by a message's worth, the verdict not.)
    assert_eq!(judged(&beside), judged(&alone));
    assert_eq!(
        alone.log.health.counts_since,
        beside.log.health.counts_since
    );
    let set_aside = beside.log.health.set_aside;
    assert_eq!(set_aside.counts, 40 * 50 - 13 * 50);
    assert_eq!((set_aside.clock, set_aside.history), (13, 50));
    // Set-aside liars are not even named: only the honest location is.
    assert_eq!(beside.log.locations.len(), 1);
}

#[test]
fn followed_locations_are_bounded_and_the_honest_one_stays() {
    let mut st = State::default();
    st.begin_stream();
    for s in 1..=3i64 {
        let mut rows = vec![row("src/honest.rs:9:1", 3 * s as u64, 0)];
        rows.extend((0..4_000).map(|i| row(&format!("src/fresh-{s}-{i}.rs:1:1"), 1, 0)));
        st.apply_groups(update(s, 0, rows));
    }
    let agg = st.hooks.as_ref().expect("groups");
    assert_eq!(agg.tracked.len(), caps::MAX_TRACKED);
    assert!(st.log.histories.len() <= caps::MAX_TRACKED);
    assert_eq!(st.log.locations.len(), caps::MAX_TRACKED);
    assert_eq!(st.log.health.forgotten, 12_001 - caps::MAX_TRACKED as u64);
    let honest = st.log.locations.get("src/honest.rs:9:1").expect("followed");
    let key = GroupKey {
        loc: honest,
        kind: TaskKind::Task,
    };
    assert_eq!(st.log.histories[&key].current(), 9);
}
