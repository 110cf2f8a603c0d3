//! Task profiles in pprof's format (`profile.proto`, gzipped), so that
//! `go tool pprof -top`, `-diff_base OLD NEW`, `-http`, Pyroscope and
//! Grafana read taskscope's snapshots as they read Go goroutine profiles.
//!
//! One sample per (spawn location, stack, reason, state) with the number
//! of tasks as its value. A sample's frames, leaf first: the task's async
//! stack from the last capture (its leaf that tells the wait, see
//! `stack::primary_leaf`), or, without a stack, one frame naming the wait
//! (`(socket read)`); then a root frame for the spawn location,
//! `spawned@FILE:LINE:COL`. So `-top` ranks waits, `-top -cum` ranks spawn
//! locations with exactly the counts taskscope shows, and `-traces` lists
//! both. Labels: `location`, `reason`, `state`, `target`.

use crate::analysis::reason::{Reason, TaskState};
use crate::analysis::stack;
use crate::model::Trace;
use crate::snapshot::Snapshot;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
pub use taskscope_proto::pprof::ROOT_PREFIX;
use taskscope_proto::pprof::split_location;
use taskscope_proto::pprof::{Label, Mapping, Profile, Sample, Tables, ValueType};

/// pprof's messages (`profile.proto`), shared with the agent's profiles.
pub use taskscope_proto::pprof as proto;

/// Whether a file name asks for a pprof profile: `.pb.gz`, `.pb` or
/// `.pprof`.
pub fn is_pprof_path(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    name.ends_with(".pb.gz") || name.ends_with(".pb") || name.ends_with(".pprof")
}

struct Builder {
    tables: Tables,
    samples: HashMap<SampleKey, i64>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct SampleKey {
    /// Index of the snapshot (target).
    target: usize,
    location: String,
    trace: Option<u32>,
    reason: Reason,
    state: TaskState,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            tables: Tables::new(),
            samples: HashMap::new(),
        }
    }

    fn string(&mut self, s: &str) -> i64 {
        self.tables.string(s)
    }

    /// A location for one frame (function, file, line).
    fn frame(&mut self, name: &str, file: Option<&str>, line: Option<u32>) -> u64 {
        self.tables
            .frame(name, file.unwrap_or_default(), i64::from(line.unwrap_or(0)))
    }

    fn add(&mut self, key: SampleKey, tasks: u64) {
        if tasks > 0 {
            *self.samples.entry(key).or_default() += tasks.min(i64::MAX as u64) as i64;
        }
    }
}

/// The task profile of a snapshot.
pub fn profile(snap: &Snapshot) -> Profile {
    profile_of(&[snap])
}

/// One task profile of several targets' snapshots (replicas): samples
/// carry a `target` label (`go tool pprof -tagfocus target=…`), the root
/// frames sum over targets.
pub fn profile_of(snaps: &[&Snapshot]) -> Profile {
    let mut b = Builder::new();
    for (i, snap) in snaps.iter().enumerate() {
        add_snapshot(&mut b, i, snap);
    }
    finish(b, snaps)
}

fn traces_of(snap: &Snapshot) -> Vec<Trace> {
    snap.traces
        .iter()
        .map(|leaves| Trace {
            leaves: leaves.clone(),
        })
        .collect()
}

fn add_snapshot(b: &mut Builder, target: usize, snap: &Snapshot) {
    let traces: Vec<Trace> = snap
        .traces
        .iter()
        .map(|leaves| Trace {
            leaves: leaves.clone(),
        })
        .collect();
    if !snap.aggregates.is_empty() {
        // The hooks source: the target's own counts, with the captured
        // tasks' stacks where a capture was taken.
        for a in &snap.aggregates {
            let mut left = a.group.live;
            for &[trace, n] in &a.stacks {
                let n = u64::from(n).min(left);
                left -= n;
                let reason = traces
                    .get(trace as usize)
                    .map_or(Reason::Idle, stack::reason);
                b.add(
                    SampleKey {
                        target,
                        location: a.location.clone(),
                        trace: Some(trace),
                        reason,
                        state: TaskState::Idle,
                    },
                    n,
                );
            }
            let running = a.group.running.min(left);
            for (state, reason, n) in [
                (TaskState::Running, Reason::Running, running),
                (TaskState::Idle, Reason::Idle, left - running),
            ] {
                b.add(
                    SampleKey {
                        target,
                        location: a.location.clone(),
                        trace: None,
                        reason,
                        state,
                    },
                    n,
                );
            }
        }
    } else {
        for t in &snap.tasks {
            if t.state == TaskState::Completed {
                continue;
            }
            b.add(
                SampleKey {
                    target,
                    location: t.location.clone(),
                    trace: t.trace.filter(|&i| (i as usize) < traces.len()),
                    reason: t.reason,
                    state: t.state,
                },
                1,
            );
        }
    }
}

