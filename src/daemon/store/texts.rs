//! Rule texts kept once: a violation's message, English message, clause,
//! tags and suggestion are its rule's, the same for thousands of rows.
//! Written into every row they were half of each record, and half of what
//! every commit wrote to the WAL; now `rule_texts` holds each version once
//! (a reload may change a rule's wording: old violations keep theirs) and
//! a violation refers to it. Read through the view `violation_records`.

use foldhash::HashMap;
use rusqlite::{Transaction, params};

use crate::daemon::record::{Record, Texts};

/// The texts' row id by rule, for the texts that rule had last: compared
/// field by field, so a record built from the same rule costs no JSON.
#[derive(Debug, Default)]
pub(in crate::daemon) struct TextsCache {
    by_rule: HashMap<String, (Owned, i64)>,
}

#[derive(Debug, PartialEq, Eq)]
struct Owned {
    message: String,
    message_en: Option<String>,
    clause: Vec<String>,
    tags: Vec<String>,
    suggestion: Option<String>,
    suggestion_en: Option<String>,
}

impl Owned {
    fn of(t: &Texts<'_>) -> Owned {
        Owned {
            message: t.message.to_string(),
            message_en: t.message_en.map(str::to_string),
            clause: t.clause.to_vec(),
            tags: t.tags.to_vec(),
            suggestion: t.suggestion.map(str::to_string),
            suggestion_en: t.suggestion_en.map(str::to_string),
        }
    }

    fn is(&self, t: &Texts<'_>) -> bool {
        self.message == t.message
            && self.message_en.as_deref() == t.message_en
            && self.clause == t.clause
            && self.tags == t.tags
            && self.suggestion.as_deref() == t.suggestion
            && self.suggestion_en.as_deref() == t.suggestion_en
    }
}

impl TextsCache {
    /// Forgets every id: after a failed commit, whose rows were undone.
    pub fn clear(&mut self) {
        self.by_rule.clear();
    }

