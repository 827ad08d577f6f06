//! Violation mail: one message per outbox row (or per digest), plain text
//! and HTML rendered from templates (`templates`: built-in Chinese and
//! English, overridable from `mail.templates`; every piece of content
//! HTML-escaped), headers built by lettre.
//!
//! The Message-ID is derived from the violation's fingerprint and the
//! message kind, so a message delivered again after a crash between the
//! delivery and its `sent` mark is recognisably the same message; the file
//! transport even overwrites the same file.

use std::path::{Path, PathBuf};

use lettre::message::{Mailbox, Message, MultiPart};

use super::store::OutboxItem;
use crate::config::MailConfig;

mod load;
mod templates;
mod view;

pub use load::{Settings, load as load_templates};
pub use templates::{FILES, Parts, Templates, export as export_templates};
pub use view::Lang;

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub reason: String,
    /// Retrying cannot help (a 5xx answer, an invalid address).
    pub permanent: bool,
}

/// What names a message (Message-ID, .eml file): the violation's
/// fingerprint and the kind — and for a reopening, which can happen more
/// than once, the outbox row; for a second route, the route.
pub fn message_key(item: &OutboxItem) -> String {
    let kind = item.kind.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let mut key = format!("{}.{kind}", item.record.fingerprint);
    if item.kind == "reopened" {
        key.push_str(&format!(".{}", item.id));
    }
    if let Some(r) = item.route.filter(|r| *r > 0) {
        key.push_str(&format!(".r{r}"));
    }
    key
}

/// Builds the message for an outbox row.
pub fn build(cfg: &MailConfig, item: &OutboxItem) -> Result<Message, SendError> {
    let bad = |reason: String| SendError {
        reason,
        permanent: true,
    };
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|e| bad(format!("from address {:?}: {e}", cfg.from)))?;
    let parts = cfg.templates.single(item);
    let mut b = Message::builder()
        .from(from)
        .subject(parts.subject)
        .message_id(Some(format!("<{}@complyd>", message_key(item))));
    b = recipients(b, cfg, &item.to)?;
    // A follow-up threads to the message that carried the violation
    // (recorded when it was sent: a single message or a digest).
    if let Some(first) = &item.thread {
        b = b.in_reply_to(first.clone()).references(first.clone());
    }
    b.multipart(MultiPart::alternative_plain_html(parts.text, parts.html))
        .map_err(|e| bad(format!("cannot build the message: {e}")))
}

/// The message's To: the routed addresses, or `mail.to`.
fn recipients(
    mut b: lettre::message::MessageBuilder,
    cfg: &MailConfig,
    to: &[String],
) -> Result<lettre::message::MessageBuilder, SendError> {
    let list = if to.is_empty() { &cfg.to } else { to };
    for to in list {
        let mb: Mailbox = to.parse().map_err(|e| SendError {
            reason: format!("recipient {to:?}: {e}"),
            permanent: true,
        })?;
        b = b.to(mb);
    }
    Ok(b)
}

/// One message for several violations of the same route and recipients
/// (a digest window's worth): subject with the highest tier and the
/// count, one section per violation. Its Message-ID is derived from the
/// fingerprints it carries.
pub fn build_digest(
    cfg: &MailConfig,
    items: &[OutboxItem],
) -> Result<(Message, String), SendError> {
    use sha2::Digest;
    let bad = |reason: String| SendError {
        reason,
        permanent: true,
    };
    let first = items.first().ok_or_else(|| bad("an empty digest".into()))?;
    let mut fps: Vec<&str> = items
        .iter()
        .map(|i| i.record.fingerprint.as_str())
        .collect();
    fps.sort_unstable();
    let mut h = sha2::Sha256::new();
    for f in &fps {
        h.update(f.as_bytes());
    }
    let id: String = h
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let Parts {
        subject,
        text,
        html,
    } = cfg.templates.digest(items);
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|e| bad(format!("from address {:?}: {e}", cfg.from)))?;
    let b = Message::builder()
        .from(from)
        .subject(subject)
        .message_id(Some(format!("<digest.{id}@complyd>")));
    let b = recipients(b, cfg, &first.to)?;
    let msg = b
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| bad(format!("cannot build the message: {e}")))?;
    Ok((msg, id))
}

