use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use std::os::unix::fs::MetadataExt;

use super::*;

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// (file name, line, text or reason).
type Got = (String, u64, Result<String, String>);

fn numbered(from: u32, to: u32) -> String {
    (from..to).map(|i| format!("{{\"n\":{i}}}\n")).collect()
}

/// Reads until nothing is new: (file name, line, text or error), notes, cursor.
fn drain(t: &mut Tailer, max_bytes: usize) -> (Vec<Got>, Vec<TailNote>, Cursor) {
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    loop {
        let b = t.read(max_bytes);
        let empty = b.is_empty();
        for l in b.lines {
            let name = l.file.file_name().unwrap().to_string_lossy().into_owned();
            lines.push((name, l.line, l.text));
        }
        notes.extend(b.notes);
        if empty {
            return (lines, notes, b.cursor);
        }
    }
}

fn texts(lines: &[Got]) -> Vec<String> {
    lines.iter().map(|(_, _, t)| t.clone().unwrap()).collect()
}

fn ns(lines: &[Got]) -> Vec<u32> {
    lines
        .iter()
        .map(|(_, _, t)| {
            let v: serde_json::Value = serde_json::from_str(t.as_ref().unwrap()).unwrap();
            v["n"].as_u64().unwrap() as u32
        })
        .collect()
}

fn where_(lines: &[Got]) -> Vec<String> {
    lines.iter().map(|(f, n, _)| format!("{f}:{n}")).collect()
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activity.jsonl");
    (dir, path)
}

#[test]
fn partial_lines_wait_for_their_newline() {
    let (_d, path) = setup();
    append(&path, b"{\"a\":1}\n{\"b\"");
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    let (lines, notes, c) = drain(&mut t, 1 << 20);
    assert_eq!(texts(&lines), ["{\"a\":1}"]);
    assert!(notes.is_empty());
    assert_eq!((c.offset, c.line), (8, 1));
    append(&path, b":2}\n");
    let (lines, _, c) = drain(&mut t, 1 << 20);
    assert_eq!(texts(&lines), ["{\"b\":2}"]);
    assert_eq!(where_(&lines), ["activity.jsonl:2"]);
    assert_eq!((c.offset, c.line), (16, 2));
}

#[test]
fn crlf_and_a_leading_bom_are_stripped() {
    let (_d, path) = setup();
    append(
        &path,
        "\u{FEFF}{\"a\":1}\r\n\r\n{\"b\":\"x\r\"}\n\u{FEFF}z\r\n".as_bytes(),
    );
    let mut t = Tailer::new(path, None, TailLimits::default());
    let (lines, _, _) = drain(&mut t, 1 << 20);
    assert_eq!(
        texts(&lines),
        ["{\"a\":1}", "", "{\"b\":\"x\r\"}", "\u{FEFF}z"]
    );
}

#[test]
fn invalid_utf8_is_an_error_item_and_reading_goes_on() {
    let (_d, path) = setup();
    append(&path, b"ok\n\xff\xfe bad\nok2\n");
    let mut t = Tailer::new(path, None, TailLimits::default());
    let (lines, _, _) = drain(&mut t, 1 << 20);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].2, Ok("ok".into()));
    let err = lines[1].2.clone().unwrap_err();
    assert!(
        err.contains("line 2") && err.contains("activity.jsonl") && err.contains("UTF-8"),
        "{err}"
    );
    assert_eq!(lines[2], ("activity.jsonl".into(), 3, Ok("ok2".into())));
}

