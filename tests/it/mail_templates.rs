//! An English configuration with templates of its own, end to end: the
//! daemon mails a real aiosmtpd (see smtp.rs), and Python's `email`
//! package, an independent reader, decodes what arrived.

use std::collections::HashMap;

use super::smtp::{Server, Setup, check, free_port};

/// The subject and the HTML are the folder's; the plain text stays the
/// built-in English one. A rule without `message_en` is added to the
/// shipped ones.
const FILES: &[(&str, &str)] = &[
    (
        "mail-templates/en/subject.txt",
        "{# one line, whatever the content #}\n\
         [{{ lang }}/{{ kind }}] {{ v.tier }} · {{ v.message }} · {{ v.subject }}\n",
    ),
    (
        "mail-templates/en/mail.html",
        "{% extends \"layout.html\" %}\n{% block content %}\n\
         <h1 class=\"custom\">{{ v.message }}</h1>\n\
         <p>{% if v.highlight %}{{ v.highlight.before }}<mark>{{ v.highlight.matched }}</mark>\
         {{ v.highlight.after }}{% else %}{{ v.excerpt }}{% endif %}</p>\n\
         <p>{{ v.rule }} · {{ v.fingerprint }} · {{ v.at|datetime }}</p>\n{% endblock %}\n",
    ),
    (
        "rules/zz-local.yaml",
        "pack: local\nrules:\n  - id: local-quantum\n    severity: high\n    \
         message: 宣称量子功效\n    clause: [\"5.3\"]\n    check:\n      phrases:\n        terms: [量子波动]\n",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_mail_from_custom_templates_arrives_as_written() {
    let port = free_port();
    let s = Setup::with_mail(
        &format!("host: 127.0.0.1\nport: {port}\nsecurity: none\n"),
        "to: [supervision@example.test]\nlanguage: en\ntemplates: mail-templates\n",
        FILES,
    );
    let server = Server::start(&s.path("smtp"), port, &[]);
    let h = s.start().await;
    std::fs::write(
        s.path("drop/draft.txt"),
        "<script>alert(1)</script>本品可以根治高血压。\r\nBcc: evil@example.test\r\n量子波动工艺\n",
    )
    .unwrap();
    let n = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 2)
        .await;
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL",
        |v| v == n,
    )
    .await;
    h.shutdown().await.unwrap();

    let db = s.db();
    let mut st = db
        .prepare("SELECT v.fingerprint, r.data FROM violations v JOIN violation_records r ON r.id = v.id")
        .unwrap();
    let stored: HashMap<String, serde_json::Value> = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (fp, data) = r.unwrap();
            (fp, serde_json::from_str(&data).unwrap())
        })
        .collect();
    let files = server.message_files();
    assert_eq!(files.len() as i64, n);
    let mut rules = Vec::new();
    for f in files {
        let m = check(&f);
        let fp = m["message_id"]
            .as_str()
            .unwrap()
            .trim_matches(['<', '>'])
            .strip_suffix(".violation@complyd")
            .unwrap()
            .to_string();
        let record = &stored[&fp];
        let rule = record["rule"].as_str().unwrap();
        rules.push(rule.to_string());
        // English where the rule has it, the Chinese message where not.
        let message = match record["message_en"].as_str() {
            Some(en) => en,
            None => {
                assert_eq!(rule, "local-quantum", "{record}");
                assert_eq!(record["message"], "宣称量子功效");
                record["message"].as_str().unwrap()
            }
        };
        let tier = match record["severity"].as_str().unwrap() {
            "critical" => "Prohibited",
            "low" => "Notice",
            _ => "Sensitive",
        };
        let subject = m["subject"].as_str().unwrap();
        assert_eq!(
            subject,
            // The file relative to its watched folder (stored absolute).
            format!(
                "[en/violation] {tier} · {message} · {}",
                record["subject"]
                    .as_str()
                    .unwrap()
                    .rsplit_once("/drop/")
                    .unwrap()
                    .1
            ),
        );
        let raw = m["raw_subject"].as_str().unwrap();
        assert!(raw.is_ascii(), "{raw}");
        // The plain text: the built-in English template.
        let plain = m["plain"].as_str().unwrap();
        assert!(plain.starts_with("complyd found a violation."), "{plain}");
        assert!(
            plain
                .lines()
                .any(|l| l.trim_end() == format!("Message:     {message}")),
            "{plain}"
        );
        assert!(
            plain.contains(&format!(
                "Acknowledge: complyd violations ack {fp} --by <name>"
            )),
            "{plain}"
        );
        // The HTML: the folder's template, content escaped.
        let html = m["html"].as_str().unwrap();
        assert!(
            html.contains(&format!("<h1 class=\"custom\">{message}</h1>")),
            "{html}"
        );
        assert!(
            html.contains(&format!("{rule} · {fp} · Mon 2 Mar 2026, 10:00")),
            "{html}"
        );
        assert!(html.contains("<mark>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        let headers: Vec<&str> = m["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        assert!(
            !headers.iter().any(|h| h.eq_ignore_ascii_case("bcc")),
            "{headers:?}"
        );
    }
    assert!(rules.iter().any(|r| r == "disease-treatment"), "{rules:?}");
    assert!(rules.iter().any(|r| r == "local-quantum"), "{rules:?}");
}

/// A broken template on reload: the reload fails with the template's
/// diagnostics, the previous templates keep running (and render the
/// config-error mail), and a fixed template applies from the next mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_template_on_reload_keeps_the_old_ones_and_raises_a_config_error() {
    use complyd::daemon::clock::ManualClock;
    use complyd::daemon::run::{self, RunOptions};
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("rules")).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    for e in std::fs::read_dir(&shipped).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), root.join("rules").join(e.file_name())).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("drop")).unwrap();
    std::fs::create_dir_all(root.join("tpl")).unwrap();
    std::fs::write(root.join("tpl/subject.txt"), "OLD {{ v.rule }}\n").unwrap();
    let cfg = root.join("complyd.yaml");
    std::fs::write(
        &cfg,
        "rules: rules\nstate: state\nwatch: [{path: drop}]\nmail:\n  templates: tpl\n",
    )
    .unwrap();
    let mut config = complyd::config::load(&cfg).unwrap();
    config.daemon.stable_for = Duration::from_millis(200);
    let opts = RunOptions::new(config, Some(cfg.clone()), root.join("rules"));
    let rules = complyd::rules::load(&root.join("rules")).unwrap();
    let clock = ManualClock::new("2026-03-02T10:00:00+08:00".parse().unwrap());
    let h = run::start(opts, rules, Arc::new(clock)).await.unwrap();

    // The subjects of the .eml files written so far (ASCII here).
    let subjects = || -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(root.join("state/mail")) else {
            return Vec::new();
        };
        let mut v: Vec<String> = rd
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            })
            .collect();
        v.sort();
        v
    };
    let wait = |want: &str| {
        let start = Instant::now();
        let want = want.to_string();
        async move {
            while !subjects().contains(&want) {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "no mail `{want}`: {:?}",
                    subjects()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    std::fs::write(root.join("drop/a.txt"), "本品可以根治高血压\n").unwrap();
    wait("OLD disease-treatment").await;

    std::fs::write(root.join("tpl/subject.txt"), "{{ v.rule }\n").unwrap();
    let err = h.reload().await.unwrap_err();
    assert!(
        err.contains("tpl/subject.txt:1:11: error[template-syntax]"),
        "{err}"
    );
    // The previous templates still render, the config error's mail too.
    wait("OLD config-error").await;

    std::fs::write(root.join("tpl/subject.txt"), "NEW {{ v.rule }}\n").unwrap();
    h.reload().await.unwrap();
    std::fs::write(root.join("drop/b.txt"), "本品是祖传秘方\n").unwrap();
    wait("NEW miracle-cure").await;
    h.shutdown().await.unwrap();
}
