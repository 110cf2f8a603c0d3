//! `GET /metrics` on the agent's port: live tasks, spawns, ends, time in
//! poll and the oldest task's age per spawn location, and the agent's own
//! health, in the Prometheus text format or OpenMetrics (by the scraper's
//! `Accept` header), encoded by `prometheus-client`.
//!
//! Cardinality: one series per spawn location and metric. Locations are
//! call sites in the code (static), so their number is bounded by the
//! program; on top of that, at most `max_locations` (default 1 000,
//! `TASKSCOPE_METRICS_MAX_LOCATIONS`, [`crate::Builder::metrics_max_locations`])
//! get a series of their own, the first
//! ones seen keeping theirs for the life of the process (so no series
//! jumps between a location and the bucket), and any further ones are
//! summed under `location="other"`.
//!
//! Counters never go down, whatever the source's races (a task ending while
//! a scrape walks the tasks): each series' last value is kept and a lower
//! reading is reported as the last one, so `rate()` never sees a reset.

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The default number of locations with a series of their own.
pub(crate) const DEFAULT_MAX_LOCATIONS: usize = 1000;

/// The bucket for locations past the cap.
const OTHER: &str = "other";

/// One spawn location's counts, from whichever source the agent runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteStat {
    /// `file:line:col`.
    pub location: String,
    pub live: u64,
    /// Live tasks being polled right now.
    pub running: u64,
    pub spawned: u64,
    pub terminated: u64,
    /// Time in poll of every task spawned here (live and ended).
    pub busy_ns: u64,
    /// Age of the oldest live task (0 with none).
    pub oldest_age_ns: u64,
}

impl SiteStat {
    fn fold(&mut self, o: &SiteStat) {
        self.live += o.live;
        self.running += o.running;
        self.spawned += o.spawned;
        self.terminated += o.terminated;
        self.busy_ns += o.busy_ns;
        self.oldest_age_ns = self.oldest_age_ns.max(o.oldest_age_ns);
    }
}

/// The agent's own state, as exported.
#[derive(Clone, Debug, Default)]
pub struct AgentHealth {
    /// `hooks` or `console`.
    pub source: &'static str,
    /// Requests for the tasks' waits answered, and refused.
    pub waits_replies: u64,
    pub waits_refused: u64,
    /// Inspection requests refused for want of the token (or on a
    /// read-only address).
    pub inspection_refused: u64,
    /// Client connections open, closed over the cap, closed silent.
    pub connections: u64,
    pub connections_refused: u64,
    pub connections_timed_out: u64,
    /// Accepts that failed (out of file descriptors, mostly).
    pub accept_failed: u64,
    /// Per-task captures: what they cost the service.
    pub captures: crate::hooks::CaptureStats,
}

/// Keeps what must persist between scrapes: which locations have a series
/// of their own, and each counter's last value.
pub struct Exporter {
    max_locations: usize,
    state: Mutex<ExportState>,
}

#[derive(Default)]
struct ExportState {
    admitted: HashMap<String, Counters>,
    other: Counters,
    last_scrape: Option<Duration>,
}

#[derive(Clone, Copy, Default)]
struct Counters {
    spawned: u64,
    terminated: u64,
    busy_ns: u64,
}

impl Counters {
    /// Never lower than before.
    fn hold(&mut self, s: &mut SiteStat) {
        self.spawned = self.spawned.max(s.spawned);
        self.terminated = self.terminated.max(s.terminated);
        self.busy_ns = self.busy_ns.max(s.busy_ns);
        s.spawned = self.spawned;
        s.terminated = self.terminated;
        s.busy_ns = self.busy_ns;
    }
}

/// The `Content-Type`s served.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub(crate) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Exporter {
    pub fn new(max_locations: usize) -> Exporter {
        Exporter {
            max_locations,
            state: Mutex::new(ExportState::default()),
        }
    }

    /// The exposition of `stats`, OpenMetrics or the Prometheus text
    /// format, with its content type.
    pub fn render(
        &self,
        mut stats: Vec<SiteStat>,
        health: AgentHealth,
        openmetrics: bool,
    ) -> (String, &'static str) {
        let started = Instant::now();
        // A stable order: admission by first sight, ties by name.
        stats.sort_unstable_by(|a, b| a.location.cmp(&b.location));
        let mut st = self.state.lock();
        let mut rows = Vec::with_capacity(stats.len().min(self.max_locations) + 1);
        let mut other = SiteStat {
            location: OTHER.into(),
            ..SiteStat::default()
        };
        let mut folded = 0u64;
        for mut s in stats {
            let room = st.admitted.len() < self.max_locations;
            if s.location == OTHER {
                // A file named `other` would collide with the bucket.
                s.location = format!("{OTHER}:");
            }
            match st.admitted.get_mut(&s.location) {
                Some(c) => {
                    c.hold(&mut s);
                    rows.push(s);
                }
                None if room => {
                    let mut c = Counters::default();
                    c.hold(&mut s);
                    st.admitted.insert(s.location.clone(), c);
                    rows.push(s);
                }
                None => {
                    folded += 1;
                    other.fold(&s);
                }
            }
        }
        if folded > 0 || st.other.spawned > 0 {
            st.other.hold(&mut other);
            rows.push(other);
        }
        let locations = rows.len() as u64 - u64::from(folded > 0) + folded;
        let exposition = Exposition {
            rows,
            health,
            locations,
            folded,
            last_scrape: st.last_scrape,
        };
        drop(st);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(exposition));
        let mut out = String::new();
        let res = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        };
        if res.is_err() {
            out = "# the exposition could not be encoded\n".into();
        }
        self.state.lock().last_scrape = Some(started.elapsed());
        (
            out,
            if openmetrics {
                OPENMETRICS
            } else {
                PROMETHEUS_TEXT
            },
        )
    }
}

