//! Activity events: one JSON object per line (docs/events.md).
//!
//! Every event has `ts` (RFC 3339 with an offset) and `type`; each known type
//! requires some fields, and any other field is kept. A malformed line is
//! reported with its file and line and skipped; it never stops the rest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde::de::DeserializeSeed;

mod fields;
mod ts;
pub use fields::{FieldValue, Fields};

/// Where an event came from: the evidence shown with a violation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Evidence {
    pub path: Arc<Path>,
    pub line: u32,
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub ts: Timestamp,
    /// One of [`TYPES`].
    pub kind: &'static str,
    /// All fields of the line, `ts` and `type` included.
    pub fields: Fields,
    pub evidence: Evidence,
}

impl Event {
    /// A field as text: strings as they are, numbers and booleans written
    /// out; `None` when absent, null, or a list/object.
    pub fn text(&self, field: &str) -> Option<String> {
        self.str(field).map(str::to_owned)
    }

    /// A field as text, borrowed (the hot path of conditions and keys).
    pub fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field)?.text()
    }

    /// A field's value; `None` when absent or null.
    pub fn get(&self, field: &str) -> Option<FieldValue<'_>> {
        self.fields.get(field).filter(|v| !v.is_null())
    }
}

/// The name of a known event type as [`Event::kind`] holds it.
pub fn known_type(kind: &str) -> Option<&'static str> {
    TYPES.iter().map(|(t, _)| *t).find(|t| *t == kind)
}

/// The known event types and the fields each requires.
pub const TYPES: &[(&str, &[&str])] = &[
    (
        "message.received",
        &["thread", "account", "channel", "complexity", "text"],
    ),
    ("message.replied", &["thread", "by", "text"]),
    ("content.submitted", &["content", "author", "sha256"]),
    (
        "content.reviewed",
        &["content", "stage", "decision", "by", "sha256"],
    ),
    ("content.published", &["content", "account", "by", "sha256"]),
    ("account.password_changed", &["account", "by"]),
    ("account.login", &["account", "by"]),
    ("account.anomaly", &["account", "detail"]),
    ("complaint.opened", &["complaint", "thread"]),
    ("complaint.resolved", &["complaint", "by"]),
    ("complaint.result_notified", &["complaint", "by"]),
    (
        "appraisal.completed",
        &["employee", "period", "grade", "supervisor"],
    ),
    ("appraisal.feedback_held", &["employee", "period", "by"]),
];

/// How supervisors name each event type in violation details.
pub fn label_zh(kind: &str) -> &str {
    match kind {
        "message.received" => "客户咨询",
        "message.replied" => "回复",
        "content.submitted" => "提交审核",
        "content.reviewed" => "审核",
        "content.published" => "发布内容",
        "account.password_changed" => "更换密码",
        "account.login" => "登录",
        "account.anomaly" => "账号异常",
        "complaint.opened" => "投诉受理",
        "complaint.resolved" => "投诉处理",
        "complaint.result_notified" => "告知客户处理结果",
        "appraisal.completed" => "绩效考核",
        "appraisal.feedback_held" => "绩效反馈面谈",
        other => other,
    }
}

/// The same names in English mail (lower case, inside a sentence).
pub fn label_en(kind: &str) -> &str {
    match kind {
        "message.received" => "customer inquiry",
        "message.replied" => "reply",
        "content.submitted" => "submission for review",
        "content.reviewed" => "review",
        "content.published" => "publication",
        "account.password_changed" => "password change",
        "account.login" => "login",
        "account.anomaly" => "account anomaly",
        "complaint.opened" => "complaint intake",
        "complaint.resolved" => "complaint resolution",
        "complaint.result_notified" => "notice of the result to the customer",
        "appraisal.completed" => "performance appraisal",
        "appraisal.feedback_held" => "feedback interview",
        other => other,
    }
}

/// Allowed values of enumerated fields.
const ENUMS: &[(&str, &str, &[&str])] = &[
    ("message.received", "channel", &["comment", "dm", "inquiry"]),
    ("message.received", "complexity", &["general", "complex"]),
    ("content.reviewed", "stage", &["internal", "final"]),
    ("content.reviewed", "decision", &["approved", "rejected"]),
];

/// A line that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub evidence: Evidence,
    pub reason: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: malformed event: {}", self.evidence, self.reason)
    }
}

/// Parses one line of a log.
pub fn parse_line(line: &str, evidence: Evidence) -> Result<Event, Malformed> {
    let fail = |reason: String| Malformed {
        evidence: evidence.clone(),
        reason,
    };
    let seed = fields::FieldsSeed {
        capacity: line.len(),
    };
    let mut json = serde_json::Deserializer::from_str(line);
    let fields = seed.deserialize(&mut json).and_then(|f| {
        json.end()?;
        Ok(f)
    });
    let fields = fields.map_err(|e| {
        // A data error is JSON of the wrong type (values themselves may be
        // anything) — said as soon as the line does not start with `{`, so
        // whether the rest is JSON at all is asked again.
        let e = match e.is_data() {
            true => match serde_json::from_str::<serde::de::IgnoredAny>(line) {
                Ok(_) => return fail("an event must be a JSON object".into()),
                Err(syntax) => syntax,
            },
            false => e,
        };
        fail(format!(
            "invalid JSON at column {}: {}",
            e.column(),
            strip_position(&e.to_string())
        ))
    })?;
    let ts = match fields.get("ts") {
        Some(FieldValue::Str(s)) => ts::parse(s).map_err(|e| {
            fail(format!(
                "`ts` {s:?} is not an RFC 3339 time with an offset (e.g. 2026-03-02T09:30:00+08:00): {e}"
            ))
        })?,
        Some(_) => return Err(fail("`ts` must be a string".into())),
        None => return Err(fail("missing `ts`".into())),
    };
    let kind = match fields.get("type") {
        Some(FieldValue::Str(s)) => s,
        Some(_) => return Err(fail("`type` must be a string".into())),
        None => return Err(fail("missing `type`".into())),
    };
    let Some(&(kind, required)) = TYPES.iter().find(|(t, _)| *t == kind) else {
        let known: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
        return Err(fail(format!(
            "unknown event type `{kind}`; known types: {}",
            known.join(", ")
        )));
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|f| fields.get(f).is_none_or(FieldValue::is_null))
        .collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "`{kind}` needs {}",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for (t, field, allowed) in ENUMS {
        if *t != kind {
            continue;
        }
        let v = fields.get(field).and_then(FieldValue::text);
        if !v.is_some_and(|v| allowed.contains(&v)) {
            return Err(fail(format!(
                "`{field}` must be one of {}, not {}",
                allowed.join(", "),
                fields
                    .get(field)
                    .map_or("nothing".into(), FieldValue::to_json)
            )));
        }
    }
    Ok(Event {
        ts,
        kind,
        fields,
        evidence,
    })
}

fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Reads a whole log file: its events and its malformed lines. Blank lines
/// are ignored; a last line without a newline is still read.
pub fn read_log(path: &Path) -> std::io::Result<(Vec<Event>, Vec<Malformed>)> {
    let bytes = std::fs::read(path)?;
    Ok(parse_log(path, &bytes))
}

pub fn parse_log(path: &Path, bytes: &[u8]) -> (Vec<Event>, Vec<Malformed>) {
    let shared: Arc<Path> = Arc::from(path);
    let mut events = Vec::new();
    let mut bad = Vec::new();
    for (n, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let evidence = Evidence {
            path: shared.clone(),
            line: n as u32 + 1,
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = if n == 0 {
            raw.strip_prefix("\u{feff}".as_bytes()).unwrap_or(raw)
        } else {
            raw
        };
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            bad.push(Malformed {
                evidence,
                reason: "not valid UTF-8".into(),
            });
            continue;
        };
        match parse_line(line, evidence) {
            Ok(e) => events.push(e),
            Err(m) => bad.push(m),
        }
    }
    (events, bad)
}

/// A path for evidence in tests and examples.
pub fn evidence(path: &str, line: u32) -> Evidence {
    Evidence {
        path: Arc::from(PathBuf::from(path).as_path()),
        line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Event, String> {
        parse_line(line, evidence("log.jsonl", 7)).map_err(|m| m.to_string())
    }

    #[test]
    fn parses_a_known_event_and_keeps_extra_fields() {
        let e = parse(
            r#"{"ts":"2026-03-02T09:30:00+08:00","type":"message.replied","thread":"t1","by":"amy","text":"您好","extra":1}"#,
        )
        .unwrap();
        assert_eq!(e.kind, "message.replied");
        assert_eq!(e.ts.to_string(), "2026-03-02T01:30:00Z");
        assert_eq!(e.text("extra").as_deref(), Some("1"));
    }

    #[test]
    fn malformed_lines_say_where_and_why() {
        assert_eq!(
            parse("{").unwrap_err(),
            "log.jsonl:7: malformed event: invalid JSON at column 1: EOF while parsing an object"
        );
        // Not JSON, though it starts like a list: said so, not "not an object".
        assert_eq!(
            parse("[1,").unwrap_err(),
            "log.jsonl:7: malformed event: invalid JSON at column 3: EOF while parsing a value"
        );
        assert!(parse("12 x").unwrap_err().contains("trailing characters"));
        assert!(
            parse("[1]")
                .unwrap_err()
                .ends_with("an event must be a JSON object")
        );
        assert!(
            parse(r#"{"type":"account.login","account":"a","by":"b"}"#)
                .unwrap_err()
                .ends_with("missing `ts`")
        );
        assert!(
            parse(r#"{"ts":"2026-03-02 09:30","type":"account.login","account":"a","by":"b"}"#)
                .unwrap_err()
                .contains("is not an RFC 3339 time")
        );
        assert!(
            parse(r#"{"ts":"2026-03-02T09:30:00+08:00","type":"account.logon"}"#)
                .unwrap_err()
                .contains("unknown event type `account.logon`")
        );
        assert!(
            parse(r#"{"ts":"2026-03-02T09:30:00+08:00","type":"account.login","account":"a"}"#)
                .unwrap_err()
                .ends_with("`account.login` needs `by`")
        );
        assert!(parse(r#"{"ts":"2026-03-02T09:30:00+08:00","type":"message.received","thread":"t","account":"a","channel":"email","complexity":"general","text":"?"}"#)
            .unwrap_err()
            .contains("`channel` must be one of comment, dm, inquiry"));
    }

    #[test]
    fn a_log_keeps_going_past_bad_lines() {
        let log = b"{\"ts\":\"2026-03-02T09:30:00+08:00\",\"type\":\"account.login\",\"account\":\"a\",\"by\":\"b\"}\n\
                    not json\n\n\xff\xfe\n\
                    {\"ts\":\"2026-03-02T09:31:00+08:00\",\"type\":\"account.login\",\"account\":\"a\",\"by\":\"c\"}";
        let (events, bad) = parse_log(Path::new("a.jsonl"), log);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].evidence.line, 5);
        let lines: Vec<u32> = bad.iter().map(|m| m.evidence.line).collect();
        assert_eq!(lines, [2, 4]);
    }
}
