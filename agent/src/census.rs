//! Per-location task counts from tokio's `runtime.spawn` spans, for the
//! console-subscriber mode (`taskscope_agent::init`, [`crate::Agent::serve_console`]),
//! where the runtime was built before the agent and its hooks cannot be
//! installed. A `tracing` layer beside console-subscriber's: a span opens
//! when a task is spawned, is entered for each poll and closes when the
//! task ends. It keeps only counters per spawn location and each live
//! task's creation time, so `/metrics` works on that source too.

use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::span;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::metrics::SiteStat;

/// The census: cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub(crate) struct Census {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    sites: Mutex<HashMap<String, Arc<Site>>>,
    epoch: std::sync::OnceLock<Instant>,
}

#[derive(Default)]
struct Site {
    spawned: AtomicU64,
    terminated: AtomicU64,
    /// Time in poll of every task spawned here, live or ended.
    busy_ns: AtomicU64,
    /// Tasks inside a poll now. Polls touch only these atomics: the lock
    /// below is taken at spawn and end.
    running: AtomicU64,
    /// Live tasks: (created, span id), oldest first.
    live: Mutex<BTreeSet<(u64, u64)>>,
}

/// What a task's span carries: its site, when it was created and when its
/// current poll began.
struct TaskSpan {
    site: Arc<Site>,
    created: u64,
    entered: Option<u64>,
}

#[derive(Default)]
struct SpawnFields {
    file: Option<String>,
    line: Option<u64>,
    col: Option<u64>,
}

impl Visit for SpawnFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "loc.file" {
            self.file = Some(value.to_string());
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "loc.line" => self.line = Some(value),
            "loc.col" => self.col = Some(value),
            _ => {}
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value.max(0) as u64);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "loc.file" {
            self.file = Some(format!("{value:?}").trim_matches('"').to_string());
        }
    }
}

impl Census {
    fn now(&self) -> u64 {
        self.inner
            .epoch
            .get_or_init(Instant::now)
            .elapsed()
            .as_nanos() as u64
    }

    fn site(&self, location: String) -> Arc<Site> {
        let mut sites = self.inner.sites.lock();
        sites.entry(location).or_default().clone()
    }

    /// Every spawn location seen so far, with its counts now.
    pub(crate) fn stats(&self) -> Vec<SiteStat> {
        let now = self.now();
        let sites: Vec<(String, Arc<Site>)> = self
            .inner
            .sites
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        sites
            .into_iter()
            .map(|(location, site)| {
                let live = site.live.lock();
                SiteStat {
                    location,
                    live: live.len() as u64,
                    // Never more than are live, whatever the interleaving.
                    running: site.running.load(Ordering::Relaxed).min(live.len() as u64),
                    spawned: site.spawned.load(Ordering::Relaxed),
                    terminated: site.terminated.load(Ordering::Relaxed),
                    busy_ns: site.busy_ns.load(Ordering::Relaxed),
                    oldest_age_ns: live
                        .first()
                        .map_or(0, |&(created, _)| now.saturating_sub(created)),
                }
            })
            .collect()
    }

    /// The layer that feeds this census.
    pub(crate) fn layer(&self) -> CensusLayer {
        CensusLayer(self.clone())
    }
}

/// The `tracing` layer of a [`Census`].
pub(crate) struct CensusLayer(Census);

fn is_spawn(meta: &tracing::Metadata<'_>) -> bool {
    meta.name() == "runtime.spawn" && meta.target() == "tokio::task"
}

impl<S> Layer<S> for CensusLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if !is_spawn(attrs.metadata()) {
            return;
        }
        let mut f = SpawnFields::default();
        attrs.record(&mut f);
        let location = match (f.file, f.line, f.col) {
            (Some(file), Some(line), Some(col)) => format!("{file}:{line}:{col}"),
            (Some(file), Some(line), None) => format!("{file}:{line}"),
            (Some(file), None, _) => file,
            _ => "<unknown>".to_string(),
        };
        let census = &self.0;
        let site = census.site(location);
        let created = census.now();
        site.spawned.fetch_add(1, Ordering::Relaxed);
        site.live.lock().insert((created, id.into_u64()));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(TaskSpan {
                site,
                created,
                entered: None,
            });
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if !is_spawn(span.metadata()) {
            return;
        }
        let mut ext = span.extensions_mut();
        if let Some(t) = ext.get_mut::<TaskSpan>()
            && t.entered.is_none()
        {
            t.entered = Some(self.0.now());
            t.site.running.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if !is_spawn(span.metadata()) {
            return;
        }
        let mut ext = span.extensions_mut();
        if let Some(t) = ext.get_mut::<TaskSpan>()
            && let Some(since) = t.entered.take()
        {
            let spent = self.0.now().saturating_sub(since);
            t.site.busy_ns.fetch_add(spent, Ordering::Relaxed);
            t.site.running.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(t) = span.extensions_mut().remove::<TaskSpan>() else {
            return;
        };
        t.site.live.lock().remove(&(t.created, id.into_u64()));
        if t.entered.is_some() {
            t.site.running.fetch_sub(1, Ordering::Relaxed);
        }
        t.site.terminated.fetch_add(1, Ordering::Relaxed);
    }
}
