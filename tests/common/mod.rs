//! Helpers for tests against a real instrumented target: the demo target
//! run as a child process (console-subscriber on an ephemeral port).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use taskscope::analysis::{Analysis, Group, Params};
use taskscope::conn::{self, Target};
use taskscope::model::State;

pub const BIN: &str = env!("CARGO_BIN_EXE_taskscope");

/// A running demo target; killed on drop.
pub struct DemoTarget {
    child: Child,
    pub addr: String,
}

impl DemoTarget {
    /// Starts `taskscope demo-target --port 0 ARGS…`.
    pub fn start(args: &[&str]) -> DemoTarget {
        Self::start_on(0, args)
    }

    /// Starts the demo target with its console on `port` (0: any free one).
    pub fn start_on(port: u16, args: &[&str]) -> DemoTarget {
        Self::start_with(port, args, &[])
    }

    /// As [`DemoTarget::start_on`], with these environment variables.
    pub fn start_with(port: u16, args: &[&str], env: &[(&str, &str)]) -> DemoTarget {
        let mut child = Command::new(BIN)
            .envs(env.iter().copied())
            .args([
                "demo-target",
                "--port",
                &port.to_string(),
                "--exit-on-stdin-close",
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start demo target");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read console line");
        let addr = line
            .trim()
            .strip_prefix("console=")
            .expect("console= line")
            .to_string();
        DemoTarget { child, addr }
    }

    pub fn target(&self) -> Target {
        Target::parse(&self.addr).expect("target address")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DemoTarget {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The exact `src/demo/target.rs:LINE` of the spawn marked `// spawn: NAME`.
pub fn spawn_line(name: &str) -> String {
    spawn_line_in(
        include_str!("../../src/demo/target.rs"),
        "src/demo/target.rs",
        name,
    )
}

/// The exact `PATH:LINE:` of the spawn marked `// spawn: NAME` in `src`.
pub fn spawn_line_in(src: &str, path: &str, name: &str) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let marker = format!("// spawn: {name} ");
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&marker))
        .unwrap_or_else(|| panic!("no spawn marker {name}"));
    let spawn = (at + 1..lines.len())
        .find(|&i| lines[i].contains(".spawn("))
        .expect("spawn call after marker");
    format!("{path}:{}:", spawn + 1)
}

/// The exact `src/demo/web.rs:LINE:` of the site marked `// KIND: NAME`
/// (`spawn`: the next `.spawn(`; `serve`: the next `serve(`).
pub fn web_line(kind: &str, name: &str) -> String {
    let src = include_str!("../../src/demo/web.rs");
    let lines: Vec<&str> = src.lines().collect();
    let marker = format!("// {kind}: {name} ");
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&marker))
        .unwrap_or_else(|| panic!("no marker {kind}: {name}"));
    let call = if kind == "serve" { "serve(" } else { ".spawn(" };
    let line = (at + 1..lines.len())
        .find(|&i| lines[i].contains(call))
        .expect("the call after the marker");
    format!("src/demo/web.rs:{}:", line + 1)
}

/// `taskscope watch ADDR --format json ARGS…`: its exit code and report.
pub fn watch_json(addr: &str, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(BIN)
        .args(["watch", addr, "--format", "json"])
        .args(args)
        .output()
        .expect("run taskscope watch");
    let rep = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), rep)
}

