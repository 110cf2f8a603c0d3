//! Command-line interface: what each command takes, as clap types
//! (`commands` dispatches and runs them).

use crate::analysis::Params;
use crate::conn;
use crate::demo::Scenario;
use crate::{report, ui};
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

/// Exit codes, as documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const SUSPECTS: u8 = 1;
    pub const USAGE: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "taskscope",
    version,
    about = "Live task inspector for tokio services: groups tasks by spawn location, tells what they wait on, flags groups that leak.",
    long_about = "Live task inspector for tokio services.\n\nAttaches to a running service, groups its live tasks by spawn location, tells what they are blocked on, and flags groups that keep growing.\n\nThe hooks source (recommended): taskscope-agent in the service reads tokio's runtime hooks (--cfg tokio_unstable) for exact counts per spawn location at about 100 B a task, and captures waits per task without pausing the runtime; cheap enough to leave on in production.\n\nThe console source: tokio-console's console-subscriber (tokio's tracing feature), per-task data, for a service that already runs it.\n\n`--source auto`, the default, reads the hooks source when the target serves it.\n\nExit codes: 0 ok, 1 suspects found (watch), 2 usage or input error (bad address, unreachable target, malformed file).",
    after_help = "Start with `taskscope demo` to see it on a built-in leaky service."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Attach to a running target and open the live view.
    Connect(ConnectArgs),
    /// Start the built-in leaky demo target and open the live view on it.
    Demo(DemoArgs),
    /// Connect headless, gather for a while, and write a snapshot file.
    Snapshot(SnapshotArgs),
    /// Compare two snapshots: what grew, shrank, appeared or vanished.
    Diff(DiffArgs),
    /// Write a suspect-task report (Markdown, JSON or HTML) from a live target or snapshots.
    Report(ReportArgs),
    /// Headless leak gate: watch a target, print the report, exit 1 on suspects with --fail-on-suspect.
    Watch(WatchArgs),
    /// Print the JSON Schema of a document taskscope writes (snapshot, report or diff).
    Schema {
        #[arg(value_enum)]
        document: crate::schemas::Document,
    },
    /// Run the demo target itself (used by `demo` and by tests).
    #[command(hide = true)]
    DemoTarget(DemoTargetArgs),
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Target console address: HOST:PORT, http://HOST:PORT, [IPv6]:PORT or file:///PATH for a Unix socket (port defaults to 6669). Several (replicas of one service): one view, groups merged by spawn location with each target's share, each target connected (and reconnected) on its own.
    #[arg(default_value = "127.0.0.1:6669", num_args = 1..)]
    pub addrs: Vec<String>,
    /// Print the groups table once and exit instead of opening the TUI (exit 2 if the target cannot be reached).
    #[arg(long)]
    pub once: bool,
    /// With --once: how long to gather after the first update.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub duration: Duration,
    #[command(flatten)]
    pub view: ViewArgs,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Target console address (as for `connect`).
    #[arg(default_value = "127.0.0.1:6669")]
    pub addr: String,
    /// Where to write the snapshot (`.json`, or `.json.gz` to compress; `.pb.gz` for a pprof task profile); `-` for stdout.
    #[arg(short, long)]
    pub output: std::path::PathBuf,
    /// The file's format, when its name does not tell (json: taskscope's snapshot; pprof: a task profile for `go tool pprof`).
    #[arg(long, value_enum)]
    pub format: Option<SnapshotFormat>,
    /// How long to watch after the first update, so the snapshot holds growth history.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Trend window recorded with the snapshot.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub window: Duration,
    #[command(flatten)]
    pub gather: GatherArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// The interactive diff view (the default on a terminal).
    Tui,
    /// A table on stdout (the default when stdout is not a terminal).
    Text,
    /// Machine-readable JSON on stdout.
    Json,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older snapshot (the base).
    pub old: std::path::PathBuf,
    /// The newer snapshot.
    pub new: std::path::PathBuf,
    #[arg(long, value_enum)]
    pub format: Option<DiffFormat>,
    /// Trend window used to re-judge suspects.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub window: Duration,
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A target address (watched for --duration; several merge as in `watch`), or one snapshot file, or two (old, new: the report includes their diff).
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<String>,
    /// Output file; the format follows its extension (.md, .json, .html, .pb.gz for pprof) unless --format says otherwise; `-` for stdout.
    #[arg(short, long)]
    pub output: std::path::PathBuf,
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// How long to watch a live target.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub window: Duration,
    #[command(flatten)]
    pub gather: GatherArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SnapshotFormat {
    /// taskscope's snapshot (JSON, gzipped for `.gz`): what `diff` and `report` read.
    Json,
    /// pprof's profile.proto, gzipped: a task profile for `go tool pprof`, Pyroscope, Grafana.
    Pprof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Json,
    Html,
    /// pprof's profile.proto, gzipped (of the newest input).
    Pprof,
}

