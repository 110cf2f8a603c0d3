//! taskscope checked against the real tools teams run (installed from
//! Debian's packages by `scripts/test.sh`): a real Prometheus scrapes the
//! demo target's `/metrics` and evaluates `assets/prometheus-rules.yml`
//! (windows scaled down) and every query of `assets/grafana-dashboard.json`;
//! the real `go tool pprof` reads taskscope's task profiles.

use crate::common::{BIN, DemoTarget, spawn_line, wait_for};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A tool from the system, or a failure that says how to get it.
fn tool(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: run the tests with `bash scripts/test.sh`, which installs Debian's `{package}`"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` over HTTP/1.0; the body.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_string()))
}

struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rules asset with its windows scaled down (15m → 12s, …), so a test
/// sees what production sees in half an hour.
fn scaled_rules() -> String {
    let rules = include_str!("../assets/prometheus-rules.yml");
    let mut out = String::new();
    for line in rules.lines() {
        let l = line
            .replace("15 * 60", "12")
            .replace("[30m]", "[60s]")
            .replace("offset 15m", "offset 12s")
            .replace("growth15m", "growth12s")
            .replace("for: 15m", "for: 4s")
            .replace("[5m] offset 10m", "[4s] offset 8s")
            .replace("[5m]", "[4s]");
        out.push_str(&l);
        out.push('\n');
    }
    assert!(!out.contains("15m") && !out.contains("5m]"), "{out}");
    out
}

fn start_prometheus(target: &str) -> Prometheus {
    let bin = tool("prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, scaled_rules()).unwrap();
    let status = Command::new(tool("promtool", "prometheus"))
        .args(["check", "rules"])
        .arg(&rules)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "promtool rejects the scaled rules");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [\"{}\"]\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules.display()
        ),
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let p = Prometheus {
        child,
        addr,
        _dir: dir,
    };
    wait_for("prometheus ready", Duration::from_secs(30), || {
        http_get(&p.addr, "/-/ready").is_some()
    });
    p
}

impl Prometheus {
    /// An instant query's result vector.
    fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let body = http_get(
            &self.addr,
            &format!("/api/v1/query?query={}", percent_encode(q)),
        )
        .unwrap_or_else(|| panic!("prometheus rejects {q}"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{q}: {body}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    fn alerts(&self) -> Vec<serde_json::Value> {
        let body = http_get(&self.addr, "/api/v1/alerts").unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]["alerts"].as_array().cloned().unwrap_or_default()
    }
}

fn location_of(v: &serde_json::Value) -> String {
    v["labels"]["location"]
        .as_str()
        .or_else(|| v["metric"]["location"].as_str())
        .unwrap_or_default()
        .to_string()
}

const LEAKS: [&str; 4] = ["idle-conn", "full-channel", "sleepers", "oneshot"];
/// The demo's first four leaks and its healthy workload (the web leaks
/// have a test of their own: `web_e2e`).
const CLASSIC: &str = "idle-conn,full-channel,sleepers,oneshot,healthy";
const HEALTHY: [&str; 2] = ["healthy-request", "pool-worker"];

#[test]
#[ignore = "end-to-end tier (needs Prometheus): scripts/test.sh runs it"]
fn prometheus_scrapes_the_agent_and_the_alert_fires_for_the_leaks_only() {
    let demo = DemoTarget::start(&[
        "--source",
        "hooks",
        "--scenarios",
        CLASSIC,
        "--leak-every",
        "100ms",
    ]);
    let prom = start_prometheus(&demo.addr);
    let leaks: Vec<String> = LEAKS.iter().map(|n| spawn_line(n)).collect();
    let healthy: Vec<String> = HEALTHY.iter().map(|n| spawn_line(n)).collect();

    // Every leak's series grows in Prometheus.
    wait_for("the leaks' series growing", Duration::from_secs(40), || {
        let grew = prom.query("delta(taskscope_tasks_live[8s]) > 20");
        leaks
            .iter()
            .all(|l| grew.iter().any(|s| location_of(s).starts_with(l.as_str())))
    });
    // The scrape carries the counters too.
    let spawned = prom.query("sum(rate(taskscope_tasks_spawned_total[5s])) > 0");
    assert_eq!(spawned.len(), 1, "spawn rate visible");

    // The leak alert holds for the leaks, pending or firing …
    wait_for(
        "TokioTasksLeaking for every leak",
        Duration::from_secs(60),
        || {
            let alerts = prom.alerts();
            leaks.iter().all(|l| {
                alerts.iter().any(|a| {
                    a["labels"]["alertname"] == "TokioTasksLeaking"
                        && location_of(a).starts_with(l.as_str())
                        && matches!(a["state"].as_str(), Some("pending" | "firing"))
                })
            })
        },
    );
    // … and for nothing else: not the churning requests, not the fixed pool.
    let alerts = prom.alerts();
    for a in &alerts {
        let loc = location_of(a);
        assert!(
            leaks.iter().any(|l| loc.starts_with(l.as_str())),
            "alert on a location that does not leak: {a}"
        );
    }
    for h in &healthy {
        assert!(
            !alerts
                .iter()
                .any(|a| location_of(a).starts_with(h.as_str())),
            "healthy {h} alerted"
        );
    }

    // Every query of the Grafana dashboard runs and finds data.
    let dash: serde_json::Value =
        serde_json::from_str(include_str!("../assets/grafana-dashboard.json")).unwrap();
    let mut checked = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let q = expr
                .replace("$job", "demo")
                .replace("$instance", ".*")
                .replace("$location", ".*");
            let res = prom.query(&q);
            if !q.contains("offset 15m") && !q.contains("[1h]") {
                assert!(
                    !res.is_empty(),
                    "no data for dashboard panel {:?}: {q}",
                    panel["title"]
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "{checked} dashboard queries");
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            // label_values(METRIC{…}, LABEL): the metric's selector must parse.
            let selector = q
                .trim_start_matches("label_values(")
                .rsplit_once(',')
                .map(|(m, _)| m)
                .unwrap()
                .replace("$job", "demo")
                .replace("$instance", ".*");
            assert!(!prom.query(&selector).is_empty(), "{q}");
        }
    }
}

