//! The daemon in-process: real folders, real logs, a manual clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use complyd::config::{Config, DaemonConfig, WatchDir};
use complyd::daemon::clock::ManualClock;
use complyd::daemon::run::{self, RunOptions};
use jiff::{SignedDuration, Timestamp};

fn shipped_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let kind = e.file_type().unwrap();
        if kind.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        } else if kind.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        }
    }
}

struct Setup {
    dir: tempfile::TempDir,
    opts: RunOptions,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        copy_dir(&shipped_rules(), &root.join("rules"));
        std::fs::create_dir_all(root.join("drop")).unwrap();
        std::fs::create_dir_all(root.join("logs")).unwrap();
        let mut d = DaemonConfig::empty(root.join("state"));
        d.watch.push(WatchDir {
            path: root.join("drop"),
            include: Vec::new(),
            exclude: Vec::new(),
        });
        d.logs.push(root.join("logs/*.jsonl").display().to_string());
        d.stable_for = Duration::from_millis(200);
        let config = Config {
            daemon: d,
            ..Config::default()
        };
        let mut opts = RunOptions::new(config, None, root.join("rules"));
        opts.tail_interval = Duration::from_millis(50);
        Setup { dir, opts }
    }

    /// Options from a configuration file written in the temporary folder
    /// (paths in it are relative to that folder).
    fn with_config(&self, yaml: &str) -> RunOptions {
        let cfg_path = self.path("complyd.yaml");
        std::fs::write(&cfg_path, yaml).unwrap();
        let config = complyd::config::load(&cfg_path).unwrap();
        let mut opts = RunOptions::new(config, Some(cfg_path), self.opts.rules_dir.clone());
        opts.config.daemon.stable_for = Duration::from_millis(200);
        opts
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn rules(&self) -> complyd::rules::RuleSet {
        complyd::rules::load(&self.opts.rules_dir).unwrap()
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.opts.config.daemon.database()).unwrap()
    }

    /// Polls `query` (one integer) until `ok` holds, for up to 20 s.
    async fn wait_for(&self, query: &str, ok: impl Fn(i64) -> bool) -> i64 {
        let start = Instant::now();
        loop {
            let v: i64 = self.db().query_row(query, [], |r| r.get(0)).unwrap_or(-1);
            if ok(v) {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for `{query}` (last value {v})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_draft_is_checked_stored_and_mailed_once() {
    let s = Setup::new();
    let clock = ManualClock::new(t("2026-03-02T10:00:00+08:00"));
    let h = run::start(s.opts.clone(), s.rules(), Arc::new(clock))
        .await
        .unwrap();
    std::fs::write(s.path("drop/draft.txt"), "本品可以根治高血压，100%有效。\n").unwrap();
    let q = "SELECT COUNT(*) FROM violations WHERE subject LIKE '%draft.txt'";
    let n = s.wait_for(q, |n| n >= 2).await;
    // Mail for each, as .eml files.
    s.wait_for("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL", |v| {
        v == 0
    })
    .await;
    let mails = std::fs::read_dir(s.path("state/mail")).unwrap().count();
    assert!(mails as i64 >= n, "{mails} mails for {n} violations");
    // Saved again unchanged: nothing new.
    std::fs::write(s.path("drop/draft.txt"), "本品可以根治高血压，100%有效。\n").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    h.barrier().await;
    assert_eq!(s.wait_for(q, |_| true).await, n);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_fires_when_the_manual_clock_passes_due_plus_lateness() {
    let s = Setup::new();
    let clock = ManualClock::new(t("2026-03-02T10:00:00+08:00"));
    let h = run::start(s.opts.clone(), s.rules(), Arc::new(clock.clone()))
        .await
        .unwrap();
    std::fs::write(
        s.path("logs/activity.jsonl"),
        r#"{"ts":"2026-03-02T10:00:00+08:00","type":"message.received","thread":"t9","account":"ks-service","channel":"comment","complexity":"general","text":"怎么吃？"}
"#,
    )
    .unwrap();
    s.wait_for(
        "SELECT COALESCE(SUM(lines + waiting), 0) FROM sources",
        |n| n == 1,
    )
    .await;
    let q = "SELECT COUNT(*) FROM violations WHERE rule = 'reply-general-1h'";
    // Due 11:00; lateness 5 min: nothing at 11:04.
    clock.set(t("2026-03-02T11:04:00+08:00"));
    h.barrier().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.wait_for(q, |_| true).await, 0);
    clock.set(t("2026-03-02T11:05:01+08:00"));
    assert_eq!(s.wait_for(q, |n| n == 1).await, 1);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_keeps_the_old_rules_and_raises_a_config_error() {
    let s = Setup::new();
    let clock = ManualClock::new(t("2026-03-02T10:00:00+08:00"));
    let h = run::start(s.opts.clone(), s.rules(), Arc::new(clock))
        .await
        .unwrap();
    std::fs::write(
        s.path("rules/broken.yaml"),
        "rules:\n  - id: x\n    severity: fatal\n",
    )
    .unwrap();
    let err = h.reload().await.unwrap_err();
    assert!(err.contains("broken.yaml:2:5: error[missing-key]"), "{err}");
    s.wait_for(
        "SELECT COUNT(*) FROM violations WHERE rule = 'config-error'",
        |n| n == 1,
    )
    .await;
    // The previous rules still run.
    std::fs::write(s.path("drop/later.txt"), "根治失眠\n").unwrap();
    s.wait_for(
        "SELECT COUNT(*) FROM violations WHERE subject LIKE '%later.txt'",
        |n| n >= 1,
    )
    .await;
    // Fixed: the reload succeeds, and the error it raised is fixed too.
    std::fs::remove_file(s.path("rules/broken.yaml")).unwrap();
    h.reload().await.unwrap();
    s.wait_for(
        "SELECT COUNT(*) FROM violations WHERE rule = 'config-error' AND status = 'fixed'",
        |n| n == 1,
    )
    .await;
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_changed_while_down_are_checked_at_start_and_others_are_not() {
    let s = Setup::new();
    std::fs::write(s.path("drop/a.txt"), "根治失眠\n").unwrap();
    std::fs::write(s.path("drop/b.txt"), "无违规内容\n").unwrap();
    let clock = ManualClock::new(t("2026-03-02T10:00:00+08:00"));
    let h = run::start(s.opts.clone(), s.rules(), Arc::new(clock.clone()))
        .await
        .unwrap();
    s.wait_for("SELECT COUNT(*) FROM files", |n| n == 2).await;
    h.shutdown().await.unwrap();
    let checked_at = |p: &str| -> i64 {
        s.db()
            .query_row(
                "SELECT checked_at FROM files WHERE path LIKE ?1",
                [format!("%{p}")],
                |r| r.get(0),
            )
            .unwrap()
    };
    let (a0, b0) = (checked_at("a.txt"), checked_at("b.txt"));
    // While down: b changes.
    std::fs::write(s.path("drop/b.txt"), "保证100%有效\n").unwrap();
    clock.advance(SignedDuration::from_mins(10));
    let h = run::start(s.opts.clone(), s.rules(), Arc::new(clock))
        .await
        .unwrap();
    s.wait_for(
        "SELECT COUNT(*) FROM violations WHERE subject LIKE '%b.txt'",
        |n| n >= 1,
    )
    .await;
    h.barrier().await;
    assert_eq!(
        checked_at("a.txt"),
        a0,
        "a.txt did not change and is not re-checked"
    );
    assert!(checked_at("b.txt") > b0);
    let dup: i64 = s
        .db()
        .query_row(
            "SELECT COUNT(*) FROM violations WHERE subject LIKE '%a.txt'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dup, 1, "a.txt's violation is not reported twice");
    h.shutdown().await.unwrap();
}

/// The README's first command: one pass over the shipped examples gives
/// violations of every shipped pack, each mailed once, and a second pass
/// adds nothing.
#[test]
fn run_once_on_the_examples_covers_every_pack_and_repeats_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("complyd.yaml");
    std::fs::write(
        &cfg,
        format!(
            "rules: {r}/rules\nstate: {s}\nwatch: [{{path: {r}/examples/drop}}]\nlogs: [{r}/examples/logs/*.jsonl]\n",
            r = root.display(),
            s = tmp.path().join("state").display()
        ),
    )
    .unwrap();
    let run = || {
        assert_cmd::Command::cargo_bin("complyd")
            .unwrap()
            .args(["run", "--once", "--config"])
            .arg(&cfg)
            .assert()
            .success()
    };
    run();
    let db = rusqlite::Connection::open(tmp.path().join("state/complyd.db")).unwrap();
    let rules: Vec<String> = db
        .prepare("SELECT DISTINCT rule FROM violations")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let set = complyd::rules::load(&root.join("rules")).unwrap();
    let packs_hit: std::collections::BTreeSet<&str> = set
        .rules
        .iter()
        .filter(|r| rules.contains(&r.meta.id))
        .map(|r| r.meta.pack.as_str())
        .collect();
    let all: std::collections::BTreeSet<&str> =
        set.rules.iter().map(|r| r.meta.pack.as_str()).collect();
    assert_eq!(packs_hit, all, "violations: {rules:?}");
    let count = |q: &str| -> i64 { db.query_row(q, [], |r| r.get(0)).unwrap() };
    let violations = count("SELECT COUNT(*) FROM violations");
    let mails = std::fs::read_dir(tmp.path().join("state/mail"))
        .unwrap()
        .count() as i64;
    assert_eq!(mails, violations);
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"),
        0
    );
    run();
    assert_eq!(count("SELECT COUNT(*) FROM violations"), violations);
    assert_eq!(count("SELECT COUNT(*) FROM outbox"), violations);

    // `status` reads it back: the log and its lines, the folder, the
    // malformed line of the sample log, the outbox.
    let out = assert_cmd::Command::cargo_bin("complyd")
        .unwrap()
        .args(["status", "--config"])
        .arg(&cfg)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let lines = count("SELECT SUM(lines) FROM sources");
    assert!(
        text.contains(&format!("activity.jsonl: {lines} lines, last read 20")),
        "{text}"
    );
    assert!(text.contains("folders: 6 files checked"), "{text}");
    assert!(
        text.contains(&format!(
            "outbox: 0 waiting, {violations} sent, 0 failed for good"
        )),
        "{text}"
    );
    assert!(
        text.contains("activity.jsonl:10: malformed event"),
        "{text}"
    );
    // The log's name is said once, by the message itself.
    assert!(!text.contains("activity.jsonl: /"), "{text}");
    assert!(!text.contains("activity.jsonl: ./"), "{text}");
    assert!(text.contains("open obligations: "), "{text}");
    let open = count("SELECT COUNT(*) FROM obligations");
    assert_eq!(
        text.contains(&format!("… {} more not shown", open - 10)),
        open > 10,
        "{open} obligations, 10 listed: {text}"
    );

    // A list cut by --limit says how much it left out.
    let listed = |args: &[&str]| {
        let out = assert_cmd::Command::cargo_bin("complyd")
            .unwrap()
            .args(&args[..1])
            .arg("--config")
            .arg(&cfg)
            .args(&args[1..])
            .assert()
            .success();
        String::from_utf8_lossy(&out.get_output().stdout).into_owned()
    };
    let text = listed(&["violations", "list", "--limit", "2"]);
    assert_eq!(
        text.lines().filter(|l| l.starts_with('#')).count(),
        2,
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "… {} more not shown (--limit N shows more)",
            violations - 2
        )),
        "{text}"
    );
    let text = listed(&["violations", "list", "--limit", "1000"]);
    assert!(!text.contains("more not shown"), "{text}");
    // Each says when it happened (its due instant, its event's time), not
    // when this run recorded it.
    let mut st = db
        .prepare("SELECT id, json_extract(data, '$.at') FROM violation_records")
        .unwrap();
    let ats: Vec<(i64, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, at) in &ats {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("#{id}  ")))
            .unwrap_or_else(|| panic!("#{id} not listed: {text}"));
        assert!(line.contains(&format!("  {at}  ")), "{line}");
    }
    assert!(
        ats.iter().any(|(_, at)| at.starts_with("2026-0")),
        "{ats:?}"
    );
    let text = listed(&["outbox", "list", "--limit", "1"]);
    assert!(
        text.contains(&format!("… {} more not shown", violations - 1)),
        "{text}"
    );
}

