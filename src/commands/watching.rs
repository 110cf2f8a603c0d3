//! Watching live targets headless for a while, one or several at once
//! (merged by spawn location): what `snapshot`, `report` and `watch` share.

use crate::analysis::{Analysis, Params};
use crate::cli::*;
use crate::conn::{self, Target};
use crate::{headless, report};
use anyhow::Context;
use std::time::Duration;

/// How a headless command's connections are made.
fn options(how: &GatherArgs) -> anyhow::Result<conn::Options> {
    Ok(conn::Options {
        max_message_size: how.max_message_size,
        max_agent_message_size: how.max_agent_message_size,
        waits: how.waits.once(),
        source: how.source,
        token: crate::cli::load_token(how.token_file.as_deref())?,
        ..conn::Options::default()
    })
}

/// Says that a target's connection broke part-way; `product` names what
/// is made of the data.
fn warn_broken(g: &headless::Gathered, product: &str) {
    if let Some(e) = &g.last_error {
        eprintln!(
            "taskscope: warning: the connection broke while gathering ({e}); the {product} holds what arrived"
        );
    }
}

/// Watches a live target headless (`snapshot`).
pub(super) async fn watch_live(
    addr: &str,
    duration: Duration,
    how: &GatherArgs,
    product: &str,
) -> anyhow::Result<(Target, headless::Gathered, Duration)> {
    let target = Target::parse(addr)?;
    let started = std::time::Instant::now();
    let g = headless::gather(target.clone(), options(how)?, duration, how.wait_for_target).await?;
    warn_broken(&g, product);
    Ok((target, g, started.elapsed()))
}

/// One or several live targets watched at once, analysed (merged by spawn
/// location when several).
pub(super) struct Watched {
    /// The targets reached, in the order given, with their data.
    pub(super) targets: Vec<(Target, headless::Gathered)>,
    pub(super) merger: crate::analysis::fleet::Merger,
    pub(super) analysis: Analysis,
    pub(super) watched: Duration,
    /// "ADDR", or "ADDR1, ADDR2 (2 targets)".
    pub(super) display: String,
}

impl Watched {
    /// Where the report reads task details and histories.
    pub(super) fn source(&self) -> Box<dyn report::build::Source + '_> {
        match self.targets.as_slice() {
            [(_, g)] => Box::new(&g.state),
            all => Box::new(report::build::FleetSource {
                states: all.iter().map(|(_, g)| &g.state).collect(),
                merger: &self.merger,
            }),
        }
    }
}

/// Watches every address at once for `duration` (see [`watch_live`]). A
/// target that cannot be reached is reported and left out, unless none
/// can: then the first error is the command's.
pub(super) async fn watch_many(
    addrs: &[String],
    duration: Duration,
    how: &GatherArgs,
    product: &'static str,
    progress: Option<headless::Progress<'_>>,
    params: &Params,
) -> anyhow::Result<Watched> {
    let started = std::time::Instant::now();
    let parsed: Vec<Target> = addrs
        .iter()
        .map(|a| Target::parse(a))
        .collect::<Result<_, _>>()?;
    // One session, one target or several: merged by spawn location.
    let results = headless::gather_fleet(
        parsed.clone(),
        options(how)?,
        duration,
        how.wait_for_target,
        params,
        progress,
    )
    .await;
    let mut targets = Vec::new();
    let mut first_error = None;
    let one = parsed.len() == 1;
    for (t, r) in parsed.into_iter().zip(results) {
        match r {
            Ok(g) => {
                warn_broken(&g, product);
                targets.push((t, g));
            }
            Err(e) if one => return Err(e.into()),
            Err(e) => {
                eprintln!(
                    "taskscope: warning: {}: {e}; going on without it",
                    t.display
                );
                first_error.get_or_insert(e);
            }
        }
    }
    if targets.is_empty() {
        return Err(first_error.map_or_else(|| anyhow::anyhow!("no target"), Into::into));
    }
    if let Some((t, _)) = targets.iter().find(|(_, g)| g.state.log.now.is_none()) {
        anyhow::bail!("{} sent no clock", t.display);
    }
    let mut merger = crate::analysis::fleet::Merger::default();
    let analysis = merger
        .analyse(
            targets.len() > 1,
            targets
                .iter()
                .map(|(t, g)| (std::sync::Arc::<str>::from(t.display.as_str()), &g.state)),
            params,
        )
        .context("no target")?;
    let display = match targets.as_slice() {
        [(t, _)] => t.display.clone(),
        all => format!(
            "{} ({} targets)",
            all.iter()
                .map(|(t, _)| t.display.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            all.len()
        ),
    };
    Ok(Watched {
        targets,
        merger,
        analysis,
        watched: started.elapsed(),
        display,
    })
}