    /// The id of `r`'s texts, adding them in `tx` when new.
    pub fn id(&mut self, tx: &Transaction<'_>, r: &Record) -> rusqlite::Result<i64> {
        let t = r.texts();
        if let Some((owned, id)) = self.by_rule.get(&r.rule)
            && owned.is(&t)
        {
            return Ok(*id);
        }
        let json = serde_json::to_string(&t).unwrap_or_default();
        let id = tx
            .prepare_cached(
                // DO UPDATE (a no-op) rather than DO NOTHING: RETURNING then
                // gives the id of a row already there too.
                "INSERT INTO rule_texts (data) VALUES (?1)
                 ON CONFLICT (data) DO UPDATE SET data = excluded.data RETURNING id",
            )?
            .query_row(params![json], |row| row.get(0))?;
        self.by_rule.insert(r.rule.clone(), (Owned::of(&t), id));
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use crate::daemon::record::{Record, Waived};
    use crate::daemon::store::{Store, Writes};
    use crate::finding::Severity;

    fn record(fp: &str, subject: &str, message: &str) -> Record {
        Record {
            fingerprint: fp.into(),
            rule: "reply-general-1h".into(),
            severity: Severity::High,
            message: message.into(),
            message_en: Some("Reply overdue".into()),
            clause: vec!["3.2".into()],
            tags: vec!["service".into(), "\"quoted\"".into()],
            suggestion: Some("尽快回复".into()),
            suggestion_en: Some("Reply as soon as possible".into()),
            subject: subject.into(),
            location: vec!["logs/a.jsonl:3".into()],
            at: "2026-03-02 10:30".into(),
            due: Some("2026-03-02 11:30".into()),
            matched: None,
            excerpt: None,
            detail: Some("回复应在1个工作小时内完成".into()),
            detail_en: Some("a reply was due within 1 working hour".into()),
            cue: None,
            field: None,
            waiver: None,
            dispatch: None,
        }
    }

    fn stored(s: &Store) -> Vec<Record> {
        let mut st = s
            .conn()
            .prepare("SELECT data FROM violation_records ORDER BY id")
            .unwrap();
        st.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|d| serde_json::from_str(&d.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn texts_are_kept_once_per_version_and_every_record_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let now: jiff::Timestamp = "2026-03-02T03:00:00Z".parse().unwrap();
        let mut waived = record("f3", "th-3", "回复超时");
        waived.waiver = Some(Waived {
            key: "k".into(),
            note: "测试（a，b）".into(),
        });
        let first = vec![
            record("f1", "th-1", "回复超时"),
            record("f2", "th-2", "回复超时"),
            waived,
        ];
        s.commit(
            Writes {
                records: first.clone(),
                ..Writes::default()
            },
            now,
        )
        .unwrap();
        // The rule reworded by a reload: old rows keep their words.
        let second = vec![record("f4", "th-4", "一般咨询回复超时")];
        s.commit(
            Writes {
                records: second.clone(),
                ..Writes::default()
            },
            now,
        )
        .unwrap();
        let mut want = first;
        want.extend(second);
        assert_eq!(stored(&s), want);
        let texts: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM rule_texts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(texts, 2);
        let data: String = s
            .conn()
            .query_row(
                "SELECT data FROM violations WHERE fingerprint = 'f1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!data.contains("回复超时") && !data.contains("f1"), "{data}");

        // After a restart the cache is empty: the same texts find their row.
        drop(s);
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        s.commit(
            Writes {
                records: vec![record("f5", "th-5", "一般咨询回复超时")],
                ..Writes::default()
            },
            now,
        )
        .unwrap();
        let texts: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM rule_texts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(texts, 2);
        assert_eq!(stored(&s)[4], record("f5", "th-5", "一般咨询回复超时"));
    }

    #[test]
    fn after_a_failed_commit_no_record_points_at_texts_that_were_undone() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let now: jiff::Timestamp = "2026-03-02T03:00:00Z".parse().unwrap();
        s.conn()
            .execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON violations WHEN NEW.fingerprint = 'boom'
                 BEGIN SELECT RAISE(ABORT, 'boom'); END;",
            )
            .unwrap();
        let of = |rule: &str, fp: &str, message: &str| {
            let mut r = record(fp, fp, message);
            r.rule = rule.into();
            r
        };
        let mut commit = |records: Vec<Record>| {
            s.commit(
                Writes {
                    records,
                    ..Writes::default()
                },
                now,
            )
        };
        // Rule a's texts are added, then undone with the whole input.
        assert!(commit(vec![of("a", "a1", "甲"), of("a", "boom", "甲")]).is_err());
        // Rule b's texts may now get the row id a's had.
        commit(vec![of("b", "b1", "乙")]).unwrap();
        commit(vec![of("a", "a2", "甲")]).unwrap();
        let messages: Vec<String> = stored(&s).into_iter().map(|r| r.message).collect();
        assert_eq!(messages, ["乙", "甲"]);
    }

    #[test]
    fn a_row_written_before_v8_reads_as_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.db")).unwrap();
        let r = record("f1", "th-1", "回复超时");
        s.conn()
            .execute(
                "INSERT INTO violations (fingerprint, rule, severity, subject, data, created, updated)
                 VALUES ('f1', 'reply-general-1h', 'high', 'th-1', ?1, 1, 1)",
                [serde_json::to_string(&r).unwrap()],
            )
            .unwrap();
        assert_eq!(stored(&s), vec![r]);
    }
}

#[cfg(test)]
mod own_messages {
    use crate::daemon::record::{Record, from_findings};
    use crate::daemon::store::{Store, Writes};
    use crate::finding::Finding;

    #[test]
    fn a_file_too_big_as_it_grows_adds_no_texts_and_reads_back_its_own_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let now: jiff::Timestamp = "2026-03-02T03:00:00Z".parse().unwrap();
        let mut last = None;
        for size in [2000, 3000, 4000] {
            let f = Finding::not_checked(
                "/d/big.txt".into(),
                &format!("file is {size} bytes, over the 1024-byte limit"),
            );
            let r = from_findings(&[f], &|_| None, "2026-03-02 10:30");
            last = Some(r[0].clone());
            s.commit(
                Writes {
                    records: r,
                    ..Writes::default()
                },
                now,
            )
            .unwrap();
        }
        let n = |q: &str| -> i64 { s.conn().query_row(q, [], |r| r.get(0)).unwrap() };
        assert_eq!(n("SELECT COUNT(*) FROM violations"), 1);
        assert_eq!(n("SELECT COUNT(*) FROM rule_texts"), 1);
        let data: String = s
            .conn()
            .query_row("SELECT data FROM violation_records", [], |r| r.get(0))
            .unwrap();
        let back: Record = serde_json::from_str(&data).unwrap();
        // The first one stored stays (the size it was first reported at).
        let mut first = last.unwrap();
        first.message = "未检查：文件 2000 字节，超过 1024 字节的上限".into();
        first.message_en = Some("Not checked: file is 2000 bytes, over the 1024-byte limit".into());
        first.detail = Some("文件 2000 字节，超过 1024 字节的上限".into());
        first.detail_en = Some("file is 2000 bytes, over the 1024-byte limit".into());
        assert_eq!(back, first);
    }
}
