//! What each command does, behind the argument definitions in `cli`:
//! dispatch, and one function per command.

use crate::analysis::{Analysis, Params};
use crate::cli::*;
use crate::conn::Target;
use crate::{demo, report, ui};
use anyhow::Context;
use std::time::Duration;
use watching::{Watched, watch_live, watch_many};

mod watching;

/// Runs a parsed command; returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::DemoTarget(a) => {
            demo::target::run(demo::target::Options {
                port: a.port,
                unix: a.unix,
                scenarios: a.load.scenarios,
                leak_every: a.load.leak_every,
                max_per_leak: a.max_per_leak,
                healthy_rate: a.load.healthy_rate,
                churn_rate: a.churn_rate,
                idle_tasks: a.idle_tasks,
                idle_rate: a.idle_rate,
                loop_sleep: a.loop_sleep,
                publish_interval: a.publish_interval,
                retention: a.retention,
                exit_on_stdin_close: a.exit_on_stdin_close,
                agent: !a.no_agent,
                source: a.source,
            })?;
            Ok(exit::OK)
        }
        Command::Connect(a) => runtime()?.block_on(connect(a)),
        Command::Snapshot(a) => runtime()?.block_on(snapshot(a)),
        Command::Diff(a) => diff(a),
        Command::Report(a) => report(a),
        Command::Watch(a) => runtime()?.block_on(watch(a)),
        Command::Demo(a) => runtime()?.block_on(demo(a)),
        Command::Schema { document } => {
            print!("{}", document.schema());
            Ok(exit::OK)
        }
    }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub async fn connect(a: ConnectArgs) -> anyhow::Result<u8> {
    let targets: Vec<Target> = a
        .addrs
        .iter()
        .map(|s| Target::parse(s))
        .collect::<Result<_, _>>()?;
    let opts = a.view.tui_options()?;
    if a.once {
        let gather = a.view.gather_args();
        let w = watch_many(&a.addrs, a.duration, &gather, "table", None, &opts.params).await?;
        print!(
            "{}",
            report::plain::groups_table(&w.analysis, &w.display, usize::MAX)
        );
        return Ok(exit::OK);
    }
    ui::run_fleet(targets, opts).await?;
    Ok(exit::OK)
}

