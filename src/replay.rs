//! `complyd replay`: evaluate activity logs exactly as the daemon would,
//! with the clock at `--now`.
//!
//! Logs are streamed, never loaded whole: memory is bounded by open
//! obligations and the reorder window, not by log length.
//!
//! Order policy: the logs are merged by timestamp (each file is read in
//! order and the file whose next event is earliest goes first), and events
//! are held in a reorder window of `allowed_lateness` (default 5 minutes):
//! an event written up to that much after a later-stamped one is still
//! evaluated in timestamp order. An event later than that is evaluated when
//! it arrives, at the clock's current time (time never runs backwards), and
//! counted as too late; a deadline it discharged in time (its own timestamp
//! at or before the due instant) is withdrawn rather than reported. Events
//! stamped after `--now` have not happened yet on the replayed clock: they
//! are counted and skipped, and do not move the window.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::engine::{self, Effect, Env, Input, MemoryState, State, Violation};
use crate::event::{Event, Evidence, Malformed, parse_line};
use crate::rules::RuleSet;
use crate::window::ReorderWindow;

/// Default reorder window.
pub const DEFAULT_ALLOWED_LATENESS: SignedDuration = SignedDuration::from_mins(5);

/// The longest reorder window: events are held this long in memory (and
/// time arithmetic on it must not overflow).
pub const MAX_ALLOWED_LATENESS: SignedDuration = SignedDuration::from_hours(7 * 24);

/// An allowed lateness as configured, or why it cannot be one.
pub fn check_lateness(d: std::time::Duration) -> Result<SignedDuration, String> {
    match SignedDuration::try_from(d) {
        Ok(d) if d <= MAX_ALLOWED_LATENESS => Ok(d),
        _ => Err("longer than the longest reorder window, 7d".to_string()),
    }
}

/// A violation as replay reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Reported {
    pub rule: String,
    pub severity: crate::finding::Severity,
    pub tier: &'static str,
    pub subject: String,
    pub at: String,
    /// `at` as an instant, to order by (local times repeat an hour where
    /// the clocks go back).
    #[serde(skip)]
    pub instant: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<String>,
    pub message: String,
    pub clause: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// `file:line` of the events behind it.
    pub evidence: Vec<String>,
}

#[derive(Debug, Default)]
pub struct ReplayOutcome {
    /// Violations handed to the sink.
    pub violations: usize,
    pub malformed: Vec<Malformed>,
    pub unreadable: Vec<(PathBuf, String)>,
    pub events: usize,
    pub future_events: usize,
    /// Events that arrived after the reorder window had passed them.
    pub too_late: usize,
    /// Deadline violations withdrawn because the discharge, logged too late
    /// for the reorder window, had in fact happened in time.
    pub retracted: usize,
    /// Obligations still held at the end (open or awaiting a late discharge).
    pub open_obligations: usize,
}

/// One log being read line by line.
struct LogReader {
    path: Arc<Path>,
    lines: std::io::Lines<std::io::BufReader<std::fs::File>>,
    line: u32,
}

impl LogReader {
    /// The next event; malformed lines are reported to `bad` and skipped.
    fn next_event(&mut self, bad: &mut Vec<Malformed>) -> Option<Event> {
        loop {
            self.line += 1;
            let evidence = Evidence {
                path: self.path.clone(),
                line: self.line,
            };
            let text = match self.lines.next()? {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    bad.push(Malformed {
                        evidence,
                        reason: "not valid UTF-8".into(),
                    });
                    continue;
                }
                Err(e) => {
                    bad.push(Malformed {
                        evidence,
                        reason: format!("read error: {e}"),
                    });
                    return None;
                }
            };
            let text = text.strip_suffix('\r').unwrap_or(&text);
            // A byte order mark some Windows tools write before the first line.
            let text = if self.line == 1 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            if text.trim().is_empty() {
                continue;
            }
            match parse_line(text, evidence) {
                Ok(ev) => return Some(ev),
                Err(m) => bad.push(m),
            }
        }
    }
}

/// Replays `logs` through the rules with the clock at `now`, handing each
/// violation to `sink` once it is final: at once for most rules; for a
/// deadline, when its late discharge arrives or when the wait for one ends
/// (so output order follows resolution, and memory stays bounded).
pub fn replay(
    rules: &RuleSet,
    env: &Env,
    logs: &[PathBuf],
    now: Timestamp,
    allowed_lateness: SignedDuration,
    sink: &mut dyn FnMut(Reported),
) -> ReplayOutcome {
    let mut out = ReplayOutcome::default();
    let mut readers = Vec::new();
    for path in logs {
        match std::fs::File::open(path) {
            Ok(f) => readers.push(LogReader {
                path: Arc::from(path.as_path()),
                lines: std::io::BufReader::with_capacity(1 << 16, f).lines(),
                line: 0,
            }),
            Err(e) => out
                .unreadable
                .push((path.clone(), crate::rules::compile::io_reason(&e))),
        }
    }
    // The head event of each reader, for the merge.
    let mut heads: Vec<Option<Event>> = readers
        .iter_mut()
        .map(|r| r.next_event(&mut out.malformed))
        .collect();
    let mut window = ReorderWindow::default();
    let mut newest: Option<Timestamp> = None;
    let mut clock: Option<Timestamp> = None;
    let mut state = MemoryState::default();
    let mut pending = Pending::default();
    let mut started = false;

    let mut apply = |ev: Event, clock: &mut Option<Timestamp>, out: &mut ReplayOutcome| {
        if ev.ts > now {
            out.future_events += 1;
            return;
        }
        if !started {
            let effects = engine::start(rules, env, &mut state, ev.ts);
            out.violations += pending.absorb(env, effects, ev.ts, sink);
            started = true;
        }
        let at = match *clock {
            Some(c) if ev.ts < c => {
                out.too_late += 1;
                c
            }
            _ => ev.ts,
        };
        *clock = Some(at);
        out.events += 1;
        let effects = engine::evaluate(rules, env, &mut state, Input::Event(&ev), at);
        out.violations += pending.absorb(env, effects, at, sink);
    };

    loop {
        // Next event of the merged stream: the earliest head.
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|e| (e.ts, i)))
            .min();
        let Some((_, i)) = next else { break };
        let ev = heads[i].take().expect("head present");
        heads[i] = readers[i].next_event(&mut out.malformed);
        // Events after --now are skipped later; they must not move the window.
        if ev.ts <= now {
            newest = Some(newest.map_or(ev.ts, |n| n.max(ev.ts)));
        }
        window.push(ev);
        // Release what the window no longer needs to hold.
        if let Some(horizon) = newest.map(|n| n - allowed_lateness) {
            while let Some((_, ev)) = window.pop_through(horizon) {
                apply(ev, &mut clock, &mut out);
            }
        }
    }
    while let Some((_, ev)) = window.pop() {
        apply(ev, &mut clock, &mut out);
    }
    let mut effects = Vec::new();
    if !started {
        effects.extend(engine::start(rules, env, &mut state, now));
    }
    effects.extend(engine::evaluate(rules, env, &mut state, Input::Tick, now));
    out.violations += pending.absorb(env, effects, now, sink);
    out.violations += pending.flush_all(env, sink);
    out.retracted = pending.retracted;
    out.open_obligations = state.obligation_count();
    out
}

