//! The pure core for activity: `evaluate(input, state, now) → effects`.
//!
//! Temporal rules keep *obligations* (something must happen by a due
//! instant: a reply, a password change) and *facts* (what happened before:
//! approvals of a post) in a [`State`]. `evaluate` first fires every
//! obligation that fell due before `now`, then lets each rule react to the
//! input. It does no I/O: `replay` runs it over sorted logs with an
//! in-memory state; the daemon runs the same function with its SQLite state.

use std::collections::BTreeSet;
use std::sync::Arc;

use foldhash::HashMap;
use jiff::Timestamp;

use crate::calendar::Calendar;
use crate::event::{Event, Evidence};
use crate::finding::Severity;
use crate::rules::cond::Lists;
use crate::rules::{CompiledCheck, Rule, RuleMeta, RuleSet};

/// Something that must happen by `due` (or, for staleness, again by `due`).
#[derive(Debug, Clone, PartialEq)]
pub struct Obligation {
    pub rule: String,
    pub key: String,
    /// The key as people read it (thread id, account name …).
    pub subject: String,
    pub started: Timestamp,
    pub due: Timestamp,
    /// When the engine calls the rule's `on_due` next: the due instant, or
    /// for a fired obligation the end of its wait for a late discharge.
    pub wake: Timestamp,
    pub evidence: Vec<Evidence>,
    /// Already reported as a violation; kept to mark a late discharge.
    pub fired: bool,
}

impl Obligation {
    /// A reported obligation discharged after all by `ev`: its violation is
    /// marked late (or withdrawn, when `ev` was in time but logged late).
    pub fn done_late_by(self, ev: &Event) -> Effect {
        Effect::Late {
            rule: self.rule,
            subject: self.subject,
            due: self.due,
            at: ev.ts,
            evidence: ev.evidence.clone(),
        }
    }
}

/// A remembered event, for rules that look back (prerequisites). Shared:
/// a rule looks at every fact of its key on every event of that key, which
/// must not copy their fields each time.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact(Arc<Event>);

impl Fact {
    pub fn of(ev: &Event) -> Fact {
        Fact(Arc::new(ev.clone()))
    }

    pub fn new(ev: Event) -> Fact {
        Fact(Arc::new(ev))
    }
}

impl std::ops::Deref for Fact {
    type Target = Event;
    fn deref(&self) -> &Event {
        &self.0
    }
}

/// Where obligations and facts live: in memory for `replay` and tests, in
/// SQLite for the daemon.
pub trait State: std::fmt::Debug {
    fn obligation(&self, rule: &str, key: &str) -> Option<Obligation>;
    fn has_obligation(&self, rule: &str, key: &str) -> bool {
        self.obligation(rule, key).is_some()
    }
    /// An obligation's wake, without copying the obligation.
    fn wake_of(&self, rule: &str, key: &str) -> Option<Timestamp> {
        self.obligation(rule, key).map(|o| o.wake)
    }
    /// Inserts or replaces the obligation with the same rule and key.
    fn put_obligation(&mut self, ob: Obligation);
    fn remove_obligation(&mut self, rule: &str, key: &str) -> Option<Obligation>;
    /// The obligation with the earliest `wake`.
    fn next_wake(&self) -> Option<Obligation>;
    /// Its wake instant (cheaper: checked on every input).
    fn next_wake_time(&self) -> Option<Timestamp> {
        self.next_wake().map(|o| o.wake)
    }
    fn facts(&self, rule: &str, key: &str) -> Vec<Fact>;
    fn add_fact(&mut self, rule: &str, key: &str, fact: Fact);
    /// Number of obligations held (fired ones included).
    fn obligation_count(&self) -> usize;
}

/// The wake of an obligation that waits for an event, not for a time: a
/// staleness rule's subject already reported, until its renewing event.
pub const NEVER: Timestamp = Timestamp::MAX;

/// How long a violated deadline waits for a late discharge before it is
/// forgotten (bounds the state by open obligations, not by log length).
pub const LATE_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// How long a fact counts (an approval 90 days before a publication no
/// longer does). Rules filter by it, and the state drops keys whose facts
/// are all older, so results do not depend on how much else the log holds,
/// and the state is bounded by recent activity, not by the length of the log.
pub const FACT_RETENTION: jiff::SignedDuration = jiff::SignedDuration::from_hours(90 * 24);

