//! Several replicas at once, headless: `watch A B C` merges groups by
//! spawn location with each target's share, and goes on when a target is
//! unreachable from the start or dies part-way.

use crate::common::{self, BIN, DemoTarget};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn watch_merges_replicas_and_goes_on_when_one_dies() {
    let a = DemoTarget::start(&["--source", "hooks", "--leak-every", "100ms"]);
    let mut b = DemoTarget::start(&["--leak-every", "100ms", "--scenarios", "sleepers,healthy"]);
    // The second target has leaked enough before `watch` attaches…
    let sleepers_line = common::spawn_line("sleepers");
    common::watch_until(
        b.target(),
        Duration::from_secs(60),
        taskscope::analysis::Params::default(),
        |an| common::group(an, &sleepers_line).is_some_and(|g| g.live > 10),
    );
    // …and `watch` reaches it through a proxy that counts what it sent.
    let b_via = common::StallingProxy::start(&b.addr);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let child = Command::new(BIN)
        .args(["watch", &a.addr, &b_via.addr, &dead_addr])
        .args(["--duration", "8s", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The second target dies once `watch` holds a whole update from it:
    // a burst of its updates (the first one carries every task), a pause,
    // then the next burst.
    let mut seen = 0;
    let mut flat = false;
    common::wait_for(
        "watch to receive a whole update",
        Duration::from_secs(60),
        || {
            let now = b_via.forwarded_to_clients();
            let next_burst = flat && now > seen && seen >= 4096;
            flat = now == seen;
            seen = now;
            next_burst
        },
    );
    // Part-way: `watch` is still watching when the target dies.
    let mut child = child;
    assert!(
        child.try_wait().expect("watch's status").is_none(),
        "watch ended before the target died"
    );
    b.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{dead_addr}: ")) && stderr.contains("going on without it"),
        "{stderr}"
    );
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert!(
        rep["target"].as_str().unwrap().contains("(2 targets)"),
        "{}",
        rep["target"]
    );
    let group = |name: &str| common::report_group(&rep, name);
    // The sleepers leak on both: one merged group, a share per target; the
    // dead target's tasks are kept from before it died.
    let sleepers = group("sleepers");
    let shares = sleepers["targets"].as_array().expect("targets");
    let b_addr = b_via.addr.as_str();
    let of = |addr: &str| {
        shares
            .iter()
            .find(|s| s["target"] == addr)
            .and_then(|s| s["tasks"].as_u64())
            .unwrap_or(0)
    };
    assert!(of(&a.addr) > 20, "{sleepers}");
    assert!(of(b_addr) > 10, "{sleepers}");
    assert_eq!(
        sleepers["tasks"].as_u64().unwrap(),
        of(&a.addr) + of(b_addr)
    );
    // Only the first target runs the idle connections: one share.
    let idle = group("idle-conn");
    let shares = idle["targets"].as_array().expect("targets");
    assert_eq!(shares.len(), 1, "{idle}");
    assert_eq!(shares[0]["target"], a.addr.as_str());
}

#[test]
fn watch_fails_with_exit_2_when_no_target_is_reachable() {
    let addrs: Vec<String> = (0..2)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        })
        .collect();
    let out = Command::new(BIN)
        .args(["watch", &addrs[0], &addrs[1], "--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connection refused"), "{stderr}");
}

#[test]
fn a_task_profile_of_several_targets_labels_each_sample_with_its_target() {
    use prost::Message;
    use std::io::Read;
    let a = DemoTarget::start(&["--source", "hooks", "--leak-every", "100ms"]);
    let b = DemoTarget::start(&["--leak-every", "100ms"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.pb.gz");
    let out = Command::new(BIN)
        .args(["report", &a.addr, &b.addr, "-o"])
        .arg(&path)
        .args(["--duration", "1s"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let p = taskscope::report::pprof::proto::Profile::decode(&raw[..]).expect("profile.proto");
    let s = |i: i64| p.string_table[i as usize].as_str();
    let mut per_target: std::collections::BTreeMap<String, i64> = Default::default();
    for sample in &p.sample {
        let target = sample
            .label
            .iter()
            .find(|l| s(l.key) == "target")
            .map(|l| s(l.str).to_string())
            .expect("a target label");
        *per_target.entry(target).or_default() += sample.value[0];
    }
    assert_eq!(
        per_target.keys().cloned().collect::<Vec<_>>(),
        {
            let mut v = vec![a.addr.clone(), b.addr.clone()];
            v.sort();
            v
        },
        "{per_target:?}"
    );
    assert!(per_target.values().all(|n| *n > 5), "{per_target:?}");
}
