//! One snapshot per diagnostic code, from the broken packs in tests/fixtures/bad.

use std::path::Path;

use complyd::rules;

fn render(case: &str) -> String {
    let dir = Path::new("tests/fixtures/bad").join(case);
    match rules::load(&dir) {
        Ok(set) => format!("valid: {} rules", set.rules.len()),
        Err(e) => e.render(false),
    }
}

macro_rules! snapshot_cases {
    ($($name:ident => $dir:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                insta::assert_snapshot!(render($dir));
            }
        )*
    };
}

snapshot_cases! {
    yaml_syntax => "yaml-syntax",
    yaml_limits => "yaml-limits",
    unknown_key => "unknown-key",
    duplicate_key => "duplicate-key",
    missing_key => "missing-key",
    wrong_type => "wrong-type",
    unknown_kind => "unknown-kind",
    invalid_value => "invalid-value",
    invalid_regex => "invalid-regex",
    duplicate_id => "duplicate-id",
    phrase_file => "phrase-file",
    empty_phrases => "empty-phrases",
    unreadable => "unreadable",
    many_errors_all_reported => "many-errors",
}

#[test]
fn example_failed() {
    let set = rules::load(Path::new("tests/fixtures/bad/example-failed")).unwrap();
    let report = complyd::ruletest::run(&set);
    let src = std::fs::read_to_string("tests/fixtures/bad/example-failed/pack.yaml").unwrap();
    let out: String = report
        .failures
        .iter()
        .map(|d| d.render(Some(&src), false))
        .collect();
    insta::assert_snapshot!(out);
}

#[test]
fn billion_laughs_is_rejected_fast() {
    let t = std::time::Instant::now();
    let out = render("yaml-limits");
    assert!(out.contains("error[yaml-limits]"), "{out}");
    assert!(
        t.elapsed() < std::time::Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
}

/// Mail templates (`mail.templates`): one error of each kind, every one at
/// its place in its template file, from loading the configuration — and
/// `complyd check` prints the same and exits 78.
#[test]
fn mail_templates() {
    let cfg = Path::new("tests/fixtures/bad/mail-templates/complyd.yaml");
    let out = match complyd::config::load(cfg) {
        Ok(_) => "valid".to_string(),
        Err(e) => e.render_as(false, "the configuration"),
    };
    insta::assert_snapshot!(out);
    let run = assert_cmd::Command::cargo_bin("complyd")
        .unwrap()
        .env("NO_COLOR", "1")
        .args(["check", "--config"])
        .arg(cfg)
        .assert()
        .code(78);
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert_eq!(stderr, out);
}
