//! The shipped rules/ must be valid and their examples must hold.

use std::path::Path;

#[test]
fn shipped_rules_are_valid_and_examples_pass() {
    let set = complyd::rules::load(Path::new("rules")).unwrap_or_else(|e| panic!("{e}"));
    assert!(!set.rules.is_empty());
    let report = complyd::ruletest::run(&set);
    assert!(report.examples > 0);
    let failures: Vec<String> = report.failures.iter().map(|d| d.header()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}