/// Waivers from waivers.yaml and from `complyd violations waive` keep
/// violations out of the mail; unused ones are listed as such.
#[test]
fn waivers_from_the_rules_folder_and_the_cli_apply_and_are_counted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&shipped_rules(), &tmp.path().join("rules"));
    std::fs::create_dir_all(tmp.path().join("drop")).unwrap();
    std::fs::copy(
        root.join("examples/drop/live-script.md"),
        tmp.path().join("drop/live-script.md"),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("rules/waivers.yaml"),
        "waivers:\n  - rule: mobile-number\n    path: '**/live-script.md'\n    reason: 公司客服热线\n    by: li.na\n\
         \x20 - rule: absolute-terms\n    subject: nobody\n    reason: 从未用到\n    by: li.na\n",
    )
    .unwrap();
    let cfg = tmp.path().join("complyd.yaml");
    std::fs::write(&cfg, "rules: rules\nstate: state\nwatch: [{path: drop}]\n").unwrap();
    let complyd = || {
        let mut c = assert_cmd::Command::cargo_bin("complyd").unwrap();
        c.arg("--color=never");
        c
    };
    complyd()
        .args(["run", "--once", "--config"])
        .arg(&cfg)
        .assert()
        .success();
    let db = rusqlite::Connection::open(tmp.path().join("state/complyd.db")).unwrap();
    let status = |rule: &str| -> String {
        db.query_row(
            "SELECT status FROM violations WHERE rule = ?1",
            [rule],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(status("mobile-number"), "waived");
    assert_eq!(status("password-leak"), "open");
    let mailed: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM outbox o JOIN violations v ON v.id = o.violation WHERE v.rule = 'mobile-number'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mailed, 0, "a waived violation is not mailed");

    // A waiver that has already ended is refused, the violation left as it is.
    let out = complyd()
        .args(["violations", "--config"])
        .arg(&cfg)
        .args([
            "waive",
            "--rule",
            "password-leak",
            "--path",
            "**",
            "--reason",
            "旧",
            "--by",
            "li.na",
            "--expires",
            "2020-01-01",
        ])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("already past"), "{err}");
    assert_eq!(status("password-leak"), "open");
    // A scope of a rule the rules do not have is refused, as in waivers.yaml.
    let out = complyd()
        .args(["violations", "--config"])
        .arg(&cfg)
        .args([
            "waive",
            "--rule",
            "no-such-rule",
            "--path",
            "**",
            "--reason",
            "x",
            "--by",
            "y",
        ])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("no rule `no-such-rule`"), "{err}");
    // An unknown status is a usage error, not an empty list.
    complyd()
        .args(["violations", "--config"])
        .arg(&cfg)
        .args(["list", "--status", "bogus"])
        .assert()
        .code(2);
    // Two acknowledgements: both notes are kept, the newest last.
    let ack = |by: &str, note: &str| {
        complyd()
            .args(["violations", "--config"])
            .arg(&cfg)
            .args(["ack", "--by", by, "--note", note])
            .arg(format!("#{}", {
                let id: i64 = db
                    .query_row(
                        "SELECT id FROM violations WHERE rule = 'password-leak'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                id
            }))
            .assert()
            .success();
    };
    ack("li.na", "已通知剪辑删改");
    ack("wang.wu", "复核");
    let note: String = db
        .query_row(
            "SELECT note FROM violations WHERE rule = 'password-leak'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        note,
        "acked by li.na: 已通知剪辑删改\nacked by wang.wu: 复核"
    );

    // Waive the password leak by (a prefix of) its fingerprint from the CLI.
    let fp: String = db
        .query_row(
            "SELECT fingerprint FROM violations WHERE rule = 'password-leak'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    complyd()
        .args(["violations", "--config"])
        .arg(&cfg)
        .args([
            "waive",
            &fp[..12],
            "--reason",
            "测试账号",
            "--by",
            "wang.fang",
        ])
        .assert()
        .success();
    assert_eq!(status("password-leak"), "waived");
    // A waived violation is not acknowledged over its waiver.
    let out = complyd()
        .args(["violations", "--config"])
        .arg(&cfg)
        .args(["ack", &fp[..12], "--by", "zhou.jie"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("is waived"), "{err}");
    let out = complyd()
        .args(["violations", "--config"])
        .arg(&cfg)
        .arg("waivers")
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("mobile-number  path **/live-script.md  used 1×"),
        "{text}"
    );
    assert!(
        text.contains("absolute-terms  subject nobody  used 0×  UNUSED"),
        "{text}"
    );
    assert!(text.contains("database waiver #1  password-leak"), "{text}");

    // A scope waiver covers the violations already found in its scope too.
    let (rule, open): (String, i64) = db
        .query_row(
            "SELECT rule, COUNT(*) FROM violations WHERE status = 'open' GROUP BY rule LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let out = complyd()
        .args(["violations", "--config"])
        .arg(&cfg)
        .args(["waive", "--rule", &rule, "--path", "**/live-script.md"])
        .args(["--reason", "直播脚本已作废", "--by", "li.na"])
        .assert()
        .success();
    let said = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        said.contains(&format!(
            "{open} violation(s) found before it are waived now"
        )),
        "{said}"
    );
    let left: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM violations WHERE rule = ?1 AND status <> 'waived'",
            [&rule],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    // An expiry day is listed as the last day in force, not the midnight
    // after it; an empty list says so.
    complyd()
        .args(["violations", "--config"])
        .arg(&cfg)
        .args(["waive", "--rule", "absolute-terms", "--subject", "nobody-2"])
        .args([
            "--reason",
            "试用",
            "--by",
            "li.na",
            "--expires",
            "2099-12-31",
        ])
        .assert()
        .success();
    let out = complyd()
        .args(["violations", "--config"])
        .arg(&cfg)
        .arg("waivers")
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("in force through 2099-12-31"), "{text}");
    let out = complyd()
        .args(["violations", "--config"])
        .arg(&cfg)
        .args(["list", "--rule", "absolute-terms", "--status", "fixed"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(text, "no violation matches\n");

    // An unknown rule in waivers.yaml is a configuration error, at its line.
    std::fs::write(
        tmp.path().join("rules/waivers.yaml"),
        "waivers:\n  - rule: no-such-rule\n    subject: x\n    reason: r\n    by: b\n",
    )
    .unwrap();
    let out = complyd()
        .args(["check", "--config"])
        .arg(&cfg)
        .assert()
        .code(78);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("waivers.yaml:2:11: error[invalid-value]: no rule `no-such-rule`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rule_is_applied_to_files_already_checked() {
    let s = Setup::new();
    std::fs::write(s.path("drop/old.txt"), "本品采用量子波动工艺\n").unwrap();
    let clock = ManualClock::new(t("2026-03-02T10:00:00+08:00"));
    let h = run::start(s.opts.clone(), s.rules(), Arc::new(clock))
        .await
        .unwrap();
    s.wait_for("SELECT COUNT(*) FROM files", |n| n == 1).await;
    let q = "SELECT COUNT(*) FROM violations WHERE rule = 'quantum-claims'";
    assert_eq!(s.wait_for(q, |_| true).await, 0);
    std::fs::write(
        s.path("rules/extra.yaml"),
        "pack: extra\nrules:\n  - id: quantum-claims\n    severity: high\n    message: 伪科学宣传\n    clause: [\"5.3\"]\n    check:\n      phrases:\n        terms: [量子波动]\n",
    )
    .unwrap();
    h.reload().await.unwrap();
    assert_eq!(s.wait_for(q, |n| n == 1).await, 1);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_that_fell_due_while_down_fire_at_start() {
    let s = Setup::new();
    let clock = ManualClock::new(t("2026-03-02T10:00:00+08:00"));
    let h = run::start(s.opts.clone(), s.rules(), Arc::new(clock.clone()))
        .await
        .unwrap();
    std::fs::write(
        s.path("logs/activity.jsonl"),
        r#"{"ts":"2026-03-02T10:00:00+08:00","type":"message.received","thread":"t1","account":"ks-service","channel":"dm","complexity":"general","text":"在吗"}
"#,
    )
    .unwrap();
    s.wait_for(
        "SELECT COALESCE(SUM(lines + waiting), 0) FROM sources",
        |n| n == 1,
    )
    .await;
    h.shutdown().await.unwrap();
    let q = "SELECT COUNT(*) FROM violations WHERE rule = 'reply-general-1h'";
    assert_eq!(s.wait_for(q, |_| true).await, 0);
    // Stopping stored the held question and moved the cursor past it: the
    // next start does not depend on the log still being there.
    let stored = "SELECT COUNT(*) FROM held_batches";
    assert_eq!(s.wait_for(stored, |_| true).await, 1);
    let saved = "SELECT SUM(lines) - SUM(waiting) FROM sources";
    assert_eq!(s.wait_for(saved, |_| true).await, 1);
    // Down over the due instant (11:00 + lateness); the clock jumps.
    clock.set(t("2026-03-02T14:00:00+08:00"));
    let h = run::start(s.opts.clone(), s.rules(), Arc::new(clock))
        .await
        .unwrap();
    assert_eq!(s.wait_for(q, |n| n == 1).await, 1);
    h.shutdown().await.unwrap();
}

/// Routes: critical violations at once to the supervision group, all of
/// them to the content team as one digest at the end of a 30-minute window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_send_critical_at_once_and_the_rest_as_one_digest_per_window() {
    let s = Setup::new();
    let opts = s.with_config(
        "state: state\nwatch: [{path: drop}]\nmail:\n  to: [fallback@example.com]\n  groups:\n    supervision: [jiandu@example.com]\n    content: [content@example.com]\n  routes:\n    - {severity: [critical], to: [supervision]}\n    - {to: [content], delivery: 30m}\n",
    );
    let routes = complyd::daemon::status::digest_routes(&opts.config.daemon.mail.routing);
    let db = opts.config.daemon.database();
    let clock = ManualClock::new(t("2026-03-02T10:07:00+08:00"));
    let h = run::start(opts, s.rules(), Arc::new(clock.clone()))
        .await
        .unwrap();
    std::fs::write(
        s.path("drop/post.txt"),
        "本品可以根治高血压，100%有效。\n全国销量第一。\n",
    )
    .unwrap();
    let count = |q: &str| -> i64 { s.db().query_row(q, [], |r| r.get(0)).unwrap_or(-1) };
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE digest = 0 AND sent_at IS NOT NULL",
        |n| n >= 2,
    )
    .await;
    let violations = count("SELECT COUNT(*) FROM violations");
    assert!(violations >= 3, "{violations}");
    let mails = |prefix: &str| -> Vec<String> {
        std::fs::read_dir(s.path("state/mail"))
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.file_name().unwrap().to_string_lossy().contains(prefix))
                    .map(|p| std::fs::read_to_string(p).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        mails(".violation.eml")
            .iter()
            .all(|m| m.contains("To: jiandu@example.com"))
    );
    // Nothing for the content team before the window ends at 10:30.
    h.barrier().await;
    assert!(mails(".digest.eml").is_empty());
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox WHERE digest = 1 AND sent_at IS NULL"),
        violations
    );
    // `status` says when it goes out and how much waits in it.
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let status = complyd::daemon::status::report(&db, &tz, &routes).unwrap();
    assert!(
        status.contains(&format!(
            "\ndigests:\n  route 2 (to content · 30m): {violations} violations waiting, goes out 2026-03-02 10:30:00"
        )),
        "{status}"
    );
    clock.set(t("2026-03-02T10:30:01+08:00"));
    s.wait_for("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL", |n| {
        n == 0
    })
    .await;
    let status = complyd::daemon::status::report(&db, &tz, &routes).unwrap();
    assert!(
        status.contains("\ndigests:\n  route 2 (to content · 30m): nothing waiting\n"),
        "{status}"
    );
    let digests = mails(".digest.eml");
    assert_eq!(digests.len(), 1, "one digest for the window");
    assert!(
        digests[0].contains("To: content@example.com"),
        "{}",
        digests[0]
    );
    h.shutdown().await.unwrap();
}

/// A violation first reported in a digest: when it comes back after being
/// fixed, the reopening threads (In-Reply-To, References) to the digest
/// that carried it — the Message-ID recorded when it was sent — not to a
/// per-violation Message-ID that was never sent — and it is written in the
/// route's language, as the digest was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopening_threads_to_the_digest_that_carried_the_violation() {
    let s = Setup::new();
    let opts = s.with_config(
        "state: state\nwatch: [{path: drop}]\nmail:\n  to: [fallback@example.com]\n  groups:\n    content: [content@example.com]\n  routes:\n    - {to: [content], delivery: 30m, language: en}\n",
    );
    let clock = ManualClock::new(t("2026-03-02T10:07:00+08:00"));
    let h = run::start(opts, s.rules(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let claims = "本品可以根治高血压，100%有效。\n全国销量第一。\n";
    std::fs::write(s.path("drop/post.txt"), claims).unwrap();
    let n = s
        .wait_for("SELECT COUNT(*) FROM outbox WHERE digest = 1", |n| n >= 2)
        .await;
    clock.set(t("2026-03-02T10:30:01+08:00"));
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL",
        |v| v == n,
    )
    .await;
    let header = |mail: &str, name: &str| -> String {
        mail.lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {mail}"))
            .trim()
            .to_string()
    };
    let eml = |suffix: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(s.path("state/mail"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        v.sort();
        v
    };
    let digests = eml(".digest.eml");
    assert_eq!(digests.len(), 1);
    let digest_id = header(&digests[0], "Message-ID: ");
    assert!(digest_id.starts_with("<digest."), "{digest_id}");
    let recorded: String = s
        .db()
        .query_row("SELECT DISTINCT message_id FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(recorded, digest_id, "the Message-ID sent is recorded");

    // Fixed, then back: reopened, mailed at once, threaded to the digest.
    std::fs::write(s.path("drop/post.txt"), "今天天气很好。\n").unwrap();
    s.wait_for(
        "SELECT COUNT(*) FROM violations WHERE status = 'fixed'",
        |v| v == n,
    )
    .await;
    std::fs::write(s.path("drop/post.txt"), claims).unwrap();
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'reopened' AND sent_at IS NOT NULL",
        |v| v == n,
    )
    .await;
    h.shutdown().await.unwrap();
    let reopened = eml(".eml")
        .into_iter()
        .filter(|m| header(m, "Message-ID: ").contains(".reopened."))
        .collect::<Vec<_>>();
    assert_eq!(reopened.len() as i64, n);
    assert!(
        header(&digests[0], "Subject: ").starts_with("[Compliance alert]"),
        "{}",
        digests[0]
    );
    for m in reopened {
        assert_eq!(header(&m, "In-Reply-To: "), digest_id, "{m}");
        assert_eq!(header(&m, "References: "), digest_id, "{m}");
        // Encoded word by word around the "·": the English words show.
        let subject = header(&m, "Subject: ");
        assert!(
            subject.starts_with("[Compliance alert ") && subject.contains(" again]"),
            "{m}"
        );
        assert!(header(&m, "To: ").contains("content@example.com"), "{m}");
    }
}

/// A violation still open two working days after it was mailed is mailed
/// again, once, threaded to the first message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_violation_still_open_after_two_working_days_gets_one_reminder() {
    let s = Setup::new();
    let opts = s.with_config("state: state\nwatch: [{path: drop}]\nmail:\n  remind_after: 2\n");
    // Friday 10:00: two working days later is Tuesday 10:00.
    let clock = ManualClock::new(t("2026-03-06T10:00:00+08:00"));
    let h = run::start(opts, s.rules(), Arc::new(clock.clone()))
        .await
        .unwrap();
    std::fs::write(s.path("drop/post.txt"), "本品可以根治高血压\n").unwrap();
    let count = |q: &str| -> i64 { s.db().query_row(q, [], |r| r.get(0)).unwrap_or(-1) };
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'violation' AND sent_at IS NOT NULL",
        |n| n == 1,
    )
    .await;
    // Monday 10:30: one working day only (the weekend does not count).
    clock.set(t("2026-03-09T10:30:00+08:00"));
    h.barrier().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox WHERE kind = 'reminder'"),
        0
    );
    // Tuesday 10:30: a reminder, sent, threaded to the first mail.
    clock.set(t("2026-03-10T10:30:00+08:00"));
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'reminder' AND sent_at IS NOT NULL",
        |n| n == 1,
    )
    .await;
    let fp: String = s
        .db()
        .query_row("SELECT fingerprint FROM violations", [], |r| r.get(0))
        .unwrap();
    let mail = std::fs::read_to_string(s.path(&format!("state/mail/{fp}.reminder.eml"))).unwrap();
    assert!(
        mail.contains(&format!("In-Reply-To: <{fp}.violation@complyd>")),
        "{mail}"
    );
    // Only once.
    clock.set(t("2026-03-12T10:30:00+08:00"));
    h.barrier().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count("SELECT COUNT(*) FROM outbox WHERE kind = 'reminder'"),
        1
    );
    h.shutdown().await.unwrap();
}

