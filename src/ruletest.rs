//! `complyd rules test`: every rule's examples must behave as declared.

use std::path::Path;

use crate::check::check_document;
use crate::diag::{Code, Diagnostic};
use crate::extract::{DocKind, Document, TextUnit};
use crate::rules::{Example, Rule, RuleSet};

/// Outcome of running all examples.
#[derive(Debug, Default)]
pub struct TestReport {
    pub rules: usize,
    pub examples: usize,
    pub failures: Vec<Diagnostic>,
}

/// Runs a text through all rules and returns the ids of the rules that fired.
pub fn rules_firing(rules: &RuleSet, text: &str) -> Vec<String> {
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
    let mut ids: Vec<String> = check_document(rules, Path::new("<example>"), &doc)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    ids.sort();
    ids.dedup();
    ids
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
                let fired = rules_firing(rules, &ex.text).contains(&rule.meta.id);
                if fired != must_flag {
                    report.failures.push(failure(rule, ex, must_flag));
                }
            }
        }
    }
    report
}

fn failure(rule: &Rule, ex: &Example, must_flag: bool) -> Diagnostic {
    let what = if must_flag {
        "should be flagged but passed"
    } else {
        "should pass but was flagged"
    };
    Diagnostic::new(
        &rule.meta.path,
        ex.pos,
        Code::ExampleFailed,
        format!("rule `{}`: example {what}: «{}»", rule.meta.id, ex.text),
    )
}
