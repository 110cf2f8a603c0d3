//! Starting the demo target as a child process and stopping it again.

use crate::conn::Target;
use anyhow::{Context, bail};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running demo target. Dropping it kills the process; its standard
/// input is a pipe, and the target exits when that closes, so it dies
/// with taskscope even if taskscope is killed.
pub struct DemoChild {
    child: Child,
    pub target: Target,
}

impl DemoChild {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the target and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Starts `exe demo-target --port 0 --exit-on-stdin-close ARGS…` and waits
/// for it to announce its console address.
pub async fn spawn_child(exe: &Path, args: &[String]) -> anyhow::Result<DemoChild> {
    if !cfg!(feature = "demo") {
        bail!(super::NO_DEMO_FEATURE);
    }
    if !cfg!(tokio_unstable) {
        bail!(super::NO_TOKIO_UNSTABLE);
    }
    let mut cmd = Command::new(exe);
    crate::malloc::untune(&mut cmd);
    let mut child = cmd
        .arg("demo-target")
        .args(["--port", "0", "--exit-on-stdin-close"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start the demo target {}", exe.display()))?;
    let stdout = child.stdout.take().context("demo target has no stdout")?;
    let mut stderr = child.stderr.take().context("demo target has no stderr")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
    let addr = match first {
        Ok(Ok(Some(line))) => line.strip_prefix("console=").map(str::to_string),
        _ => None,
    };
    let Some(addr) = addr else {
        let _ = child.start_kill();
        let mut err = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut err)).await;
        let reason = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("it exited without announcing its console address");
        bail!(
            "demo target failed to start: {}",
            reason.trim_start_matches("error: ")
        );
    };
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink).await;
    });
    let target = Target::parse(&addr)
        .with_context(|| format!("demo target announced a bad address {addr:?}"))?;
    Ok(DemoChild { child, target })
}
