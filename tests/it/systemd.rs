//! The shipped unit, checked by the real `systemd-analyze` (PID 1 need not
//! be systemd): `verify` prints nothing and exits 0, and
//! `security --offline=yes` rates it at most 2.0 — alone and with the
//! example drop-in for watched paths.
//!
//! `verify` insists that `ExecStart=`'s binary exists and that the units the
//! service depends on (sysinit.target, network-online.target, …) load, so
//! both run with `--root=` on a scratch tree: the unit in
//! `etc/systemd/system/`, a stub `usr/bin/complyd` (verify only checks that
//! it is an executable file), and a copy of the host's unit library
//! (`/usr/lib/systemd/system`) so target names are checked against the real
//! ones rather than stubs.
//!
//! These tests fail, rather than skip, without `systemd-analyze`:
//! scripts/test.sh installs Debian's `systemd` when it is missing.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNIT: &str = "complyd.service";
const MAX_EXPOSURE: f64 = 2.0;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn systemd_analyze(args: &[&str]) -> Output {
    match Command::new("systemd-analyze").args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "systemd-analyze not found: these tests need it (Debian package `systemd`; \
             scripts/test.sh installs it when missing)"
        ),
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }
}

/// A scratch root with the unit, an optional drop-in, a stub binary and the
/// host's unit library.
fn scratch_root(drop_in: Option<&str>) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let units = root.path().join("etc/systemd/system");
    fs::create_dir_all(&units).unwrap();
    fs::copy(repo_file("systemd/complyd.service"), units.join(UNIT)).unwrap();
    if let Some(conf) = drop_in {
        let dir = units.join(format!("{UNIT}.d"));
        fs::create_dir_all(&dir).unwrap();
        fs::copy(repo_file(conf), dir.join("watched-paths.conf")).unwrap();
    }

    let bin = root.path().join("usr/bin/complyd");
    fs::create_dir_all(bin.parent().unwrap()).unwrap();
    fs::write(&bin, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();

    let library = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_dir())
        .expect("no systemd unit library (/usr/lib/systemd/system): install Debian's `systemd`");
    copy_tree(library, &root.path().join("usr/lib/systemd/system"));
    root
}

/// Copies files and directories, recreating symlinks as they are.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if kind.is_dir() {
            copy_tree(&src, &dst);
        } else if kind.is_file() {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

fn root_arg(root: &tempfile::TempDir) -> String {
    format!("--root={}", root.path().display())
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_verifies(root: &tempfile::TempDir) {
    let out = systemd_analyze(&["verify", &root_arg(root), UNIT]);
    let (stdout, stderr) = text(&out);
    // Unknown keys and bad values are only warnings (exit 0), so any output
    // at all is a failure.
    assert!(
        out.status.success() && stdout.is_empty() && stderr.is_empty(),
        "systemd-analyze verify {UNIT}: {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        out.status
    );
}

/// The overall exposure, with the whole table for failure messages.
fn exposure(root: &tempfile::TempDir) -> (f64, String) {
    let out = systemd_analyze(&[
        "security",
        "--offline=yes",
        "--no-pager",
        &root_arg(root),
        UNIT,
    ]);
    let (stdout, stderr) = text(&out);
    let table = format!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "systemd-analyze security: {}\n{table}",
        out.status
    );
    let prefix = format!("Overall exposure level for {UNIT}:");
    let score = stdout
        .lines()
        .find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest.to_owned()))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} line in the output:\n{table}"));
    (score, table)
}

#[test]
fn unit_verifies_without_any_output() {
    assert_verifies(&scratch_root(None));
}

#[test]
fn unit_exposure_is_at_most_2_0() {
    let (score, table) = exposure(&scratch_root(None));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE:.1}:\n{table}"
    );
}

#[test]
fn unit_with_the_example_drop_in_verifies_and_stays_at_most_2_0() {
    let root = scratch_root(Some("systemd/watched-paths.conf.example"));
    assert_verifies(&root);
    let (score, table) = exposure(&root);
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE:.1}:\n{table}"
    );
    // The drop-in was read, not silently missed.
    assert!(table.contains("✗ SupplementaryGroups="), "{table}");
}

/// The verify check above is only meaningful if warnings reach it.
#[test]
fn verify_reports_an_unknown_key() {
    let root = scratch_root(None);
    let unit = root.path().join("etc/systemd/system").join(UNIT);
    let mut body = fs::read_to_string(&unit).unwrap();
    body = body.replace("[Service]\n", "[Service]\nTypo=yes\n");
    fs::write(&unit, body).unwrap();
    let out = systemd_analyze(&["verify", &root_arg(&root), UNIT]);
    let (stdout, stderr) = text(&out);
    assert!(
        format!("{stdout}{stderr}").contains("Unknown key 'Typo'"),
        "{}\n{stdout}{stderr}",
        out.status
    );
}