fn finish(mut b: Builder, snaps: &[&Snapshot]) -> Profile {
    let traces: Vec<Vec<Trace>> = snaps.iter().map(|s| traces_of(s)).collect();
    let mut keys: Vec<(SampleKey, i64)> = std::mem::take(&mut b.samples).into_iter().collect();
    // Stable output: the same snapshot gives the same bytes.
    keys.sort_by(|(a, _), (c, _)| {
        (a.target, &a.location, a.trace, a.reason, a.state).cmp(&(
            c.target,
            &c.location,
            c.trace,
            c.reason,
            c.state,
        ))
    });
    let k_location = b.string("location");
    let k_reason = b.string("reason");
    let k_state = b.string("state");
    let k_target = b.string("target");
    let targets: Vec<i64> = snaps.iter().map(|s| b.string(&s.target)).collect();
    let mut samples = Vec::with_capacity(keys.len());
    for (key, n) in keys {
        let mut ids = Vec::new();
        match key.trace.map(|i| &traces[key.target][i as usize]) {
            Some(trace) if !trace.leaves.is_empty() => {
                let leaf = stack::primary_leaf(trace).unwrap_or(0);
                // Outermost first in the capture; pprof wants the leaf first.
                for f in trace.leaves[leaf].iter().rev() {
                    let name = stack::qualified(f);
                    ids.push(b.frame(&name, f.file.as_deref(), f.line));
                }
            }
            _ => {
                let wait = format!("({})", key.reason.short());
                ids.push(b.frame(&wait, None, None));
            }
        }
        let (file, line) = split_location(&key.location);
        let root = format!("{ROOT_PREFIX}{}", key.location);
        ids.push(b.tables.frame(&root, file, line));
        let label = |b: &mut Builder, k: i64, v: &str| Label {
            key: k,
            str: b.string(v),
            num: 0,
            num_unit: 0,
        };
        let labels = vec![
            label(&mut b, k_location, &key.location),
            label(&mut b, k_reason, key.reason.short()),
            label(&mut b, k_state, key.state.key()),
            Label {
                key: k_target,
                str: targets[key.target],
                num: 0,
                num_unit: 0,
            },
        ];
        samples.push(Sample {
            location_id: ids,
            value: vec![n],
            label: labels,
        });
    }
    let tasks = b.string("tasks");
    let count = b.string("count");
    let mapping_name = b.string("taskscope tasks");
    let names: Vec<&str> = snaps.iter().map(|s| s.target.as_str()).collect();
    let comment = b.string(&format!("taskscope task profile of {}", names.join(", ")));
    let first = snaps.first();
    Profile {
        sample_type: vec![ValueType {
            r#type: tasks,
            unit: count,
        }],
        sample: samples,
        mapping: vec![Mapping {
            id: 1,
            filename: mapping_name,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            ..Mapping::default()
        }],
        time_nanos: first.map_or(0, |s| s.taken_at_unix_ns),
        duration_nanos: first.map_or(0, |s| (s.watched_ms as i64).saturating_mul(1_000_000)),
        period_type: Some(ValueType {
            r#type: tasks,
            unit: count,
        }),
        period: 1,
        comment: vec![comment],
        ..b.tables.into_profile()
    }
}

/// The profile, gzipped as pprof writes it.
pub fn encode(p: &Profile) -> Vec<u8> {
    use prost::Message;
    let raw = p.encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(&raw);
    gz.finish().unwrap_or_default()
}

/// Writes the snapshots' task profile to `path` (atomically), or to
/// stdout for `-`.
pub fn write(snaps: &[&Snapshot], path: &Path) -> std::io::Result<()> {
    let bytes = encode(&profile_of(snaps));
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)?;
        return out.flush();
    }
    crate::atomic_file::write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pprof_paths() {
        assert!(is_pprof_path(Path::new("x/tasks.pb.gz")));
        assert!(is_pprof_path(Path::new("tasks.PPROF")));
        assert!(!is_pprof_path(Path::new("tasks.json.gz")));
    }
}
