//! `prerequisite`: an event (content.published) requires earlier events for
//! the same key (an internal and a final approval), optionally on the same
//! version (equal `same:` fields, when both events carry them) and by
//! someone other than the author. A voiding event (a rejection) after an
//! approval of the same version cancels that approval.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::EventSpec;
use crate::diag::Pos;
use crate::engine::{EvalCx, EventCheck, Fact, Obligation};
use crate::event::Event;
use crate::rules::compile::Cx;
use crate::rules::cond::{EventMatch, RawEventMatch, check_key, compile_match, key_of};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prerequisite {
    event: RawEventMatch,
    key: Spanned<Vec<String>>,
    requires: Vec<Requirement>,
    /// Fields that must be equal between the event and each requirement,
    /// when both carry them (the content's sha256).
    #[serde(default)]
    same: Vec<String>,
    #[serde(default)]
    voided_by: Option<RawEventMatch>,
    /// The requirement's actor must differ from the author.
    #[serde(default)]
    distinct: Option<Distinct>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    /// Shown in the violation: 内部审核, 最终审核.
    name: String,
    #[serde(rename = "match")]
    pattern: RawEventMatch,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Distinct {
    /// The requirement event's actor field (`by`).
    actor: String,
    /// Where the author is recorded: an event type and its field
    /// (content.submitted / author); the main event's own `author` field is
    /// used when present.
    author: RawEventMatch,
    author_field: String,
}

#[derive(Debug)]
pub struct PrerequisiteCheck {
    event: EventMatch,
    key: Vec<String>,
    requires: Vec<(String, EventMatch)>,
    same: Vec<String>,
    voided_by: Option<EventMatch>,
    distinct: Option<(String, EventMatch, String)>,
}

impl EventSpec for Prerequisite {
    type Check = PrerequisiteCheck;

    fn compile(self, cx: &mut Cx<'_>, _at: Pos) -> Option<PrerequisiteCheck> {
        let event = compile_match(cx, &self.event);
        let key_ok = check_key(cx, &self.key);
        let mut requires = Vec::new();
        let mut ok = key_ok;
        for r in &self.requires {
            match compile_match(cx, &r.pattern) {
                Some(m) => requires.push((r.name.clone(), m)),
                None => ok = false,
            }
        }
        let voided_by = match &self.voided_by {
            Some(v) => {
                let m = compile_match(cx, v);
                ok &= m.is_some();
                m
            }
            None => None,
        };
        let distinct = match &self.distinct {
            Some(d) => {
                let m = compile_match(cx, &d.author);
                ok &= m.is_some();
                m.map(|m| (d.actor.clone(), m, d.author_field.clone()))
            }
            None => None,
        };
        ok.then_some(())?;
        Some(PrerequisiteCheck {
            event: event?,
            key: self.key.value,
            requires,
            same: self.same,
            voided_by,
            distinct,
        })
    }
}

impl PrerequisiteCheck {
    fn relevant(&self, ev: &Event, cx: &EvalCx<'_>) -> bool {
        let lists = &cx.env.lists;
        self.requires.iter().any(|(_, m)| m.matches(ev, lists))
            || self
                .voided_by
                .as_ref()
                .is_some_and(|m| m.matches(ev, lists))
            || self
                .distinct
                .as_ref()
                .is_some_and(|(_, m, _)| m.matches(ev, lists))
    }

    /// Whether `fact` carries the same version as `ev` (fields absent on
    /// either side do not count against it).
    fn same_version(&self, ev: &Event, fact: &Fact) -> bool {
        self.same.iter().all(|f| match (ev.text(f), fact.text(f)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
    }
}

impl EventCheck for PrerequisiteCheck {
    fn interested(&self, kind: &str) -> bool {
        kind == self.event.kind
            || self.requires.iter().any(|(_, m)| m.kind == kind)
            || self.voided_by.as_ref().is_some_and(|m| m.kind == kind)
            || self
                .distinct
                .as_ref()
                .is_some_and(|(_, m, _)| m.kind == kind)
    }

    fn on_event(&self, cx: &mut EvalCx<'_>, ev: &Event) {
        let Some((key, subject)) = key_of(ev, &self.key) else {
            return;
        };
        if self.relevant(ev, cx) {
            cx.state.add_fact(&cx.meta.id, &key, Fact::of(ev));
        }
        if !self.event.matches(ev, &cx.env.lists) {
            return;
        }
        // Facts older than the retention do not count, however large the log
        // (the state drops them in batches; the rule must not notice when).
        let oldest = ev.ts - crate::engine::FACT_RETENTION;
        let mut facts = cx.state.facts(&cx.meta.id, &key);
        facts.retain(|f| f.ts >= oldest);
        let lists = &cx.env.lists;
        let author = ev.text("author").or_else(|| {
            let (_, m, field) = self.distinct.as_ref()?;
            facts
                .iter()
                .filter(|f| f.ts <= ev.ts && f.kind == m.kind)
                .rfind(|f| self.same_version(ev, f))
                .and_then(|f| f.text(field))
        });
        let mut missing = Vec::new();
        let mut evidence = vec![ev.evidence.clone()];
        for (name, m) in &self.requires {
            let found = facts.iter().filter(|f| f.ts <= ev.ts).find(|f| {
                let as_event = fact_event(f);
                m.matches(&as_event, lists)
                    && self.same_version(ev, f)
                    && !self.voided(&facts, f, ev, lists)
                    && match (&self.distinct, &author) {
                        (Some((actor, _, _)), Some(a)) => f.text(actor).as_deref() != Some(a),
                        _ => true,
                    }
            });
            match found {
                Some(f) => evidence.push(f.evidence.clone()),
                None => missing.push(name.as_str()),
            }
        }
        if !missing.is_empty() {
            let detail = format!("缺少有效的：{}", missing.join("、"));
            cx.violation(subject, ev.ts, None, evidence, Some(detail));
        }
    }

    fn on_due(&self, cx: &mut EvalCx<'_>, ob: Obligation) {
        cx.state.remove_obligation(&ob.rule, &ob.key);
    }
}

impl PrerequisiteCheck {
    /// An approval is void when a voiding event of the same version follows
    /// it (before the event being judged).
    fn voided(
        &self,
        facts: &[Fact],
        approval: &Fact,
        ev: &Event,
        lists: &crate::rules::cond::Lists,
    ) -> bool {
        let Some(v) = &self.voided_by else {
            return false;
        };
        facts.iter().any(|f| {
            f.ts > approval.ts
                && f.ts <= ev.ts
                && v.matches(&fact_event(f), lists)
                && self
                    .same
                    .iter()
                    .all(|s| match (approval.text(s), f.text(s)) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    })
        })
    }
}

fn fact_event(f: &Fact) -> Event {
    Event {
        ts: f.ts,
        kind: f.kind.clone(),
        fields: f.fields.clone(),
        evidence: f.evidence.clone(),
    }
}