/// `go tool pprof -top -cum SOURCE` (a file, or a URL pprof fetches):
/// the cumulative count of each `spawned@LOCATION` root frame.
fn pprof_roots(args: &[&str], source: &str) -> Vec<(String, i64)> {
    pprof_top(&["-cum"], args, source)
        .into_iter()
        .filter_map(|(name, n)| Some((name.strip_prefix("spawned@")?.to_string(), n)))
        .collect()
}

/// `go tool pprof -top ORDER ARGS SOURCE`: each line's name and its
/// cumulative count. Profiles pprof fetches are saved in a temporary
/// directory, not in the user's home.
fn pprof_top(order: &[&str], args: &[&str], source: &str) -> Vec<(String, i64)> {
    let saved = tempfile::tempdir().unwrap();
    let out = Command::new(tool("go", "golang-go"))
        .args(["tool", "pprof", "-top", "-nodecount=1000"])
        .args(order)
        .args(args)
        .arg(source)
        .env("PPROF_TMPDIR", saved.path())
        .output()
        .expect("go tool pprof");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "go tool pprof {args:?} {source} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((cols.get(5..)?.join(" "), cols.get(3)?.parse().ok()?))
        })
        .collect()
}

fn taskscope(args: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "taskscope {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "end-to-end tier (needs Go's pprof): scripts/test.sh runs it"]
fn go_tool_pprof_reads_task_profiles_with_taskscope_s_counts() {
    let demo = DemoTarget::start(&[
        "--source",
        "hooks",
        "--scenarios",
        CLASSIC,
        "--leak-every",
        "50ms",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.pb.gz");
    let snap = dir.path().join("new.json");
    let new = dir.path().join("new.pb.gz");
    let report = dir.path().join("new-report.json");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // A profile straight from the live target…
    taskscope(&["snapshot", &demo.addr, "-o", &s(&old), "--duration", "1s"]);
    // Until every leak grew by 20 tasks since: the agent's own profile
    // diffed against the viewer's (the two have one shape).
    let url = format!("http://{}/debug/pprof/tasks", demo.addr);
    crate::common::wait_until(
        "every leak to grow by 20 tasks since the first profile",
        Duration::from_secs(30),
        || pprof_roots(&["-diff_base", &s(&old)], &url),
        |diff| {
            LEAKS.iter().all(|leak| {
                let l = spawn_line(leak);
                diff.iter().any(|(r, n)| r.starts_with(&l) && *n >= 20)
            })
        },
    );
    // … and one from a snapshot, beside that snapshot's JSON report.
    taskscope(&["snapshot", &demo.addr, "-o", &s(&snap), "--duration", "1s"]);
    taskscope(&["report", &s(&snap), "-o", &s(&new)]);
    taskscope(&["report", &s(&snap), "-o", &s(&report)]);

    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let shown: Vec<(String, i64)> = rep["top_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["location"].as_str().unwrap().to_string(),
                g["tasks"].as_i64().unwrap(),
            )
        })
        .collect();
    let roots = pprof_roots(&[], &s(&new));
    for leak in LEAKS {
        let l = spawn_line(leak);
        let (loc, n) = shown
            .iter()
            .find(|(loc, _)| loc.starts_with(&l))
            .unwrap_or_else(|| panic!("{leak} not in the report"));
        assert!(*n > 20, "{leak}: {n}");
        let in_pprof = roots.iter().find(|(r, _)| r == loc).map(|(_, n)| *n);
        assert_eq!(in_pprof, Some(*n), "{leak} ({loc}): pprof {roots:?}");
    }

    // -diff_base: each leak grew between the two profiles.
    let diff = pprof_roots(&["-diff_base", &s(&old)], &s(&new));
    for leak in LEAKS {
        let l = spawn_line(leak);
        let grew = diff
            .iter()
            .find(|(r, _)| r.starts_with(&l))
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("{leak} not in the diff: {diff:?}"));
        assert!(grew >= 20, "{leak} grew by {grew}");
    }
}

/// The agent's own profile endpoint, at the path `assets/alloy-taskscope.alloy`
/// has Pyroscope pull, as a person pulls it:
/// `go tool pprof http://HOST:PORT/debug/pprof/tasks` fetches it over HTTP
/// and reads every leak's spawn location with its tasks and, on loopback
/// (inspection without a token), their captured stacks; `-diff_base`
/// between two pulls shows each leak growing.
#[test]
#[ignore = "end-to-end tier (needs Go's pprof): scripts/test.sh runs it"]
fn go_tool_pprof_pulls_the_agent_s_task_profile_over_http() {
    // The path the shipped Alloy config scrapes, as a complete profile.
    let alloy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/alloy-taskscope.alloy"),
    )
    .unwrap();
    let custom = &alloy[alloy
        .find("profile.custom")
        .expect("a profile.custom block")..];
    let block = &custom[..custom.find('}').unwrap()];
    let path = block
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("path")?
                .trim()
                .strip_prefix('=')?
                .trim()
                .strip_prefix('"')?
                .strip_suffix('"')
        })
        .expect("the block's path");
    assert!(
        block
            .lines()
            .any(|l| l.split_whitespace().collect::<String>() == "delta=false"),
        "each pull is a whole profile: {block}"
    );
    let demo = DemoTarget::start(&[
        "--source",
        "hooks",
        "--scenarios",
        CLASSIC,
        "--leak-every",
        "50ms",
    ]);
    let url = format!("http://{}{path}", demo.addr);
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.pb.gz");
    let old = old.to_str().unwrap();
    // The first pull, saved as pprof saves it, once every leak has begun.
    let pull = || {
        let out = Command::new(tool("go", "golang-go"))
            .args(["tool", "pprof", "-proto", "-output", old, &url])
            .env("PPROF_TMPDIR", dir.path())
            .output()
            .expect("go tool pprof");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pprof_roots(&[], old)
    };
    crate::common::wait_until(
        "every leak's spawn location in the agent's profile",
        Duration::from_secs(30),
        pull,
        |base| {
            LEAKS.iter().all(|leak| {
                let l = spawn_line(leak);
                base.iter().any(|(r, n)| r.starts_with(&l) && *n > 0)
            })
        },
    );
    // Each pull asks the leaked tasks for captures; once they answered,
    // the leaks' tasks come with their stacks (functions under the spawn
    // location, not only `(idle)`).
    crate::common::wait_until(
        "the agent's profile to hold the leaks' stacks",
        Duration::from_secs(30),
        || pprof_top(&[], &[], &url),
        |top| {
            top.iter()
                .any(|(name, n)| *n > 0 && name.contains("::") && !name.starts_with("spawned@"))
        },
    );
    // The leaks grow at 20/s; the diff against the first pull shows it.
    crate::common::wait_until(
        "every leak to grow by 20 tasks against the first pull",
        Duration::from_secs(30),
        || pprof_roots(&["-diff_base", old], &url),
        |diff| {
            LEAKS.iter().all(|leak| {
                let l = spawn_line(leak);
                diff.iter().any(|(r, n)| r.starts_with(&l) && *n >= 20)
            })
        },
    );
}
