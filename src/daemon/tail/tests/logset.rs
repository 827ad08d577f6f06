//! Globs and rotated siblings.

use std::collections::HashMap;
use std::fs;

use super::*;

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
