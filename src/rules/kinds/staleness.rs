//! `staleness`: for each subject (of a roster, or seen in the log), the
//! latest event of a type must lie within a period: passwords changed every
//! 90 days, an appraisal every quarter, a publication at least every N days.
//!
//! Reported once per lapse, however long it lasts (a reminder mail follows
//! a violation left open, `mail.remind_after`): a year without a password
//! change is one violation, not four — and a log first read long after its
//! last renewal does not mail one report per period missed. The renewing
//! event, within the deadlines' wait for a late discharge, marks the
//! violation late (or withdraws it, when logged too late for the window but
//! done in time), and starts the next period.

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{EventSpec, wording};
use crate::calendar::Clock;
use crate::diag::{Code, Pos};
use crate::engine::{EvalCx, EventCheck, LATE_RETENTION, NEVER, Obligation, local_time};
use crate::event::Event;
use crate::rules::compile::{Cx, pos_of};
use crate::rules::cond::{EventMatch, RawEventMatch, compile_duration, compile_match};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staleness {
    /// The event that renews a subject.
    event: RawEventMatch,
    /// The field naming the subject (account, employee).
    subject: String,
    every: Spanned<String>,
    #[serde(default)]
    clock: Option<Clock>,
    /// A named list whose members (or keys) are the subjects to watch even
    /// before they appear in the log.
    #[serde(default)]
    roster: Option<Spanned<String>>,
}

#[derive(Debug)]
pub struct StalenessCheck {
    event: EventMatch,
    subject: String,
    every: Duration,
    clock: Clock,
    roster: Option<String>,
}

impl EventSpec for Staleness {
    type Check = StalenessCheck;

    fn compile(self, cx: &mut Cx<'_>, _at: Pos) -> Option<StalenessCheck> {
        let event = compile_match(cx, &self.event);
        let every = compile_duration(cx, &self.every);
        let mut ok = true;
        if let Some(r) = &self.roster
            && cx.lists.is_keyed(&r.value).is_none()
        {
            ok = false;
            cx.error(
                pos_of(r),
                Code::InvalidValue,
                format!("no list named `{}` in lists.yaml", r.value),
            );
        }
        ok.then_some(())?;
        Some(StalenessCheck {
            event: event?,
            subject: self.subject,
            every: every?,
            clock: self.clock.unwrap_or(Clock::Wall),
            roster: self.roster.map(|r| r.value),
        })
    }
}

impl StalenessCheck {
    fn arm(
        &self,
        cx: &mut EvalCx<'_>,
        subject: String,
        from: crate::event::Evidence,
        at: jiff::Timestamp,
    ) {
        let due = cx.env.calendar.add(at, self.every, self.clock);
        cx.state.put_obligation(Obligation {
            rule: cx.meta.id.clone(),
            key: subject.clone(),
            subject,
            started: at,
            due,
            wake: due,
            evidence: vec![from],
            fired: false,
        });
    }
}

impl EventCheck for StalenessCheck {
    fn interested(&self, kind: &str) -> bool {
        // Without a roster, any event may introduce a subject.
        self.roster.is_none() || kind == self.event.kind
    }

    fn on_start(&self, cx: &mut EvalCx<'_>) {
        let Some(roster) = &self.roster else { return };
        for subject in cx.env.lists.members(roster) {
            if !cx.state.has_obligation(&cx.meta.id, &subject) {
                let due = cx.env.calendar.add(cx.now, self.every, self.clock);
                cx.state.put_obligation(Obligation {
                    rule: cx.meta.id.clone(),
                    key: subject.clone(),
                    subject,
                    started: cx.now,
                    due,
                    wake: due,
                    evidence: Vec::new(),
                    fired: false,
                });
            }
        }
    }

    fn on_event(&self, cx: &mut EvalCx<'_>, ev: &Event) {
        let Some(subject) = ev.str(&self.subject) else {
            return;
        };
        if self.event.matches(ev, &cx.env.lists) {
            let current = cx.state.obligation(&cx.meta.id, subject);
            // An older renewal read late (an archived log, a re-read) says
            // nothing new: the period already runs from a later one.
            if current.as_ref().is_some_and(|ob| ev.ts < ob.started) {
                return;
            }
            // A lapse reported and still waiting for its late renewal.
            if let Some(ob) = current
                && ob.fired
                && ob.wake != NEVER
            {
                cx.effects.push(ob.done_late_by(ev));
            }
            self.arm(cx, subject.to_owned(), ev.evidence.clone(), ev.ts);
        } else if self.roster.is_none() && !cx.state.has_obligation(&cx.meta.id, subject) {
            // A subject seen for the first time starts its first period now.
            self.arm(cx, subject.to_owned(), ev.evidence.clone(), ev.ts);
        }
    }

    fn on_due(&self, cx: &mut EvalCx<'_>, mut ob: Obligation) {
        if ob.fired {
            // The wait for a late renewal is over; the subject stays
            // reported until its next renewing event, which starts a new
            // period (so other events do not start one for it either).
            ob.wake = NEVER;
            cx.state.put_obligation(ob);
            return;
        }
        let since = local_time(&cx.env.calendar, ob.started);
        let period = wording::span(self.every, self.clock);
        // A roster subject never seen is counted from the start of watching.
        // Only the Chinese reaches the violation (see deadline.rs).
        let detail = wording::stale(&self.event.kind, !ob.evidence.is_empty(), &since, &period);
        cx.violation(
            ob.subject.clone(),
            ob.due,
            Some(ob.due),
            ob.evidence.clone(),
            Some(detail),
        );
        // Once per lapse: it now waits for the renewing event, marked late
        // if it comes within the wait (as a deadline's discharge is).
        ob.fired = true;
        ob.wake = ob.due.checked_add(LATE_RETENTION).unwrap_or(NEVER);
        cx.state.put_obligation(ob);
    }
}
