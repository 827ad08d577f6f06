//! Cutting lines: partial, CRLF, BOM, UTF-8, length, missing files, resuming.

use super::*;

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
fn a_quiet_log_holds_a_small_buffer_after_a_backlog() {
    let (_d, path) = setup();
    let limits = TailLimits::default();
    let line = format!("{}\n", "z".repeat(99));
    append(&path, line.repeat(10_000).as_bytes());
    let mut t = Tailer::new(path.clone(), None, limits);
    // A batch of less than the backlog: the buffer is full-sized meanwhile.
    assert_eq!(t.read(100 << 10).lines.len(), 1_024);
    assert!(t.buffer_capacity() >= limits.read_buffer);
    let (lines, _, _) = drain(&mut t, 10 << 20);
    assert_eq!(lines.len(), 10_000 - 1_024);
    assert!(t.buffer_capacity() <= 16 << 10, "{}", t.buffer_capacity());
    // Polls of the quiet file keep it small, and new lines are read whole.
    for _ in 0..3 {
        assert!(drain(&mut t, 1 << 20).0.is_empty());
        assert!(t.buffer_capacity() <= 16 << 10);
    }
    append(&path, line.repeat(1_000).as_bytes());
    let (lines, _, c) = drain(&mut t, 10 << 20);
    assert_eq!(lines.len(), 1_000);
    assert_eq!((c.offset, c.line), (1_100_000, 11_000));
    assert!(t.buffer_capacity() <= 16 << 10);
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