impl ReportFormat {
    /// The format for `path`: by `--format`, else by its name.
    pub fn choose(flag: Option<ReportFormat>, path: &std::path::Path) -> Option<ReportFormat> {
        flag.or_else(|| {
            if report::pprof::is_pprof_path(path) {
                return Some(ReportFormat::Pprof);
            }
            Some(match report::Format::from_path(path)? {
                report::Format::Md => ReportFormat::Md,
                report::Format::Json => ReportFormat::Json,
                report::Format::Html => ReportFormat::Html,
            })
        })
    }

    /// The text format, or `None` for pprof.
    pub fn text(self) -> Option<report::Format> {
        match self {
            ReportFormat::Md => Some(report::Format::Md),
            ReportFormat::Json => Some(report::Format::Json),
            ReportFormat::Html => Some(report::Format::Html),
            ReportFormat::Pprof => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchFormat {
    /// The groups table and the suspects, as plain text.
    Text,
    /// The report as JSON (assets/report.schema.json).
    Json,
    /// The report as Markdown.
    Md,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Target console address(es) (as for `connect`); with several (replicas), groups merge by location with a per-target breakdown, and a target that fails does not stop the others.
    #[arg(default_value = "127.0.0.1:6669", num_args = 1..)]
    pub addrs: Vec<String>,
    /// How long to watch after the first update.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Exit with code 1 when a suspect group is found.
    #[arg(long)]
    pub fail_on_suspect: bool,
    /// Never flag groups whose location matches (substring, or a glob with `*`); repeatable.
    #[arg(long, value_name = "LOCATION_PATTERN")]
    pub ignore: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: WatchFormat,
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub window: Duration,
    #[command(flatten)]
    pub gather: GatherArgs,
}

/// How a headless command reaches a live target.
#[derive(Debug, Args, Clone)]
pub struct GatherArgs {
    /// Largest console-subscriber update accepted from the target, e.g. 256MiB.
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub max_message_size: usize,
    /// Largest message accepted from the target's taskscope-agent (its groups, a page of tasks, its waits); a real agent's largest at 1 000 000 tasks is under 4 MiB.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub max_agent_message_size: usize,
    /// Wait up to this long (default 60s) for a target that is not up yet,
    /// instead of failing at the first refused connection: for CI jobs that
    /// start the service and taskscope together.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "60s", value_parser = parse_duration)]
    pub wait_for_target: Option<Duration>,
    /// Which source to read: the hooks source of taskscope-agent when the
    /// target serves it (exact counts, cheap at scale), else
    /// console-subscriber; or only one of them.
    #[arg(long, value_enum, default_value_t = conn::hooks::SourceChoice::Auto)]
    pub source: conn::hooks::SourceChoice,
    /// A file holding the token of the target's taskscope-agent, which an
    /// agent with a token asks of every inspection (also the
    /// TASKSCOPE_TOKEN_FILE environment variable).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub waits: WaitsArgs,
}

/// The agent's token: from `--token-file`, else `TASKSCOPE_TOKEN_FILE`.
pub fn load_token(flag: Option<&std::path::Path>) -> anyhow::Result<Option<conn::Credential>> {
    let env = std::env::var_os("TASKSCOPE_TOKEN_FILE").map(std::path::PathBuf::from);
    match flag.map(std::path::Path::to_path_buf).or(env) {
        Some(path) => conn::Credential::from_file(&path)
            .map(Some)
            .map_err(|e| anyhow::anyhow!(e)),
        None => Ok(None),
    }
}

/// The tasks' waits, captured by the target's `taskscope-agent` (ignored
/// without one).
#[derive(Debug, Args, Clone)]
pub struct WaitsArgs {
    /// Never ask the target's taskscope-agent for the tasks' waits.
    #[arg(long, alias = "no-dumps")]
    pub no_waits: bool,
    /// How long a request for the tasks' waits may take, reply included
    /// (the agent itself waits at most 2 s for the tasks it asks).
    #[arg(long, default_value = "5s", value_parser = parse_duration, alias = "dump-timeout")]
    pub waits_timeout: Duration,
}

impl WaitsArgs {
    /// One request for waits, at the end of a headless run.
    pub fn once(&self) -> conn::WaitsOptions {
        conn::WaitsOptions {
            enabled: !self.no_waits,
            on_connect: false,
            first_after: Duration::ZERO,
            interval: None,
            timeout: self.waits_timeout,
        }
    }
}

/// Options shared by the live views.
#[derive(Debug, Args, Clone)]
pub struct ViewArgs {
    /// Trend window: the change column and growth test look this far back.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub window: Duration,
    /// Largest console-subscriber update accepted from the target, e.g. 256MiB (tonic's default, 4MiB, is too small for large targets).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub max_message_size: usize,
    /// Largest message accepted from the target's taskscope-agent (its groups, a page of tasks, its waits); a real agent's largest at 1 000 000 tasks is under 4 MiB.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub max_agent_message_size: usize,
    /// Disable colors (also when the NO_COLOR environment variable is set).
    #[arg(long)]
    pub no_color: bool,
    /// With taskscope-agent in the target: fetch the tasks' waits this
    /// often, besides on connect and with `t`. The agent captures them one
    /// task at a time and never pauses the runtime, so this is cheap.
    #[arg(long, default_value = "2s", value_parser = parse_duration, alias = "dump-every")]
    pub waits_every: Duration,
    /// Which source to read: the hooks source of taskscope-agent when the
    /// target serves it (exact counts, cheap at scale), else
    /// console-subscriber; or only one of them.
    #[arg(long, value_enum, default_value_t = conn::hooks::SourceChoice::Auto)]
    pub source: conn::hooks::SourceChoice,
    /// A file holding the token of the target's taskscope-agent, which an
    /// agent with a token asks of every inspection (also the
    /// TASKSCOPE_TOKEN_FILE environment variable).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub waits: WaitsArgs,
}

/// What the demo target runs, for `demo` and `demo-target` alike.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Scenarios to run (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "idle-conn,full-channel,sleepers,oneshot,axum-idle,grpc-streams,http-no-timeout,healthy"
    )]
    pub scenarios: Vec<Scenario>,
    /// One new leaked task per leak scenario this often.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub leak_every: Duration,
    /// Healthy requests per second.
    #[arg(long, default_value_t = 20)]
    pub healthy_rate: u32,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub load: ScenarioArgs,
    /// What the demo target serves: taskscope-agent's hooks source (with
    /// captures), console-subscriber (with captures: task names and
    /// fields, per-task classification from console data), or both.
    #[arg(long = "demo-source", value_enum, default_value_t = crate::demo::target::DemoSource::Hooks)]
    pub demo_source: crate::demo::target::DemoSource,
    #[command(flatten)]
    pub view: ViewArgs,
}

