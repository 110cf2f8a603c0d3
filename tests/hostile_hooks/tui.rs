//! The live view in a real terminal (tmux) against every lie at once: it
//! stays responsive, shows the honest group and says what it set aside,
//! opens a group whose pages never end, and quits with `q` (exit 0) with
//! the terminal's title and clipboard as they were.

use super::agent::{self, Lies};
use crate::common;
use crate::tmux_e2e::{SERIAL, Tmux};
use std::time::{Duration, Instant};

/// A key pressed and the screen it should bring, within `within`.
fn answers(t: &Tmux, key: &str, what: &str, within: Duration, cond: impl Fn(&str) -> bool) {
    let asked = Instant::now();
    t.keys(&[key]);
    t.wait_screen(what, cond);
    assert!(
        asked.elapsed() < within,
        "{what} took {:?} after `{key}`",
        asked.elapsed()
    );
}

fn title(t: &Tmux) -> String {
    let out = t.cmd(&["display-message", "-p", "-t", "e2e", "#{pane_title}"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Peak resident memory (KiB) of the program the pane's shell runs.
fn viewer_peak_kib(t: &Tmux) -> Option<u64> {
    let out = t.cmd(&["display-message", "-p", "-t", "e2e", "#{pane_pid}"]);
    let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let children = std::process::Command::new("pgrep")
        .args(["-P", &shell])
        .output()
        .ok()?;
    let pid = String::from_utf8_lossy(&children.stdout)
        .lines()
        .next()?
        .trim()
        .to_string();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the pane wrote to the clipboard (tmux keeps OSC 52 writes as paste
/// buffers with `set-clipboard on`).
fn clipboard(t: &Tmux) -> String {
    let out = t.cmd(&["list-buffers", "-F", "#{buffer_sample}"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
#[ignore = "end-to-end tier (needs tmux): scripts/test.sh runs it"]
fn the_view_stays_responsive_and_inert_against_every_lie_and_q_exits_0() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let target = agent::serve(Lies::all());
    let t = Tmux::start("hostile-hooks", 200, 40);
    assert!(
        t.cmd(&["set-option", "-g", "set-clipboard", "on"])
            .status
            .success()
    );
    // The harness sees a program retitle the terminal or write to its
    // clipboard: a shell does both here, and is seen.
    t.literal(r"printf '\033]0;seen-title\007\033]52;c;c2Vlbg==\007'; clear");
    t.keys(&["Enter"]);
    common::wait_for(
        "the shell's title and clipboard write",
        Duration::from_secs(10),
        || title(&t) == "seen-title" && clipboard(&t) == "seen",
    );
    assert!(t.cmd(&["delete-buffer"]).status.success());
    t.literal(r"printf '\033]0;before\007'; clear");
    t.keys(&["Enter"]);
    common::wait_for("the title put back", Duration::from_secs(10), || {
        title(&t) == "before"
    });

    t.literal(&format!(
        "{} connect {}; echo \"E\"\"XIT=$?\"",
        common::BIN,
        target.addr
    ));
    t.keys(&["Enter"]);
    let honest = agent::honest_location();
    let s = t.wait_screen("the honest group, and what was set aside", |s| {
        s.contains("Tasks▼") && s.contains(&honest) && s.contains("set aside")
    });
    // The liars are not rows: the honest group is the only one.
    assert!(!s.contains("liar-"), "{s}");
    let rows = s
        .lines()
        .filter(|l| l.contains(&format!(" {honest} ←")))
        .count();
    assert_eq!(rows, 1, "{s}");
    assert!(s.lines().all(|l| l.chars().count() <= 200), "{s}");

    // Keys are answered at once while the liars keep sending.
    let quick = Duration::from_secs(3);
    answers(&t, "?", "help", quick, |s| {
        s.contains("freeze / resume the view")
    });
    // The help is gone, not only the table's header seen beside it (at
    // 200 columns the overlay leaves it in view): an Enter sent on the
    // heels of the Escape reaches the view as Alt+Enter, and opens nothing.
    answers(&t, "Escape", "the groups again", quick, |s| {
        s.contains("Tasks▼") && !s.contains("freeze / resume the view")
    });
    // The group's tasks come a page at a time; its pages never end.
    answers(
        &t,
        "Enter",
        "the honest group's tasks",
        Duration::from_secs(10),
        |s| s.contains(&format!("tasks @ {honest}")) && s.contains("ID"),
    );
    answers(&t, "Escape", "the groups again", quick, |s| {
        s.contains("Tasks▼")
    });
    let peak = viewer_peak_kib(&t).expect("the viewer's peak memory");
    println!("the live view against every lie: peak RSS {peak} KiB");
    assert!(peak < 128 * 1024, "peak RSS {peak} KiB");
    answers(&t, "q", "the exit code", Duration::from_secs(5), |s| {
        s.contains("EXIT=")
    });
    let s = t.screen();
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(
        !t.alternate_on(),
        "terminal left on the alternate screen:\n{s}"
    );
    assert_eq!(title(&t), "before", "the title was changed");
    assert_eq!(clipboard(&t), "", "the clipboard was written");
}