pub async fn snapshot(a: SnapshotArgs) -> anyhow::Result<u8> {
    let (target, g, watched) = watch_live(&a.addr, a.duration, &a.gather, "snapshot").await?;
    let meta = crate::snapshot::Meta {
        target: target.display.clone(),
        taken_at_unix_ns: crate::text::unix_now_ns(),
        watched,
        window: a.window,
    };
    let snap = crate::snapshot::take(&g.state, &meta).context("the target sent no clock")?;
    let params = Params {
        window: a.window,
        ..Params::default()
    };
    let analysis = Analysis::run(
        &g.state,
        g.state.log.now.context("the target sent no clock")?,
        &params,
    );
    let pprof = match a.format {
        Some(f) => f == crate::cli::SnapshotFormat::Pprof,
        None => report::pprof::is_pprof_path(&a.output),
    };
    if pprof {
        report::pprof::write(&[&snap], &a.output)
            .with_context(|| format!("cannot write the profile to {}", a.output.display()))?;
    } else if a.output.as_os_str() == "-" {
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

pub fn diff(a: DiffArgs) -> anyhow::Result<u8> {
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

/// A snapshot file as one side of a diff.
fn side(path: &std::path::Path, l: &crate::snapshot::Loaded) -> report::diff::Side {
    report::diff::Side {
        label: path.display().to_string(),
        target: l.snapshot.target.clone(),
        taken_at_unix_ns: Some(l.snapshot.taken_at_unix_ns),
    }
}

fn params(window: Duration) -> Params {
    Params {
        window,
        ..Params::default()
    }
}

pub fn report(a: ReportArgs) -> anyhow::Result<u8> {
    use crate::report::build::{ChangesOut, Context};
    let format = match crate::cli::ReportFormat::choose(a.format, &a.output) {
        Some(f) => f,
        None if a.output.as_os_str() == "-" => crate::cli::ReportFormat::Md,
        None => anyhow::bail!(
            "cannot tell the report format from {:?}: use a .md, .json, .html or .pb.gz file name, or --format",
            a.output.display().to_string()
        ),
    };
    let p = params(a.window);
    let files: Vec<&std::path::Path> = a.inputs.iter().map(std::path::Path::new).collect();
    let is_file = files[0].exists()
        || files[0]
            .extension()
            .is_some_and(|e| e == "json" || e == "gz");
    if is_file && files.len() > 2 {
        anyhow::bail!("a report reads one snapshot, or two (old, new) for their diff");
    }
    let Some(format) = format.text() else {
        return pprof_report(&a, &files, is_file);
    };
    let report = if is_file {
        let loaded: Vec<crate::snapshot::Loaded> = files
            .iter()
            .map(|f| crate::snapshot::open(f))
            .collect::<Result<_, _>>()?;
        let newest = loaded.last().context("no snapshot")?;
        let analysis = newest.analyze(&p);
        let changes = match loaded.as_slice() {
            [old, new] => Some(ChangesOut {
                old: side(files[0], old),
                new: side(files[1], new),
                diff: crate::analysis::diff::diff(&old.analyze(&p), &analysis),
            }),
            _ => None,
        };
        let ctx = Context {
            target: newest.snapshot.target.clone(),
            source: format!("snapshot {}", a.inputs.join(" → ")),
            watched: Duration::from_millis(newest.snapshot.watched_ms),
            window: a.window,
            generated_at_unix_ns: crate::text::unix_now_ns(),
        };
        report::build::build(&analysis, newest, &ctx, changes)
    } else {
        runtime()?.block_on(async {
            let w = watch_inputs(&a).await?;
            let ctx = Context {
                target: w.display.clone(),
                source: "live".into(),
                watched: w.watched,
                window: a.window,
                generated_at_unix_ns: crate::text::unix_now_ns(),
            };
            anyhow::Ok(report::build::build(&w.analysis, &*w.source(), &ctx, None))
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

/// `report ADDR…`: the live targets watched for `--duration`.
async fn watch_inputs(a: &ReportArgs) -> anyhow::Result<Watched> {
    let p = params(a.window);
    watch_many(&a.inputs, a.duration, &a.gather, "report", None, &p).await
}

/// `report … -o FILE.pb.gz`: the task profile of the newest snapshot, or
/// of a live target watched for `--duration`.
fn pprof_report(a: &ReportArgs, files: &[&std::path::Path], is_file: bool) -> anyhow::Result<u8> {
    let snaps = if is_file {
        let newest = files.last().context("no snapshot")?;
        vec![crate::snapshot::open(newest)?.snapshot]
    } else {
        runtime()?.block_on(async {
            let w = watch_inputs(a).await?;
            let mut snaps = Vec::new();
            for (t, g) in &w.targets {
                let meta = crate::snapshot::Meta {
                    target: t.display.clone(),
                    taken_at_unix_ns: crate::text::unix_now_ns(),
                    watched: w.watched,
                    window: a.window,
                };
                snaps.push(
                    crate::snapshot::take(&g.state, &meta)
                        .with_context(|| format!("{} sent no clock", t.display))?,
                );
            }
            anyhow::Ok(snaps)
        })?
    };
    let refs: Vec<&crate::snapshot::Snapshot> = snaps.iter().collect();
    report::pprof::write(&refs, &a.output)
        .with_context(|| format!("cannot write the profile to {}", a.output.display()))?;
    if a.output.as_os_str() != "-" {
        let names: Vec<&str> = snaps.iter().map(|s| s.target.as_str()).collect();
        eprintln!(
            "wrote {}: task profile of {} (go tool pprof -top {})",
            a.output.display(),
            names.join(", "),
            a.output.display()
        );
    }
    Ok(exit::OK)
}

pub async fn watch(a: WatchArgs) -> anyhow::Result<u8> {
    use std::io::IsTerminal;
    let p = params(a.window);
    let tty = std::io::stderr().is_terminal();
    let total = a.duration;
    // The session's own analysis, merged over the targets.
    let mut progress = |an: Option<&Analysis>, elapsed: Duration| {
        if !tty {
            return;
        }
        let Some(an) = an else {
            eprint!(
                "\r\x1b[Kwatching: {} connecting…",
                crate::text::duration(elapsed)
            );
            return;
        };
        eprint!(
            "\r\x1b[Kwatching: {} / {} · {} tasks · {} groups · {} suspect",
            crate::text::duration(elapsed),
            crate::text::duration(total),
            crate::text::count(u64::from(an.totals.live)),
            an.totals.groups,
            an.totals.suspects
        );
    };
    let result = watch_many(
        &a.addrs,
        a.duration,
        &a.gather,
        "report",
        if tty { Some(&mut progress) } else { None },
        &p,
    )
    .await;
    if tty {
        eprint!("\r\x1b[K");
    }
    let mut w = result?;
    let ignored = crate::analysis::suspect::ignore(&mut w.analysis, &a.ignore);
    let analysis = &w.analysis;
    let watched = w.watched;
    let ctx = crate::report::build::Context {
        target: w.display.clone(),
        source: "live".into(),
        watched,
        window: a.window,
        generated_at_unix_ns: crate::text::unix_now_ns(),
    };
    let rep = crate::report::build::build(analysis, &*w.source(), &ctx, None);
    match a.format {
        WatchFormat::Text => print!("{}", report::plain::groups_table(analysis, &w.display, 30)),
        WatchFormat::Json => println!("{}", report::build::to_json(&rep)),
        WatchFormat::Md => print!("{}", report::md::render(&rep)),
    }
    if matches!(a.format, WatchFormat::Text) {
        for w in &rep.warnings {
            eprintln!("taskscope: warning: {w}");
        }
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
        w.display,
        crate::text::duration(watched),
        suspects
    );
    Ok(if a.fail_on_suspect && suspects > 0 {
        exit::SUSPECTS
    } else {
        exit::OK
    })
}

pub async fn demo(a: DemoArgs) -> anyhow::Result<u8> {
    let exe = std::env::current_exe().context("cannot find the taskscope executable")?;
    let scenarios: Vec<String> = a
        .load
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
        format!("{}ms", a.load.leak_every.as_millis()),
        "--healthy-rate".to_string(),
        a.load.healthy_rate.to_string(),
        "--source".to_string(),
        clap::ValueEnum::to_possible_value(&a.demo_source)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default(),
    ];
    let child = demo::spawn_child(&exe, &args).await?;
    let mut opts = a.view.tui_options()?;
    // The first capture once the leaks have had time to pile up (the target
    // starts with taskscope). No periodic captures: see README on tokio's
    // capture hangs.
    opts.conn.waits.first_after = Duration::from_secs(20);
    let result = ui::run(child.target.clone(), opts).await;
    child.stop().await;
    result.map(|()| exit::OK)
}
