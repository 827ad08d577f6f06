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
                let matched: Vec<String> = check_text(rules, &ex.text)
                    .into_iter()
                    .filter(|f| f.rule == rule.meta.id)
                    .map(|f| f.matched)
                    .collect();
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
        let at: Vec<String> = matched.iter().map(|m| format!("«{m}»")).collect();
        format!("should pass but was flagged at {}", at.join(", "))
    };
    Diagnostic::new(
        &rule.meta.path,
        ex.pos,
        Code::ExampleFailed,
        format!(
            "rule `{}`: example {what}: {}",
            rule.meta.id,
            quote(&ex.text)
        ),
    )
}

fn quote(text: &str) -> String {
    format!("«{}»", text.replace('\n', "⏎"))
}
