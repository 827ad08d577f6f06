//! `complyd rules test`: every rule's examples must behave as declared.

use std::path::Path;

use crate::check::check_document;
use crate::diag::{Code, Diagnostic};
use crate::extract::{DocKind, Document, TextUnit};
use crate::rules::{Example, ExampleInput, Rule, RuleMeta, RuleSet};

/// Outcome of running all examples.
#[derive(Debug, Default)]
pub struct TestReport {
    pub rules: usize,
    pub examples: usize,
    pub failures: Vec<Diagnostic>,
}

/// Runs a text through all rules; returns the findings.
pub fn check_text(rules: &RuleSet, text: &str) -> Vec<crate::finding::Finding> {
    let doc = Document {
        kind: DocKind::Text,
        units: vec![TextUnit {
            text: text.to_string(),
            line: 1,
            column: 1,
            field: None,
            cue: None,
            columns: None,
        }],
        encoding: "UTF-8",
        had_replacements: false,
    };
    check_document(rules, Path::new("<example>"), &doc)
}

pub fn run(rules: &RuleSet) -> TestReport {
    let mut report = TestReport {
        rules: rules.rules.len(),
        ..TestReport::default()
    };
    for rule in &rules.rules {
        for (examples, must_flag) in [(&rule.flag, true), (&rule.pass, false)] {
            for ex in examples {
                report.examples += 1;
                let matched = match &ex.input {
                    ExampleInput::Text(text) => check_text(rules, text)
                        .into_iter()
                        .filter(|f| f.rule == rule.meta.id)
                        .map(|f| format!("«{}»", f.matched))
                        .collect(),
                    ExampleInput::Events { lines, now } => {
                        match replay_example(rules, &rule.meta, lines, now) {
                            Ok(subjects) => subjects,
                            Err(e) => {
                                report.failures.push(Diagnostic::new(
                                    &rule.meta.path,
                                    ex.pos,
                                    Code::ExampleFailed,
                                    format!("rule `{}`: example cannot run: {e}", rule.meta.id),
                                ));
                                continue;
                            }
                        }
                    }
                };
                if matched.is_empty() == must_flag {
                    report.failures.push(failure(rule, ex, &matched));
                }
            }
        }
    }
    report
}

fn failure(rule: &Rule, ex: &Example, matched: &[String]) -> Diagnostic {
    let what = if matched.is_empty() {
        "should be flagged but passed".to_string()
    } else {
        format!("should pass but was flagged at {}", matched.join(", "))
    };
    Diagnostic::new(
        &rule.meta.path,
        ex.pos,
        Code::ExampleFailed,
        match &ex.input {
            ExampleInput::Text(t) => {
                format!("rule `{}`: example {what}: {}", rule.meta.id, quote(t))
            }
            ExampleInput::Events { .. } => format!("rule `{}`: event example {what}", rule.meta.id),
        },
    )
}

fn quote(text: &str) -> String {
    format!("«{}»", text.replace('\n', "⏎"))
}

/// Replays an example's events on a virtual clock; returns the subjects of
/// this rule's violations (as `subject (line N)` texts).
fn replay_example(
    rules: &RuleSet,
    meta: &RuleMeta,
    lines: &[String],
    now: &str,
) -> Result<Vec<String>, String> {
    use crate::engine::{self, Env, Input, MemoryState};
    let now: jiff::Timestamp = now
        .parse()
        .map_err(|e| format!("`now` {now:?} is not an RFC 3339 time with offset: {e}"))?;
    let mut events = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let ev = crate::event::parse_line(line, crate::event::evidence("<example>", i as u32 + 1))
            .map_err(|m| format!("event {}: {}", i + 1, m.reason))?;
        events.push(ev);
    }
    events.sort_by_key(|e| e.ts);
    let env = Env {
        calendar: crate::calendar::Calendar::default(),
        lists: rules.lists.clone(),
    };
    let mut state = MemoryState::default();
    let first = events.first().map_or(now, |e| e.ts);
    let mut effects = engine::start(rules, &env, &mut state, first);
    for ev in &events {
        effects.extend(engine::evaluate(
            rules,
            &env,
            &mut state,
            Input::Event(ev),
            ev.ts,
        ));
    }
    effects.extend(engine::evaluate(rules, &env, &mut state, Input::Tick, now));
    Ok(effects
        .into_iter()
        .filter_map(|e| match e {
            engine::Effect::Violation(v) if v.rule == meta.id => Some(format!(
                "{} (event {})",
                if v.subject.is_empty() {
                    "-"
                } else {
                    &v.subject
                },
                v.evidence.first().map_or(0, |e| e.line)
            )),
            _ => None,
        })
        .collect())
}
