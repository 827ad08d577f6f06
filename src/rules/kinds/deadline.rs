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
    EventMatch, RawEventMatch, check_key, compile_duration, compile_match, key_ref, subject_of,
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
    /// The violation's detail but for its due time.
    words: wording::DeadlineWords,
}

impl EventSpec for Deadline {
    type Check = DeadlineCheck;

    fn compile(self, cx: &mut Cx<'_>, _at: Pos) -> Option<DeadlineCheck> {
        let start = compile_match(cx, &self.start);
        let stop = compile_match(cx, &self.stop);
        let key_ok = check_key(cx, &self.key);
        let within = compile_duration(cx, &self.within);
        let (start, stop, within) = (start?, stop?, within?);
        let clock = self.clock.unwrap_or(Clock::Wall);
        let words = wording::DeadlineWords::new(&stop.kind, &wording::span(within, clock));
        Some(DeadlineCheck {
            start,
            stop,
            key: key_ok.then_some(self.key.value)?,
            within,
            clock,
            words,
        })
    }
}

impl EventCheck for DeadlineCheck {
    fn interested(&self, kind: &str) -> bool {
        kind == self.start.kind || kind == self.stop.kind
    }

    fn on_event(&self, cx: &mut EvalCx<'_>, ev: &Event) {
        let stops = self.stop.matches(ev, &cx.env.lists);
        let starts = self.start.matches(ev, &cx.env.lists);
        if !(stops || starts) {
            return;
        }
        // Borrowed from the event: a stop usually finds nothing to discharge
        // under its key or its late key, and then allocates nothing.
        let Some(key) = key_ref(ev, &self.key) else {
            return;
        };
        // A stop first: an event that both stops and starts (rare) answers
        // the old obligation before opening a new one. It discharges the
        // open obligation (on time) and a fired one still waiting (late).
        if stops {
            cx.state.remove_obligation(&cx.meta.id, &key);
            let late = with_late_key(&key, |late| cx.state.remove_obligation(&cx.meta.id, late));
            if let Some(ob) = late {
                cx.effects.push(ob.done_late_by(ev));
            }
        }
        // The first unanswered start sets the deadline; later ones on the
        // same key wait with it (a deadline that already fired does not: its
        // record waits for a late discharge under its own key).
        if starts && !cx.state.has_obligation(&cx.meta.id, &key) {
            let subject = subject_of(ev, &self.key, &key);
            let due = cx.env.calendar.add(ev.ts, self.within, self.clock);
            cx.state.put_obligation(Obligation {
                rule: cx.meta.id.clone(),
                key: key.into_owned(),
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
        let due = crate::engine::local_time(&cx.env.calendar, ob.due);
        let detail = self.words.at(&due);
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
    format!("{key}{LATE}")
}

const LATE: &str = "\u{1e}late";

/// Calls `f` with [`late_key`]`(key)`, written on the stack when it is short
/// (every stop event looks its late key up; it is rarely there).
fn with_late_key<R>(key: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 64];
    let n = key.len() + LATE.len();
    let Some(dst) = buf.get_mut(..n) else {
        return f(&late_key(key));
    };
    dst[..key.len()].copy_from_slice(key.as_bytes());
    dst[key.len()..].copy_from_slice(LATE.as_bytes());
    match std::str::from_utf8(dst) {
        Ok(late) => f(late),
        // Two strings one after the other are one string: not reached.
        Err(_) => f(&late_key(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_key_is_the_same_on_the_stack_and_on_the_heap() {
        for key in [
            "",
            "t1",
            "li.na\u{1f}2026-02",
            "会话-١٢",
            &"k".repeat(59),
            &"k".repeat(60),
            &"长".repeat(40),
        ] {
            assert_eq!(with_late_key(key, str::to_owned), late_key(key), "{key}");
        }
    }
}
