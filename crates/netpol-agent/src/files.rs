//! The manifest-directory source: follows a directory tree of `.yaml`/`.yml`/`.json` files.
//!
//! Every file event (debounced) triggers a rescan of the tree, which is level-triggered and so
//! immune to the many ways editors and ConfigMap mounts rename and replace files. A file is
//! reloaded only when its bytes changed. When a file's new content has errors, the error is logged
//! and counted and the file's last good objects stay in force; a deleted file removes its objects.
//! All changes found by one rescan reach the store as one change. The first sync waits until the
//! directory holds manifests and every file has loaded once (see [`ScanSummary::incomplete`]).
//! Names starting with `.` are skipped (editor swap files, the `..data` directories of ConfigMap
//! volumes, whose visible names are symlinks that are followed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use netpol_core::Cluster;

use crate::store::{ManifestLoader, Store};
use crate::AgentError;

#[derive(Default)]
struct FileState {
    /// The bytes last read, to skip unchanged files.
    seen: Option<Vec<u8>>,
    /// The error of the current content, if it does not load.
    failing: Option<String>,
    /// Some content of this file loaded at some point (its last good content is in the store).
    loaded_once: bool,
}

/// What one rescan found, for deciding whether the initial list is complete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanSummary {
    /// Manifest files found.
    pub files: usize,
    /// Files that do not load and never did: the store lacks their objects entirely.
    pub never_loaded: Vec<(PathBuf, String)>,
    /// The directory itself could not be read.
    pub unreadable: Option<String>,
}

impl ScanSummary {
    /// Why this scan is not a complete view of the directory, if it is not.
    ///
    /// Applying an incomplete first view could withdraw rules an earlier agent left in force
    /// (a missing policy file opens traffic), so the first sync waits for: a readable directory,
    /// at least one manifest file, and every file having loaded at least once.
    pub fn incomplete(&self) -> Option<String> {
        if let Some(e) = &self.unreadable {
            return Some(e.clone());
        }
        if self.files == 0 {
            return Some("no manifest files yet".into());
        }
        if let Some((path, error)) = self.never_loaded.first() {
            let more = self.never_loaded.len() - 1;
            let mut reason = format!("{} does not load: {error}", path.display());
            if more > 0 {
                reason.push_str(&format!(" (and {more} more files)"));
            }
            return Some(reason);
        }
        None
    }
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
    /// A source called `source` for the tree under `root`, not yet scanned.
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