#[test]
fn a_10_mb_line_is_skipped_with_bounded_memory() {
    let (_d, path) = setup();
    let limits = TailLimits::default();
    let bound = limits.max_line_bytes + 2 * limits.read_buffer;
    append(&path, b"first\n");
    let mut t = Tailer::new(path.clone(), None, limits);
    let mut got = Vec::new();
    let chunk = vec![b'x'; 1 << 20];
    // The line arrives in pieces, read in between, as a writer would.
    for _ in 0..10 {
        append(&path, &chunk);
        let (lines, _, _) = drain(&mut t, 1 << 20);
        got.extend(lines);
        assert!(
            t.buffer_capacity() <= bound,
            "{} > {bound}",
            t.buffer_capacity()
        );
    }
    append(&path, b"\nlast\n");
    let (lines, _, c) = drain(&mut t, 1 << 20);
    got.extend(lines);
    assert!(t.buffer_capacity() <= bound);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].2, Ok("first".into()));
    assert_eq!(got[1].1, 2);
    assert_eq!(
        got[1].2,
        Err("line 2 is 10485760 bytes, over the 1 MiB limit".into())
    );
    assert_eq!(got[2], ("activity.jsonl".into(), 3, Ok("last".into())));
    assert_eq!(c.offset, 6 + 10_485_760 + 1 + 5);

    // Written at once, too; and a line just over a small limit.
    let (_d2, p2) = setup();
    let mut big = vec![b'y'; 10 << 20];
    big.extend_from_slice(b"\nok\n");
    append(&p2, &big);
    let mut t = Tailer::new(p2, None, limits);
    let (lines, _, _) = drain(&mut t, 1 << 20);
    assert!(t.buffer_capacity() <= bound);
    assert_eq!(lines.len(), 2);
    assert!(lines[0].2.is_err() && lines[1].2 == Ok("ok".into()));

    let (_d3, p3) = setup();
    append(&p3, b"12345\n123456\n");
    let small = TailLimits {
        max_line_bytes: 5,
        read_buffer: 4096,
    };
    let (lines, _, _) = drain(&mut Tailer::new(p3, None, small), 1 << 20);
    assert_eq!(lines[0].2, Ok("12345".into()));
    assert_eq!(
        lines[1].2,
        Err("line 2 is 6 bytes, over the 5-byte limit".into())
    );
}

#[test]
fn a_missing_file_is_waited_for_and_told_once() {
    let (_d, path) = setup();
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    let (lines, notes, _) = drain(&mut t, 1 << 20);
    assert!(lines.is_empty());
    assert_eq!(notes, [TailNote::Missing(path.clone())]);
    assert!(t.read(1 << 20).is_empty());
    append(&path, numbered(0, 3).as_bytes());
    let (lines, notes, _) = drain(&mut t, 1 << 20);
    assert_eq!(notes, [TailNote::Appeared(path.clone())]);
    assert_eq!(ns(&lines), [0, 1, 2]);
    assert_eq!(
        notes[0].to_string(),
        format!("{}: appeared; following it", path.display())
    );
}

#[test]
fn a_saved_cursor_resumes_exactly() {
    let (_d, path) = setup();
    append(&path, numbered(0, 1000).as_bytes());
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    // A small budget: the batch ends somewhere in the middle.
    let b = t.read(1000);
    assert!(!b.lines.is_empty() && b.lines.len() < 1000);
    let first = b.lines.len() as u32;
    let saved: Cursor = serde_json::from_str(&serde_json::to_string(&b.cursor).unwrap()).unwrap();
    drop(t);
    append(&path, numbered(1000, 1010).as_bytes());
    let mut t = Tailer::new(path, Some(saved), TailLimits::default());
    let (lines, notes, _) = drain(&mut t, 1 << 20);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(ns(&lines), (first..1010).collect::<Vec<_>>());
    assert_eq!(lines[0].1, u64::from(first) + 1);
}