/// A JSON report's suspects, by location.
pub fn suspect_locations(rep: &serde_json::Value) -> Vec<String> {
    rep["suspects"]
        .as_array()
        .expect("suspects")
        .iter()
        .map(|s| s["location"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The report's top group spawned at the line marked `// spawn: NAME`.
pub fn report_group(rep: &serde_json::Value, name: &str) -> serde_json::Value {
    let line = spawn_line(name);
    rep["top_groups"]
        .as_array()
        .expect("top_groups")
        .iter()
        .find(|g| g["location"].as_str().unwrap_or("").starts_with(&line))
        .cloned()
        .unwrap_or_else(|| panic!("no {name} group in the report"))
}

/// Streams from `target` into a model until `done(analysis)` holds, or
/// panics with the last analysis after `deadline`.
pub fn watch_until(
    target: Target,
    deadline: Duration,
    params: Params,
    done: impl FnMut(&Analysis) -> bool,
) -> (State, Analysis) {
    watch(target, deadline, params, None, done)
}

/// As [`watch_until`], with the target's agent asked for waits `after` the
/// connection (once the scenarios' tasks exist), and not again: the
/// tests' verdicts then rest on one known round of captures.
pub fn watch_until_with_waits(
    target: Target,
    deadline: Duration,
    params: Params,
    after: Duration,
    done: impl FnMut(&Analysis) -> bool,
) -> (State, Analysis) {
    watch(target, deadline, params, Some(after), done)
}

fn watch(
    target: Target,
    deadline: Duration,
    params: Params,
    waits_after: Option<Duration>,
    mut done: impl FnMut(&Analysis) -> bool,
) -> (State, Analysis) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let opts = conn::Options {
            waits: conn::WaitsOptions {
                enabled: waits_after.is_some(),
                on_connect: true,
                first_after: waits_after.unwrap_or_default(),
                interval: None,
                timeout: Duration::from_secs(5),
            },
            ..conn::Options::default()
        };
        let mut rx = conn::spawn(target, opts).events;
        let mut state = State::default();
        let start = Instant::now();
        let mut last: Option<Analysis> = None;
        let mut last_check = Instant::now();
        loop {
            let left = deadline.saturating_sub(start.elapsed());
            if let Ok(Some(ev)) =
                tokio::time::timeout(left.max(Duration::from_millis(1)), rx.recv()).await
            {
                conn::apply(&mut state, ev);
            }
            if let Some(now) = state.log.now
                && last_check.elapsed() >= Duration::from_millis(200)
            {
                last_check = Instant::now();
                let a = Analysis::run(&state, now, &params);
                if done(&a) {
                    return (state, a);
                }
                last = Some(a);
            }
            if start.elapsed() >= deadline {
                panic!(
                    "condition not met within {deadline:?}; last analysis:\n{}",
                    describe(last.as_ref())
                );
            }
        }
    })
}

pub fn describe(a: Option<&Analysis>) -> String {
    match a {
        None => "<no update received>".into(),
        Some(a) => taskscope::report::plain::groups_table(a, "target", 50),
    }
}

/// The group whose location starts with `loc_prefix`.
pub fn group<'a>(a: &'a Analysis, loc_prefix: &str) -> Option<&'a Group> {
    a.groups.iter().find(|g| g.location.starts_with(loc_prefix))
}

/// Polls `observe` until `done` holds for what it returns, and returns
/// that; panics after `within` naming `what` and the last value seen. What
/// a test asserts after "a while" it waits for with this, never a sleep.
pub fn wait_until<T: std::fmt::Debug>(
    what: &str,
    within: Duration,
    mut observe: impl FnMut() -> T,
    mut done: impl FnMut(&T) -> bool,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let seen = observe();
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}; last seen: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a condition, polling; panics with `what` on timeout.
pub fn wait_for(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    wait_until(what, deadline, &mut cond, |met| *met);
}

/// A TCP proxy on loopback that can stop forwarding (a stalled network)
/// without closing anything, and resume.
pub struct StallingProxy {
    pub addr: String,
    paused: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Bytes forwarded from the upstream to clients so far.
    to_clients: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StallingProxy {
    pub fn start(upstream: &str) -> StallingProxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let paused = Arc::new(AtomicBool::new(false));
        let to_clients = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let upstream = upstream.to_string();
        let p = paused.clone();
        let counted = to_clients.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                for (from, to, count) in [
                    (client.try_clone(), server.try_clone(), None),
                    (
                        server.try_clone(),
                        client.try_clone(),
                        Some(counted.clone()),
                    ),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else {
                        continue;
                    };
                    let p = p.clone();
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
                        let mut buf = [0u8; 16 * 1024];
                        // When one side closes, close the other: a dead
                        // upstream must look dead to the client.
                        let close = |a: &std::net::TcpStream, b: &std::net::TcpStream| {
                            let _ = a.shutdown(std::net::Shutdown::Both);
                            let _ = b.shutdown(std::net::Shutdown::Both);
                        };
                        loop {
                            if p.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(20));
                                continue;
                            }
                            match from.read(&mut buf) {
                                Ok(0) => return close(&from, &to),
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        return close(&from, &to);
                                    }
                                    if let Some(c) = &count {
                                        c.fetch_add(n, Ordering::SeqCst);
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => return close(&from, &to),
                            }
                        }
                    });
                }
            }
        });
        StallingProxy {
            addr,
            paused,
            to_clients,
        }
    }

    /// Bytes the upstream has sent to clients through the proxy.
    pub fn forwarded_to_clients(&self) -> usize {
        self.to_clients.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn pause(&self) {
        self.paused.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.paused
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    /// Peak resident memory (VmHWM), KiB.
    pub peak_kib: u64,
}

/// Peak resident memory of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `taskscope ARGS…`, reading its peak memory as it runs; gives up
/// (and fails) after `limit`.
pub fn run(args: &[&str], limit: Duration) -> Run {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start taskscope");
    let pid = child.id();
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "taskscope {args:?} still running after {limit:?} (peak RSS {peak} KiB); stderr: {}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        took: started.elapsed(),
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
        peak_kib: peak,
    }
}
