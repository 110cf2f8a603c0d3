//! End to end against a hostile hooks source of our own (`agent.rs`): the
//! real `taskscope` binary must end within its duration plus the documented
//! bound, keep its memory to what it shows, and still flag the honest leak
//! the liars stand beside. The TUI against it is in `tui.rs`.

mod agent;
mod real_agent;
mod tui;
mod waits;

use crate::common::{Run, run, suspect_locations};
use agent::{Lies, WaitsLie};
use std::time::Duration;

/// How long past `--duration` a headless command may run, whatever the
/// target does (docs/security.md, "A hostile hooks source"): up to 11 s for the
/// first data, up to `--waits-timeout` (5 s) for the final request for
/// waits, 1 s to finish.
const PAST_DURATION: Duration = Duration::from_secs(17);

fn report(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {}", r.stderr))
}

/// The honest leak starts as the viewer attaches (no history to lean on):
/// a 10 s watch flags it when it is alone.
fn fresh(lies: Lies) -> Lies {
    Lies {
        uptime: Duration::ZERO,
        ..lies
    }
}

#[test]
fn the_honest_leak_alone_is_flagged() {
    let target = agent::serve(fresh(Lies::none()));
    let r = run(
        &[
            "watch",
            &target.addr,
            "--duration",
            "10s",
            "--format",
            "json",
            "--fail-on-suspect",
        ],
        Duration::from_secs(60),
    );
    let rep = report(&r);
    assert_eq!(
        suspect_locations(&rep),
        vec![agent::honest_location()],
        "{rep:#}"
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
}

#[test]
fn liars_neither_hold_nor_swell_the_viewer_nor_hide_the_honest_leak() {
    let target = agent::serve(fresh(Lies::all()));
    let duration = Duration::from_secs(10);
    let r = run(
        &[
            "watch",
            &target.addr,
            "--duration",
            "10s",
            "--format",
            "json",
            "--fail-on-suspect",
        ],
        Duration::from_secs(120),
    );
    println!(
        "watch --duration 10s against every lie: {:?}, peak RSS {} KiB, exit {:?}",
        r.took, r.peak_kib, r.code
    );
    let rep = report(&r);
    let warnings = rep["warnings"].to_string();
    assert_eq!(
        suspect_locations(&rep),
        vec![agent::honest_location()],
        "warnings: {warnings}"
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.took <= duration + PAST_DURATION,
        "watch --duration 10s took {:?}",
        r.took
    );
    assert!(r.peak_kib < 128 * 1024, "peak RSS {} KiB", r.peak_kib);
    for said in [
        "group reports with counts it cannot have",
        "messages whose clock ran backwards or ahead",
        "site histories it cannot have kept",
        "age buckets over the 40",
        "traces over the 8192",
        "frames over the 128",
    ] {
        assert!(warnings.contains(said), "no {said:?} in {warnings}");
    }
    assert!(!r.stdout.contains('\u{1b}'), "raw escape on stdout");
    assert!(
        !r.stderr.contains('\u{1b}'),
        "raw escape on stderr: {:?}",
        r.stderr
    );
}

#[test]
fn every_headless_command_ends_on_time_when_the_waits_never_come_or_are_huge() {
    let light = Lies {
        liars: 200,
        ..Lies::all()
    };
    let silent = agent::serve(Lies {
        captures: WaitsLie::Never,
        ..light.clone()
    });
    // The flood: 50 000 traces of 500 frames, about 50 MB.
    let huge = agent::serve(Lies {
        captures: WaitsLie::Flood {
            traces: 50_000,
            frames: 500,
        },
        ..light
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("s.json");
    let rep = dir.path().join("r.json");
    let (a, b) = (&silent.addr, &huge.addr);
    let commands: Vec<Vec<&str>> = vec![
        vec!["watch", a, "--duration", "2s", "--format", "json"],
        vec!["watch", b, "--duration", "2s", "--format", "json"],
        vec![
            "snapshot",
            a,
            "--duration",
            "2s",
            "-o",
            snap.to_str().expect("path"),
        ],
        vec![
            "report",
            a,
            "--duration",
            "2s",
            "-o",
            rep.to_str().expect("path"),
        ],
        vec!["connect", a, "--once", "--duration", "2s"],
    ];
    let runs: Vec<(String, Run)> = std::thread::scope(|scope| {
        let running: Vec<_> = commands
            .iter()
            .map(|args| scope.spawn(move || (args.join(" "), run(args, Duration::from_secs(120)))))
            .collect();
        running
            .into_iter()
            .map(|t| t.join().expect("run"))
            .collect()
    });
    for (i, (what, r)) in runs.iter().enumerate() {
        println!("{what}: {:?}, peak RSS {} KiB", r.took, r.peak_kib);
        assert_eq!(r.code, Some(0), "{what}: {}", r.stderr);
        assert!(
            r.took <= Duration::from_secs(2) + PAST_DURATION,
            "{what} took {:?}",
            r.took
        );
        let said = match i {
            0 => "the agent did not answer within 5s (--waits-timeout)",
            1 => "over the limit of 16777216 (--max-agent-message-size)",
            _ => continue,
        };
        let warnings = report(r)["warnings"].to_string();
        assert!(warnings.contains(said), "{what}: {warnings}");
    }
}

#[test]
fn a_message_over_the_limit_is_refused_in_one_line() {
    // 600 liars with an hour of history each: 26 MB in the first message.
    let target = agent::serve(Lies {
        history_sites: 600,
        ..Lies::all()
    });
    let r = run(
        &["watch", &target.addr, "--duration", "2s"],
        Duration::from_secs(120),
    );
    println!("{:?}, peak RSS {} KiB", r.took, r.peak_kib);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("over the limit of 16777216 bytes: raise --max-agent-message-size"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.peak_kib < 64 * 1024, "peak RSS {} KiB", r.peak_kib);
}