#[derive(Debug, Args)]
pub struct DemoTargetArgs {
    /// Console port (0 picks a free one and prints it as `console=127.0.0.1:PORT`).
    #[arg(long, default_value_t = 6669)]
    pub port: u16,
    /// Serve the console on this Unix socket instead (prints `console=file:///PATH`).
    #[arg(long)]
    pub unix: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub load: ScenarioArgs,
    #[arg(long, default_value_t = 100_000)]
    pub max_per_leak: usize,
    /// Tasks a second for the churn scenario.
    #[arg(long, default_value_t = 1000)]
    pub churn_rate: u32,
    /// Idle tasks the `idle` scale scenario holds.
    #[arg(long, default_value_t = 100_000)]
    pub idle_tasks: usize,
    /// Idle tasks spawned per second until `--idle-tasks` are live.
    #[arg(long, default_value_t = 10_000)]
    pub idle_rate: u32,
    /// How long each `loop-sleepers` task sleeps per round.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub loop_sleep: Duration,
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub publish_interval: Duration,
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub retention: Duration,
    /// Exit when standard input closes.
    #[arg(long)]
    pub exit_on_stdin_close: bool,
    /// Serve the console alone, without the capture agent.
    #[arg(long)]
    pub no_agent: bool,
    /// What to serve: console-subscriber, taskscope-agent's hooks source, or both.
    #[arg(long, value_enum, default_value_t = crate::demo::target::DemoSource::Console)]
    pub source: crate::demo::target::DemoSource,
}