/// What the watched folders hold but cannot be checked — a symlink loop, a
/// FIFO, a dangling link — is stored with the errors and shown by
/// `complyd status`, whether the catch-up walk finds it at start or the
/// watcher while running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_in_the_watched_folders_are_stored_and_shown_by_status() {
    let s = Setup::new();
    let drop = s.path("drop");
    let mkfifo = |p: &Path| {
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo {}", p.display());
    };
    std::os::unix::fs::symlink(&drop, drop.join("loop")).unwrap();
    mkfifo(&drop.join("pipe.txt"));
    std::os::unix::fs::symlink(s.path("nowhere.txt"), drop.join("dangling.txt")).unwrap();
    let clock = ManualClock::new(t("2026-03-02T10:00:00+08:00"));
    let h = run::start(s.opts.clone(), s.rules(), Arc::new(clock))
        .await
        .unwrap();
    let q = "SELECT COUNT(*) FROM errors WHERE source = 'watch'";
    s.wait_for(q, |n| n >= 3).await;
    // Found by the watcher (inotify) while running.
    std::fs::create_dir(drop.join("sub")).unwrap();
    std::os::unix::fs::symlink(&drop, drop.join("sub/loop2")).unwrap();
    mkfifo(&drop.join("pipe2.txt"));
    std::os::unix::fs::symlink(s.path("nowhere2.txt"), drop.join("dangling2.txt")).unwrap();
    s.wait_for(q, |n| n >= 6).await;
    h.barrier().await;
    h.shutdown().await.unwrap();

    let db = s.opts.config.daemon.database();
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let text = complyd::daemon::status::report(&db, &tz, &[]).unwrap();
    let d = drop.display();
    for want in [
        format!("watch: {d}/loop: symlink loop: leads back to {d}"),
        format!("watch: {d}/pipe.txt: not a regular file (a FIFO); not checked"),
        format!("watch: {d}/dangling.txt: dangling symbolic link"),
        format!("watch: {d}/sub/loop2: symlink loop: leads back to {d}"),
        format!("watch: {d}/pipe2.txt: not a regular file (a FIFO); not checked"),
        format!("watch: {d}/dangling2.txt: dangling symbolic link"),
    ] {
        assert!(text.contains(&want), "{want:?} not in:\n{text}");
    }
    assert_eq!(s.wait_for(q, |_| true).await, 6, "each once:\n{text}");
}

