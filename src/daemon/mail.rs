//! Violation mail: one message per outbox row, in Chinese, plain text and
//! HTML (every piece of content HTML-escaped), headers built by lettre.
//!
//! The Message-ID is derived from the violation's fingerprint and the
//! message kind, so a message delivered again after a crash between the
//! delivery and its `sent` mark is recognisably the same message; the file
//! transport even overwrites the same file.

use std::path::{Path, PathBuf};

use lettre::message::{Mailbox, Message, MultiPart};

use super::record::Record;
use super::store::OutboxItem;
use crate::config::MailConfig;

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub reason: String,
    /// Retrying cannot help (a 5xx answer, an invalid address).
    pub permanent: bool,
    /// The server could not be reached or spoken to at all (connection
    /// refused, timeout, TLS handshake): every message would fail the same
    /// way, so the mailer pauses the whole queue, not just this message.
    pub unreachable: bool,
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
        unreachable: false,
    };
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|e| bad(format!("from address {:?}: {e}", cfg.from)))?;
    let mut b = Message::builder()
        .from(from)
        .subject(subject(item))
        .message_id(Some(format!("<{}@complyd>", message_key(item))));
    b = recipients(b, cfg, &item.to)?;
    // A follow-up threads to the message that carried the violation
    // (recorded when it was sent: a single message or a digest).
    if let Some(first) = &item.thread {
        b = b.in_reply_to(first.clone()).references(first.clone());
    }
    b.multipart(MultiPart::alternative_plain_html(text(item), html(item)))
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
            unreachable: false,
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
        unreachable: false,
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
    let worst = items
        .iter()
        .min_by_key(|i| i.record.severity)
        .unwrap_or(first);
    let subjects: std::collections::BTreeSet<&str> =
        items.iter().map(|i| i.record.subject.as_str()).collect();
    let about = if subjects.len() == 1 {
        short(&worst.record.subject, 40)
    } else {
        format!("{} 个对象", subjects.len())
    };
    let subject = format!(
        "【合规告警】{} · {} · {about} · {} 条",
        worst.record.severity.tier(),
        short(&worst.record.message, 30),
        items.len()
    );
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|e| bad(format!("from address {:?}: {e}", cfg.from)))?;
    let b = Message::builder()
        .from(from)
        .subject(subject)
        .message_id(Some(format!("<digest.{id}@complyd>")));
    let b = recipients(b, cfg, &first.to)?;
    let intro = format!(
        "complyd 汇总了 {} 条违规，请内部监督小组核查处理。",
        items.len()
    );
    let mut text = format!("{intro}\n");
    let mut body = String::new();
    for (n, item) in items.iter().enumerate() {
        text.push_str(&format!("\n{}.\n", n + 1));
        for (k, v) in lines(item) {
            text.push_str(&format!("{k}：{v}\n"));
        }
        body.push_str(&format!(
            "<h3>{}. {}</h3>{}",
            n + 1,
            escape(&item.record.message),
            table(item)
        ));
    }
    text.push_str(&format!("\n{ACK_HINT}\n"));
    let html = page(&intro, &body);
    let msg = b
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| bad(format!("cannot build the message: {e}")))?;
    Ok((msg, id))
}

fn subject(item: &OutboxItem) -> String {
    let r = &item.record;
    let head = match item.kind.as_str() {
        "retraction" => "【合规告警撤回】",
        "reopened" => "【合规告警·再次出现】",
        "reminder" => "【合规提醒·仍未处理】",
        _ => "【合规告警】",
    };
    let subject = short(&r.subject, 40);
    format!(
        "{head}{} · {} · {subject}",
        r.severity.tier(),
        short(&r.message, 30)
    )
}

