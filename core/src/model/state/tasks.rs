//! The console source's tasks folded into the model: a new stream
//! reconciled with the full state it sends, registrations and stats,
//! births and deaths into the count histories, the console's lag, and
//! pruning what the model no longer keeps.

use super::*;

impl State {
    pub(super) fn start_history(&mut self, up: &Update, now: Option<Ts>) {
        let Some(now) = now else { return };
        // Rebuild the past only as far back as the target demonstrably
        // retains finished tasks: otherwise tasks that ended and were
        // forgotten would make the past look emptier, faking growth.
        let mut backfill = Duration::ZERO;
        if up.has_metadata {
            let oldest_drop = up.task_stats.iter().filter_map(|(_, s)| s.dropped_at).min();
            if let Some(t) = oldest_drop {
                backfill = now.since(t).min(self.config.max_backfill);
            }
        }
        self.log.health.backfilled = backfill;
        self.log.history_origin = Some(now.minus(backfill));
        self.log.health.counts_since = self.log.history_origin;
    }

    /// A full state at the start of a stream: tasks we thought alive and
    /// that it does not list (or lists with another creation time: the id
    /// was reused by a restarted target) ended while we were away.
    pub(super) fn reconcile(&mut self, up: &Update, now: Option<Ts>) {
        let mut present: HashMap<u64, Option<Ts>> = up.tasks.iter().map(|t| (t.id, None)).collect();
        for (id, st) in &up.task_stats {
            present.insert(*id, st.created_at);
        }
        let live: Vec<u64> = self.live_tasks().map(|t| t.id).collect();
        let at = now.unwrap_or(Ts::from_nanos(1));
        let mut survivors = 0;
        for id in &live {
            let Some(task) = self.console.tasks.get(id) else {
                continue;
            };
            let same = match present.get(id) {
                None => false,
                Some(None) => true,
                Some(Some(created)) => task.stats.created_at.is_none_or(|c| c == *created),
            };
            if same {
                survivors += 1;
            } else {
                self.retire(*id, at);
            }
        }
        if !live.is_empty() && survivors == 0 && self.log.health.streams > 1 {
            self.log.health.restarts += 1;
        }
        self.console.orphan_stats.clear();
        let resources: HashSet<u64> = up.resources.iter().map(|r| r.id).collect();
        self.console
            .resources
            .retain(|id, _| resources.contains(id));
        let ops: HashSet<u64> = up.async_ops.iter().map(|o| o.id).collect();
        self.console.async_ops.retain(|id, _| ops.contains(id));
        self.console.pending_polls.clear();
    }

    /// Removes a task that ended unseen, recording its end at `at`.
    pub(super) fn retire(&mut self, id: u64, at: Ts) {
        if let Some(task) = self.console.tasks.remove(&id)
            && task.is_live()
            && task.stats.created_at.is_some()
        {
            let origin = self.log.history_origin.unwrap_or(at);
            self.log
                .histories
                .entry(task.group)
                .or_insert_with(|| CountHistory::new(origin))
                .death(at);
        }
    }