/// HTML-escapes text (the HTML part's escaping of every value).
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// Writes the message as `<fingerprint>.<kind>.eml` in `dir`, through a
/// temporary file and a rename, so a reader never sees half a message and
/// a repeated delivery replaces the same file.
pub fn deliver_to_dir(dir: &Path, item: &OutboxItem, msg: &Message) -> Result<PathBuf, SendError> {
    let fail = |e: std::io::Error| SendError {
        reason: format!(
            "{}: {}",
            dir.display(),
            crate::rules::compile::io_reason(&e)
        ),
        permanent: false,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let name = format!("{}.eml", message_key(item));
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, msg.formatted()).map_err(fail)?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::super::record::Record;
    use super::*;
    use crate::finding::Severity;

    fn item(kind: &str) -> OutboxItem {
        OutboxItem::new(
            1,
            kind,
            Record {
                fingerprint: "0123abcd".into(),
                rule: "cure-claims".into(),
                severity: Severity::Critical,
                message: "宣称治愈疾病\r\nBcc: evil@example.com".into(),
                message_en: Some("Disease treatment claims".into()),
                clause: vec!["广告法第十七条".into()],
                tags: vec![],
                suggestion: Some("删除疗效用语".into()),
                suggestion_en: None,
                subject: "drop/a.txt".into(),
                location: vec!["drop/a.txt:3:5".into()],
                at: "2026-03-02T10:00:00+08:00".into(),
                due: None,
                matched: Some("根治".into()),
                excerpt: Some("<script>alert(1)</script>可以根治高血压".into()),
                detail: None,
                detail_en: None,
                cue: None,
                field: None,
                waiver: None,
                dispatch: None,
            },
        )
    }

    /// A content violation with every optional field, and a temporal one
    /// with none of the content fields: the two shapes a mail shows.
    fn samples() -> (OutboxItem, OutboxItem) {
        let mut file = item("violation");
        file.record.message = "宣称治愈疾病".into();
        file.record.clause = vec!["广告法第十七条".into(), "保健食品广告审查办法第八条".into()];
        file.record.subject = "drop/春季新品.srt".into();
        file.record.location = vec!["drop/春季新品.srt:12:9".into()];
        file.record.at = "2026-03-02 10:00".into();
        file.record.cue = Some("00:01:02,500 --> 00:01:04,000".into());
        file.record.field = Some("text".into());
        file.record.excerpt = Some("这款产品可以根治高血压，欢迎购买".into());
        file.record.detail = Some("与“高血压”同句".into());
        let mut event = item("violation");
        event.record = Record {
            fingerprint: "4567ef01".into(),
            rule: "publish-without-approval".into(),
            severity: Severity::High,
            message: "未经内部审核和终审即发布".into(),
            message_en: None,
            clause: vec!["内容发布管理制度第5条".into()],
            tags: vec!["publishing".into()],
            suggestion: None,
            suggestion_en: None,
            subject: "ks-main".into(),
            location: vec![
                "logs/activity.jsonl:12".into(),
                "logs/activity.jsonl:9".into(),
            ],
            at: "2026-03-02 10:30".into(),
            due: Some("2026-03-02 11:00".into()),
            matched: None,
            excerpt: None,
            detail: Some("post p-17 版本 3".into()),
            detail_en: None,
            cue: None,
            field: None,
            waiver: None,
            dispatch: None,
        };
        (file, event)
    }

    fn shown(subject: &str, text: &str, html: &str) -> String {
        format!("subject: {subject}\n--- text ---\n{text}--- html ---\n{html}\n")
    }

    #[test]
    fn the_chinese_mail_of_each_kind() {
        let (file, event) = samples();
        for kind in ["violation", "reopened", "retraction", "reminder"] {
            for (name, sample) in [("file", &file), ("event", &event)] {
                let mut it = sample.clone();
                it.kind = kind.into();
                let p = Templates::default().single(&it);
                insta::assert_snapshot!(
                    format!("zh_{kind}_{name}"),
                    shown(&p.subject, &p.text, &p.html)
                );
            }
        }
    }

    /// A reload that failed, as the daemon records it (core::config_error).
    fn config_error() -> OutboxItem {
        let diagnostics = "/etc/complyd/rules/claims.yaml:12:7: error[missing-key]: missing key `severity`\n   |\n12 |   - id: cure-claims\n   |       ^\n/etc/complyd/rules/claims.yaml:30:5: error[unknown-key]: unknown key `sevrity`\n";
        let mut it = item("violation");
        it.record = Record {
            fingerprint: "c0ffee".into(),
            rule: super::super::core::CONFIG_ERROR.into(),
            severity: Severity::High,
            message: "规则或配置文件有错误，重新加载未生效，仍在使用原有规则".into(),
            message_en: Some("The rules or the configuration have errors".into()),
            clause: Vec::new(),
            tags: vec!["config-error".into()],
            suggestion: Some("按详情修改后运行 complyd check，再重新加载".into()),
            suggestion_en: None,
            subject: "rules".into(),
            location: vec![diagnostics.lines().next().unwrap().into()],
            at: "2026-03-02 10:00".into(),
            due: None,
            matched: None,
            excerpt: None,
            detail: Some(diagnostics.into()),
            detail_en: None,
            cue: None,
            field: None,
            waiver: None,
            dispatch: None,
        };
        it
    }

    #[test]
    fn a_configuration_error_has_its_own_mail_naming_the_file_and_what_to_do() {
        let it = config_error();
        let p = Templates::default().single(&it);
        assert_eq!(
            p.subject,
            "【配置错误·未生效】/etc/complyd/rules/claims.yaml 有错误，仍按原规则运行"
        );
        for part in [&p.text, &p.html] {
            assert!(part.contains("/etc/complyd/rules/claims.yaml"), "{part}");
            assert!(part.contains("missing key `severity`"), "{part}");
            assert!(part.contains("继续按修改前的规则"), "{part}");
            assert!(part.contains("complyd check"), "{part}");
            // Not worded like a content violation.
            assert!(!part.contains("命中"), "{part}");
            assert!(!part.contains("complyd 发现一条违规"), "{part}");
        }
        insta::assert_snapshot!("zh_config_error", shown(&p.subject, &p.text, &p.html));
        let en = load_templates(
            Settings {
                config: Path::new("complyd.yaml"),
                language: Lang::En,
                routes: Vec::new(),
                dir: None,
            },
            &mut Vec::new(),
            &mut Default::default(),
        );
        let p = en.single(&it);
        assert_eq!(
            p.subject,
            "[Configuration error · not applied] /etc/complyd/rules/claims.yaml has errors; the previous rules stay in force"
        );
        insta::assert_snapshot!("en_config_error", shown(&p.subject, &p.text, &p.html));
        // A reminder about it is still a reminder.
        let mut reminder = config_error();
        reminder.kind = "reminder".into();
        let p = Templates::default().single(&reminder);
        assert!(
            p.subject.starts_with("【合规提醒·仍未处理】"),
            "{}",
            p.subject
        );
    }

    #[test]
    fn a_full_digest_says_more_may_follow_and_a_smaller_one_does_not() {
        let (file, _) = samples();
        let many = vec![file; super::super::mailer::PAGE];
        let note =
            "这封汇总最多列出500条；同一时段如有更多违规，会在下一封汇总邮件中发出，不会遗漏。";
        let p = Templates::default().digest(&many);
        assert!(p.text.contains(note) && p.html.contains(note));
        let p = Templates::default().digest(&many[1..]);
        assert!(!p.text.contains(note) && !p.html.contains(note));
    }

    #[test]
    fn the_chinese_digest() {
        let (file, event) = samples();
        let mut second = file.clone();
        second.record.fingerprint = "89ab".into();
        second.record.severity = Severity::Medium;
        let p = Templates::default().digest(&[second.clone(), event.clone(), file.clone()]);
        insta::assert_snapshot!("zh_digest", shown(&p.subject, &p.text, &p.html));
        let p = Templates::default().digest(&[second, file]);
        insta::assert_snapshot!("zh_digest_one_subject", shown(&p.subject, &p.text, &p.html));
    }

    #[test]
    fn content_is_escaped_and_headers_stay_single() {
        let cfg = MailConfig {
            dir: PathBuf::from("x"),
            from: "complyd@example.com".into(),
            to: vec!["sup@example.com".into()],
            smtp: None,
            routing: Default::default(),
            remind_after: None,
            templates: Templates::default(),
        };
        let msg = build(&cfg, &item("violation")).unwrap();
        let raw = String::from_utf8(msg.formatted()).unwrap();
        assert!(!raw.contains("<script>"), "{raw}");
        // The header block ends at the first empty line; no Bcc may be in it.
        let headers = raw.split("\r\n\r\n").next().unwrap();
        assert!(!headers.lines().any(|l| l.starts_with("Bcc:")), "{raw}");
        assert!(
            raw.contains("Message-ID: <0123abcd.violation@complyd>"),
            "{raw}"
        );
        let h = Templates::default().single(&item("violation")).html;
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;可以<mark>根治</mark>高血压"));
    }

    #[test]
    fn each_reopening_and_each_further_route_is_a_message_of_its_own() {
        let mut a = item("reopened");
        a.id = 7;
        let mut b = item("reopened");
        b.id = 9;
        assert_ne!(message_key(&a), message_key(&b));
        let mut first = item("violation");
        first.route = Some(0);
        let mut second = item("violation");
        second.route = Some(1);
        assert_eq!(message_key(&first), "0123abcd.violation");
        assert_eq!(message_key(&second), "0123abcd.violation.r1");
    }

    #[test]
    fn retraction_threads_to_the_violation() {
        let cfg = MailConfig {
            dir: PathBuf::from("x"),
            from: "complyd@example.com".into(),
            to: vec!["sup@example.com".into()],
            smtp: None,
            routing: Default::default(),
            remind_after: None,
            templates: Templates::default(),
        };
        let mut retraction = item("retraction");
        retraction.thread = Some("<digest.77ab@complyd>".into());
        let raw = String::from_utf8(build(&cfg, &retraction).unwrap().formatted()).unwrap();
        assert!(raw.contains("In-Reply-To: <digest.77ab@complyd>"), "{raw}");
        assert!(raw.contains("References: <digest.77ab@complyd>"), "{raw}");
        // Never sent: no reference to a message nobody received.
        let raw = String::from_utf8(build(&cfg, &item("retraction")).unwrap().formatted()).unwrap();
        assert!(!raw.contains("In-Reply-To"), "{raw}");
    }
}