/// From a new user's trial: the daemon checked Word's owner files, swap
/// and temporary files in a configured folder (the defaults were only added
/// to folders built in code), mailing a not-checked violation for each.
#[test]
fn editor_lock_and_temporary_files_in_a_configured_folder_are_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&shipped_rules(), &tmp.path().join("rules"));
    let drop = tmp.path().join("drop");
    std::fs::create_dir_all(drop.join("archive")).unwrap();
    let claim = "本品可以根治高血压。\n";
    std::fs::write(drop.join("~$b.docx"), b"\x00\x01 not a zip").unwrap();
    for name in [
        "a.txt.swp",
        "c.tmp",
        "d.txt~",
        ".hidden.txt",
        "archive/old.txt",
        "ok.txt",
    ] {
        std::fs::write(drop.join(name), claim).unwrap();
    }
    let cfg = tmp.path().join("complyd.yaml");
    std::fs::write(
        &cfg,
        "rules: rules\nstate: state\nwatch: [{path: drop, exclude: [\"archive/**\"]}]\n",
    )
    .unwrap();
    assert_cmd::Command::cargo_bin("complyd")
        .unwrap()
        .args(["run", "--once", "--config"])
        .arg(&cfg)
        .assert()
        .success();
    let db = rusqlite::Connection::open(tmp.path().join("state/complyd.db")).unwrap();
    let subjects: Vec<String> = db
        .prepare("SELECT DISTINCT subject FROM violations ORDER BY subject")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(subjects, [drop.join("ok.txt").display().to_string()]);
    // The outbox lists each message as what it is.
    let out = assert_cmd::Command::cargo_bin("complyd")
        .unwrap()
        .args(["outbox", "list", "--config"])
        .arg(&cfg)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("report of violation #1 (disease-treatment)"),
        "{text}"
    );
}

#[test]
fn the_examples_read_once_however_the_configuration_is_named() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root.join("examples"), &tmp.path().join("examples"));
    copy_dir(&shipped_rules(), &tmp.path().join("rules"));
    let run = |dir: &Path, config: Option<&str>| {
        let mut c = assert_cmd::Command::cargo_bin("complyd").unwrap();
        c.current_dir(dir).args(["run", "--once"]);
        if let Some(cfg) = config {
            c.args(["--config", cfg]);
        }
        let out = c.assert().success();
        String::from_utf8_lossy(&out.get_output().stderr).into_owned()
    };
    // The README's first command, then the same with the examples'
    // configuration named two ways, from two folders: one state, one read.
    let first = run(tmp.path(), None);
    assert!(!first.contains(" 0 new violation(s)"), "{first}");
    for (dir, cfg) in [
        (tmp.path().to_path_buf(), "examples/complyd.yaml"),
        (tmp.path().join("examples"), "./complyd.yaml"),
    ] {
        let again = run(&dir, Some(cfg));
        assert!(
            again.contains("0 log line(s) read, 0 new violation(s)"),
            "{again}"
        );
    }
}
