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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn edits_to_the_rules_or_the_config_ask_for_one_reload_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        let config = dir.path().join("complyd.yaml");
        std::fs::write(&config, "state: var\n").unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let _w = watch(&[rules.clone(), config.clone()], tx).unwrap();

        // A burst of edits to a pack: one reload.
        for i in 0..5 {
            std::fs::write(rules.join("claims.yaml"), format!("# {i}\n")).unwrap();
        }
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(got.unwrap(), Some(()));
        assert!(
            tokio::time::timeout(SETTLE * 2, rx.recv()).await.is_err(),
            "one reload per burst"
        );
        // The state folder beside the config changes all the time: ignored.
        std::fs::create_dir(dir.path().join("var")).unwrap();
        std::fs::write(dir.path().join("var/complyd.db"), "x").unwrap();
        assert!(tokio::time::timeout(SETTLE * 3, rx.recv()).await.is_err());
        // The config replaced by rename, as editors save: a reload.
        std::fs::write(dir.path().join(".complyd.yaml.swp"), "state: st\n").unwrap();
        std::fs::rename(dir.path().join(".complyd.yaml.swp"), &config).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(got.unwrap(), Some(()));
    }
}