/// Deadline violations waiting for a possible late discharge.
#[derive(Debug, Default)]
struct Pending {
    held: std::collections::HashMap<(String, String, Timestamp), Violation>,
    by_due: std::collections::BTreeSet<(Timestamp, String, String)>,
    retracted: usize,
}

impl Pending {
    /// Routes effects: final violations to the sink, deadline violations
    /// into the wait, late discharges onto their violation. Returns how many
    /// violations reached the sink.
    fn absorb(
        &mut self,
        env: &Env,
        effects: Vec<Effect>,
        clock: Timestamp,
        sink: &mut dyn FnMut(Reported),
    ) -> usize {
        let mut sent = 0;
        for e in effects {
            match e {
                Effect::Violation(v) => match v.due {
                    Some(due) => {
                        self.by_due.insert((due, v.rule.clone(), v.subject.clone()));
                        self.held
                            .insert((v.rule.clone(), v.subject.clone(), due), v);
                    }
                    None => {
                        sink(reported(env, v, None));
                        sent += 1;
                    }
                },
                Effect::Late {
                    rule,
                    subject,
                    due,
                    at,
                    ..
                } => {
                    self.by_due.remove(&(due, rule.clone(), subject.clone()));
                    if let Some(v) = self.held.remove(&(rule, subject, due)) {
                        if at <= due {
                            // Done in time; only its log line came after the
                            // reorder window had let the deadline pass.
                            self.retracted += 1;
                        } else {
                            sink(reported(env, v, Some(at)));
                            sent += 1;
                        }
                    }
                }
            }
        }
        // Past the wait, no late discharge can come: the violation is final.
        let horizon = clock
            .checked_sub(engine::LATE_RETENTION)
            .unwrap_or(Timestamp::MIN);
        while let Some((due, _, _)) = self.by_due.first()
            && *due < horizon
        {
            let (due, rule, subject) = self.by_due.pop_first().expect("first");
            if let Some(v) = self.held.remove(&(rule, subject, due)) {
                sink(reported(env, v, None));
                sent += 1;
            }
        }
        sent
    }

    fn flush_all(&mut self, env: &Env, sink: &mut dyn FnMut(Reported)) -> usize {
        let mut sent = 0;
        while let Some((due, rule, subject)) = self.by_due.pop_first() {
            if let Some(v) = self.held.remove(&(rule, subject, due)) {
                sink(reported(env, v, None));
                sent += 1;
            }
        }
        sent
    }
}

/// A violation as printed, with its late discharge if any.
pub fn reported(env: &Env, v: Violation, late: Option<Timestamp>) -> Reported {
    let cal = &env.calendar;
    Reported {
        tier: v.severity.tier(),
        rule: v.rule,
        severity: v.severity,
        subject: v.subject,
        at: engine::local_time(cal, v.at),
        instant: v.at,
        due: v.due.map(|d| engine::local_time(cal, d)),
        late: late.map(|t| engine::local_time(cal, t)),
        message: v.message,
        clause: v.clause,
        detail: v.detail,
        matched: v.matched,
        evidence: v.evidence.iter().map(ToString::to_string).collect(),
    }
}

/// One line per violation:
/// `at  severity  rule  subject  message  (detail)  [late …]  ← evidence`.
pub fn write_human(out: &mut dyn std::io::Write, r: &Reported) -> std::io::Result<()> {
    write!(
        out,
        "{}  {}  {}  {}  {}",
        r.at,
        r.severity.as_str(),
        r.rule,
        if r.subject.is_empty() {
            "-"
        } else {
            &r.subject
        },
        r.message
    )?;
    if let Some(m) = &r.matched {
        write!(out, "  «{m}»")?;
    }
    if let Some(d) = &r.detail {
        write!(out, "  ({d})")?;
    }
    if let Some(l) = &r.late {
        write!(out, "  [迟于期限，{l} 完成]")?;
    }
    if r.evidence.is_empty() {
        writeln!(out)
    } else {
        writeln!(out, "  ← {}", r.evidence.join(", "))
    }
}