    /// Reads the tree and brings the store in line with it, as one store change: a sync never
    /// sees some of the files of one rescan and not others.
    pub fn rescan(&mut self) -> ScanSummary {
        self.metrics.rescan(&self.source);
        let mut found = Vec::new();
        if let Err(error) = collect(&self.root, &mut found, 0) {
            // An unreadable root keeps the last known state rather than dropping every policy.
            tracing::error!(source = %self.source, %error, "cannot read the manifest directory; keeping the last state");
            self.metrics.source_error(&self.source);
            return ScanSummary {
                unreadable: Some(format!("cannot read {}: {error}", self.root.display())),
                ..ScanSummary::default()
            };
        }
        found.sort();
        let present: std::collections::BTreeSet<PathBuf> = found.iter().cloned().collect();
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !present.contains(*p))
            .cloned()
            .collect();
        let mut removals = Vec::new();
        for path in gone {
            self.files.remove(&path);
            tracing::info!(source = %self.source, file = %path.display(), "file removed; its objects are withdrawn");
            removals.push(path.to_string_lossy().to_string());
        }
        let mut upserts = Vec::new();
        for path in &found {
            if let Some(u) = self.reload(path) {
                upserts.push(u);
            }
        }
        self.store.apply_batch(&self.source, upserts, removals);
        let failing = self.files.values().filter(|f| f.failing.is_some()).count();
        self.metrics.set_failing(&self.source, failing as i64);
        ScanSummary {
            files: found.len(),
            never_loaded: self
                .files
                .iter()
                .filter(|(_, f)| !f.loaded_once)
                .filter_map(|(p, f)| f.failing.clone().map(|m| (p.clone(), m)))
                .collect(),
            unreadable: None,
        }
    }

    /// Reads one file; returns its new objects when they changed and load.
    fn reload(&mut self, path: &Path) -> Option<(String, Cluster)> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(error) => {
                // Vanished between listing and reading: the next event's rescan handles it.
                tracing::debug!(file = %path.display(), %error, "cannot read");
                return None;
            }
        };
        let state = self.files.entry(path.to_path_buf()).or_default();
        if state.seen.as_deref() == Some(bytes.as_slice()) {
            return None;
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
            state.loaded_once = true;
            tracing::info!(
                source = %self.source, file = %name,
                policies = outcome.cluster.policies.len(),
                workloads = outcome.cluster.workloads.len(),
                namespaces = outcome.cluster.namespaces.len(),
                "file loaded"
            );
            Some((name, outcome.cluster))
        } else {
            let message = outcome.errors.join("; ");
            if state.loaded_once {
                tracing::error!(
                    source = %self.source, file = %name, errors = %message,
                    "file does not load; its last good content stays in force"
                );
            } else {
                tracing::error!(
                    source = %self.source, file = %name, errors = %message,
                    "file does not load and has no last good content"
                );
            }
            self.metrics.source_error(&self.source);
            state.failing = Some(message);
            None
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

/// Starts following `root`: an initial scan, then a rescan after every debounced batch of file
/// events. The source becomes ready once a scan is complete (see [`ScanSummary::incomplete`]);
/// a root that does not exist is an error here, at start.
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
    let mut watcher =
        notify::recommended_watcher(move |result: notify::Result<notify::Event>| match result {
            // Only events that can change what a rescan reads: the watcher also reports opens
            // and read-only closes, and the rescan itself opens every file, so following those
            // would rescan the tree forever.
            Ok(event) if !changes_content(&event.kind) => {}
            Ok(_) => {
                let _ = tx.send(());
            }
            Err(error) => {
                tracing::warn!(%error, "file watcher error; rescanning");
                let _ = tx.send(());
            }
        })
        .map_err(|e| AgentError::Watch {
            path: root.display().to_string(),
            message: e.to_string(),
        })?;
    // Watch before the initial scan so that no change between the two is missed.
    watcher
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
        let _keep_watching = watcher;
        let mut ready = false;
        let mut last_reason: Option<String> = None;
        let mut summary = rescan_blocking(&dir).await;
        loop {
            if !ready {
                match summary.incomplete() {
                    None => {
                        ready = true;
                        store.mark_ready(&source);
                        tracing::info!(%source, files = summary.files, "initial scan done");
                    }
                    Some(reason) => {
                        if last_reason.as_ref() != Some(&reason) {
                            tracing::warn!(%source, %reason, "initial scan incomplete; nothing is applied until it is");
                            store.set_waiting_reason(&source, Some(reason.clone()));
                            last_reason = Some(reason);
                        }
                    }
                }
            }
            // While waiting, also rescan on a timer: the directory may not exist as a watch
            // target in a way that reports every change (e.g. a volume mounted later).
            let retry = if ready { None } else { Some(INCOMPLETE_RESCAN) };
            tokio::select! {
                got = rx.recv() => {
                    if got.is_none() { break; }
                    if !settle(&mut rx, debounce).await { break; }
                }
                _ = async { match retry { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => {}
                _ = crate::stopped(&mut shutdown) => break,
            }
            summary = rescan_blocking(&dir).await;
        }
    }))
}

