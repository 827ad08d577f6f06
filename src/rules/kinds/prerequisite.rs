//! `prerequisite`: an event (content.published) requires earlier events for
//! the same key (an internal and a final approval), optionally on the same
//! version (equal `same:` fields, when both events carry them) and by
//! someone other than the author. A voiding event (a rejection) after an
//! approval of the same version cancels that approval.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{EventSpec, wording};
use crate::diag::Pos;
use crate::engine::{EvalCx, EventCheck, Fact, Obligation};
use crate::event::Event;
use crate::rules::compile::Cx;
use crate::rules::cond::{
    EventMatch, RawEventMatch, check_key, compile_match, key_ref, subject_of,
};

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
    /// Each requirement must also be met by a different person (the
    /// internal and the final review are two people).
    #[serde(default)]
    each_other: bool,
}

#[derive(Debug)]
pub struct PrerequisiteCheck {
    event: EventMatch,
    key: Vec<String>,
    requires: Vec<(String, EventMatch)>,
    same: Vec<String>,
    voided_by: Option<EventMatch>,
    distinct: Option<(String, EventMatch, String)>,
    /// Requirements met by pairwise different actors.
    each_other: bool,
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
            each_other: self.distinct.as_ref().is_some_and(|d| d.each_other),
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
        self.same.iter().all(|f| match (ev.str(f), fact.str(f)) {
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
        let Some(key) = key_ref(ev, &self.key) else {
            return;
        };
        if self.relevant(ev, cx) {
            cx.state.add_fact(&cx.meta.id, &key, Fact::of(ev));
        }
        if !self.event.matches(ev, &cx.env.lists) {
            return;
        }
        let subject = subject_of(ev, &self.key, &key);
        // Facts older than the retention do not count, however large the log
        // (the state drops them in batches; the rule must not notice when).
        let oldest = ev.ts - crate::engine::FACT_RETENTION;
        let mut facts = cx.state.facts(&cx.meta.id, &key);
        facts.retain(|f| f.ts >= oldest);
        let lists = &cx.env.lists;
        let author = ev.str("author").or_else(|| {
            let (_, m, field) = self.distinct.as_ref()?;
            facts
                .iter()
                .filter(|f| f.ts <= ev.ts && f.kind == m.kind)
                .rfind(|f| self.same_version(ev, f))
                .and_then(|f| f.str(field))
        });
        // Every fact that could meet each requirement.
        let candidates: Vec<Vec<&Fact>> = self
            .requires
            .iter()
            .map(|(_, m)| {
                facts
                    .iter()
                    .filter(|f| f.ts <= ev.ts)
                    .filter(|f| {
                        m.matches(f, lists)
                            && self.same_version(ev, f)
                            && !self.voided(&facts, f, ev, lists)
                            && match (&self.distinct, author) {
                                (Some((actor, _, _)), Some(a)) => f.str(actor) != Some(a),
                                _ => true,
                            }
                    })
                    .collect()
            })
            .collect();
        let actor = self.distinct.as_ref().map(|(a, _, _)| a.as_str());
        let chosen = if self.each_other
            && let Some(actor) = actor
        {
            assign_distinct(&candidates, actor)
        } else {
            candidates.iter().map(|c| c.first().copied()).collect()
        };
        let mut missing = Vec::new();
        let mut evidence = vec![ev.evidence.clone()];
        for ((name, _), f) in self.requires.iter().zip(&chosen) {
            match f {
                Some(f) => evidence.push(f.evidence.clone()),
                None => missing.push(name.as_str()),
            }
        }
        if self.each_other && !missing.is_empty() && candidates.iter().all(|c| !c.is_empty()) {
            // Each stage was approved, but only by the same person.
            let detail = wording::Detail {
                zh: "各级审核须由不同人员完成".into(),
                en: "each stage must be approved by a different person".into(),
            };
            cx.violation(subject, ev.ts, None, evidence, Some(detail));
            return;
        }
        if !missing.is_empty() {
            let detail = wording::Detail {
                zh: format!("缺少有效的：{}", missing.join("、")),
                en: format!("no valid {}", missing.join(", ")),
            };
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
                && v.matches(f, lists)
                && self.same.iter().all(|s| match (approval.str(s), f.str(s)) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                })
        })
    }
}

/// Picks one fact per requirement with pairwise different actors, keeping
/// as many requirements met as possible (requirements are few: backtracking).
fn assign_distinct<'f>(candidates: &[Vec<&'f Fact>], actor: &str) -> Vec<Option<&'f Fact>> {
    fn go<'f>(
        i: usize,
        candidates: &[Vec<&'f Fact>],
        actor: &str,
        used: &mut Vec<String>,
        cur: &mut Vec<Option<&'f Fact>>,
        best: &mut (usize, Vec<Option<&'f Fact>>),
    ) {
        if i == candidates.len() {
            let met = cur.iter().filter(|c| c.is_some()).count();
            if met > best.0 || best.1.is_empty() {
                *best = (met, cur.clone());
            }
            return;
        }
        for f in &candidates[i] {
            let who = f.text(actor).unwrap_or_default();
            if used.contains(&who) {
                continue;
            }
            used.push(who);
            cur.push(Some(f));
            go(i + 1, candidates, actor, used, cur, best);
            cur.pop();
            used.pop();
            if best.0 == candidates.len() {
                return;
            }
        }
        cur.push(None);
        go(i + 1, candidates, actor, used, cur, best);
        cur.pop();
    }
    let mut best = (0, Vec::new());
    go(
        0,
        candidates,
        actor,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut best,
    );
    best.1
}
