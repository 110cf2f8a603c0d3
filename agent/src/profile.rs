//! `GET /debug/pprof/tasks`: the live tasks as a pprof profile
//! (`profile.proto`, gzipped), tokio's `/debug/pprof/goroutine`. Grafana
//! Alloy's `pyroscope.scrape` pulls it on an interval (a `profile.custom`
//! block with `delta = false`), `go tool pprof http://HOST:PORT/debug/pprof/tasks`
//! reads it, `-diff_base` compares two pulls.
//!
//! The shape is the viewer's task profile of the hooks source
//! (`taskscope snapshot -o tasks.pb.gz`), so either can be the base of the
//! other: one sample per (spawn location, stack) whose value is the number
//! of tasks; the frames, leaf first, are the captured async stack (for
//! tasks whose capture holds), or one frame `(running)` / `(idle)`; the
//! root frame names the spawn location, `spawned@FILE:LINE:COL`. So
//! `-top -cum` ranks spawn locations with exactly the counts taskscope
//! shows. Labels: `location`, `state`.
//!
//! Stacks name the service's functions and files: they are served only to
//! a request that may inspect (see `crate::access`); any other gets the
//! counts per location, which `/metrics` shows anyway.

use crate::metrics::SiteStat;
use crate::proto::{Leaf, Trace};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use crate::proto::pprof::{self as pb, ROOT_PREFIX, Tables};

/// Tasks of one spawn location whose captures of one stack hold.
pub(crate) struct Held {
    pub location: String,
    pub trace: Arc<Trace>,
    pub tasks: u64,
}

/// The profile of `sites` (every location's live and running tasks) with
/// the `held` captures' stacks, gzipped. `note` becomes the profile's
/// comment.
pub(crate) fn encode(sites: &[SiteStat], held: &[Held], now_unix_ns: i64, note: &str) -> Vec<u8> {
    use prost::Message;
    let raw = build(sites, held, now_unix_ns, note).encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(&raw);
    gz.finish().unwrap_or_default()
}

fn build(sites: &[SiteStat], held: &[Held], now_unix_ns: i64, note: &str) -> pb::Profile {
    let mut b = Tables::new();
    let k_location = b.string("location");
    let k_state = b.string("state");
    let idle = b.string("idle");
    let running = b.string("running");
    let mut by_site: HashMap<&str, Vec<&Held>> = HashMap::new();
    for h in held {
        by_site.entry(h.location.as_str()).or_default().push(h);
    }
    let mut sites: Vec<&SiteStat> = sites.iter().filter(|s| s.live > 0).collect();
    // Stable output: the same tasks give the same bytes.
    sites.sort_by(|a, b| a.location.cmp(&b.location));
    let mut samples = Vec::new();
    for site in sites {
        let (file, line) = pb::split_location(&site.location);
        let root = b.frame(&format!("{ROOT_PREFIX}{}", site.location), file, line);
        let location = b.string(&site.location);
        let mut left = site.live;
        let mut sample = |mut frames: Vec<u64>, state: i64, n: u64| {
            if n == 0 {
                return;
            }
            frames.push(root);
            samples.push(pb::Sample {
                location_id: frames,
                value: vec![n.min(i64::MAX as u64) as i64],
                label: vec![
                    pb::Label {
                        key: k_location,
                        str: location,
                        ..pb::Label::default()
                    },
                    pb::Label {
                        key: k_state,
                        str: state,
                        ..pb::Label::default()
                    },
                ],
            });
        };
        let mut stacked = by_site.remove(site.location.as_str()).unwrap_or_default();
        stacked.sort_by_cached_key(|h| (std::cmp::Reverse(h.tasks), trace_key(&h.trace)));
        for h in stacked {
            let n = h.tasks.min(left);
            left -= n;
            let frames = match primary(&h.trace) {
                // Outermost first on the wire; pprof wants the leaf first.
                Some(leaf) => leaf
                    .frames
                    .iter()
                    .rev()
                    .map(|f| {
                        let file = (!f.file.is_empty()).then_some(f.file.as_str());
                        let name = crate::proto::names::qualified(&f.name, file);
                        // The line as the viewer keeps it, file or not.
                        b.frame(&name, file.unwrap_or_default(), i64::from(f.line))
                    })
                    .collect(),
                None => vec![b.frame("(idle)", "", 0)],
            };
            sample(frames, idle, n);
        }
        let run = site.running.min(left);
        let frames = vec![b.frame("(running)", "", 0)];
        sample(frames, running, run);
        let frames = vec![b.frame("(idle)", "", 0)];
        sample(frames, idle, left - run);
    }
    let tasks = b.string("tasks");
    let count = b.string("count");
    let mapping = b.string("taskscope tasks");
    let comment = b.string(note);
    let unit = pb::ValueType {
        r#type: tasks,
        unit: count,
    };
    pb::Profile {
        sample_type: vec![unit],
        sample: samples,
        mapping: vec![pb::Mapping {
            id: 1,
            filename: mapping,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            ..pb::Mapping::default()
        }],
        time_nanos: now_unix_ns,
        period_type: Some(unit),
        period: 1,
        comment: vec![comment],
        ..b.into_profile()
    }
}