fn short(s: &str, n: usize) -> String {
    // Header text on one line: a CR or LF in content must not start a header.
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() <= n {
        s
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

fn lines(item: &OutboxItem) -> Vec<(&'static str, String)> {
    let r = &item.record;
    let mut v = vec![
        ("规则", r.rule.clone()),
        (
            "级别",
            format!("{}（{}）", r.severity.tier(), r.severity.as_str()),
        ),
        ("说明", r.message.clone()),
    ];
    if !r.clause.is_empty() {
        v.push(("依据", r.clause.join("；")));
    }
    v.push(("对象", r.subject.clone()));
    v.push(("位置", r.location.join("，")));
    if let Some(c) = &r.cue {
        v.push(("字幕时间", c.clone()));
    }
    if let Some(f) = &r.field {
        v.push(("字段", f.clone()));
    }
    if let Some(m) = &r.matched {
        v.push(("命中内容", m.clone()));
    }
    if let Some(e) = &r.excerpt {
        v.push(("上下文", e.clone()));
    }
    v.push(("时间", r.at.clone()));
    if let Some(d) = &r.due {
        v.push(("期限", d.clone()));
    }
    if let Some(d) = &r.detail {
        v.push(("详情", d.clone()));
    }
    if let Some(s) = &r.suggestion {
        v.push(("建议", s.clone()));
    }
    v.push(("编号", r.fingerprint.clone()));
    v
}

fn intro(item: &OutboxItem) -> &'static str {
    match item.kind.as_str() {
        "retraction" => "此前报告的违规已撤回：相关操作实际在期限内完成，只是记录晚到。",
        "reopened" => "此前已改正的违规再次出现在文件中，请内部监督小组核查处理。",
        "reminder" => "这条违规报告后已超过规定的工作日仍未处理，请尽快核查、确认或豁免。",
        _ => "complyd 发现一条违规，请内部监督小组核查处理。",
    }
}

const ACK_HINT: &str = "确认或豁免：complyd violations ack|waive <编号>";

fn text(item: &OutboxItem) -> String {
    let mut s = format!("{}\n\n", intro(item));
    for (k, v) in lines(item) {
        s.push_str(&format!("{k}：{v}\n"));
    }
    s.push_str(&format!("\n{ACK_HINT}\n"));
    s
}

fn html(item: &OutboxItem) -> String {
    page(intro(item), &table(item))
}

/// An HTML message readable on a phone: the intro (escaped here), the
/// body (already escaped), how to acknowledge or waive.
fn page(intro: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family:sans-serif;font-size:16px;line-height:1.5;max-width:40em\">\
         <p>{}</p>{body}<p style=\"color:#666\">{}</p></body></html>",
        escape(intro),
        escape(ACK_HINT)
    )
}

/// One violation as an HTML table, every value escaped, the match marked.
fn table(item: &OutboxItem) -> String {
    let r: &Record = &item.record;
    let mut s = String::from("<table>");
    for (k, v) in lines(item) {
        let value = if k == "上下文" {
            highlight(&v, r.matched.as_deref())
        } else {
            escape(&v)
        };
        s.push_str(&format!(
            "<tr><th style=\"text-align:left;vertical-align:top;white-space:nowrap;padding-right:1em\">{}</th><td>{value}</td></tr>",
            escape(k)
        ));
    }
    s.push_str("</table>");
    s
}

/// The excerpt, escaped, with the first occurrence of the match marked.
fn highlight(excerpt: &str, matched: Option<&str>) -> String {
    match matched.and_then(|m| excerpt.find(m).map(|i| (i, m))) {
        Some((i, m)) => format!(
            "{}<mark>{}</mark>{}",
            escape(&excerpt[..i]),
            escape(m),
            escape(&excerpt[i + m.len()..])
        ),
        None => escape(excerpt),
    }
}

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
        unreachable: false,
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
                clause: vec!["广告法第十七条".into()],
                tags: vec![],
                suggestion: Some("删除疗效用语".into()),
                subject: "drop/a.txt".into(),
                location: vec!["drop/a.txt:3:5".into()],
                at: "2026-03-02T10:00:00+08:00".into(),
                due: None,
                matched: Some("根治".into()),
                excerpt: Some("<script>alert(1)</script>可以根治高血压".into()),
                detail: None,
                cue: None,
                field: None,
                waiver: None,
                dispatch: None,
            },
        )
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
        let h = html(&item("violation"));
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
