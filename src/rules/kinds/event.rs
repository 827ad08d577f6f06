//! `event`: one event matching the pattern is itself a violation (a login
//! by someone not on the account's roster = a lent account; a publication by
//! someone not designated; a publication without hashtags).

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::EventSpec;
use crate::diag::Pos;
use crate::engine::{EvalCx, EventCheck, Obligation};
use crate::event::Event;
use crate::rules::compile::Cx;
use crate::rules::cond::{EventMatch, RawEventMatch, check_key, compile_match, key_of};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    #[serde(rename = "match")]
    pattern: RawEventMatch,
    /// Fields naming who or what the violation is about.
    subject: Spanned<Vec<String>>,
}

#[derive(Debug)]
pub struct EventRuleCheck {
    pattern: EventMatch,
    subject: Vec<String>,
}

impl EventSpec for EventRule {
    type Check = EventRuleCheck;

    fn compile(self, cx: &mut Cx<'_>, _at: Pos) -> Option<EventRuleCheck> {
        let pattern = compile_match(cx, &self.pattern);
        let ok = check_key(cx, &self.subject);
        Some(EventRuleCheck {
            pattern: pattern?,
            subject: ok.then_some(self.subject.value)?,
        })
    }
}

impl EventCheck for EventRuleCheck {
    fn interested(&self, kind: &str) -> bool {
        kind == self.pattern.kind
    }

    fn on_event(&self, cx: &mut EvalCx<'_>, ev: &Event) {
        if !self.pattern.matches(ev, &cx.env.lists) {
            return;
        }
        let subject = key_of(ev, &self.subject).map_or_else(String::new, |(_, s)| s);
        cx.violation(subject, ev.ts, None, vec![ev.evidence.clone()], None);
    }

    fn on_due(&self, cx: &mut EvalCx<'_>, ob: Obligation) {
        // This kind keeps no obligations.
        cx.state.remove_obligation(&ob.rule, &ob.key);
    }
}