impl ViewArgs {
    /// How `connect --once` gathers (as the headless commands do).
    pub fn gather_args(&self) -> GatherArgs {
        GatherArgs {
            max_message_size: self.max_message_size,
            max_agent_message_size: self.max_agent_message_size,
            wait_for_target: None,
            source: self.source,
            token_file: self.token_file.clone(),
            waits: self.waits.clone(),
        }
    }

    pub fn tui_options(&self) -> anyhow::Result<ui::Options> {
        let color = !self.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Ok(ui::Options {
            params: Params {
                window: self.window,
                ..Params::default()
            },
            conn: conn::Options {
                max_message_size: self.max_message_size,
                max_agent_message_size: self.max_agent_message_size,
                waits: conn::WaitsOptions {
                    enabled: !self.waits.no_waits,
                    on_connect: true,
                    first_after: Duration::ZERO,
                    interval: Some(self.waits_every),
                    timeout: self.waits.waits_timeout,
                },
                source: self.source,
                token: load_token(self.token_file.as_deref())?,
                ..conn::Options::default()
            },
            color,
            analysis_interval: Duration::from_millis(250),
        })
    }
}

/// The longest duration a flag takes: a hundred years.
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A duration flag: whatever taskscope prints ("850ms", "42s", "7m12s",
/// "3h05m", "2d04h") and humantime's forms ("1h 30m", "90sec"); a bare
/// number is seconds ("10", "0.5").
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.0..=MAX_DURATION.as_secs_f64()).contains(&secs) => {
            Duration::from_secs_f64(secs)
        }
        Ok(_) => return Err(format!("duration {s:?} is out of range")),
        Err(_) => humantime::parse_duration(s).map_err(|e| {
            format!("invalid duration {s:?} ({e}): expected e.g. 500ms, 10s, 7m12s, 1h")
        })?,
    };
    if d > MAX_DURATION {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(d)
}

/// "4194304", "64MiB", "64M", "1GiB".
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected e.g. 64MiB or 4194304"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("invalid size unit in {s:?}: use KiB, MiB or GiB")),
    };
    n.checked_mul(mult)
        .filter(|v| *v >= 1024)
        .ok_or_else(|| format!("size {s:?} is out of range (at least 1KiB)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7m12s"), Ok(Duration::from_secs(432)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("-3").is_err());
    }

    #[test]
    fn every_printed_duration_parses_back() {
        // What taskscope prints drops what is below its last unit, so it
        // parses back to the printed value, never to an error.
        for secs in (0..200_000u64).step_by(7).chain([86_399, 86_400, 1 << 30]) {
            for extra_ms in [0u64, 1, 850] {
                let d = Duration::from_secs(secs) + Duration::from_millis(extra_ms);
                let printed = crate::text::duration(d);
                let back = parse_duration(&printed)
                    .unwrap_or_else(|e| panic!("{printed:?} from {d:?}: {e}"));
                assert!(back <= d, "{printed:?} read back as {back:?} > {d:?}");
                assert_eq!(crate::text::duration(back), printed);
            }
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4194304"), Ok(4 << 20));
        assert!(parse_size("12").is_err());
        assert!(parse_size("lots").is_err());
    }
}
