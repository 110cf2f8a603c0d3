//! Watching live targets headless for a while, one or several at once
//! (merged by spawn location): what `snapshot`, `report` and `watch` share.

use crate::analysis::{Analysis, Params};
use crate::cli::*;
use crate::conn::{self, Target};
use crate::{headless, report};
use anyhow::Context;
use std::time::Duration;

/// Watches a live target headless: the shared path of `snapshot`, `report`
/// and `watch`. `product` names what is made of the data, for the warning
/// when the connection broke part-way.
pub(super) async fn watch_live(
    addr: &str,
    duration: Duration,
    how: &GatherArgs,
    product: &str,
    progress: &mut (dyn FnMut(&crate::model::State, Duration) + Send),
) -> anyhow::Result<(Target, headless::Gathered, Duration)> {
    let target = Target::parse(addr)?;
    let opts = conn::Options {
        max_message_size: how.max_message_size,
        dumps: how.dumps.once(),
        source: how.source,
        ..conn::Options::default()
    };
    let started = std::time::Instant::now();
    let g = headless::gather_with_progress(
        target.clone(),
        opts,
        duration,
        how.wait_for_target,
        progress,
    )
    .await?;
    if let Some(e) = &g.last_error {
        eprintln!(
            "taskscope: warning: the connection broke while gathering ({e}); the {product} holds what arrived"
        );
    }
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
    pub(super) fn source(&self) -> Box<dyn report::model::Source + '_> {
        match self.targets.as_slice() {
            [(_, g)] => Box::new(&g.state),
            all => Box::new(report::model::FleetSource {
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
    progress: &mut (dyn FnMut(&crate::model::State, Duration) + Send),
    params: &Params,
) -> anyhow::Result<Watched> {
    let started = std::time::Instant::now();
    let mut targets = Vec::new();
    if let [addr] = addrs {
        let (t, g, _) = watch_live(addr, duration, how, product, progress).await?;
        targets.push((t, g));
    } else {
        let mut set = tokio::task::JoinSet::new();
        for (i, addr) in addrs.iter().enumerate() {
            let (addr, how) = (addr.clone(), how.clone());
            set.spawn(async move {
                let r = watch_live(&addr, duration, &how, product, &mut |_, _| {}).await;
                (i, addr, r)
            });
        }
        let mut results = Vec::new();
        while let Some(r) = set.join_next().await {
            results.push(r.context("a target's watch failed")?);
        }
        results.sort_by_key(|(i, _, _)| *i);
        let mut first_error = None;
        for (_, addr, r) in results {
            match r {
                Ok((t, g, _)) => targets.push((t, g)),
                Err(e) => {
                    eprintln!("taskscope: warning: {addr}: {e:#}; going on without it");
                    first_error.get_or_insert(e);
                }
            }
        }
        if targets.is_empty() {
            return Err(first_error.unwrap_or_else(|| anyhow::anyhow!("no target")));
        }
    }
    if let Some((t, _)) = targets.iter().find(|(_, g)| g.state.now.is_none()) {
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