/// An in-memory [`State`]. Maps are keyed rule → key so that lookups by
/// `&str` allocate nothing.
///
/// Rule ids and keys are shared (`Arc<str>`) between the maps and the wake
/// queue: an obligation is put and removed for nearly every event of a
/// deadline rule, and copying its strings each time was a measurable part
/// of the daemon's ingestion.
#[derive(Debug, Default)]
pub struct MemoryState {
    obligations: HashMap<Arc<str>, RuleObligations>,
    /// By wake, then rule and key: obligations due at the same instant fire
    /// in the same order whatever the order they were put in (after a
    /// restart, they are loaded in another).
    pending: BTreeSet<(Timestamp, Arc<str>, Arc<str>)>,
    facts: HashMap<String, HashMap<String, Vec<Fact>>>,
    count: usize,
    /// Facts added since the last pruning pass, and the newest fact's time.
    facts_added: usize,
    newest_fact: Option<Timestamp>,
}

/// One rule's obligations by key, with the rule's id as the wake queue
/// holds it: a put or a remove looks the rule up once, not once for its id
/// and again for its map.
#[derive(Debug)]
struct RuleObligations {
    id: Arc<str>,
    by_key: HashMap<Arc<str>, Obligation>,
}

impl MemoryState {
    /// An obligation, borrowed (the store serialises it without a copy).
    pub fn obligation_ref(&self, rule: &str, key: &str) -> Option<&Obligation> {
        self.obligations.get(rule)?.by_key.get(key)
    }

    /// Every obligation held, in no particular order.
    pub fn all_obligations(&self) -> impl Iterator<Item = &Obligation> {
        self.obligations.values().flat_map(|m| m.by_key.values())
    }
}

impl State for MemoryState {
    fn obligation(&self, rule: &str, key: &str) -> Option<Obligation> {
        self.obligations.get(rule)?.by_key.get(key).cloned()
    }

    fn has_obligation(&self, rule: &str, key: &str) -> bool {
        self.obligations
            .get(rule)
            .is_some_and(|m| m.by_key.contains_key(key))
    }

    fn wake_of(&self, rule: &str, key: &str) -> Option<Timestamp> {
        self.obligation_ref(rule, key).map(|o| o.wake)
    }

    fn put_obligation(&mut self, ob: Obligation) {
        let per_rule = match self.obligations.get_mut(ob.rule.as_str()) {
            Some(m) => m,
            None => {
                let id: Arc<str> = Arc::from(ob.rule.as_str());
                (self.obligations.entry(id.clone())).or_insert(RuleObligations {
                    id,
                    by_key: HashMap::default(),
                })
            }
        };
        // A replaced obligation (a staleness period renewed) gives its key
        // to the new one.
        let key = match per_rule.by_key.remove_entry(ob.key.as_str()) {
            Some((key, old)) => {
                let queued = (old.wake, per_rule.id.clone(), key);
                self.pending.remove(&queued);
                queued.2
            }
            None => {
                self.count += 1;
                Arc::from(ob.key.as_str())
            }
        };
        self.pending
            .insert((ob.wake, per_rule.id.clone(), key.clone()));
        per_rule.by_key.insert(key, ob);
    }

    fn remove_obligation(&mut self, rule: &str, key: &str) -> Option<Obligation> {
        let per_rule = self.obligations.get_mut(rule)?;
        let (key, ob) = per_rule.by_key.remove_entry(key)?;
        self.count -= 1;
        self.pending.remove(&(ob.wake, per_rule.id.clone(), key));
        Some(ob)
    }

    // One waiting for an event ([`NEVER`]) has no wake: past the end of
    // the queue, so when the first has none, none has.
    fn next_wake_time(&self) -> Option<Timestamp> {
        self.pending
            .first()
            .map(|(t, _, _)| *t)
            .filter(|t| *t != NEVER)
    }

    fn next_wake(&self) -> Option<Obligation> {
        let (_, rule, key) = self.pending.first().filter(|(t, _, _)| *t != NEVER)?;
        self.obligation(rule, key)
    }

    fn facts(&self, rule: &str, key: &str) -> Vec<Fact> {
        self.facts
            .get(rule)
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default()
    }

