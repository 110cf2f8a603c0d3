//! Command-line interface: what each command takes, and running it.

use crate::analysis::{Analysis, Params};
use crate::conn::{self, Target};
use crate::demo::{self, Scenario};
use crate::{headless, report, ui};
use anyhow::Context;
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
    long_about = "Live task inspector for tokio services.\n\nAttaches to a process running tokio's console-subscriber (built with --cfg tokio_unstable), groups its live tasks by spawn location, tells what they are blocked on, and highlights groups that keep growing.\n\nExit codes: 0 ok, 1 suspects found (watch), 2 usage or input error (bad address, unreachable target, malformed file).",
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
    /// Run the demo target itself (used by `demo` and by tests).
    #[command(hide = true)]
    DemoTarget(DemoTargetArgs),
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Target console address: HOST:PORT, http://HOST:PORT or [IPv6]:PORT (port defaults to 6669).
    #[arg(default_value = "127.0.0.1:6669")]
    pub addr: String,
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
    /// Where to write the snapshot (`.json`, or `.json.gz` to compress); `-` for stdout.
    #[arg(short, long)]
    pub output: std::path::PathBuf,
    /// How long to watch after the first update, so the snapshot holds growth history.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Trend window recorded with the snapshot.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub window: Duration,
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub max_message_size: usize,
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
    /// A target address (watched for --duration), or one snapshot file, or two (old, new: the report includes their diff).
    #[arg(required = true, num_args = 1..=2)]
    pub inputs: Vec<String>,
    /// Output file; the format follows its extension (.md, .json, .html) unless --format says otherwise; `-` for stdout.
    #[arg(short, long)]
    pub output: std::path::PathBuf,
    #[arg(long, value_enum)]
    pub format: Option<report::Format>,
    /// How long to watch a live target.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub window: Duration,
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub max_message_size: usize,
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
    /// Target console address (as for `connect`).
    #[arg(default_value = "127.0.0.1:6669")]
    pub addr: String,
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
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub max_message_size: usize,
}

/// Options shared by the live views.
#[derive(Debug, Args, Clone)]
pub struct ViewArgs {
    /// Trend window: the change column and growth test look this far back.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub window: Duration,
    /// Largest update accepted from the target, e.g. 256MiB (tonic's default, 4MiB, is too small for large targets).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub max_message_size: usize,
    /// Disable colors (also when the NO_COLOR environment variable is set).
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Scenarios to run (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "idle-conn,full-channel,sleepers,oneshot,healthy"
    )]
    pub scenarios: Vec<Scenario>,
    /// One new leaked task per leak scenario this often.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub leak_every: Duration,
    /// Healthy requests per second.
    #[arg(long, default_value_t = 20)]
    pub healthy_rate: u32,
    #[command(flatten)]
    pub view: ViewArgs,
}

#[derive(Debug, Args)]
pub struct DemoTargetArgs {
    /// Console port (0 picks a free one and prints it as `console=127.0.0.1:PORT`).
    #[arg(long, default_value_t = 6669)]
    pub port: u16,
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "idle-conn,full-channel,sleepers,oneshot,healthy"
    )]
    pub scenarios: Vec<Scenario>,
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub leak_every: Duration,
    #[arg(long, default_value_t = 100_000)]
    pub max_per_leak: usize,
    #[arg(long, default_value_t = 20)]
    pub healthy_rate: u32,
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub publish_interval: Duration,
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub retention: Duration,
    /// Exit when standard input closes.
    #[arg(long)]
    pub exit_on_stdin_close: bool,
}

impl ViewArgs {
    fn tui_options(&self) -> ui::Options {
        let color = !self.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        ui::Options {
            params: Params {
                window: self.window,
                ..Params::default()
            },
            conn: conn::Options {
                max_message_size: self.max_message_size,
                ..conn::Options::default()
            },
            color,
            analysis_interval: Duration::from_millis(250),
        }
    }
}

