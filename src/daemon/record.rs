//! A violation as the daemon stores and mails it, whatever found it: a
//! content rule on a dropped file, or a temporal rule on the activity logs.
//!
//! The fingerprint is the violation's identity across restarts, re-saves
//! and re-reads: it is built from what was found (rule, file or subject,
//! matched text, due instant), never from a line number, so moving a
//! paragraph does not make an old violation new, and waivers can name it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{self, Env, Violation};
use crate::finding::{Finding, Severity};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub fingerprint: String,
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    /// The rule's English message (`message_en`), for English mail; rows
    /// stored before it existed read as none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_en: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clause: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    /// The rule's English suggestion, for English mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion_en: Option<String>,
    /// What it is about: a file path, a thread, an account, a post.
    pub subject: String,
    /// Where to look: `path:line:col` for a file, `file:line` of the events.
    pub location: Vec<String>,
    /// When it became a violation (local time, RFC 3339 with offset).
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// A short excerpt around the match, for the mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The detail for English mail, where the rule kind writes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail_en: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The waiver that accepted it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<Waived>,
    /// Where and when it is mailed (decided by the routes; not stored with
    /// the violation but as its outbox rows). `None`: at once, to `mail.to`.
    #[serde(skip)]
    pub dispatch: Option<Vec<super::route::Dispatch>>,
}

/// What a violation's rule says (its message, clause, tags, suggestion):
/// the same for every violation of the rule, so the database keeps it
/// once, in `rule_texts`, and each violation refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Texts<'a> {
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_en: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub clause: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion_en: Option<&'a str>,
}

/// A record as its `data` column keeps it: without the columns of its row
/// (fingerprint, rule, severity, subject) and without its rule's texts.
/// The view `violation_records` puts them back (schema v8).
#[derive(Serialize)]
struct Stored<'a> {
    /// Only where the message is the record's own, not its rule's: why a
    /// file was not checked (it names the file's size), which would
    /// otherwise add a row of texts per size.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_en: Option<&'a str>,
    location: &'a [String],
    at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    due: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    matched: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    excerpt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail_en: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cue: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiver: Option<&'a Waived>,
}

/// How a violation was waived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waived {
    /// Counts the waiver's uses (`Waiver::key`).
    pub key: String,
    /// `reason (by, origin)`, shown with the violation.
    pub note: String,
}

impl Record {
    /// A message of its own, not its rule's (see `Stored`).
    fn own_message(&self) -> bool {
        self.rule == crate::finding::NOT_CHECKED
    }

