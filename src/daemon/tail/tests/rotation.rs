//! Rotation by rename and by copytruncate, live and while down.

use std::fs;
use std::os::unix::fs::MetadataExt;

use super::*;

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
