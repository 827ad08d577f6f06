//! The command line as users run it: output shapes and exit codes.

use assert_cmd::Command;

fn complyd() -> Command {
    let mut c = Command::cargo_bin("complyd").unwrap();
    c.env_remove("COMPLYD_RULES").env("NO_COLOR", "1");
    c
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn scan_clean_file_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "ok.txt", "今天天气很好，注意休息。\n");
    let out = complyd()
        .args(["scan", "--rules", "rules"])
        .arg(&f)
        .assert()
        .code(0);
    let o = out.get_output();
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("1 file checked, 0 not checked; 0 findings"),
        "{err}"
    );
}

#[test]
fn scan_findings_human_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "draft.txt", "第一行\n本品可根 治高血压\n");
    let out = complyd()
        .args(["scan", "--rules", "rules"])
        .arg(&f)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let expected = format!(
        "{}:2:4  critical  disease-treatment  非药品宣称疾病治疗功效（广告法第十七条）  «根 治»  → 删除治疗、治愈等医疗用语；保健食品不得宣称疾病预防、治疗功能\n",
        f.display()
    );
    assert_eq!(stdout, expected);
}

#[test]
fn scan_json_has_required_fields() {
    let out = complyd()
        .args([
            "scan",
            "--rules",
            "rules",
            "--format",
            "json",
            "examples/drop/sample.srt",
        ])
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    for key in [
        "rule",
        "severity",
        "path",
        "line",
        "column",
        "end_line",
        "end_column",
        "matched",
        "message",
        "clause",
        "cue",
    ] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert_eq!(first["rule"], "disease-treatment");
    assert_eq!(first["matched"], "根治");
    assert_eq!(first["cue"], "00:00:04,500");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(7), Some(10))
    );
    assert_eq!(
        (first["end_line"].as_u64(), first["end_column"].as_u64()),
        (Some(7), Some(12))
    );
}

#[test]
fn scan_reports_gbk_and_binary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (gbk, _, _) = encoding_rs::GBK.encode("这款产品能根治失眠，效果很好。");
    std::fs::write(tmp.path().join("gbk.txt"), &gbk).unwrap();
    std::fs::write(
        tmp.path().join("clip.mp4"),
        [0u8, 0, 0, 24, b'f', b't', b'y', b'p'],
    )
    .unwrap();
    std::fs::write(tmp.path().join("blob.bin"), [1u8, 0, 2, 0, 3]).unwrap();
    let out = complyd()
        .args(["scan", "--rules", "rules", "--format", "json"])
        .arg(tmp.path())
        .assert()
        .code(1);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let gbk_hit = lines
        .iter()
        .find(|v| v["rule"] == "disease-treatment")
        .unwrap();
    assert_eq!(gbk_hit["encoding"], "GB18030");
    assert_eq!(gbk_hit["matched"], "根治");
    let not_checked: Vec<&str> = lines
        .iter()
        .filter(|v| v["rule"] == "not-checked")
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert_eq!(not_checked.len(), 2, "{lines:?}");
    let err = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(err.contains("1 file checked, 2 not checked"), "{err}");
}

#[test]
fn scan_missing_path_is_reported_and_the_other_paths_still_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "draft.txt", "本品可根治高血压\n");
    let out = complyd()
        .args(["scan", "--rules", "rules", "no/such/file.txt"])
        .arg(&f)
        .args(["also/missing"])
        .assert()
        .code(2);
    let o = out.get_output();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("disease-treatment"), "{stdout}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error: no/such/file.txt: no such file or directory")
            && err.contains("error: also/missing: no such file or directory")
            && err.contains("1 file checked"),
        "{err}"
    );
}

#[test]
fn scan_reads_standard_input_named_as_asked() {
    let out = complyd()
        .args(["scan", "--rules", "rules", "-"])
        .write_stdin("第一行\n本品可根治高血压\n")
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.starts_with("<stdin>:2:4  critical  disease-treatment"),
        "{stdout}"
    );
    // The name's extension chooses the format: cue timings are not text.
    let srt = "1\n00:00:01,000 --> 00:00:02,000\n本品可根治高血压\n";
    let out = complyd()
        .args([
            "scan",
            "--rules",
            "rules",
            "--stdin-name",
            "drafts/v1.srt",
            "-",
        ])
        .write_stdin(srt)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.starts_with("drafts/v1.srt:3:4  critical"),
        "{stdout}"
    );
}

#[test]
fn max_file_size_takes_units() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "big.txt", &"今天天气很好。".repeat(200));
    let out = complyd()
        .args(["scan", "--rules", "rules", "--max-file-size", "1K"])
        .arg(&f)
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("超过 1024 字节的上限"), "{stdout}");
    let out = complyd()
        .args(["scan", "--rules", "rules", "--max-file-size", "20 parsecs"])
        .arg(&f)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("is not a size"), "{err}");
}