    /// Its rule's texts.
    pub fn texts(&self) -> Texts<'_> {
        let own = self.own_message();
        Texts {
            message: if own { "未检查" } else { &self.message },
            message_en: if own {
                Some("Not checked")
            } else {
                self.message_en.as_deref()
            },
            clause: &self.clause,
            tags: &self.tags,
            suggestion: self.suggestion.as_deref(),
            suggestion_en: self.suggestion_en.as_deref(),
        }
    }

    /// The `data` column: what is neither a column nor the rule's texts.
    pub fn stored_json(&self) -> String {
        let own = self.own_message();
        // Every field named: one added to Record must be placed here, in
        // the row's columns, in the texts, or left out on purpose.
        let Record {
            fingerprint: _,
            rule: _,
            severity: _,
            message,
            message_en,
            clause: _,
            tags: _,
            suggestion: _,
            suggestion_en: _,
            subject: _,
            location,
            at,
            due,
            matched,
            excerpt,
            detail,
            detail_en,
            cue,
            field,
            waiver,
            dispatch: _,
        } = self;
        serde_json::to_string(&Stored {
            message: own.then_some(message.as_str()),
            message_en: message_en.as_deref().filter(|_| own),
            location,
            at,
            due: due.as_deref(),
            matched: matched.as_deref(),
            excerpt: excerpt.as_deref(),
            detail: detail.as_deref(),
            detail_en: detail_en.as_deref(),
            cue: cue.as_deref(),
            field: field.as_deref(),
            waiver: waiver.as_ref(),
        })
        .unwrap_or_default()
    }

    /// The files a violation points at (for path-scoped waivers).
    pub fn paths(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .location
            .iter()
            .map(|l| l.split(':').next().unwrap_or(l))
            .collect();
        v.push(&self.subject);
        v
    }

    /// Applies the first waiver in force that matches.
    pub fn apply_waivers(
        &mut self,
        waivers: &[crate::rules::waivers::Waiver],
        now: jiff::Timestamp,
    ) {
        let paths = self.paths();
        let hit = waivers
            .iter()
            .find(|w| w.matches(&self.rule, &self.fingerprint, &self.subject, &paths, now));
        self.waiver = hit.map(|w| Waived {
            key: w.key(),
            note: format!("{}（{}，{}）", w.reason, w.by, w.origin),
        });
    }
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let out = h.finalize();
    let mut s = String::with_capacity(32);
    for b in &out[..16] {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// Records for a checked file's findings. The n-th occurrence of the same
/// matched text for the same rule keeps its identity when lines move.
pub fn from_findings(
    findings: &[Finding],
    text_of: &dyn Fn(&Finding) -> Option<String>,
    at: &str,
) -> Vec<Record> {
    let mut seen: std::collections::HashMap<(&str, &str, Option<&str>), usize> =
        std::collections::HashMap::new();
    findings
        .iter()
        .map(|f| {
            let n = seen
                .entry((f.rule.as_str(), f.matched.as_str(), f.field.as_deref()))
                .or_default();
            *n += 1;
            let path = f.path.display().to_string();
            // Why a file was not checked, without its numbers: a file too
            // big to check stays one violation as it grows.
            let nth = if f.rule == crate::finding::NOT_CHECKED {
                // The English reason, as fingerprints were made before the
                // Chinese one was shown.
                let why = f.detail_en.as_deref().or(f.detail.as_deref()).unwrap_or("");
                why.chars().filter(|c| !c.is_ascii_digit()).collect()
            } else {
                n.to_string()
            };
            let fingerprint = digest(&[
                "file",
                &f.rule,
                &path,
                f.field.as_deref().unwrap_or(""),
                &f.matched,
                &nth,
            ]);
            let location = if f.line == 0 {
                path.clone()
            } else {
                format!("{path}:{}:{}", f.line, f.column)
            };
            Record {
                fingerprint,
                rule: f.rule.clone(),
                severity: f.severity,
                message: f.message.clone(),
                message_en: f.message_en.clone(),
                clause: f.clause.clone(),
                tags: f.tags.clone(),
                suggestion: f.suggestion.clone(),
                suggestion_en: f.suggestion_en.clone(),
                subject: path,
                location: vec![location],
                at: at.to_string(),
                due: None,
                matched: (!f.matched.is_empty()).then(|| f.matched.clone()),
                excerpt: text_of(f),
                detail: f.detail.clone(),
                detail_en: f.detail_en.clone(),
                cue: f.cue.clone(),
                field: f.field.clone(),
                waiver: None,
                dispatch: None,
            }
        })
        .collect()
}

/// The fingerprint of a temporal violation: a deadline is identified by
/// rule, subject and due instant (so its late discharge finds it again);
/// anything else by rule, subject, time and evidence.
pub fn violation_fingerprint(
    rule: &str,
    subject: &str,
    due: Option<jiff::Timestamp>,
    at: jiff::Timestamp,
    evidence: &str,
    matched: Option<&str>,
) -> String {
    match due {
        Some(due) => digest(&["deadline", rule, subject, &due.to_string()]),
        None => digest(&[
            "event",
            rule,
            subject,
            &at.to_string(),
            evidence,
            matched.unwrap_or(""),
        ]),
    }
}

/// A temporal violation's record; takes the violation, whose texts become
/// the record's (30k violations on the ingestion bench: copying them was
/// 1 % of the core thread).
pub fn from_violation(env: &Env, v: Violation) -> Record {
    let location: Vec<String> = v.evidence.iter().map(ToString::to_string).collect();
    let fingerprint = violation_fingerprint(
        &v.rule,
        &v.subject,
        v.due,
        v.at,
        location.first().map_or("", String::as_str),
        v.matched.as_deref(),
    );
    Record {
        fingerprint,
        rule: v.rule,
        severity: v.severity,
        message: v.message,
        message_en: v.message_en,
        clause: v.clause,
        tags: v.tags,
        suggestion: v.suggestion,
        suggestion_en: v.suggestion_en,
        subject: v.subject,
        location,
        at: engine::local_time(&env.calendar, v.at),
        due: v.due.map(|d| engine::local_time(&env.calendar, d)),
        matched: v.matched,
        excerpt: None,
        detail: v.detail,
        detail_en: v.detail_en,
        cue: None,
        field: None,
        waiver: None,
        dispatch: None,
    }
}

/// Up to `radius` characters either side of `byte_start..byte_end` in `text`,
/// with the match kept whole.
pub fn excerpt(text: &str, byte_start: usize, byte_end: usize, radius: usize) -> Option<String> {
    let (a, b) = (byte_start.min(text.len()), byte_end.min(text.len()));
    if !text.is_char_boundary(a) || !text.is_char_boundary(b) || a > b {
        return None;
    }
    let before: String = {
        let mut v: Vec<char> = text[..a].chars().rev().take(radius).collect();
        v.reverse();
        v.into_iter().collect()
    };
    let after: String = text[b..].chars().take(radius).collect();
    let clean = |s: &str| s.replace(['\n', '\r'], " ");
    Some(format!(
        "{}{}{}",
        clean(&before),
        clean(&text[a..b]),
        clean(&after)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_the_match_and_cuts_on_characters() {
        let t = "第一行\n这款产品可以根治高血压，欢迎购买";
        let s = t.find("根治").unwrap();
        let e = excerpt(t, s, s + "根治".len(), 4).unwrap();
        assert_eq!(e, "产品可以根治高血压，");
        assert!(excerpt(t, 1, 2, 3).is_none());
    }

    #[test]
    fn a_file_not_checked_keeps_the_fingerprint_it_had_when_its_reason_was_english() {
        let f = Finding::not_checked(
            std::path::PathBuf::from("/d/big.txt"),
            "file is 6000 bytes, over the 1024-byte limit",
        );
        let r = from_findings(&[f], &|_| None, "2026-03-02 10:30");
        // sha256 of file, not-checked, the path, no field, no match, and
        // the English reason without its numbers (as stored before v8).
        assert_eq!(r[0].fingerprint, "94c17cb7436eee4fce98a120f13c9716");
        assert_eq!(
            r[0].detail.as_deref(),
            Some("文件 6000 字节，超过 1024 字节的上限")
        );
    }

    #[test]
    fn deadline_fingerprints_ignore_evidence_and_time() {
        let due: jiff::Timestamp = "2026-03-02T02:30:00Z".parse().unwrap();
        let a = violation_fingerprint("r", "t1", Some(due), due, "a.jsonl:1", None);
        let b = violation_fingerprint("r", "t1", Some(due), due, "b.jsonl:9", None);
        assert_eq!(a, b);
        let c = violation_fingerprint("r", "t2", Some(due), due, "a.jsonl:1", None);
        assert_ne!(a, c);
    }

    #[test]
    fn rows_stored_before_message_en_still_read_and_new_ones_keep_it() {
        let old = r#"{"fingerprint":"f","rule":"r","severity":"high","message":"未经审核发布",
            "subject":"ks-main","location":["a.jsonl:3"],"at":"2026-03-02 10:30"}"#;
        let r: Record = serde_json::from_str(old).unwrap();
        assert_eq!(r.message_en, None);
        let mut r = r;
        r.message_en = Some("Published without approval".into());
        let json = serde_json::to_string(&r).unwrap();
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.message_en.as_deref(),
            Some("Published without approval")
        );
    }
}
