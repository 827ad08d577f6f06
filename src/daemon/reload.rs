//! Reload when the rules folder or the configuration file changes, as on
//! SIGHUP. Editors save in bursts (temp file, rename, chmod), so changes
//! are coalesced for half a second before one reload is asked for.

use std::path::PathBuf;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long a burst of edits is coalesced.
pub const SETTLE: Duration = Duration::from_millis(500);

/// Watches `paths`; sends `()` after each settled burst of changes. The
/// returned watcher stops when dropped. A path that cannot be watched is
/// logged: reload by SIGHUP still works.
pub fn watch(paths: &[PathBuf], tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
    // Absolute paths on both sides: events name files under the watched
    // folder as it was given.
    let paths: Vec<PathBuf> = paths
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let wanted = paths.clone();
    let mut watcher =
        match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && !ev.kind.is_access()
                && ev
                    .paths
                    .iter()
                    .any(|p| wanted.iter().any(|w| p.starts_with(w)))
            {
                let _ = raw_tx.send(());
            }
        }) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("cannot watch the rules for changes ({e}); reload with SIGHUP");
                return None;
            }
        };
    for p in &paths {
        // A file is watched through its folder: editors replace it by rename.
        let (target, mode) = if p.is_dir() {
            (p.clone(), RecursiveMode::Recursive)
        } else {
            (
                p.parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(".")),
                RecursiveMode::NonRecursive,
            )
        };
        if let Err(e) = watcher.watch(&target, mode) {
            tracing::warn!(
                "cannot watch {} for changes ({e}); reload with SIGHUP",
                target.display()
            );
        }
    }
    tokio::spawn(async move {
        while raw_rx.recv().await.is_some() {
            // Coalesce the burst.
            loop {
                match tokio::time::timeout(SETTLE, raw_rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    Some(watcher)
}