#[test]
fn scan_without_paths_is_usage_error() {
    complyd().args(["scan"]).assert().code(2);
}

#[test]
fn scan_with_invalid_rules_exits_78() {
    complyd()
        .args([
            "scan",
            "--rules",
            "tests/fixtures/bad/unknown-key",
            "examples/drop",
        ])
        .assert()
        .code(78);
}

#[test]
fn rules_dir_from_environment() {
    complyd()
        .env("COMPLYD_RULES", "tests/fixtures/bad/unknown-key")
        .args(["rules", "validate"])
        .assert()
        .code(78);
}

/// From a new user's trial: a creator running scan in their own folder
/// was told only that `rules` could not be read.
#[test]
fn scan_without_rules_says_where_they_are_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "a.txt", "你好\n");
    let out = complyd()
        .current_dir(dir.path())
        .arg("scan")
        .arg(&f)
        .assert()
        .code(78);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("hint: the rules are looked for in --rules DIR, then $COMPLYD_RULES"),
        "{err}"
    );
}

#[test]
fn validate_reports_every_error_with_snippets() {
    let out = complyd()
        .args(["rules", "validate", "tests/fixtures/bad/many-errors"])
        .assert()
        .code(78);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(err.matches("error[").count(), 4, "{err}");
    assert!(err.contains("tests/fixtures/bad/many-errors/pack.yaml:5:15: error[invalid-value]"));
    assert!(err.ends_with("4 errors in rule files\n"), "{err}");
}

#[test]
fn validate_shipped_rules_exits_0() {
    complyd()
        .args(["rules", "validate", "rules"])
        .assert()
        .code(0);
}

#[test]
fn rules_test_shipped_exits_0_and_failures_exit_1() {
    complyd().args(["rules", "test", "rules"]).assert().code(0);
    let out = complyd()
        .args(["rules", "test", "tests/fixtures/bad/example-failed"])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains(
            "error[example-failed]: rule `cure`: example should be flagged but passed: «三个月治愈»"
        ),
        "{err}"
    );
    assert!(
        err.contains("1 rules, 2 examples: 0 passed, 2 failed"),
        "{err}"
    );
}

#[test]
fn outbox_commands_without_a_database_or_with_bad_arguments_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "complyd.yaml", "state: state\n");
    let out = complyd()
        .args(["outbox", "list", "--config"])
        .arg(&cfg)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("no state database"), "{err}");
    // Neither ids nor --all-failed; both: usage errors from the parser.
    complyd()
        .args(["outbox", "retry", "--config"])
        .arg(&cfg)
        .assert()
        .code(2);
    complyd()
        .args(["outbox", "retry", "#1", "--all-failed", "--config"])
        .arg(&cfg)
        .assert()
        .code(2);
}

/// The built-in templates written out for editing are a valid templates
/// folder; written again, nothing is overwritten without --force.
#[test]
fn templates_are_written_out_for_editing_and_never_overwritten_by_accident() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mail-templates");
    let a = complyd().arg("templates").arg(&out).assert().success();
    let said = String::from_utf8_lossy(&a.get_output().stdout).to_string();
    assert!(said.contains("mail.templates"), "{said}");
    for lang in ["zh", "en"] {
        for f in ["subject.txt", "mail.html", "digest.txt", "layout.html"] {
            assert!(out.join(lang).join(f).is_file(), "{lang}/{f}");
        }
    }
    // An edit, then a second export: refused, the edit kept.
    let subject = out.join("en/subject.txt");
    std::fs::write(&subject, "[Ours] {{ v.message }}\n").unwrap();
    let a = complyd().arg("templates").arg(&out).assert().code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("exists; nothing written"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&subject).unwrap(),
        "[Ours] {{ v.message }}\n"
    );
    // The folder is accepted by `complyd check` as the configuration's templates.
    let config = write(
        dir.path(),
        "complyd.yaml",
        "state: state\nmail:\n  language: en\n  templates: mail-templates\n",
    );
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    complyd()
        .arg("check")
        .arg("--config")
        .arg(&config)
        .arg("--rules")
        .arg(&rules)
        .assert()
        .success();
    // One language, into its own subfolder (a file directly in the folder
    // would replace that template in both languages), overwriting on request.
    let one = dir.path().join("en-only");
    complyd()
        .args(["templates", "--language", "en"])
        .arg(&one)
        .assert()
        .success();
    assert!(one.join("en/violation.txt").is_file());
    assert!(!one.join("zh").exists() && !one.join("violation.txt").exists());
    complyd()
        .args(["templates", "--language", "en", "--force"])
        .arg(&one)
        .assert()
        .success();
}