#[derive(Debug)]
struct Exposition {
    rows: Vec<SiteStat>,
    health: AgentHealth,
    locations: u64,
    folded: u64,
    last_scrape: Option<Duration>,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// One family, one series per location.
fn per_location<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    rows: &[SiteStat],
    value: impl Fn(&SiteStat) -> M,
) -> Result<(), std::fmt::Error> {
    let mut family = enc.encode_descriptor(name, help, unit, kind)?;
    for r in rows {
        let labels = [("location", r.location.as_str())];
        value(r).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One series without labels.
fn single<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: M,
) -> Result<(), std::fmt::Error> {
    let kind = metric.metric_type();
    metric.encode(enc.encode_descriptor(name, help, unit, kind)?)
}

impl Collector for Exposition {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = &self.rows;
        per_location(
            &mut enc,
            "taskscope_tasks_live",
            "Live tokio tasks by spawn location (file:line:col).",
            None,
            MetricType::Gauge,
            rows,
            |r| ConstGauge::new(r.live as i64),
        )?;
        per_location(
            &mut enc,
            "taskscope_tasks_running",
            "Live tasks being polled at the scrape, by spawn location.",
            None,
            MetricType::Gauge,
            rows,
            |r| ConstGauge::new(r.running as i64),
        )?;
        per_location(
            &mut enc,
            "taskscope_tasks_spawned",
            "Tasks spawned at this location since the agent started.",
            None,
            MetricType::Counter,
            rows,
            |r| ConstCounter::new(r.spawned),
        )?;
        per_location(
            &mut enc,
            "taskscope_tasks_terminated",
            "Tasks spawned at this location that have ended.",
            None,
            MetricType::Counter,
            rows,
            |r| ConstCounter::new(r.terminated),
        )?;
        per_location(
            &mut enc,
            "taskscope_tasks_busy",
            "Time the tasks spawned at this location spent in poll.",
            Some(&Unit::Seconds),
            MetricType::Counter,
            rows,
            |r| ConstCounter::new(secs(r.busy_ns)),
        )?;
        per_location(
            &mut enc,
            "taskscope_tasks_oldest_age",
            "Age of the oldest live task spawned at this location (0 with none).",
            Some(&Unit::Seconds),
            MetricType::Gauge,
            rows,
            |r| ConstGauge::new(secs(r.oldest_age_ns)),
        )?;
        let h = &self.health;
        let info = [("version", env!("CARGO_PKG_VERSION")), ("source", h.source)];
        let mut family = enc.encode_descriptor(
            "taskscope_agent",
            "The taskscope agent: its version and task source (hooks or console).",
            None,
            MetricType::Info,
        )?;
        family.encode_info(&info)?;
        single(
            &mut enc,
            "taskscope_agent_locations",
            "Spawn locations seen (with their own series or under location=\"other\").",
            None,
            ConstGauge::new(self.locations as i64),
        )?;
        single(
            &mut enc,
            "taskscope_agent_locations_folded",
            "Spawn locations past the cap, summed under location=\"other\".",
            None,
            ConstGauge::new(self.folded as i64),
        )?;
        single(
            &mut enc,
            "taskscope_agent_waits_replies",
            "Requests for the tasks' waits answered (per-task captures; the runtime is never paused).",
            None,
            ConstCounter::new(h.waits_replies),
        )?;
        single(
            &mut enc,
            "taskscope_agent_waits_refused",
            "Requests for the tasks' waits refused (another client's being served, or no captures on this build).",
            None,
            ConstCounter::new(h.waits_refused),
        )?;
        single(
            &mut enc,
            "taskscope_agent_inspection_refused",
            "Inspection requests (gRPC) refused: no token, a wrong one, or a read-only address.",
            None,
            ConstCounter::new(h.inspection_refused),
        )?;
        single(
            &mut enc,
            "taskscope_agent_connections",
            "Client connections open on the agent's port.",
            None,
            ConstGauge::new(h.connections as i64),
        )?;
        single(
            &mut enc,
            "taskscope_agent_connections_refused",
            "Connections closed as accepted: the agent's cap, or the peer's share of it, was reached.",
            None,
            ConstCounter::new(h.connections_refused),
        )?;
        single(
            &mut enc,
            "taskscope_agent_connections_timed_out",
            "Connections closed for moving no byte too long (or sending none at first).",
            None,
            ConstCounter::new(h.connections_timed_out),
        )?;
        single(
            &mut enc,
            "taskscope_agent_accept_failures",
            "Connections the agent's port could not accept (out of file descriptors, mostly); it waits 10 ms to 1 s before trying again.",
            None,
            ConstCounter::new(h.accept_failed),
        )?;
        single(
            &mut enc,
            "taskscope_agent_captures_asked",
            "Tasks asked to capture their own stack (one task at a time, never a pause).",
            None,
            ConstCounter::new(h.captures.asked),
        )?;
        single(
            &mut enc,
            "taskscope_agent_capture_polls",
            "Polls the captures caused (the traced poll and the real one after it).",
            None,
            ConstCounter::new(h.captures.polls),
        )?;
        single(
            &mut enc,
            "taskscope_agent_capture_poll",
            "Time the service's workers spent in the polls the captures caused.",
            Some(&Unit::Seconds),
            ConstCounter::new(secs(h.captures.poll_ns)),
        )?;
        single(
            &mut enc,
            "taskscope_agent_scrape_duration",
            "How long the previous /metrics scrape took the agent.",
            Some(&Unit::Seconds),
            ConstGauge::new(self.last_scrape.map_or(0.0, |d| d.as_secs_f64())),
        )?;
        Ok(())
    }
}

