//! One task opened (Enter on a task): what tokio-console's task view
//! shows — times split into busy, scheduled and idle, wakers, fields, the
//! poll-time and scheduled-time histograms with percentiles — plus what
//! taskscope knows it waits on, its warnings and its stack.

use super::style;
use crate::model::details::Histogram;
use crate::text;
use crate::ui::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, Wrap};
use std::time::Duration;

pub fn draw(
    f: &mut Frame,
    app: &App,
    page: &crate::session::Page,
    key: crate::model::GroupKey,
    target: usize,
    id: u64,
    area: Rect,
) {
    let found = app.analysis.as_ref().and_then(|a| {
        let g = a.groups.iter().find(|g| g.key == key)?;
        let row = g
            .tasks
            .iter()
            .find(|r| r.id == id && usize::from(r.target) == target)?;
        Some((a, g, row))
    });
    let Some((a, g, row)) = found else {
        super::placeholder(f, area, "this task has ended (Esc goes back)");
        return;
    };
    let own = id;
    let Some(t) = page.task(target, own) else {
        // The hooks source: what the target's page has of it.
        let lines = match page.paged(target, own) {
            Some(p) => vec![
                Line::from(format!(
                    " task {} @ {} · {}",
                    p.id,
                    text::sanitize(&g.location, 120),
                    row.verdict.reason.phrase()
                )),
                Line::from(format!(
                    " age {} · polls {} · busy {}",
                    p.created
                        .map(|c| text::duration(a.now.since(c)))
                        .unwrap_or_default(),
                    text::count(p.polls),
                    text::duration(p.busy)
                )),
                Line::from(
                    " (poll and scheduling histograms, wakers and fields come with the console source)",
                ),
            ],
            None => vec![Line::from(" this task has ended (Esc goes back)")],
        };
        f.render_widget(Paragraph::new(lines), area);
        return;
    };
    let s = &t.stats;
    let now = a.now;
    let total = s.created_at.map(|c| now.since(c)).unwrap_or_default();
    let busy = Duration::from_nanos(s.busy_ns);
    let sched = Duration::from_nanos(s.scheduled_ns);
    let idle = total.saturating_sub(busy).saturating_sub(sched);
    let pct = |d: Duration| {
        if total.is_zero() {
            0.0
        } else {
            d.as_secs_f64() / total.as_secs_f64() * 100.0
        }
    };
    let mut wait = row.verdict.reason.phrase().to_string();
    if let Some(d) = row.verdict.duration(now) {
        wait.push_str(&format!(" for {}", text::duration(d)));
    }
    if row.verdict.captured {
        wait.push_str(" (from its captured stack)");
    }
    let lints: Vec<&str> = crate::analysis::lint::of_task(t, &row.verdict)
        .iter()
        .map(|l| l.label())
        .collect();
    let self_pct = if s.wakes > 0 {
        format!(
            " ({:.0}%)",
            f64::from(s.self_wakes) / f64::from(s.wakes) * 100.0
        )
    } else {
        String::new()
    };
    let who = if app.fleet.is_empty() {
        String::new()
    } else {
        app.fleet
            .get(target)
            .map(|m| format!(" · on {}", text::sanitize(&m.label, 60)))
            .unwrap_or_default()
    };
    let mut head = vec![
        Line::from(format!(
            " task {} · {} · {} · span {}{who}",
            t.tokio_id
                .map(|i| i.to_string())
                .unwrap_or_else(|| "?".into()),
            t.name()
                .map(|n| text::sanitize(n, 40))
                .unwrap_or_else(|| "(unnamed)".into()),
            text::sanitize(&g.location, 120),
            t.id
        )),
        Line::from(format!(" {wait}")),
        Line::from(format!(
            " total {} · busy {} ({:.1}%) · scheduled {} ({:.1}%) · idle {} ({:.1}%) · polls {}",
            text::duration(total),
            text::latency(busy),
            pct(busy),
            text::latency(sched),
            pct(sched),
            text::duration(idle),
            pct(idle),
            text::count(s.polls)
        )),
        Line::from(format!(
            " wakers: {} live ({} clones, {} drops) · wakes {} · self-wakes {}{self_pct} · last woken {}",
            s.live_wakers(),
            s.waker_clones,
            s.waker_drops,
            s.wakes,
            s.self_wakes,
            s.last_wake
                .map(|w| format!("{} ago", text::duration(now.since(w))))
                .unwrap_or_else(|| "never".into())
        )),
        Line::from(format!(" fields: {}", super::detail::fields_text(t, 300))),
    ];
    if !lints.is_empty() {
        head.push(Line::styled(
            format!(" ⚠ {}", lints.join(", ")),
            style::warn(app),
        ));
    }
    head.extend(super::detail::stack_lines(page, row));
    let details = page.details(target, t.id);
    let head_rows = head.len() as u16;
    let [head_area, poll_area, sched_area] = Layout::vertical([
        Constraint::Length(head_rows),
        Constraint::Min(4),
        Constraint::Min(4),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(head).wrap(Wrap { trim: false }), head_area);
    let hist = |h: Option<&Histogram>, what: &str, area: Rect, f: &mut Frame| {
        let block = Block::default().borders(Borders::TOP);
        let Some(h) = h.filter(|h| h.count > 0) else {
            let msg = match details {
                None => format!(" {what}: waiting for the target's task details…"),
                Some(_) => format!(" {what}: none recorded yet"),
            };
            f.render_widget(Paragraph::new(msg).block(block), area);
            return;
        };
        let outliers = match (h.high_outliers, h.highest_outlier) {
            (0, _) => String::new(),
            (n, Some(m)) => format!(" · {n} above the range, up to {}", text::latency(m)),
            (n, None) => format!(" · {n} above the range"),
        };
        let title = format!(
            " {what} ({} recorded): p50 {} · p90 {} · p99 {} · max {}{outliers}",
            text::count(h.count),
            text::latency(h.p50),
            text::latency(h.p90),
            text::latency(h.p99),
            text::latency(h.max)
        );
        let inner = block.inner(area);
        f.render_widget(block, area);
        let [title_area, bars, axis] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(inner);
        f.render_widget(Paragraph::new(title), title_area);
        let width = (bars.width as usize).min(h.buckets.len() * 2).max(1);
        let per = h.buckets.len().div_ceil(width).max(1);
        let data: Vec<u64> = h.buckets.chunks(per).map(|c| c.iter().sum()).collect();
        let spark_w = (data.len() as u16).min(bars.width);
        f.render_widget(
            Sparkline::default().data(&data).style(style::good(app)),
            Rect::new(bars.x, bars.y, spark_w, bars.height),
        );
        let lo = text::latency(h.min);
        let hi = text::latency(h.max);
        let gap = (spark_w as usize).saturating_sub(lo.chars().count() + hi.chars().count());
        f.render_widget(Paragraph::new(format!("{lo}{}{hi}", " ".repeat(gap))), axis);
    };
    hist(
        details.and_then(|d| d.poll.as_ref()),
        "poll times",
        poll_area,
        f,
    );
    hist(
        details.and_then(|d| d.scheduled.as_ref()),
        "scheduled times",
        sched_area,
        f,
    );
}