/// What loads but will not work as meant is said by `check` (exit 0, at
/// the configuration's line), logged by `run` and listed by `status`.
#[test]
fn missing_folders_logs_and_holidays_are_warned_about_by_check_run_and_status() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("logs")).unwrap();
    // Holidays of 2025 only: the current year is missing.
    let holidays = std::fs::read_to_string(root.join("data/holidays.yaml")).unwrap();
    let only_2025 = &holidays[..holidays.find("\n  2026:").unwrap()];
    write(tmp.path(), "holidays.yaml", only_2025);
    let cfg = write(
        tmp.path(),
        "complyd.yaml",
        &format!(
            "rules: {}/rules\nwatch:\n  - path: drpo\nlogs: [logs/*.jsonl, audit/app.jsonl]\ncalendar:\n  holidays: holidays.yaml\n",
            root.display()
        ),
    );
    let out = complyd()
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .assert()
        .code(0);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let at = |line: u32, col: u32| format!("{}:{line}:{col}: warning[missing-path]", cfg.display());
    assert!(
        err.contains(&format!("{}: watched folder ", at(3, 11))),
        "{err}"
    );
    assert!(err.contains("drpo does not exist"), "{err}");
    assert!(
        err.contains(&format!("{}: no file matches log pattern ", at(4, 8))),
        "{err}"
    );
    assert!(err.contains(&format!("{}: log ", at(4, 22))), "{err}");
    assert!(err.contains("audit/app.jsonl does not exist"), "{err}");
    assert!(
        err.contains("holidays.yaml: warning[no-holidays]: no holidays for 20"),
        "{err}"
    );
    assert!(err.contains("5 warnings"), "{err}");
    assert!(err.contains("configuration valid"), "{err}");

    let out = complyd()
        .args(["run", "--once", "--config"])
        .arg(&cfg)
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("warning[missing-path]: watched folder"),
        "{err}"
    );
    assert!(err.contains("warning[no-holidays]"), "{err}");

    let out = complyd()
        .arg("status")
        .arg("--config")
        .arg(&cfg)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("\nwarnings (complyd check shows them in full):\n"),
        "{text}"
    );
    assert!(text.contains("warning[no-holidays]"), "{text}");
    assert!(text.contains("audit/app.jsonl does not exist"), "{text}");
}

/// From a new user's trial: a route naming a tag no rule has (`claimz`)
/// routed nothing, mail silently stopped, and `check` said all was valid.
#[test]
fn check_refuses_a_route_naming_an_unknown_rule_or_tag_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.yaml",
        &format!(
            "rules: {}\nstate: {}\nmail:\n  groups: {{supervision: [a@example.com]}}\n  routes:\n    \
             - {{tags: [claimz], to: [supervision]}}\n    - {{rules: [no-such-rule, disease-treatment], to: [supervision]}}\n",
            std::env::current_dir().unwrap().join("rules").display(),
            dir.path().join("state").display(),
        ),
    );
    let out = complyd()
        .args(["check", "--config"])
        .arg(&cfg)
        .assert()
        .code(78);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("c.yaml:6:15: error[invalid-value]: no tag `claimz` in the rules"),
        "{err}"
    );
    assert!(err.contains("(did you mean `claims`?)"), "{err}");
    assert!(
        err.contains("c.yaml:7:16: error[invalid-value]: no rule `no-such-rule`"),
        "{err}"
    );
    assert!(
        !err.contains("disease-treatment`"),
        "a known rule is fine: {err}"
    );
}

#[test]
fn check_warns_when_english_mail_would_show_a_rules_chinese_texts() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("p.yaml"),
        "pack: p\nrules:\n  - id: only-chinese\n    severity: low\n    message: 测试\n    \
         clause: \"1\"\n    suggestion: 删除\n    check: {phrases: {terms: [测试词]}}\n",
    )
    .unwrap();
    let cfg = write(
        tmp.path(),
        "complyd.yaml",
        "rules: rules\nmail:\n  language: en\n",
    );
    let out = complyd()
        .args(["check", "--config"])
        .arg(&cfg)
        .assert()
        .code(0);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains(
            "1 rule(s) have no message_en and are mailed with their Chinese message: only-chinese"
        ) && err.contains("have a suggestion without suggestion_en: only-chinese"),
        "{err}"
    );
    // Chinese mail: nothing to say.
    std::fs::write(&cfg, "rules: rules\n").unwrap();
    let out = complyd()
        .args(["check", "--config"])
        .arg(&cfg)
        .assert()
        .code(0);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(!err.contains("message_en"), "{err}");
}