    fn add_fact(&mut self, rule: &str, key: &str, fact: Fact) {
        self.newest_fact = Some(self.newest_fact.map_or(fact.ts, |n| n.max(fact.ts)));
        let per_rule = match self.facts.get_mut(rule) {
            Some(m) => m,
            None => self.facts.entry(rule.to_string()).or_default(),
        };
        match per_rule.get_mut(key) {
            Some(v) => v.push(fact),
            None => {
                per_rule.insert(key.to_string(), vec![fact]);
            }
        }
        self.facts_added += 1;
        if self.facts_added >= 10_000
            && let Some(newest) = self.newest_fact
        {
            self.facts_added = 0;
            let horizon = newest - FACT_RETENTION;
            for m in self.facts.values_mut() {
                m.retain(|_, v| v.last().is_some_and(|f| f.ts >= horizon));
            }
        }
    }

    fn obligation_count(&self) -> usize {
        self.count
    }
}

/// A violation of a temporal rule (or of a content rule in an event's text).
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    /// The rule's English message, for English mail.
    pub message_en: Option<String>,
    pub clause: Vec<String>,
    pub tags: Vec<String>,
    pub subject: String,
    /// When it became a violation: the due instant, or the event's time.
    pub at: Timestamp,
    pub due: Option<Timestamp>,
    pub evidence: Vec<Evidence>,
    pub detail: Option<String>,
    /// The detail for English mail.
    pub detail_en: Option<String>,
    /// For content rules applied to an event's text: the matched text.
    pub matched: Option<String>,
    /// The rule's suggestion (how to put it right), when it has one.
    pub suggestion: Option<String>,
    pub suggestion_en: Option<String>,
}

/// What evaluating one input produced.
#[derive(Debug, Clone, PartialEq)]
// Most effects are violations: boxing them would only add an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Effect {
    Violation(Violation),
    /// An obligation reported as violated was discharged after its due
    /// instant: the violation stands, marked late.
    Late {
        rule: String,
        subject: String,
        due: Timestamp,
        at: Timestamp,
        evidence: Evidence,
    },
}

/// What rules read besides the state: calendar and named lists.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub calendar: Calendar,
    pub lists: Lists,
}

/// The context a temporal rule works in while handling one input.
#[derive(Debug)]
pub struct EvalCx<'a> {
    pub meta: &'a RuleMeta,
    pub env: &'a Env,
    pub state: &'a mut dyn State,
    pub now: Timestamp,
    pub effects: &'a mut Vec<Effect>,
}

impl<'a> EvalCx<'a> {
    pub fn new(
        meta: &'a RuleMeta,
        env: &'a Env,
        state: &'a mut dyn State,
        now: Timestamp,
        effects: &'a mut Vec<Effect>,
    ) -> EvalCx<'a> {
        EvalCx {
            meta,
            env,
            state,
            now,
            effects,
        }
    }

    pub fn violation(
        &mut self,
        subject: String,
        at: Timestamp,
        due: Option<Timestamp>,
        evidence: Vec<Evidence>,
        detail: Option<crate::rules::kinds::wording::Detail>,
    ) {
        let (detail, detail_en) = match detail {
            Some(d) => (Some(d.zh), Some(d.en)),
            None => (None, None),
        };
        self.effects.push(Effect::Violation(Violation {
            rule: self.meta.id.clone(),
            severity: self.meta.severity,
            message: self.meta.message.clone(),
            message_en: self.meta.message_en.clone(),
            clause: self.meta.clause.clone(),
            tags: self.meta.tags.clone(),
            subject,
            at,
            due,
            evidence,
            detail,
            detail_en,
            matched: None,
            suggestion: self.meta.suggestion.clone(),
            suggestion_en: self.meta.suggestion_en.clone(),
        }));
    }
}

