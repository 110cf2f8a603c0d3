//! What the view asks of others and gets back later or on disk: the diff
//! baseline, report and snapshot exports, captures, the group and task
//! it has open (whose details the connections stream), and other jobs for
//! the model thread.

use super::app::{App, Screen};
use crate::model::GroupKey;
use crate::report::diff::Side;
use crate::session::Job;
use crate::snapshot::Meta;
use std::path::PathBuf;
use std::time::Instant;
use tokio::sync::mpsc;

impl App {
    /// `b`: the current analysis becomes the baseline.
    pub fn mark_baseline(&mut self, now: Instant) {
        let Some(a) = self.analysis.clone() else {
            self.notify("no data yet: nothing to mark as baseline", now);
            return;
        };
        let side = Side {
            label: "baseline".into(),
            target: self.target.clone(),
            taken_at_unix_ns: Some(crate::text::unix_now_ns()),
        };
        self.notify(
            format!(
                "baseline marked ({} tasks); d shows the diff",
                a.totals.live
            ),
            now,
        );
        self.baseline = Some((a, side));
    }

    /// `DIR/PREFIX-HOST-PORT-YYYYMMDD-HHMMSS.EXT` for files the view writes.
    fn export_path(&self, prefix: &str, ext: &str, taken_unix_ns: i64) -> PathBuf {
        self.save_dir.join(format!(
            "{prefix}-{}-{}.{ext}",
            crate::text::file_safe(&self.target),
            crate::text::utc_stamp(taken_unix_ns)
        ))
    }

    /// `e` / `E`: writes the suspect-task report (Markdown / HTML) of the
    /// current state beside the working directory.
    pub fn export_report(&mut self, format: crate::report::Format, now: Instant) {
        let (Some(a), None) = (&self.analysis, &self.offline) else {
            self.notify("no live data to report on", now);
            return;
        };
        let taken = crate::text::unix_now_ns();
        let ctx = crate::report::build::Context {
            target: self.target.clone(),
            source: "live".into(),
            watched: now.duration_since(self.started),
            window: self.params.window,
            generated_at_unix_ns: taken,
        };
        let ext = match format {
            crate::report::Format::Md => "md",
            crate::report::Format::Json => "json",
            crate::report::Format::Html => "html",
        };
        let job = Job::Report {
            format,
            ctx,
            analysis: a.clone(),
            path: self.export_path("taskscope-report", ext, taken),
        };
        self.submit(job, "writing the report…", now);
    }

    /// `s`: writes a snapshot of the live state beside the working directory.
    pub fn save_snapshot(&mut self, now: Instant) {
        if self.offline.is_some() {
            self.notify(
                "snapshots are taken of live targets; this view shows files",
                now,
            );
            return;
        }
        let taken = crate::text::unix_now_ns();
        let meta = Meta {
            target: self.target.clone(),
            taken_at_unix_ns: taken,
            watched: now.duration_since(self.started),
            window: self.params.window,
        };
        let path = self.export_path("taskscope", "json", taken);
        self.submit(Job::Snapshot { meta, path }, "saving a snapshot…", now);
    }

    /// `t`: asks the target's agent for a capture.
    pub fn request_waits(&mut self, now: Instant) {
        use crate::model::Agent;
        if self.offline.is_some() {
            self.notify("waits are captured on live targets only", now);
            return;
        }
        let agent = self.analysis.as_ref().map(|a| a.waits.agent.clone());
        match agent.unwrap_or_default() {
            Agent::Ready { min_interval, .. } => {
                let per_task = self
                    .analysis
                    .as_ref()
                    .and_then(|a| a.waits.last.as_ref())
                    .is_some_and(|c| c.per_task);
                let msg = if per_task {
                    "waits requested: tasks not captured yet capture themselves (the target never pauses)"
                        .to_string()
                } else {
                    // Within the agent's interval the last capture comes back again.
                    format!(
                        "waits asked for (the agent captures at most once per {})",
                        crate::text::duration(min_interval)
                    )
                };
                self.submit(Job::Waits, &msg, now)
            }
            Agent::Unknown => self.notify("not connected yet: no agent to ask", now),
            Agent::Absent => self.notify(
                "the target captures no waits: add taskscope-agent to it (see README)",
                now,
            ),
            Agent::Unavailable(why) => self.notify(format!("no waits captured: {why}"), now),
        }
    }

    /// Opens one task's view (its details are streamed while it is open:
    /// see [`App::sync_lens`]).
    pub fn open_task(&mut self, key: GroupKey, target: usize, id: u64) {
        self.task_back = Some(self.screen);
        self.screen = Screen::Task(key, target, id);
    }

    /// Leaves the task view for where it was opened from.
    pub fn close_task(&mut self) {
        self.screen = self.task_back.take().unwrap_or(Screen::Groups);
    }

    /// Hands a job to the session (its outcome comes back as a notice), or
    /// runs it here when there is none.
    fn submit(&mut self, job: Job, working: &str, now: Instant) {
        let job = match &self.jobs {
            Some(tx) => match tx.send(job) {
                Ok(()) => {
                    self.notify(working, now);
                    return;
                }
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let msg = match self.local.first() {
            Some(st) => job.run(st),
            None => job.run(&crate::model::State::default()),
        };
        self.notify(msg, now);
    }
}
