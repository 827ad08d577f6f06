//! `deadline`: a start event opens an obligation that a stop event with the
//! same key must discharge within a duration on a clock. A stop at or
//! before the due instant discharges it; none → a violation at the due
//! instant; a later stop leaves the violation standing, marked late.

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{EventSpec, wording};
use crate::calendar::Clock;
use crate::diag::Pos;
use crate::engine::{EvalCx, EventCheck, LATE_RETENTION, Obligation};
use crate::event::Event;
use crate::rules::compile::Cx;
use crate::rules::cond::{
    EventMatch, RawEventMatch, check_key, compile_duration, compile_match, key_of,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadline {
    start: RawEventMatch,
    stop: RawEventMatch,
    /// Fields that pair a start with its stop (same names in both events).
    key: Spanned<Vec<String>>,
    within: Spanned<String>,
    #[serde(default)]
    clock: Option<Clock>,
}

#[derive(Debug)]
pub struct DeadlineCheck {
    start: EventMatch,
    stop: EventMatch,
    key: Vec<String>,
    within: Duration,
    clock: Clock,
}

impl EventSpec for Deadline {
    type Check = DeadlineCheck;

    fn compile(self, cx: &mut Cx<'_>, _at: Pos) -> Option<DeadlineCheck> {
        let start = compile_match(cx, &self.start);
        let stop = compile_match(cx, &self.stop);
        let key_ok = check_key(cx, &self.key);
        let within = compile_duration(cx, &self.within);
        Some(DeadlineCheck {
            start: start?,
            stop: stop?,
            key: key_ok.then_some(self.key.value)?,
            within: within?,
            clock: self.clock.unwrap_or(Clock::Wall),
        })
    }
}

impl EventCheck for DeadlineCheck {
    fn interested(&self, kind: &str) -> bool {
        kind == self.start.kind || kind == self.stop.kind
    }

    fn on_event(&self, cx: &mut EvalCx<'_>, ev: &Event) {
        // A stop first: an event that both stops and starts (rare) answers
        // the old obligation before opening a new one. It discharges the
        // open obligation (on time) and a fired one still waiting (late).
        if self.stop.matches(ev, &cx.env.lists)
            && let Some((key, _)) = key_of(ev, &self.key)
        {
            cx.state.remove_obligation(&cx.meta.id, &key);
            if let Some(ob) = cx.state.remove_obligation(&cx.meta.id, &late_key(&key)) {
                cx.effects.push(ob.done_late_by(ev));
            }
        }
        if self.start.matches(ev, &cx.env.lists)
            && let Some((key, subject)) = key_of(ev, &self.key)
        {
            // The first unanswered start sets the deadline; later ones on
            // the same key wait with it (a deadline that already fired does
            // not: its record waits for a late discharge under its own key).
            if cx.state.has_obligation(&cx.meta.id, &key) {
                return;
            }
            let due = cx.env.calendar.add(ev.ts, self.within, self.clock);
            cx.state.put_obligation(Obligation {
                rule: cx.meta.id.clone(),
                key,
                subject,
                started: ev.ts,
                due,
                wake: due,
                evidence: vec![ev.evidence.clone()],
                fired: false,
            });
        }
    }

    fn on_due(&self, cx: &mut EvalCx<'_>, mut ob: Obligation) {
        if ob.fired {
            // Waited long enough for a late discharge: forget it.
            cx.state.remove_obligation(&ob.rule, &ob.key);
            return;
        }
        let within = wording::span(self.within, self.clock);
        let due = crate::engine::local_time(&cx.env.calendar, ob.due);
        // The English detail (`.en`) needs a field on engine::Violation to
        // reach English mail; until then the violation carries the Chinese.
        let detail = wording::deadline(&self.stop.kind, &within, &due);
        cx.violation(
            ob.subject.clone(),
            ob.due,
            Some(ob.due),
            ob.evidence.clone(),
            Some(detail),
        );
        // The key is free for the next start; the fired record waits apart.
        cx.state.remove_obligation(&ob.rule, &ob.key);
        ob.key = late_key(&ob.key);
        ob.fired = true;
        ob.wake = ob
            .due
            .checked_add(LATE_RETENTION)
            .unwrap_or(jiff::Timestamp::MAX);
        cx.state.put_obligation(ob);
    }
}

/// Where a fired deadline waits for a late discharge. One per key: a newer
/// fired deadline on the same key replaces the older one (whose violation
/// then stands without a late mark).
fn late_key(key: &str) -> String {
    format!("{key}\u{1e}late")
}
