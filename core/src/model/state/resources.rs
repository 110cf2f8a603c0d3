//! Resources and async ops folded into the model: the only links from a
//! waiting task to what it waits on.

use super::State;
use crate::model::resource::{AsyncOp, PendingPoll, Resource};
use crate::model::time::Ts;
use crate::model::update::Update;

impl State {
    pub(super) fn apply_resources(&mut self, up: &Update, _now: Option<Ts>) {
        for new in &up.resources {
            if self.console.resources.len() >= self.config.max_entities
                && !self.console.resources.contains_key(&new.id)
            {
                self.log.health.implausible.over_cap += 1;
                continue;
            }
            let r = Resource::from_wire(
                new,
                &mut self.log.locations,
                &mut self.console.types,
                &mut self.console.shapes,
            );
            match self.console.resources.get_mut(&new.id) {
                Some(old) => old.reregistered(r),
                None => {
                    self.console.resources.insert(new.id, r);
                }
            }
        }
        for (id, stats) in &up.resource_stats {
            if let Some(r) = self.console.resources.get_mut(id) {
                if let (None, Some(c)) = (r.created_at, stats.created_at) {
                    self.console.late.span_arrived(c);
                    if &**r.concrete_type() == "Sleep" {
                        self.console.late.sleep_arrived(c, r.location());
                    }
                }
                r.created_at = stats.created_at;
                r.dropped_at = stats.dropped_at;
                if !stats.attributes.is_empty() {
                    let text: Vec<String> = stats
                        .attributes
                        .iter()
                        .map(|a| {
                            format!(
                                "{}={}{}",
                                a.field.name,
                                a.field.value.to_text(),
                                a.unit.as_deref().unwrap_or("")
                            )
                        })
                        .collect();
                    r.attributes = Some(self.console.attributes.intern(&text.join(" ")));
                }
            }
        }
    }

    pub(super) fn apply_ops(&mut self, up: &Update) {
        for new in &up.async_ops {
            if self.console.async_ops.len() >= self.config.max_entities
                && !self.console.async_ops.contains_key(&new.id)
            {
                self.log.health.implausible.over_cap += 1;
                continue;
            }
            let op = AsyncOp::from_wire(new);
            self.console
                .async_ops
                .entry(new.id)
                .and_modify(|old| {
                    old.source = op.source;
                    old.parent = op.parent;
                    old.resource = op.resource;
                })
                .or_insert(op);
        }
        for (id, stats) in &up.async_op_stats {
            if let Some(op) = self.console.async_ops.get_mut(id) {
                op.created_at = stats.created_at;
                op.dropped_at = stats.dropped_at;
                op.task = stats.task.or(op.task);
            }
        }
        for p in &up.poll_ops {
            let Some(task) = p.task else { continue };
            if p.ready {
                if self
                    .console
                    .pending_polls
                    .get(&task)
                    .is_some_and(|q| q.async_op == p.async_op)
                {
                    self.console.pending_polls.remove(&task);
                }
            } else {
                self.console.pending_polls.insert(
                    task,
                    PendingPoll {
                        resource: p.resource,
                        async_op: p.async_op,
                        name: self.console.types.intern(&p.name),
                        at: up.now,
                    },
                );
            }
        }
    }
}
