//! Obligations and facts as stored: JSON in the rows of `obligations` (and
//! of `facts`, before v10), a compact binary form in the journal.
//!
//! The journal's form exists for speed: every obligation that outlives an
//! input is written to it, and formatting three timestamps as text and
//! escaping a fact's Chinese message as JSON cost more than the row's
//! insert had (~4 % of the ingestion bench's core thread). Timestamps are
//! whole seconds and nanoseconds, strings framed as held.rs frames them
//! (daemon/frame.rs). Each form starts with its version byte.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::daemon::frame::{Reader, put_path, put_str, put_u32};
use crate::engine::{Fact, Obligation};
use crate::event::{Event, Evidence, FieldValue};

const OBLIGATION_V1: u8 = 1;
const FACT_V1: u8 = 1;

#[derive(Deserialize)]
struct EvidenceRow {
    path: PathBuf,
    line: u32,
}

impl From<EvidenceRow> for Evidence {
    fn from(e: EvidenceRow) -> Self {
        Evidence {
            path: Arc::from(e.path.as_path()),
            line: e.line,
        }
    }
}

/// An [`EvidenceRow`] as written, borrowing the evidence.
#[derive(Serialize)]
struct EvidenceRowRef<'a> {
    path: &'a Path,
    line: u32,
}

impl<'a> From<&'a Evidence> for EvidenceRowRef<'a> {
    fn from(e: &'a Evidence) -> Self {
        EvidenceRowRef {
            path: &e.path,
            line: e.line,
        }
    }
}

/// An [`ObligationRow`] as written, borrowing the obligation.
#[derive(Serialize)]
struct ObligationRowRef<'a> {
    subject: &'a str,
    started: Timestamp,
    due: Timestamp,
    wake: Timestamp,
    evidence: Vec<EvidenceRowRef<'a>>,
    fired: bool,
}

#[derive(Deserialize)]
struct ObligationRow {
    subject: String,
    started: Timestamp,
    due: Timestamp,
    wake: Timestamp,
    evidence: Vec<EvidenceRow>,
    fired: bool,
}

#[derive(Deserialize)]
struct FactRow {
    kind: String,
    ts: Timestamp,
    fields: crate::event::Fields,
    evidence: EvidenceRow,
}

/// An obligation as a row of `obligations` holds it.
pub(super) fn obligation_json(o: &Obligation) -> String {
    let row = ObligationRowRef {
        subject: &o.subject,
        started: o.started,
        due: o.due,
        wake: o.wake,
        evidence: o.evidence.iter().map(EvidenceRowRef::from).collect(),
        fired: o.fired,
    };
    serde_json::to_string(&row).unwrap_or_default()
}

/// An obligation of `rule` and `key` from a row's JSON.
pub(crate) fn obligation_from_json(rule: &str, key: &str, data: &str) -> Option<Obligation> {
    let o = serde_json::from_str::<ObligationRow>(data).ok()?;
    Some(Obligation {
        rule: rule.to_string(),
        key: key.to_string(),
        subject: o.subject,
        started: o.started,
        due: o.due,
        wake: o.wake,
        evidence: o.evidence.into_iter().map(Evidence::from).collect(),
        fired: o.fired,
    })
}

/// A fact as a row of `facts` held it (before v10).
pub(super) fn fact_from_json(data: &str) -> Option<Fact> {
    let f = serde_json::from_str::<FactRow>(data).ok()?;
    // A fact of a type no longer known cannot match any rule.
    Some(Fact::new(Event {
        kind: crate::event::known_type(&f.kind)?,
        ts: f.ts,
        fields: f.fields,
        evidence: f.evidence.into(),
    }))
}

fn put_ts(buf: &mut Vec<u8>, t: Timestamp) {
    buf.extend_from_slice(&t.as_second().to_le_bytes());
    buf.extend_from_slice(&t.subsec_nanosecond().to_le_bytes());
}

fn put_evidence(buf: &mut Vec<u8>, e: &Evidence) {
    put_path(buf, &e.path);
    put_u32(buf, e.line);
}

fn read_ts(r: &mut Reader<'_>) -> Option<Timestamp> {
    Timestamp::new(r.i64()?, r.i32()?).ok()
}

fn read_evidence(r: &mut Reader<'_>) -> Option<Evidence> {
    Some(Evidence {
        path: Arc::from(r.path()?),
        line: r.u32()?,
    })
}

/// An obligation in the journal's form (its rule and key are the entry's).
pub(super) fn encode_obligation(o: &Obligation, buf: &mut Vec<u8>) {
    buf.push(OBLIGATION_V1);
    put_str(buf, &o.subject);
    for t in [o.started, o.due, o.wake] {
        put_ts(buf, t);
    }
    put_u32(buf, o.evidence.len() as u32);
    for e in &o.evidence {
        put_evidence(buf, e);
    }
    buf.push(u8::from(o.fired));
}