/// Runs a parsed command; returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::DemoTarget(a) => {
            demo::target::run(demo::target::Options {
                port: a.port,
                scenarios: a.scenarios,
                leak_every: a.leak_every,
                max_per_leak: a.max_per_leak,
                healthy_rate: a.healthy_rate,
                publish_interval: a.publish_interval,
                retention: a.retention,
                exit_on_stdin_close: a.exit_on_stdin_close,
            })?;
            Ok(exit::OK)
        }
        Command::Connect(a) => runtime()?.block_on(connect(a)),
        Command::Snapshot(a) => runtime()?.block_on(snapshot(a)),
        Command::Diff(a) => diff(a),
        Command::Report(a) => report_cmd(a),
        Command::Watch(a) => runtime()?.block_on(watch(a)),
        Command::Demo(a) => runtime()?.block_on(demo(a)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn connect(a: ConnectArgs) -> anyhow::Result<u8> {
    let target = Target::parse(&a.addr)?;
    let opts = a.view.tui_options();
    if a.once {
        let conn_opts = conn::Options {
            reconnect: false,
            ..opts.conn.clone()
        };
        let g = headless::gather(
            target.clone(),
            conn_opts,
            a.duration,
            Duration::from_secs(10),
        )
        .await?;
        let now = g.state.now.context("the target sent no clock")?;
        let analysis = Analysis::run(&g.state, now, &opts.params);
        print!(
            "{}",
            report::text::groups_table(&analysis, &target.display, usize::MAX)
        );
        return Ok(exit::OK);
    }
    ui::run(target, opts).await?;
    Ok(exit::OK)
}

async fn snapshot(a: SnapshotArgs) -> anyhow::Result<u8> {
    let target = Target::parse(&a.addr)?;
    let opts = conn::Options {
        max_message_size: a.max_message_size,
        ..conn::Options::default()
    };
    let started = std::time::Instant::now();
    let give_up = a.duration.max(Duration::from_secs(10));
    let g = headless::gather(target.clone(), opts, a.duration, give_up).await?;
    let meta = crate::snapshot::Meta {
        target: target.display.clone(),
        taken_at_unix_ns: crate::text::unix_now_ns(),
        watched: started.elapsed(),
        window: a.window,
    };
    let snap = crate::snapshot::take(&g.state, &meta).context("the target sent no clock")?;
    let params = Params {
        window: a.window,
        ..Params::default()
    };
    let analysis = Analysis::run(
        &g.state,
        g.state.now.context("the target sent no clock")?,
        &params,
    );
    if let Some(e) = &g.last_error {
        eprintln!(
            "taskscope: warning: the connection broke while gathering ({e}); the snapshot holds what arrived"
        );
    }
    if a.output.as_os_str() == "-" {
        serde_json::to_writer(std::io::stdout().lock(), &snap)
            .context("cannot write the snapshot to stdout")?;
        println!();
    } else {
        crate::snapshot::save(&snap, &a.output)?;
    }
    eprintln!(
        "wrote {}: {} tasks in {} groups, {} suspect (watched {})",
        a.output.display(),
        crate::text::count(u64::from(analysis.totals.live)),
        analysis.totals.groups,
        analysis.totals.suspects,
        crate::text::duration(meta.watched)
    );
    Ok(exit::OK)
}

fn diff(a: DiffArgs) -> anyhow::Result<u8> {
    use std::io::IsTerminal;
    let params = Params {
        window: a.window,
        ..Params::default()
    };
    let old = crate::snapshot::open(&a.old)?;
    let new = crate::snapshot::open(&a.new)?;
    if old.snapshot.target != new.snapshot.target {
        eprintln!(
            "taskscope: warning: comparing snapshots of different targets ({} and {})",
            crate::text::sanitize(&old.snapshot.target, 80),
            crate::text::sanitize(&new.snapshot.target, 80)
        );
    }
    let side = |path: &std::path::Path, l: &crate::snapshot::Loaded| report::diff::Side {
        label: path.display().to_string(),
        target: l.snapshot.target.clone(),
        taken_at_unix_ns: Some(l.snapshot.taken_at_unix_ns),
    };
    let (old_side, new_side) = (side(&a.old, &old), side(&a.new, &new));
    let (old_a, new_a) = (old.analyze(&params), new.analyze(&params));
    let format = a.format.unwrap_or(if std::io::stdout().is_terminal() {
        DiffFormat::Tui
    } else {
        DiffFormat::Text
    });
    match format {
        DiffFormat::Text => {
            print!(
                "{}",
                report::diff::to_text(
                    &crate::analysis::diff::diff(&old_a, &new_a),
                    &old_side,
                    &new_side
                )
            );
        }
        DiffFormat::Json => {
            println!(
                "{}",
                report::diff::to_json(
                    &crate::analysis::diff::diff(&old_a, &new_a),
                    &old_side,
                    &new_side
                )
            );
        }
        DiffFormat::Tui => {
            let color = !a.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            runtime()?.block_on(ui::run_diff(
                old_a, old_side, new_a, new_side, params, color,
            ))?;
        }
    }
    Ok(exit::OK)
}

fn params(window: Duration) -> Params {
    Params {
        window,
        ..Params::default()
    }
}

/// Watches a live target headless: the shared path of `report` and `watch`.
async fn watch_live(
    addr: &str,
    duration: Duration,
    max_message_size: usize,
    progress: &mut dyn FnMut(&crate::model::State, Duration),
) -> anyhow::Result<(Target, headless::Gathered, Duration)> {
    let target = Target::parse(addr)?;
    let opts = conn::Options {
        max_message_size,
        ..conn::Options::default()
    };
    let started = std::time::Instant::now();
    let g = headless::gather_with_progress(
        target.clone(),
        opts,
        duration,
        duration.max(Duration::from_secs(10)),
        progress,
    )
    .await?;
    if let Some(e) = &g.last_error {
        eprintln!(
            "taskscope: warning: the connection broke while watching ({e}); the report covers what arrived"
        );
    }
    Ok((target, g, started.elapsed()))
}

fn report_cmd(a: ReportArgs) -> anyhow::Result<u8> {
    use crate::report::model::{self, ChangesOut, Context};
    let format = match a.format.or_else(|| report::Format::from_path(&a.output)) {
        Some(f) => f,
        None if a.output.as_os_str() == "-" => report::Format::Md,
        None => anyhow::bail!(
            "cannot tell the report format from {:?}: use a .md, .json or .html file name, or --format",
            a.output.display().to_string()
        ),
    };
    let p = params(a.window);
    let files: Vec<&std::path::Path> = a.inputs.iter().map(std::path::Path::new).collect();
    let is_file = files[0].exists()
        || files[0]
            .extension()
            .is_some_and(|e| e == "json" || e == "gz");
    let report = if is_file {
        let loaded: Vec<crate::snapshot::Loaded> = files
            .iter()
            .map(|f| crate::snapshot::open(f))
            .collect::<Result<_, _>>()?;
        let newest = loaded.last().context("no snapshot")?;
        let analysis = newest.analyze(&p);
        let changes = match loaded.as_slice() {
            [old, new] => {
                let side =
                    |path: &std::path::Path, l: &crate::snapshot::Loaded| report::diff::Side {
                        label: path.display().to_string(),
                        target: l.snapshot.target.clone(),
                        taken_at_unix_ns: Some(l.snapshot.taken_at_unix_ns),
                    };
                Some(ChangesOut {
                    old: side(files[0], old),
                    new: side(files[1], new),
                    diff: crate::analysis::diff::diff(&old.analyze(&p), &analysis),
                })
            }
            _ => None,
        };
        let ctx = Context {
            target: newest.snapshot.target.clone(),
            source: format!("snapshot {}", a.inputs.join(" → ")),
            watched: Duration::from_millis(newest.snapshot.watched_ms),
            window: a.window,
            generated_at_unix_ns: crate::text::unix_now_ns(),
        };
        model::build(&analysis, newest, &ctx, changes)
    } else {
        if a.inputs.len() > 1 {
            anyhow::bail!(
                "a report of a live target takes one address; two inputs must be snapshot files"
            );
        }
        runtime()?.block_on(async {
            let (target, g, watched) =
                watch_live(&a.inputs[0], a.duration, a.max_message_size, &mut |_, _| {}).await?;
            let now = g.state.now.context("the target sent no clock")?;
            let analysis = Analysis::run(&g.state, now, &p);
            let ctx = Context {
                target: target.display.clone(),
                source: "live".into(),
                watched,
                window: a.window,
                generated_at_unix_ns: crate::text::unix_now_ns(),
            };
            anyhow::Ok(model::build(&analysis, &g.state, &ctx, None))
        })?
    };
    report::write_out(&a.output, &format.render(&report))
        .with_context(|| format!("cannot write the report to {}", a.output.display()))?;
    if a.output.as_os_str() != "-" {
        eprintln!(
            "wrote {}: {} suspect group(s) among {} tasks",
            a.output.display(),
            report.totals.suspects,
            crate::text::count(u64::from(report.totals.tasks))
        );
    }
    Ok(exit::OK)
}

async fn watch(a: WatchArgs) -> anyhow::Result<u8> {
    use std::io::IsTerminal;
    let p = params(a.window);
    let tty = std::io::stderr().is_terminal();
    let total = a.duration;
    let mut progress = |st: &crate::model::State, elapsed: Duration| {
        if !tty {
            return;
        }
        let Some(now) = st.now else {
            eprint!(
                "\r\x1b[Kwatching: {} connecting…",
                crate::text::duration(elapsed)
            );
            return;
        };
        let an = Analysis::run(st, now, &p);
        eprint!(
            "\r\x1b[Kwatching: {} / {} · {} tasks · {} groups · {} suspect",
            crate::text::duration(elapsed),
            crate::text::duration(total),
            crate::text::count(u64::from(an.totals.live)),
            an.totals.groups,
            an.totals.suspects
        );
    };
    let result = watch_live(&a.addr, a.duration, a.max_message_size, &mut progress).await;
    if tty {
        eprint!("\r\x1b[K");
    }
    let (target, g, watched) = result?;
    let now = g.state.now.context("the target sent no clock")?;
    let mut analysis = Analysis::run(&g.state, now, &p);
    let ignored = crate::analysis::suspect::ignore(&mut analysis, &a.ignore);
    let ctx = crate::report::model::Context {
        target: target.display.clone(),
        source: "live".into(),
        watched,
        window: a.window,
        generated_at_unix_ns: crate::text::unix_now_ns(),
    };
    let rep = crate::report::model::build(&analysis, &g.state, &ctx, None);
    match a.format {
        WatchFormat::Text => print!(
            "{}",
            report::text::groups_table(&analysis, &target.display, 30)
        ),
        WatchFormat::Json => println!("{}", report::model::to_json(&rep)),
        WatchFormat::Md => print!("{}", report::md::render(&rep)),
    }
    for loc in &ignored {
        eprintln!(
            "taskscope: ignored suspect {} (--ignore)",
            crate::text::sanitize(loc, 200)
        );
    }
    let suspects = analysis.totals.suspects;
    eprintln!(
        "taskscope: watched {} for {}: {} suspect group(s)",
        target.display,
        crate::text::duration(watched),
        suspects
    );
    Ok(if a.fail_on_suspect && suspects > 0 {
        exit::SUSPECTS
    } else {
        exit::OK
    })
}

async fn demo(a: DemoArgs) -> anyhow::Result<u8> {
    let exe = std::env::current_exe().context("cannot find the taskscope executable")?;
    let scenarios: Vec<String> = a
        .scenarios
        .iter()
        .map(|s| {
            clap::ValueEnum::to_possible_value(s)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        })
        .collect();
    let args = vec![
        "--scenarios".to_string(),
        scenarios.join(","),
        "--leak-every".to_string(),
        format!("{}ms", a.leak_every.as_millis()),
        "--healthy-rate".to_string(),
        a.healthy_rate.to_string(),
    ];
    let child = demo::spawn_child(&exe, &args).await?;
    let result = ui::run(child.target.clone(), a.view.tui_options()).await;
    child.stop().await;
    result.map(|()| exit::OK)
}

/// "500ms", "10s", "2m", "1h"; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 10s, 2m, 1h"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
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
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("10 parsecs").is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4194304"), Ok(4 << 20));
        assert!(parse_size("12").is_err());
        assert!(parse_size("lots").is_err());
    }
}