#[test]
fn rename_rotation_is_followed_live() {
    let (_d, path) = setup();
    let rotated = path.with_extension("jsonl.1");
    append(&path, numbered(0, 5).as_bytes());
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    assert_eq!(ns(&drain(&mut t, 1 << 20).0), [0, 1, 2, 3, 4]);

    append(&path, numbered(5, 7).as_bytes());
    fs::rename(&path, &rotated).unwrap();
    fs::File::create(&path).unwrap();
    // The writer has not reopened yet: it still appends to the old file,
    // ending with an unterminated line.
    append(&rotated, format!("{}{{\"n\":9", numbered(7, 9)).as_bytes());
    let (lines, notes, _) = drain(&mut t, 1 << 20);
    assert_eq!(ns(&lines), [5, 6, 7, 8]);
    assert_eq!(where_(&lines)[0], "activity.jsonl.1:6");
    assert_eq!(
        notes,
        [TailNote::Rotated {
            from: path.clone(),
            to: rotated.clone()
        }]
    );
    // Once the writer writes to the new file, the old one is final.
    append(&path, numbered(10, 12).as_bytes());
    let (lines, _, c) = drain(&mut t, 1 << 20);
    assert_eq!(texts(&lines)[0], "{\"n\":9");
    assert_eq!(ns(&lines[1..]), [10, 11]);
    assert_eq!(
        where_(&lines),
        [
            "activity.jsonl.1:10",
            "activity.jsonl:1",
            "activity.jsonl:2"
        ]
    );
    assert_eq!((c.ino, c.line), (fs::metadata(&path).unwrap().ino(), 2));
}

#[test]
fn rename_rotation_while_down_finishes_the_rotated_file_first() {
    let (_d, path) = setup();
    let dir = path.parent().unwrap();
    append(&path, numbered(0, 100).as_bytes());
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    let b = t.read(500);
    let done = b.lines.len() as u32;
    let saved = b.cursor;
    drop(t);

    append(&path, numbered(100, 110).as_bytes());
    // An older generation, compressed, and an unrelated log beside it.
    fs::write(dir.join("activity.jsonl.2.gz"), b"\x1f\x8b junk").unwrap();
    fs::write(dir.join("other.jsonl"), numbered(0, 3)).unwrap();
    fs::rename(&path, dir.join("activity.jsonl-20261126")).unwrap();
    append(&path, numbered(110, 120).as_bytes());

    let mut t = Tailer::new(path.clone(), Some(saved), TailLimits::default());
    let (lines, notes, _) = drain(&mut t, 1 << 20);
    assert_eq!(ns(&lines), (done..120).collect::<Vec<_>>());
    let w = where_(&lines);
    assert_eq!(w[0], format!("activity.jsonl-20261126:{}", done + 1));
    assert_eq!(w[w.len() - 10], "activity.jsonl:1");
    assert_eq!(
        notes,
        [TailNote::Rotated {
            from: path.clone(),
            to: dir.join("activity.jsonl-20261126")
        }]
    );
}

#[test]
fn rotated_away_and_not_recreated_then_restarted() {
    let (_d, path) = setup();
    append(&path, numbered(0, 10).as_bytes());
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    let b = t.read(100);
    let done = b.lines.len() as u32;
    drop(t);
    fs::rename(&path, path.with_extension("jsonl.1")).unwrap();
    let mut t = Tailer::new(path.clone(), Some(b.cursor), TailLimits::default());
    let (lines, notes, _) = drain(&mut t, 1 << 20);
    assert_eq!(ns(&lines), (done..10).collect::<Vec<_>>());
    assert!(
        notes.contains(&TailNote::Missing(path.clone())),
        "{notes:?}"
    );
    append(&path, numbered(10, 12).as_bytes());
    let (lines, notes, _) = drain(&mut t, 1 << 20);
    assert_eq!(ns(&lines), [10, 11]);
    assert_eq!(notes, [TailNote::Appeared(path)]);
}