/// Whether an `Accept` header asks for OpenMetrics.
pub(crate) fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(loc: &str, live: u64, spawned: u64) -> SiteStat {
        SiteStat {
            location: loc.into(),
            live,
            spawned,
            ..SiteStat::default()
        }
    }

    fn series(body: &str, name: &str) -> Vec<(String, f64)> {
        body.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?.strip_prefix("{location=\"")?;
                let (loc, v) = rest.split_once("\"} ")?;
                Some((loc.to_string(), v.parse().ok()?))
            })
            .collect()
    }

    #[test]
    fn locations_past_the_cap_are_summed_under_other_and_admission_is_sticky() {
        let ex = Exporter::new(2);
        let h = AgentHealth::default();
        let (body, _) = ex.render(
            vec![
                stat("b.rs:1:1", 5, 5),
                stat("a.rs:1:1", 1, 9),
                stat("c.rs:1:1", 7, 7),
            ],
            h.clone(),
            false,
        );
        assert_eq!(
            series(&body, "taskscope_tasks_live"),
            [
                ("a.rs:1:1".into(), 1.0),
                ("b.rs:1:1".into(), 5.0),
                ("other".into(), 7.0)
            ]
        );
        assert!(body.contains("taskscope_agent_locations 3"), "{body}");
        assert!(body.contains("taskscope_agent_locations_folded 1"));
        // A bigger newcomer does not take an admitted location's series.
        let (body, _) = ex.render(
            vec![
                stat("a.rs:1:1", 0, 9),
                stat("b.rs:1:1", 5, 5),
                stat("0.rs:1:1", 100, 100),
            ],
            h,
            false,
        );
        let live = series(&body, "taskscope_tasks_live");
        assert_eq!(live[0], ("a.rs:1:1".into(), 0.0));
        // c.rs is gone from this reading, but the bucket's counter holds.
        assert_eq!(live[2], ("other".into(), 100.0));
        let spawned = series(&body, "taskscope_tasks_spawned_total");
        assert_eq!(spawned[2], ("other".into(), 100.0));
    }

    #[test]
    fn counters_never_go_down() {
        let ex = Exporter::new(10);
        let h = AgentHealth::default();
        ex.render(vec![stat("a.rs:1:1", 3, 10)], h.clone(), true);
        let (body, ctype) = ex.render(vec![stat("a.rs:1:1", 3, 8)], h, true);
        assert_eq!(ctype, OPENMETRICS);
        assert_eq!(
            series(&body, "taskscope_tasks_spawned_total"),
            [("a.rs:1:1".into(), 10.0)]
        );
    }

    #[test]
    fn hostile_locations_are_escaped() {
        let ex = Exporter::new(10);
        let (body, _) = ex.render(
            vec![stat("evil\"}\n# x.rs:1:1", 1, 1)],
            AgentHealth::default(),
            false,
        );
        assert!(
            body.contains(r#"{location="evil\"}\n# x.rs:1:1"} 1"#),
            "{body}"
        );
    }
}
