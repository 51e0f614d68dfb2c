//! The manifest-directory source: follows a directory tree of `.yaml`/`.yml`/`.json` files.
//!
//! Every file event (debounced) triggers a rescan of the tree, which is level-triggered and so
//! immune to the many ways editors and ConfigMap mounts rename and replace files. A file is
//! reloaded only when its bytes changed. When a file's new content has errors, the error is logged
//! and counted and the file's last good objects stay in force; a deleted file removes its objects.
//! Names starting with `.` are skipped (editor swap files, the `..data` directories of ConfigMap
//! volumes, whose visible names are symlinks that are followed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::store::{ManifestLoader, Store};
use crate::AgentError;

#[derive(Default)]
struct FileState {
    /// The bytes last read, to skip unchanged files.
    seen: Option<Vec<u8>>,
    /// The error of the current content, if it does not load.
    failing: Option<String>,
}

/// Tracks one directory tree.
pub struct DirSource {
    source: String,
    root: PathBuf,
    loader: Arc<dyn ManifestLoader>,
    store: Store,
    metrics: Arc<Metrics>,
    files: BTreeMap<PathBuf, FileState>,
}

impl DirSource {
    pub fn new(
        source: String,
        root: PathBuf,
        loader: Arc<dyn ManifestLoader>,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Self {
        DirSource {
            source,
            root,
            loader,
            store,
            metrics,
            files: BTreeMap::new(),
        }
    }

    /// Reads the tree and brings the store in line with it.
    pub fn rescan(&mut self) {
        let mut found = Vec::new();
        if let Err(error) = collect(&self.root, &mut found, 0) {
            // An unreadable root keeps the last known state rather than dropping every policy.
            tracing::error!(source = %self.source, %error, "cannot read the manifest directory; keeping the last state");
            self.metrics.source_error(&self.source);
            return;
        }
        found.sort();
        let present: std::collections::BTreeSet<PathBuf> = found.iter().cloned().collect();
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !present.contains(*p))
            .cloned()
            .collect();
        for path in gone {
            self.files.remove(&path);
            tracing::info!(source = %self.source, file = %path.display(), "file removed; its objects are withdrawn");
            self.store.remove(&self.source, &path.to_string_lossy());
        }
        for path in found {
            self.reload(&path);
        }
        let failing = self.files.values().filter(|f| f.failing.is_some()).count();
        self.metrics.set_failing(&self.source, failing as i64);
    }

    fn reload(&mut self, path: &Path) {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(error) => {
                // Vanished between listing and reading: the next event's rescan handles it.
                tracing::debug!(file = %path.display(), %error, "cannot read");
                return;
            }
        };
        let state = self.files.entry(path.to_path_buf()).or_default();
        if state.seen.as_deref() == Some(bytes.as_slice()) {
            return;
        }
        let name = path.to_string_lossy().to_string();
        let outcome = match String::from_utf8(bytes.clone()) {
            Ok(text) => self.loader.load(&name, &text),
            Err(_) => crate::store::LoadOutcome {
                errors: vec!["the file is not UTF-8".into()],
                ..Default::default()
            },
        };
        state.seen = Some(bytes);
        for w in &outcome.warnings {
            tracing::warn!(source = %self.source, file = %name, warning = %w);
        }
        if outcome.errors.is_empty() {
            if state.failing.take().is_some() {
                tracing::info!(source = %self.source, file = %name, "file loads again");
            }
            tracing::info!(
                source = %self.source, file = %name,
                policies = outcome.cluster.policies.len(),
                workloads = outcome.cluster.workloads.len(),
                namespaces = outcome.cluster.namespaces.len(),
                "file loaded"
            );
            self.store.upsert(&self.source, &name, outcome.cluster);
        } else {
            let message = outcome.errors.join("; ");
            tracing::error!(
                source = %self.source, file = %name, errors = %message,
                "file does not load; its last good content stays in force"
            );
            self.metrics.source_error(&self.source);
            state.failing = Some(message);
        }
    }

    /// Files whose current content does not load, with the reason.
    pub fn failing(&self) -> Vec<(PathBuf, String)> {
        self.files
            .iter()
            .filter_map(|(p, f)| f.failing.clone().map(|m| (p.clone(), m)))
            .collect()
    }
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> std::io::Result<()> {
    // Symlinked directories are followed; the depth limit stops symlink loops.
    if depth > 16 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                if let Err(error) = collect(&path, out, depth + 1) {
                    tracing::warn!(dir = %path.display(), %error, "cannot read a subdirectory");
                }
            }
            Ok(m) if m.is_file() && is_manifest(&path) => out.push(path),
            _ => {}
        }
    }
    Ok(())
}

/// Starts following `root`: an initial scan (after which the source is ready), then a rescan
/// after every debounced batch of file events.
pub fn spawn(
    source: String,
    root: PathBuf,
    debounce: Duration,
    loader: Arc<dyn ManifestLoader>,
    store: Store,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, AgentError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut debouncer =
        new_debouncer(
            debounce,
            None,
            move |result: DebounceEventResult| match result {
                Ok(events) if events.is_empty() => {}
                Ok(_) => {
                    let _ = tx.send(());
                }
                Err(errors) => {
                    for e in errors {
                        tracing::warn!(error = %e, "file watcher error; rescanning");
                    }
                    let _ = tx.send(());
                }
            },
        )
        .map_err(|e| AgentError::Watch {
            path: root.display().to_string(),
            message: e.to_string(),
        })?;
    // Watch before the initial scan so that no change between the two is missed.
    debouncer
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|e| AgentError::Watch {
            path: root.display().to_string(),
            message: e.to_string(),
        })?;
    let dir = Arc::new(std::sync::Mutex::new(DirSource::new(
        source.clone(),
        root,
        loader,
        store.clone(),
        metrics,
    )));
    Ok(tokio::spawn(async move {
        let _keep_watching = debouncer;
        rescan_blocking(&dir).await;
        store.mark_ready(&source);
        tracing::info!(%source, "initial scan done");
        loop {
            tokio::select! {
                got = rx.recv() => {
                    if got.is_none() { break; }
                    while rx.try_recv().is_ok() {}
                    rescan_blocking(&dir).await;
                }
                _ = crate::stopped(&mut shutdown) => break,
            }
        }
    }))
}

async fn rescan_blocking(dir: &Arc<std::sync::Mutex<DirSource>>) {
    let dir = dir.clone();
    let joined = tokio::task::spawn_blocking(move || {
        dir.lock().unwrap_or_else(|p| p.into_inner()).rescan();
    })
    .await;
    if let Err(error) = joined {
        tracing::error!(%error, "rescan task failed");
    }
}