pub(crate) fn decode_obligation(rule: &str, key: &str, b: &[u8]) -> Option<Obligation> {
    let mut r = Reader(b);
    if r.u8()? != OBLIGATION_V1 {
        return None;
    }
    let subject = r.str()?.to_string();
    let (started, due, wake) = (read_ts(&mut r)?, read_ts(&mut r)?, read_ts(&mut r)?);
    let n = r.u32()?;
    let evidence = (0..n)
        .map(|_| read_evidence(&mut r))
        .collect::<Option<Vec<_>>>()?;
    let fired = r.u8()? != 0;
    r.is_empty().then(|| Obligation {
        rule: rule.to_string(),
        key: key.to_string(),
        subject,
        started,
        due,
        wake,
        evidence,
        fired,
    })
}

/// A fact in the journal's form: type, time, evidence, then each field's
/// name, kind and value.
pub(super) fn encode_fact(f: &Fact, buf: &mut Vec<u8>) {
    buf.push(FACT_V1);
    put_str(buf, f.kind);
    put_ts(buf, f.ts);
    put_evidence(buf, &f.evidence);
    put_u32(buf, f.fields.len() as u32);
    for (name, value) in f.fields.iter() {
        put_str(buf, name);
        let (kind, text) = match value {
            FieldValue::Null => (b'0', ""),
            FieldValue::Str(s) => (b's', s),
            FieldValue::Num(s) => (b'n', s),
            FieldValue::Bool(true) => (b't', ""),
            FieldValue::Bool(false) => (b'f', ""),
            FieldValue::Json(j) => (b'j', j),
        };
        buf.push(kind);
        put_str(buf, text);
    }
}

/// A fact from the journal's form; `Ok(None)` for a fact of a type no
/// longer known (it cannot match any rule). Read at start only: the fields
/// are turned back into the JSON object they were read from and parsed as
/// an event's fields are.
pub(super) fn decode_fact(b: &[u8]) -> Result<Option<Fact>, String> {
    read_fact(b).ok_or_else(|| "a fact cannot be read".to_string())
}

fn read_fact(b: &[u8]) -> Option<Option<Fact>> {
    let mut r = Reader(b);
    if r.u8()? != FACT_V1 {
        return None;
    }
    let kind = crate::event::known_type(r.str()?);
    let ts = read_ts(&mut r)?;
    let evidence = read_evidence(&mut r)?;
    let n = r.u32()?;
    let mut json = String::from("{");
    for i in 0..n {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&serde_json::to_string(r.str()?).ok()?);
        json.push(':');
        let (kind, text) = (r.u8()?, r.str()?);
        match kind {
            b'0' => json.push_str("null"),
            b's' => json.push_str(&serde_json::to_string(text).ok()?),
            b'n' | b'j' => json.push_str(text),
            b't' => json.push_str("true"),
            b'f' => json.push_str("false"),
            _ => return None,
        }
    }
    json.push('}');
    if !r.is_empty() {
        return None;
    }
    let fields = serde_json::from_str(&json).ok()?;
    Some(kind.map(|kind| {
        Fact::new(Event {
            kind,
            ts,
            fields,
            evidence,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_line;

    fn evidence(line: u32) -> Evidence {
        Evidence {
            path: Arc::from(Path::new("/var/log/活动.jsonl")),
            line,
        }
    }

    #[test]
    fn an_obligation_reads_back_as_written_in_either_form() {
        let o = Obligation {
            rule: "reply-general-1h".into(),
            key: "th-1\u{1f}x".into(),
            subject: "客户 th-1".into(),
            started: "2026-03-02T01:00:00.123456789Z".parse().unwrap(),
            due: "2026-03-02T02:00:00Z".parse().unwrap(),
            wake: crate::engine::NEVER,
            evidence: vec![evidence(3), evidence(9)],
            fired: true,
        };
        let mut b = Vec::new();
        encode_obligation(&o, &mut b);
        assert_eq!(decode_obligation(&o.rule, &o.key, &b), Some(o.clone()));
        let json = obligation_json(&o);
        assert_eq!(obligation_from_json(&o.rule, &o.key, &json), Some(o));
        // Cut short, or with bytes after it: not an obligation.
        assert_eq!(decode_obligation("r", "k", &b[..b.len() - 1]), None);
        b.push(0);
        assert_eq!(decode_obligation("r", "k", &b), None);
    }

    #[test]
    fn a_fact_reads_back_with_every_kind_of_field() {
        let line = r#"{"ts":"2026-03-02T09:30:00.5+08:00","type":"content.reviewed","content":"p-1","decision":"approved","by":"qian","sha256":"ab","stage":"internal","approved":true,"rejected":false,"reviewer":"钱 \"丽\"\n","score":1.5e3,"tags":["a",{"b":null}],"note":null}"#;
        let ev = parse_line(line, evidence(42)).unwrap();
        let f = Fact::of(&ev);
        let mut b = Vec::new();
        encode_fact(&f, &mut b);
        let back = decode_fact(&b).unwrap().expect("a known type");
        assert_eq!(back, f);
        assert_eq!(back.fields.get("reviewer"), ev.fields.get("reviewer"));
        assert!(decode_fact(&b[..b.len() - 2]).is_err());
    }
}