/// A compiled temporal check.
pub trait EventCheck: std::fmt::Debug + Send + Sync {
    /// Called for every event, in time order.
    fn on_event(&self, cx: &mut EvalCx<'_>, ev: &Event);
    /// Called when an obligation of this rule wakes. It must update or
    /// remove the obligation (otherwise the engine removes it).
    fn on_due(&self, cx: &mut EvalCx<'_>, ob: Obligation);
    /// Called once before the first input (staleness rosters).
    fn on_start(&self, _cx: &mut EvalCx<'_>) {}
    /// Whether events of this type can concern the rule; others skip it.
    fn interested(&self, _kind: &str) -> bool {
        true
    }
}

/// One input to the core.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Event(&'a Event),
    /// Time passes: fire what fell due.
    Tick,
}

/// Calls every temporal rule's `on_start` (once per state).
pub fn start(rules: &RuleSet, env: &Env, state: &mut dyn State, now: Timestamp) -> Vec<Effect> {
    let mut effects = Vec::new();
    for rule in &rules.rules {
        if let CompiledCheck::Event(check) = &rule.check {
            let mut cx = EvalCx::new(&rule.meta, env, &mut *state, now, &mut effects);
            check.on_start(&mut cx);
        }
    }
    effects
}

/// Fires what fell due strictly before `now` (a discharge exactly at the due
/// instant is on time), then applies the input.
pub fn evaluate(
    rules: &RuleSet,
    env: &Env,
    state: &mut dyn State,
    input: Input<'_>,
    now: Timestamp,
) -> Vec<Effect> {
    let mut effects = Vec::new();
    while state.next_wake_time().is_some_and(|w| w < now)
        && let Some(ob) = state.next_wake()
    {
        let rule = rules.rules.iter().find(|r| r.meta.id == ob.rule);
        let Some((meta, CompiledCheck::Event(check))) = rule.map(|r| (&r.meta, &r.check)) else {
            // The rule was removed by a reload: its obligations go with it.
            state.remove_obligation(&ob.rule, &ob.key);
            continue;
        };
        let (rule_id, key, wake) = (ob.rule.clone(), ob.key.clone(), ob.wake);
        let mut cx = EvalCx::new(meta, env, &mut *state, wake, &mut effects);
        check.on_due(&mut cx, ob);
        // Guard against a rule that left the obligation as it was.
        if state.wake_of(&rule_id, &key) == Some(wake) {
            state.remove_obligation(&rule_id, &key);
        }
    }
    if let Input::Event(ev) = input {
        for rule in &rules.rules {
            if let CompiledCheck::Event(check) = &rule.check
                && check.interested(ev.kind)
            {
                let mut cx = EvalCx::new(&rule.meta, env, &mut *state, now, &mut effects);
                check.on_event(&mut cx, ev);
            }
        }
        content_in_event(rules, ev, &mut effects);
    }
    effects
}

/// Event types whose `text` is the company's own words (replies, captions),
/// checked by the content rules like a draft.
const OWN_TEXT: &[&str] = &["message.replied", "content.published"];
/// Event types whose `text` is a customer's words, checked only by rules
/// tagged `customer-abuse`.
const CUSTOMER_TEXT: &[&str] = &["message.received"];
pub const CUSTOMER_TAG: &str = "customer-abuse";

fn content_in_event(rules: &RuleSet, ev: &Event, effects: &mut Vec<Effect>) {
    let own = OWN_TEXT.contains(&ev.kind);
    let customer = CUSTOMER_TEXT.contains(&ev.kind);
    if !own && !customer {
        return;
    }
    let Some(text) = ev.text("text") else { return };
    let units = [crate::extract::TextUnit {
        text,
        line: 1,
        column: 1,
        field: Some("text".into()),
        cue: None,
        columns: None,
    }];
    // The evidence names the log line; findings need no path of their own.
    // A customer's words meet the customer rules only, the company's own
    // words all the others (`own` and `customer` are never both true).
    let for_customers = |r: &Rule| r.meta.tags.iter().any(|t| t == CUSTOMER_TAG);
    let which = |r: &Rule| for_customers(r) == customer;
    let path = std::path::Path::new("");
    let findings = crate::check::check_units_by(rules, path, &units, None, &which);
    if findings.is_empty() {
        return;
    }
    let subject = ["thread", "content", "account"]
        .iter()
        .find_map(|f| ev.text(f))
        .unwrap_or_default();
    for f in findings {
        effects.push(Effect::Violation(Violation {
            rule: f.rule,
            severity: f.severity,
            message: f.message,
            message_en: f.message_en,
            clause: f.clause,
            tags: f.tags,
            subject: subject.clone(),
            at: ev.ts,
            due: None,
            evidence: vec![ev.evidence.clone()],
            detail: f.detail,
            detail_en: f.detail_en,
            matched: Some(f.matched),
            suggestion: f.suggestion,
            suggestion_en: f.suggestion_en,
        }));
    }
}

/// An instant as people in the calendar's zone read it: `2026-03-02 10:30`.
pub fn local_time(cal: &Calendar, t: Timestamp) -> String {
    let dt = cal.datetime_of(t);
    if !(1000..=9999).contains(&dt.year()) {
        return dt.strftime("%Y-%m-%d %H:%M").to_string();
    }
    // What strftime writes for a four-digit year, without interpreting its
    // format on each call: ~1,200 instructions for a violation's due time,
    // and each violation stored has one or two.
    let mut s = String::with_capacity(16);
    let parts = [
        (i32::from(dt.year()), 4, '-'),
        (i32::from(dt.month()), 2, '-'),
        (i32::from(dt.day()), 2, ' '),
        (i32::from(dt.hour()), 2, ':'),
        (i32::from(dt.minute()), 2, '\0'),
    ];
    for (n, width, sep) in parts {
        for place in (0..width).rev() {
            let digit = n / 10i32.pow(place) % 10;
            s.push(char::from(b'0' + digit as u8));
        }
        if sep != '\0' {
            s.push(sep);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn ob(rule: &str, key: &str, wake: Option<i64>) -> Obligation {
        let wake = wake.map_or(NEVER, |s| Timestamp::from_second(s).unwrap());
        Obligation {
            rule: rule.into(),
            key: key.into(),
            subject: key.into(),
            started: Timestamp::UNIX_EPOCH,
            due: wake,
            wake,
            evidence: Vec::new(),
            fired: false,
        }
    }

    proptest! {
        /// As strftime writes it, in a zone without DST (its offset) and
        /// one with (its rules), over jiff's whole range.
        #[test]
        fn local_times_read_as_strftime_writes_them(
            secs in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
            zone in prop::sample::select(vec!["Asia/Shanghai", "America/New_York", "UTC"]),
        ) {
            let tz = jiff::tz::TimeZone::get(zone).unwrap();
            let holidays = crate::calendar::Holidays::builtin();
            let cal = Calendar::new(tz.clone(), Default::default(), holidays);
            let t = Timestamp::from_second(secs).unwrap();
            let want = tz.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string();
            prop_assert_eq!(local_time(&cal, t), want);
        }

        /// Puts (new and replacing), removes and wakes agree with a plain
        /// map of (rule, key) → obligation, the queue included.
        #[test]
        fn the_memory_state_keeps_obligations_as_a_map_would(
            ops in prop::collection::vec(
                (any::<bool>(), 0usize..3, 0usize..4, prop::option::of(0i64..5)),
                0..60,
            ),
        ) {
            let (rules, keys) = (["r1", "r2", "r10"], ["a", "b", "a\u{1e}late", ""]);
            let mut state = MemoryState::default();
            let mut model: BTreeMap<(String, String), Obligation> = BTreeMap::new();
            for (put, r, k, wake) in ops {
                let (rule, key) = (rules[r], keys[k]);
                if put {
                    state.put_obligation(ob(rule, key, wake));
                    model.insert((rule.into(), key.into()), ob(rule, key, wake));
                } else {
                    let removed = state.remove_obligation(rule, key);
                    prop_assert_eq!(removed, model.remove(&(rule.into(), key.into())));
                }
                prop_assert_eq!(state.obligation_count(), model.len());
                for rule in rules {
                    for key in keys {
                        let want = model.get(&(rule.into(), key.into()));
                        prop_assert_eq!(state.obligation(rule, key), want.cloned());
                        prop_assert_eq!(state.has_obligation(rule, key), want.is_some());
                    }
                }
                let first = model
                    .values()
                    .min_by(|a, b| (a.wake, &a.rule, &a.key).cmp(&(b.wake, &b.rule, &b.key)))
                    .filter(|o| o.wake != NEVER);
                prop_assert_eq!(state.next_wake(), first.cloned());
                prop_assert_eq!(state.next_wake_time(), first.map(|o| o.wake));
            }
        }
    }
}