    pub(super) fn apply_tasks(&mut self, up: &Update, now: Option<Ts>) {
        let at = now.unwrap_or(Ts::from_nanos(1));
        for new in &up.tasks {
            if self.console.tasks.len() >= self.config.max_entities
                && !self.console.tasks.contains_key(&new.id)
            {
                self.log.health.implausible.over_cap += 1;
                continue;
            }
            let task = Task::from_wire(new, &mut self.log.locations, &mut self.console.labels);
            match self.console.tasks.get_mut(&new.id) {
                Some(old) if old.group == task.group => Arc::make_mut(old).relabel(task),
                Some(_) => {
                    // The id was reused (target restarted): the old task ended.
                    self.retire(new.id, at);
                    self.console.tasks.insert(new.id, Arc::new(task));
                }
                None => {
                    self.console.tasks.insert(new.id, Arc::new(task));
                }
            }
            if let Some(stats) = self.console.orphan_stats.remove(&new.id)
                && let Some(task) = self.console.tasks.get_mut(&new.id).map(Arc::make_mut)
            {
                Self::record_transition(
                    &mut self.log.histories,
                    self.log.history_origin,
                    task.group,
                    &task.stats,
                    &stats,
                    at,
                );
                task.set_stats(stats, now, &self.console.capture_windows);
            }
        }
        for (id, stats) in &up.task_stats {
            let reused = self.console.tasks.get(id).is_some_and(
                |t| matches!((t.stats.created_at, stats.created_at), (Some(a), Some(b)) if a != b),
            );
            if reused {
                // Same id, another task: keep the record, restart its stats.
                if let Some(old) = self.console.tasks.get(id).cloned() {
                    self.retire(*id, at);
                    let mut fresh = Arc::unwrap_or_clone(old);
                    fresh.restart();
                    self.console.tasks.insert(*id, Arc::new(fresh));
                }
            }
            match self.console.tasks.get_mut(id).map(Arc::make_mut) {
                Some(task) => {
                    Self::record_transition(
                        &mut self.log.histories,
                        self.log.history_origin,
                        task.group,
                        &task.stats,
                        stats,
                        at,
                    );
                    if task.stats.created_at.is_none()
                        && let Some(c) = stats.created_at
                    {
                        self.console.late.span_arrived(c);
                    }
                    let before = task.own_poll;
                    task.set_stats(*stats, now, &self.console.capture_windows);
                    if let (true, (Some(start), Some(end))) =
                        (task.own_poll != before, task.own_poll)
                    {
                        self.console.late.polled(task.id, task.group, start, end);
                    }
                }
                None if stats.dropped_at.is_none() => {
                    if self.console.orphan_stats.len() < self.config.max_entities
                        || self.console.orphan_stats.contains_key(id)
                    {
                        self.console.orphan_stats.insert(*id, *stats);
                    } else {
                        self.log.health.implausible.over_cap += 1;
                    }
                }
                None => {
                    self.console.orphan_stats.remove(id);
                }
            }
        }
    }

    /// Records births and deaths that a stats change reveals.
    pub(super) fn record_transition(
        histories: &mut HashMap<GroupKey, CountHistory>,
        origin: Option<Ts>,
        group: GroupKey,
        old: &TaskStats,
        new: &TaskStats,
        at: Ts,
    ) {
        let born = old.created_at.is_none() && new.created_at.is_some();
        let died = old.dropped_at.is_none()
            && new.dropped_at.is_some()
            && (old.created_at.is_some() || new.created_at.is_some());
        if !born && !died {
            return;
        }
        let h = histories
            .entry(group)
            .or_insert_with(|| CountHistory::new(origin.unwrap_or(at)));
        if born {
            h.birth(new.created_at.unwrap_or(at));
        }
        if died {
            h.death(new.dropped_at.unwrap_or(at));
        }
    }

    pub(super) fn update_freshness(&mut self, up: &Update, now: Option<Ts>) {
        let Some(now) = now else { return };
        let entities = up.tasks.len() + up.resources.len() + up.async_ops.len();
        let newest = up
            .tasks
            .iter()
            .filter_map(|t| {
                self.console
                    .tasks
                    .get(&t.id)
                    .and_then(|t| t.stats.created_at)
            })
            .max();
        self.log.health.lag = match newest {
            Some(t) if entities >= BACKLOG_ENTITIES => now.since(t),
            _ => Duration::ZERO,
        };
        let horizon = now.minus(self.log.health.lag);
        self.log.health.horizon = Some(horizon);
        for h in self.log.histories.values_mut() {
            h.advance_to(horizon);
        }
    }

    pub(super) fn prune(&mut self, now: Ts) {
        self.console.labels.purge();
        self.console.attributes.purge();
        self.console.shapes.purge();
        self.console.late.prune(now);
        let keep_tasks = self.config.finished_retention;
        self.console
            .tasks
            .retain(|_, t| t.stats.dropped_at.is_none_or(|d| now.since(d) < keep_tasks));
        // Collect the finished ones only when over the cap: this runs every
        // second, and usually nothing needs evicting.
        if self.finished_count() > self.config.max_finished {
            let mut finished: Vec<(Ts, u64)> = self
                .console
                .tasks
                .values()
                .filter_map(|t| Some((t.stats.dropped_at?, t.id)))
                .collect();
            let excess = finished.len() - self.config.max_finished;
            finished.select_nth_unstable(excess - 1);
            for (_, id) in &finished[..excess] {
                self.console.tasks.remove(id);
            }
        }
        let keep_ops = self.config.op_retention;
        self.console
            .resources
            .retain(|_, r| r.dropped_at.is_none_or(|d| now.since(d) < keep_ops));
        self.console
            .async_ops
            .retain(|_, o| o.dropped_at.is_none_or(|d| now.since(d) < keep_ops));
        let tasks = &self.console.tasks;
        self.console
            .pending_polls
            .retain(|id, _| tasks.get(id).is_some_and(|t| t.is_live()));
    }
}
