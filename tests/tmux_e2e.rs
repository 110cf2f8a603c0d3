//! The real binary in a real terminal (tmux): start the demo, open a group,
//! go back, filter, quit; assert on what a person sees, and that the
//! terminal and the process table are clean afterwards.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own, with one session (`e2e`) running bash.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    pub(crate) fn start(name: &str, width: u16, height: u16) -> Tmux {
        let socket = format!("taskscope-e2e-{}-{name}", std::process::id());
        let t = Tmux { socket };
        let ok = t
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "e2e",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                "env",
                "PS1=$ ",
                "TERM=xterm-256color",
                "bash",
                "--norc",
                "--noprofile",
            ])
            .status
            .success();
        assert!(
            ok,
            "tmux could not start (is tmux installed? .ci/run installs it)"
        );
        t
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux is required for this test (.ci/run installs it)")
    }

    pub(crate) fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    pub(crate) fn literal(&self, text: &str) {
        assert!(
            self.cmd(&["send-keys", "-t", "e2e", "-l", text])
                .status
                .success()
        );
    }

    pub(crate) fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "e2e"]).stdout).to_string()
    }

    pub(crate) fn alternate_on(&self) -> bool {
        let out = self.cmd(&["display-message", "-p", "-t", "e2e", "#{alternate_on}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    pub(crate) fn wait_screen(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if cond(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The tests look at the process table, so they run one at a time.
pub(crate) static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The demo targets started by the `taskscope demo` whose command line
/// contains `marker` (its child processes, so other demos on the machine
/// do not count).
fn demo_children(marker: &str) -> Vec<String> {
    let lines = |out: std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let parents = lines(
        Command::new("pgrep")
            .args(["-f", marker])
            .output()
            .expect("pgrep"),
    );
    parents
        .iter()
        .flat_map(|p| {
            lines(
                Command::new("pgrep")
                    .args(["-P", p])
                    .output()
                    .expect("pgrep"),
            )
        })
        .collect()
}

fn alive(pid: &str) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
#[ignore = "end-to-end tier (needs tmux): scripts/test.sh runs it"]
fn demo_in_a_real_terminal() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("temp dir");
    let cwd = tmp.path();
    let t = Tmux::start("demo", 160, 40);
    t.literal(&format!(
        "cd {} && {} demo --demo-source console --leak-every 200ms",
        cwd.display(),
        common::BIN
    ));
    t.keys(&["Enter"]);
    let s = t.wait_screen("the groups view with the leaks", |s| {
        s.contains("[conn-handler]") && s.contains("[stale-worker]") && s.contains("● connected")
    });
    assert!(s.contains("Tasks▼"), "{s}");
    assert!(t.alternate_on(), "the TUI runs on the alternate screen");
    // The demo's agent captures each task's stack by the task itself (the
    // runtime never pauses): `t` asks now, and the idle connections are
    // shown blocked on a socket read, as a fact from their stacks.
    t.keys(&["t"]);
    let s = t.wait_screen("the captured waits", |s| {
        s.contains("captured per task (never paused)") && s.contains("socket read*")
    });
    let row = s
        .lines()
        .find(|l| l.contains("[conn-handler]"))
        .unwrap_or_default();
    assert!(row.contains("socket read*"), "{s}");
    let children = demo_children("demo --demo-source console --leak-every 200ms");
    assert!(!children.is_empty(), "the demo target runs as a child");

    // Filter to the sleeping workers.
    t.keys(&["/"]);
    t.literal("stale");
    t.keys(&["Enter"]);
    let s = t.wait_screen("the filtered view", |s| {
        s.contains("filter: stale") && !s.contains("[conn-handler]")
    });
    assert!(s.contains("[stale-worker]"), "{s}");

    // Open the group, then go back.
    t.keys(&["Enter"]);
    let s = t.wait_screen("the group detail", |s| {
        s.contains("tasks @ src/demo/target.rs:")
    });
    assert!(s.contains("stale-worker"), "{s}");
    assert!(s.contains("sleep"), "the workers are sleeping: {s}");
    t.keys(&["Escape"]);
    t.wait_screen("the groups view again", |s| {
        s.contains("Tasks▼") && s.contains("filter: stale")
    });
    // Esc clears the filter.
    t.keys(&["Escape"]);
    t.wait_screen("all groups", |s| {
        s.contains("[conn-handler]") && !s.contains("filter:")
    });

    // Baseline, wait, diff: the leaks have grown since.
    t.keys(&["b"]);
    t.wait_screen("the baseline notice", |s| s.contains("baseline marked"));
    // The diff view follows the live data: the leaks show as grown as
    // soon as they have.
    t.keys(&["d"]);
    let s = t.wait_screen("the diff view with grown leaks", |s| {
        s.contains("diff baseline") && s.contains("grown")
    });
    assert!(s.contains("Change"), "{s}");
    t.keys(&["d"]);
    t.wait_screen("the groups view after the diff", |s| s.contains("Tasks▼"));

    // Save a snapshot; the status line names the file, and it loads.
    t.keys(&["s"]);
    let s = t.wait_screen("the saved notice", |s| s.contains("saved snapshot"));
    let saved: Vec<_> = std::fs::read_dir(cwd)
        .expect("read cwd")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(
        saved.len(),
        1,
        "one snapshot file in {}: {s}",
        cwd.display()
    );
    let name = saved[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(s.contains(&name), "the status line names {name}: {s}");
    assert!(taskscope::snapshot::open(&saved[0]).is_ok());

    // Help, then quit.
    t.keys(&["?"]);
    t.wait_screen("help", |s| s.contains("freeze / resume the view"));
    t.keys(&["Escape"]);
    // Closed before the next key: one sent on the Escape's heels would be
    // read with it as one key (Alt+q), which the help takes.
    t.wait_screen("the help closed", |s| {
        !s.contains("freeze / resume the view")
    });
    t.keys(&["q"]);
    let s = t.wait_screen("the shell prompt after quitting", |s| {
        !s.contains("Tasks▼") && s.lines().any(|l| l.trim_end() == "$")
    });
    assert!(
        !t.alternate_on(),
        "terminal left on the alternate screen:\n{s}"
    );
    // The demo target is gone too.
    let start = Instant::now();
    while children.iter().any(|pid| alive(pid)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "demo target still running after quit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "end-to-end tier (needs tmux): scripts/test.sh runs it"]
fn hostile_names_stay_inert_and_a_signal_restores_the_terminal() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = Tmux::start("hostile", 140, 30);
    t.literal(&format!(
        "{} demo --demo-source console --scenarios healthy,hostile",
        common::BIN
    ));
    t.keys(&["Enter"]);
    let s = t.wait_screen("the hostile group", |s| {
        s.contains("[redlink") && s.contains("● connected")
    });
    // The OSC 0 in a task name must not retitle the terminal, and nothing
    // of the 100 KB name spills beyond its cell.
    let title = t.cmd(&["display-message", "-p", "-t", "e2e", "#{pane_title}"]);
    assert!(
        !String::from_utf8_lossy(&title.stdout).contains("pwned"),
        "title changed by a task name"
    );
    assert!(s.lines().all(|l| l.chars().count() <= 140), "{s}");
    assert!(!s.contains("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    // SIGINT from outside quits like q: the terminal is restored and the
    // demo stops. (SIGTERM takes the same path.)
    let children = demo_children("demo --demo-source console --scenarios healthy,hostile");
    assert!(!children.is_empty(), "the demo target runs as a child");
    let killed = Command::new("pkill")
        .args([
            "-INT",
            "-f",
            "taskscope demo --demo-source console --scenarios healthy,hostile",
        ])
        .status()
        .expect("pkill");
    assert!(killed.success());
    let s = t.wait_screen("the prompt after SIGINT", |s| {
        !s.contains("Tasks▼") && s.lines().any(|l| l.trim_end() == "$")
    });
    assert!(
        !t.alternate_on(),
        "terminal left on the alternate screen after SIGINT:\n{s}"
    );
    let start = Instant::now();
    while children.iter().any(|pid| alive(pid)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "demo target still running after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "end-to-end tier (needs tmux): scripts/test.sh runs it"]
fn a_dying_model_thread_closes_the_view_cleanly_and_says_why() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = Tmux::start("fault", 140, 30);
    t.literal(&format!(
        "TASKSCOPE_FAULT=model-panic {} demo --scenarios healthy; echo \"E\"\"XIT=$?\"",
        common::BIN
    ));
    t.keys(&["Enter"]);
    let s = t.wait_screen("the error after the view closed", |s| s.contains("EXIT="));
    assert!(
        s.contains("taskscope: error: the model thread failed (injected fault (TASKSCOPE_FAULT=model-panic) at src/session/mod.rs:"),
        "{s}"
    );
    assert!(s.contains("EXIT=2"), "{s}");
    assert!(!s.contains("Tasks▼"), "the view is gone: {s}");
    assert!(
        !t.alternate_on(),
        "terminal left on the alternate screen:\n{s}"
    );
    // No panic text was printed over the view nor left on the screen.
    assert!(!s.contains("panicked at"), "{s}");
    assert!(demo_children("demo --scenarios healthy; echo").is_empty());
}

#[test]
#[ignore = "end-to-end tier (needs tmux): scripts/test.sh runs it"]
fn the_hooks_demo_in_a_real_terminal() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = Tmux::start("hooks", 160, 40);
    t.literal(&format!(
        "{} demo --demo-source hooks --leak-every 200ms",
        common::BIN
    ));
    t.keys(&["Enter"]);
    // The groups come from the target's own count, with where their
    // spawning tasks were spawned; the suspects lead.
    let s = t.wait_screen("the hooks groups view", |s| {
        s.contains("Tasks▼") && s.contains("← spawned by src/demo/target.rs")
    });
    assert!(s.contains("Tasks▼"), "{s}");
    // The first capture (20 s after start) names the waits; meanwhile
    // `t` takes one now, once the agent is known.
    t.wait_screen("the agent detected", |s| s.contains("◆ agent ready"));
    t.keys(&["t"]);
    let s = t.wait_screen("the capture's reasons on the hooks source", |s| {
        s.contains("socket read*")
    });
    let row = s
        .lines()
        .find(|l| l.contains("socket read*"))
        .unwrap_or_default()
        .to_string();
    assert!(row.contains("← spawned by"), "{s}");
    // Open the idle connections' group (filtered by its spawn line, so the
    // order of equal-sized groups does not matter): its tasks are fetched
    // from the target, each with its wait from the capture by its tokio id.
    let idle_conn = common::spawn_line("idle-conn");
    t.keys(&["/"]);
    t.literal(&idle_conn);
    t.keys(&["Enter"]);
    t.wait_screen("the filtered view", |s| {
        s.contains(&format!("filter: {idle_conn}")) && s.contains("socket read*")
    });
    t.keys(&["Enter"]);
    let s = t.wait_screen("the group's tasks from the target", |s| {
        s.contains(&format!("tasks @ {idle_conn}"))
            && s.contains("busy ")
            && s.contains("spawned by task")
    });
    assert!(s.contains("ID"), "{s}");
    t.wait_screen("per-task waits from the capture", |s| {
        s.contains("blocked on socket read (from its captured stack)")
    });
    t.keys(&["Escape"]);
    t.wait_screen("the filtered groups view", |s| s.contains("filter:"));
    t.keys(&["Escape"]);
    t.wait_screen("the groups view again", |s| s.contains("Tasks▼"));
    t.keys(&["q"]);
    let s = t.wait_screen("the shell prompt after quitting", |s| {
        !s.contains("Tasks▼") && s.lines().any(|l| l.trim_end() == "$")
    });
    assert!(
        !t.alternate_on(),
        "terminal left on the alternate screen:\n{s}"
    );
}

/// `connect A B` in a real terminal: one view of two replicas, which
/// replica holds a group's tasks, and the view going on when one dies.
#[test]
#[ignore = "end-to-end tier (needs tmux): scripts/test.sh runs it"]
fn two_replicas_in_one_view_and_one_dies() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let a = common::DemoTarget::start(&["--source", "hooks", "--leak-every", "100ms"]);
    let mut b = common::DemoTarget::start(&["--leak-every", "300ms", "--scenarios", "sleepers"]);
    let t = Tmux::start("fleet", 200, 40);
    t.literal(&format!("{} connect {} {}", common::BIN, a.addr, b.addr));
    t.keys(&["Enter"]);
    let sleepers = common::spawn_line("sleepers");
    let both = format!("@ {} ×", a.addr);
    let s = t.wait_screen("both targets up, the sleepers on both", |s| {
        s.contains("2 of 2 up")
            && s.lines()
                .any(|l| l.contains(&sleepers) && l.contains(&both) && l.contains(&b.addr))
    });
    assert!(s.contains("(2 targets)"), "{s}");
    b.kill();
    let s = t.wait_screen("the dead target reconnecting, the other going on", |s| {
        s.contains("1 of 2 up") && s.contains(&format!("⟳ {}", b.addr))
    });
    // The dead replica's tasks stay in the view (its history is kept).
    assert!(
        s.lines()
            .any(|l| l.contains(&sleepers) && l.contains(&b.addr)),
        "{s}"
    );
    let count = |s: &str| -> u64 {
        let row = s
            .lines()
            .find(|l| l.contains(&common::spawn_line("idle-conn")))
            .unwrap_or_default();
        row.split_whitespace()
            .find(|w| *w != "!!")
            .and_then(|w| w.parse().ok())
            .unwrap_or(0)
    };
    let before = count(&s);
    assert!(before > 0, "the idle connections' row: {s}");
    t.wait_screen("the live target's leak still growing", |s| {
        count(s) > before + 5
    });
    t.keys(&["q"]);
    t.wait_screen("the shell prompt after quitting", |s| {
        !s.contains("Tasks▼") && s.lines().any(|l| l.trim_end() == "$")
    });
}

#[test]
#[ignore = "end-to-end tier (needs tmux): scripts/test.sh runs it"]
fn an_agent_that_refuses_the_view_says_why_and_the_token_opens_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tmux-token-0123456789\n").unwrap();
    let demo = common::DemoTarget::start_with(
        0,
        &["--source", "hooks", "--scenarios", "sleepers"],
        &[("TASKSCOPE_TOKEN_FILE", token.to_str().unwrap())],
    );
    let t = Tmux::start("token", 140, 30);
    t.literal(&format!(
        "env -u TASKSCOPE_TOKEN_FILE {} connect {}; echo \"E\"\"XIT=$?\"",
        common::BIN,
        demo.addr
    ));
    t.keys(&["Enter"]);
    let s = t.wait_screen("the refusal after the view closed", |s| s.contains("EXIT="));
    assert!(
        s.contains("refused to be inspected") && s.contains("EXIT=2"),
        "{s}"
    );
    t.literal(&format!(
        "{} connect {} --token-file {}",
        common::BIN,
        demo.addr,
        token.display()
    ));
    t.keys(&["Enter"]);
    t.wait_screen("the groups with the token", |s| {
        s.contains("tasks in") && s.contains("connected")
    });
    t.keys(&["q"]);
}