/// The leaf a one-stack view points at, when a task waits on several
/// futures at once (`select!`, `join!`). Leaves rank by what really stops
/// the task: a real wait first, then a watch on the other side giving up
/// (`closed`, `poll_canceled`, a `CancellationToken`), then timers (a read
/// raced against a sleep is a read with a timeout); the first leaf of the
/// best rank wins. The viewer ranks leaves by the same rule, with its
/// fuller reading of waits (`stack::primary_leaf`).
fn primary(trace: &Trace) -> Option<&Leaf> {
    let rank = |leaf: &Leaf| {
        let any = |p: &dyn Fn(&str, &str) -> bool| {
            leaf.frames
                .iter()
                .any(|f| p(f.name.as_str(), f.file.as_str()))
        };
        if any(&|name, file| {
            crate::proto::names::is_cancellation_watch(name, (!file.is_empty()).then_some(file))
        }) {
            1
        } else if any(&|_, file| {
            file.contains("/time/sleep.rs") || file.contains("/time/interval.rs")
        }) {
            2
        } else {
            0
        }
    };
    trace
        .leaves
        .iter()
        .enumerate()
        .min_by_key(|(i, l)| (rank(l), *i))
        .map(|(_, l)| l)
}

/// A total order on traces, for stable output: leaf by leaf, frame by
/// frame (two traces tie only when equal).
fn trace_key(t: &Trace) -> Vec<Vec<(&str, &str, u32)>> {
    t.leaves
        .iter()
        .map(|l| {
            l.frames
                .iter()
                .map(|f| (f.name.as_str(), f.file.as_str(), f.line))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Frame;
    use prost::Message;

    fn site(location: &str, live: u64, running: u64) -> SiteStat {
        SiteStat {
            location: location.into(),
            live,
            running,
            spawned: live,
            terminated: 0,
            busy_ns: 0,
            oldest_age_ns: 0,
        }
    }

    fn leaf(frames: &[(&str, &str)]) -> Leaf {
        Leaf {
            frames: frames
                .iter()
                .map(|(name, file)| Frame {
                    name: name.to_string(),
                    file: file.to_string(),
                    line: 7,
                })
                .collect(),
        }
    }

    fn decode(gz: &[u8]) -> pb::Profile {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut raw).unwrap();
        pb::Profile::decode(&raw[..]).unwrap()
    }

    /// (frames leaf first, value) of every sample.
    fn samples(p: &pb::Profile) -> Vec<(Vec<String>, i64)> {
        let name = |loc: u64| {
            let l = &p.location[loc as usize - 1];
            let f = &p.function[l.line[0].function_id as usize - 1];
            p.string_table[f.name as usize].clone()
        };
        p.sample
            .iter()
            .map(|s| (s.location_id.iter().map(|&l| name(l)).collect(), s.value[0]))
            .collect()
    }

    #[test]
    fn every_live_task_is_counted_once_under_its_spawn_location() {
        let read = Arc::new(Trace {
            leaves: vec![leaf(&[
                ("server::conn", "src/server.rs"),
                (
                    "tokio::net::TcpStream::read",
                    "tokio-1.54.1/src/net/tcp/stream.rs",
                ),
            ])],
        });
        let held = [Held {
            location: "src/server.rs:88:5".into(),
            trace: read,
            tasks: 7,
        }];
        let sites = [
            site("src/server.rs:88:5", 10, 1),
            site("src/idle.rs:3:9", 0, 0),
        ];
        let p = decode(&encode(&sites, &held, 1, "note"));
        let got = samples(&p);
        let root = "spawned@src/server.rs:88:5".to_string();
        assert_eq!(
            got,
            vec![
                (
                    vec![
                        "tokio::net::TcpStream::read".into(),
                        "server::conn".into(),
                        root.clone()
                    ],
                    7
                ),
                (vec!["(running)".into(), root.clone()], 1),
                (vec!["(idle)".into(), root], 2),
            ]
        );
        assert_eq!(p.string_table[p.comment[0] as usize], "note");
        // The root frame carries the location's file and line.
        let root_fn = &p.function
            [p.location[p.sample[0].location_id[2] as usize - 1].line[0].function_id as usize - 1];
        assert_eq!(p.string_table[root_fn.filename as usize], "src/server.rs");
    }

    #[test]
    fn more_captures_than_live_tasks_never_count_twice() {
        let t = Arc::new(Trace {
            leaves: vec![leaf(&[("a", "src/a.rs")])],
        });
        let held = [Held {
            location: "src/a.rs:1:1".into(),
            trace: t,
            tasks: 9,
        }];
        let p = decode(&encode(&[site("src/a.rs:1:1", 4, 3)], &held, 1, ""));
        let total: i64 = samples(&p).iter().map(|(_, n)| n).sum();
        assert_eq!(total, 4);
    }

    #[test]
    fn a_read_raced_against_a_sleep_points_at_the_read() {
        let sleep = leaf(&[
            ("f", "src/f.rs"),
            ("Sleep::poll", "tokio-1.54.1/src/time/sleep.rs"),
        ]);
        let closed = leaf(&[
            ("f", "src/f.rs"),
            ("tokio::sync::oneshot::Sender::poll_closed", ""),
        ]);
        let read = leaf(&[
            ("f", "src/f.rs"),
            ("read", "tokio-1.54.1/src/net/tcp/stream.rs"),
        ]);
        let t = Trace {
            leaves: vec![sleep.clone(), closed.clone(), read.clone()],
        };
        assert_eq!(primary(&t), Some(&read));
        let t = Trace {
            leaves: vec![sleep.clone(), closed.clone()],
        };
        assert_eq!(primary(&t), Some(&closed));
        let t = Trace {
            leaves: vec![sleep.clone()],
        };
        assert_eq!(primary(&t), Some(&sleep));
        assert_eq!(primary(&Trace { leaves: vec![] }), None);
    }
}