/// After a first file event: waits until no event came for `debounce` (a writer still writing
/// keeps producing events), but never longer than [`MAX_DEBOUNCE_WAITS`] windows in all, so a
/// file rewritten without pause is still read regularly. False when the watcher is gone.
async fn settle(rx: &mut mpsc::UnboundedReceiver<()>, debounce: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + debounce * MAX_DEBOUNCE_WAITS;
    loop {
        let quiet_until = (tokio::time::Instant::now() + debounce).min(deadline);
        tokio::select! {
            got = rx.recv() => {
                if got.is_none() {
                    return false;
                }
                if tokio::time::Instant::now() >= deadline {
                    return true;
                }
            }
            _ = tokio::time::sleep_until(quiet_until) => return true,
        }
    }
}

/// The longest a rescan waits for quiet, in debounce windows.
const MAX_DEBOUNCE_WAITS: u32 = 5;

/// Whether a file event can change what a rescan reads (not an open, a read or a read-only
/// close).
fn changes_content(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        notify::EventKind::Access(_) => false,
        _ => true,
    }
}

/// How often an incomplete initial scan is retried without a file event.
const INCOMPLETE_RESCAN: Duration = Duration::from_secs(2);

async fn rescan_blocking(dir: &Arc<std::sync::Mutex<DirSource>>) -> ScanSummary {
    let dir = dir.clone();
    let joined =
        tokio::task::spawn_blocking(move || dir.lock().unwrap_or_else(|p| p.into_inner()).rescan())
            .await;
    joined.unwrap_or_else(|error| {
        tracing::error!(%error, "rescan task failed");
        ScanSummary {
            unreadable: Some(format!("rescan task failed: {error}")),
            ..ScanSummary::default()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rescans(metrics: &Metrics, source: &str) -> u64 {
        let text = metrics.encode();
        text.lines()
            .find(|l| l.starts_with("netpol_source_rescans_total{") && l.contains(source))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Follows `dir` as source "d" with a 20 ms debounce, once its initial scan is done.
    async fn follow(dir: &Path) -> (Store, Arc<Metrics>, watch::Sender<bool>, JoinHandle<()>) {
        let store = Store::new();
        let metrics = Arc::new(Metrics::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        store.register_source("d");
        let task = spawn(
            "d".into(),
            dir.to_path_buf(),
            Duration::from_millis(20),
            Arc::new(crate::real::K8sLoader::new()),
            store.clone(),
            metrics.clone(),
            stop_rx,
        )
        .unwrap();
        while !store.all_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (store, metrics, stop_tx, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_replaced_without_pause_is_still_read_while_it_is_being_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ns.yaml");
        let namespace =
            |i: u32| format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: n{i}}}\n");
        std::fs::write(&file, namespace(0)).unwrap();
        let (store, metrics, stop_tx, task) = follow(dir.path()).await;
        // Replaced (write + rename) every 5 ms for 1 s: the quiet window never comes.
        let tmp = dir.path().join(".ns.yaml.tmp");
        for i in 1..=200 {
            std::fs::write(&tmp, namespace(i)).unwrap();
            std::fs::rename(&tmp, &file).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let during = rescans(&metrics, "d");
        // At most 5 debounce windows (100 ms) between rescans: about 10 in a second.
        assert!(
            during >= 5,
            "only {during} scans while the file kept changing"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(store.snapshot().0.namespace("n200").is_some());
        let _ = stop_tx.send(true);
        let _ = task.await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reading_the_files_does_not_trigger_another_rescan_but_a_write_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ns.yaml");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
        )
        .unwrap();
        let (store, metrics, stop_tx, task) = follow(dir.path()).await;
        // Many debounce windows without a change: the initial scan stays the only one.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(rescans(&metrics, "d"), 1);
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
        )
        .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_write = rescans(&metrics, "d");
        assert!(
            (2..=3).contains(&after_write),
            "one write, {after_write} scans in all"
        );
        assert!(store.snapshot().0.namespace("b").is_some());
        let _ = stop_tx.send(true);
        let _ = task.await;
    }
}