/// What logrotate's copytruncate does: copy, then truncate in place.
fn copytruncate(path: &Path, copy: &Path) {
    fs::copy(path, copy).unwrap();
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[test]
fn copytruncate_is_recovered_from_the_copy() {
    let (_d, path) = setup();
    let copy = path.with_extension("jsonl.1");
    append(&path, numbered(0, 5).as_bytes());
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    assert_eq!(ns(&drain(&mut t, 1 << 20).0), [0, 1, 2, 3, 4]);
    // Written after our last read: only the copy will hold these.
    append(&path, numbered(5, 8).as_bytes());
    copytruncate(&path, &copy);
    append(&path, numbered(8, 9).as_bytes());
    let (lines, notes, c) = drain(&mut t, 1 << 20);
    assert_eq!(ns(&lines), [5, 6, 7, 8]);
    assert_eq!(
        where_(&lines),
        [
            "activity.jsonl.1:6",
            "activity.jsonl.1:7",
            "activity.jsonl.1:8",
            "activity.jsonl:1"
        ]
    );
    assert_eq!(
        notes,
        [
            TailNote::Truncated {
                path: path.clone(),
                at: numbered(0, 5).len() as u64
            },
            TailNote::Rotated {
                from: path.clone(),
                to: copy.clone()
            }
        ]
    );
    assert_eq!((c.ino, c.line), (fs::metadata(&path).unwrap().ino(), 1));
}

#[test]
fn copytruncate_regrown_past_the_offset_is_seen_by_its_first_line() {
    let (_d, path) = setup();
    let copy = path.with_extension("jsonl.1");
    append(&path, numbered(0, 2).as_bytes());
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    assert_eq!(ns(&drain(&mut t, 1 << 20).0), [0, 1]);
    append(&path, numbered(2, 3).as_bytes());
    copytruncate(&path, &copy);
    // Longer than what was read before: the size alone would not tell.
    append(&path, numbered(1000, 1010).as_bytes());
    let (lines, notes, _) = drain(&mut t, 1 << 20);
    assert_eq!(
        ns(&lines),
        [
            2, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009
        ]
    );
    assert!(matches!(notes[0], TailNote::Truncated { .. }), "{notes:?}");
}

#[test]
fn copytruncate_without_a_copy_is_reported_lost() {
    let (_d, path) = setup();
    append(&path, numbered(0, 5).as_bytes());
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    drain(&mut t, 1 << 20);
    append(&path, numbered(5, 8).as_bytes());
    // Compressed right away: never read, so the rest is lost.
    copytruncate(&path, &path.with_extension("jsonl.1.gz"));
    append(&path, numbered(8, 9).as_bytes());
    let (lines, notes, _) = drain(&mut t, 1 << 20);
    assert_eq!(ns(&lines), [8]);
    assert!(
        matches!(
            &notes[..],
            [TailNote::Truncated { .. }, TailNote::Lost { .. }]
        ),
        "{notes:?}"
    );
    assert!(notes[1].to_string().contains("lines may be lost"));
}

#[test]
fn copytruncate_while_down_is_recovered_after_the_restart() {
    let (_d, path) = setup();
    let copy = path.with_extension("jsonl.1");
    append(&path, numbered(0, 50).as_bytes());
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    let b = t.read(300);
    let done = b.lines.len() as u32;
    drop(t);
    append(&path, numbered(50, 60).as_bytes());
    copytruncate(&path, &copy);
    append(&path, numbered(60, 100).as_bytes());
    let mut t = Tailer::new(path.clone(), Some(b.cursor), TailLimits::default());
    let (lines, notes, _) = drain(&mut t, 1 << 20);
    assert_eq!(ns(&lines), (done..100).collect::<Vec<_>>());
    assert!(matches!(notes[0], TailNote::Truncated { .. }), "{notes:?}");

    // A restart while the copy is being read resumes in the copy.
    let (_d, path) = setup();
    let copy = path.with_extension("jsonl.1");
    append(&path, numbered(0, 50).as_bytes());
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    drain(&mut t, 1 << 20);
    append(&path, numbered(50, 100).as_bytes());
    copytruncate(&path, &copy);
    append(&path, numbered(100, 110).as_bytes());
    let b = t.read(200);
    assert_eq!(b.lines[0].file.as_ref(), copy.as_path());
    let last = ns(&b
        .lines
        .iter()
        .map(|l| (String::new(), l.line, l.text.clone()))
        .collect::<Vec<_>>());
    drop(t);
    let mut t = Tailer::new(path, Some(b.cursor), TailLimits::default());
    let (lines, _, _) = drain(&mut t, 1 << 20);
    let next = *last.last().unwrap() + 1;
    assert_eq!(ns(&lines), (next..110).collect::<Vec<_>>());
}

#[test]
fn the_last_line_of_a_copy_is_delivered_without_newline() {
    let (_d, path) = setup();
    let copy = path.with_extension("jsonl.1");
    append(&path, b"{\"n\":0}\n{\"n\":1}");
    let mut t = Tailer::new(path.clone(), None, TailLimits::default());
    assert_eq!(ns(&drain(&mut t, 1 << 20).0), [0]);
    copytruncate(&path, &copy);
    let (lines, _, _) = drain(&mut t, 1 << 20);
    assert_eq!(ns(&lines), [1]);
    append(&path, numbered(2, 3).as_bytes());
    assert_eq!(ns(&drain(&mut t, 1 << 20).0), [2]);
}

#[test]
fn globs_follow_live_files_but_not_their_rotated_siblings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("a.jsonl"), numbered(0, 3)).unwrap();
    fs::write(d.join("b.jsonl"), numbered(100, 102)).unwrap();
    fs::write(d.join("a.jsonl.1"), numbered(900, 901)).unwrap();
    fs::write(d.join("a.jsonl.2.gz"), b"\x1f\x8b").unwrap();
    fs::write(d.join("a-20261126.jsonl"), numbered(800, 801)).unwrap();
    fs::create_dir(d.join("sub")).unwrap();
    fs::write(d.join("sub/c.jsonl"), numbered(200, 201)).unwrap();
    let patterns = vec![
        format!("{}/*", d.display()),
        format!("{}/*/c.jsonl", d.display()),
    ];
    let mut set = LogSet::new(patterns, HashMap::new(), TailLimits::default());
    let got = set.read(1 << 20);
    let key = |n: &str| d.join(n).to_string_lossy().into_owned();
    assert_eq!(
        set.keys(),
        [key("a.jsonl"), key("b.jsonl"), key("sub/c.jsonl")]
    );
    let count: usize = got.iter().map(|(_, b)| b.lines.len()).sum();
    assert_eq!(count, 6);

    // A rotation by rename and one by copytruncate: the new siblings are
    // not followed on their own, and every line comes once.
    fs::rename(d.join("a.jsonl.1"), d.join("a.jsonl.2")).unwrap();
    fs::rename(d.join("a.jsonl"), d.join("a.jsonl.1")).unwrap();
    fs::write(d.join("a.jsonl"), numbered(3, 5)).unwrap();
    append(&d.join("b.jsonl"), numbered(102, 103).as_bytes());
    copytruncate(&d.join("b.jsonl"), &d.join("b.jsonl.copy"));
    append(&d.join("b.jsonl"), numbered(103, 104).as_bytes());
    set.set_scan_interval(std::time::Duration::ZERO);
    let mut all: HashMap<String, Vec<u32>> = HashMap::new();
    for _ in 0..3 {
        for (k, b) in set.read(1 << 20) {
            let lines: Vec<_> = b
                .lines
                .into_iter()
                .map(|l| (String::new(), l.line, l.text))
                .collect();
            all.entry(k).or_default().extend(ns(&lines));
        }
    }
    assert_eq!(
        set.keys(),
        [key("a.jsonl"), key("b.jsonl"), key("sub/c.jsonl")]
    );
    assert_eq!(all[&key("a.jsonl")], [3, 4]);
    assert_eq!(all[&key("b.jsonl")], [102, 103]);
}

#[test]
fn a_logset_resumes_a_file_rotated_while_down() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = d.join("a.jsonl");
    fs::write(&a, numbered(0, 10)).unwrap();
    let pattern = vec![format!("{}/*.jsonl", d.display())];
    let mut set = LogSet::new(pattern.clone(), HashMap::new(), TailLimits::default());
    let got = set.read(100);
    let (key, b) = &got[0];
    let done = b.lines.len() as u32;
    let saved = HashMap::from([(key.clone(), b.cursor.clone())]);
    drop(set);
    // Rotated, and the new file not created yet: the glob matches nothing.
    fs::rename(&a, d.join("a.jsonl.1")).unwrap();
    let mut set = LogSet::new(pattern, saved, TailLimits::default());
    let got = set.read(1 << 20);
    let lines: Vec<_> = got[0]
        .1
        .lines
        .iter()
        .map(|l| (String::new(), l.line, l.text.clone()))
        .collect();
    assert_eq!(ns(&lines), (done..10).collect::<Vec<_>>());
}
