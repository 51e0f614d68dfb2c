//! The agent's view of the cluster: per source, per object key, the model objects that key
//! contributes. Sources replace their own entries; the reconcile loop assembles one `Cluster` from
//! all of them. Only model values are kept (never raw manifests or API objects), which keeps the
//! memory per workload small.
//!
//! The store also knows which sources are not ready yet and which may be out of date (a
//! Kubernetes kind whose list or watch fails or is stuck: [`Store::set_trouble`]), for `/readyz`;
//! [`last_good`] keeps the last good API objects on disk (with a state directory only: then the
//! pruned JSON of each object is held too, besides its model values).

pub mod last_good;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use netpol_core::{Cluster, WorkloadKind};
use tokio::sync::watch;

/// What loading one manifest text produced.
#[derive(Clone, Debug, Default)]
pub struct LoadOutcome {
    /// The objects that loaded (possibly partial when `errors` is not empty).
    pub cluster: Cluster,
    /// Error diagnostics; a non-empty list means the text is not used (its last good content is).
    pub errors: Vec<String>,
    /// Diagnostics that do not stop the text from being used.
    pub warnings: Vec<String>,
}

/// Turns one manifest text (a file, or one API object as JSON) into model objects.
pub trait ManifestLoader: Send + Sync {
    /// Loads the text of `name` (a file path or an object reference, for messages).
    fn load(&self, name: &str, text: &str) -> LoadOutcome;
}

#[derive(Default)]
struct Inner {
    /// source -> key -> objects.
    sources: BTreeMap<String, BTreeMap<String, Cluster>>,
    registered: BTreeSet<String>,
    ready: BTreeSet<String>,
    /// Why a registered source is not ready yet (shown by `/readyz`).
    waiting_reason: BTreeMap<String, String>,
    /// Sources whose content may be out of date now (a list or watch failing or stuck), with
    /// what is wrong and since when (shown by `/readyz`).
    trouble: BTreeMap<String, Trouble>,
    /// The oldest change not yet picked up by a sync.
    pending_since: Option<Instant>,
    /// The last assembled cluster, and which of its parts changed in the sources since: a sync
    /// after a policy edit re-assembles only the policies, not the 10,000 workloads.
    assembled: Option<Arc<Cluster>>,
    stale: Stale,
}

/// The parts of the assembled cluster that no longer match the sources.
#[derive(Clone, Copy, Debug, Default)]
struct Stale {
    namespaces: bool,
    workloads: bool,
    policies: bool,
}

impl Stale {
    const ALL: Stale = Stale {
        namespaces: true,
        workloads: true,
        policies: true,
    };

    /// Marks the parts in which one key's contribution changed from `old` to `new`.
    fn note(&mut self, old: Option<&Cluster>, new: Option<&Cluster>) {
        let empty = Cluster::default();
        let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
        self.namespaces |= old.namespaces != new.namespaces;
        self.workloads |= old.workloads != new.workloads;
        self.policies |= old.policies != new.policies || old.admin_policies != new.admin_policies;
    }

    fn any(&self) -> bool {
        self.namespaces || self.workloads || self.policies
    }
}

/// What is wrong with a source whose content may be out of date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trouble {
    /// What failed, in words a user can act on.
    pub what: String,
    /// When the source first failed in this run of failures.
    pub since: SystemTime,
}

/// Shared, cheaply clonable handle.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty store with no sources.
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(0);
        Store {
            inner: Arc::default(),
            changed: Arc::new(tx),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self, inner: &mut Inner) {
        inner.pending_since.get_or_insert_with(Instant::now);
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// A receiver that sees a new value after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Declares a source that must finish its initial list before anything is applied.
    pub fn register_source(&self, source: &str) {
        self.lock().registered.insert(source.to_string());
    }

    /// Records why `source` cannot finish its initial list yet (`None` clears it).
    pub fn set_waiting_reason(&self, source: &str, reason: Option<String>) {
        let mut inner = self.lock();
        let changed = match reason {
            Some(r) => inner.waiting_reason.insert(source.to_string(), r.clone()) != Some(r),
            None => inner.waiting_reason.remove(source).is_some(),
        };
        if changed {
            // Wake the reconcile loop so that `/readyz` shows the new reason; no content
            // changed, so no enforcement delay starts.
            self.changed.send_modify(|g| *g = g.wrapping_add(1));
        }
    }

    /// Marks a source's initial list as complete.
    pub fn mark_ready(&self, source: &str) {
        let mut inner = self.lock();
        inner.waiting_reason.remove(source);
        if inner.ready.insert(source.to_string()) {
            self.bump(&mut inner);
        }
    }

    /// True when every registered source has finished its initial list.
    pub fn all_ready(&self) -> bool {
        let inner = self.lock();
        inner.registered.iter().all(|s| inner.ready.contains(s))
    }

    /// The sources still listing, each with the reason it gave, if any: `source (reason)`.
    /// A source in trouble gives its trouble (with since when) as its reason.
    pub fn not_ready(&self) -> Vec<String> {
        let inner = self.lock();
        let now = SystemTime::now();
        inner
            .registered
            .iter()
            .filter(|s| !inner.ready.contains(*s))
            .map(
                |s| match (inner.trouble.get(s), inner.waiting_reason.get(s)) {
                    (Some(t), _) => format!("{s} ({})", describe_trouble(t, now)),
                    (None, Some(r)) => format!("{s} ({r})"),
                    (None, None) => s.clone(),
                },
            )
            .collect()
    }

    /// Records that `source` may be out of date: `what` replaces the previous description, the
    /// time it started is kept from the first failure of a run of them.
    pub fn set_trouble(&self, source: &str, what: String) {
        let mut inner = self.lock();
        let since = inner
            .trouble
            .get(source)
            .map_or_else(SystemTime::now, |t| t.since);
        inner
            .trouble
            .insert(source.to_string(), Trouble { what, since });
    }

    /// `source` is up to date again. Returns the trouble it had, if any.
    pub fn clear_trouble(&self, source: &str) -> Option<Trouble> {
        self.lock().trouble.remove(source)
    }

    /// The sources in trouble, as `source: what (since <UTC time>, N s ago)`.
    pub fn troubles(&self) -> Vec<String> {
        let inner = self.lock();
        let now = SystemTime::now();
        inner
            .trouble
            .iter()
            .map(|(s, t)| format!("{s}: {}", describe_trouble(t, now)))
            .collect()
    }

    /// Sets (or replaces) what `key` of `source` contributes.
    pub fn upsert(&self, source: &str, key: &str, objects: Cluster) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let entries = inner.sources.entry(source.to_string()).or_default();
        if entries.get(key) == Some(&objects) {
            return;
        }
        inner.stale.note(entries.get(key), Some(&objects));
        entries.insert(key.to_string(), objects);
        self.bump(inner);
    }

    /// Removes what `key` of `source` contributed.
    pub fn remove(&self, source: &str, key: &str) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let removed = inner.sources.get_mut(source).and_then(|e| e.remove(key));
        if let Some(removed) = removed {
            inner.stale.note(Some(&removed), None);
            self.bump(inner);
        }
    }

    /// Applies several upserts and removals of one source as one change, so that no sync can
    /// see half of them (a policy moved from one file to another must never be absent).
    pub fn apply_batch(
        &self,
        source: &str,
        upserts: Vec<(String, Cluster)>,
        removals: Vec<String>,
    ) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let entries = inner.sources.entry(source.to_string()).or_default();
        let mut changed = false;
        for key in removals {
            if let Some(removed) = entries.remove(&key) {
                inner.stale.note(Some(&removed), None);
                changed = true;
            }
        }
        for (key, objects) in upserts {
            if entries.get(&key) != Some(&objects) {
                inner.stale.note(entries.get(&key), Some(&objects));
                entries.insert(key, objects);
                changed = true;
            }
        }
        if changed {
            self.bump(inner);
        }
    }

    /// Replaces everything `source` contributes in one step (a completed relist).
    pub fn replace_source(&self, source: &str, entries: BTreeMap<String, Cluster>) {
        let mut inner = self.lock();
        if inner.sources.get(source) == Some(&entries) {
            return;
        }
        inner.sources.insert(source.to_string(), entries);
        // A relist can touch anything; it is rare enough to re-assemble everything.
        inner.stale = Stale::ALL;
        self.bump(&mut inner);
    }

    /// What `key` of `source` contributes now.
    pub fn get(&self, source: &str, key: &str) -> Option<Cluster> {
        self.lock()
            .sources
            .get(source)
            .and_then(|e| e.get(key))
            .cloned()
    }

    /// The keys `source` currently has.
    pub fn keys(&self, source: &str) -> Vec<String> {
        self.lock()
            .sources
            .get(source)
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Takes the time of the oldest unsynced change (resetting it) and assembles the cluster.
    ///
    /// Only the parts that changed since the last snapshot are assembled again (see
    /// [`assemble`] for the rules); the result equals `assemble` of every source.
    pub fn snapshot(&self) -> (Arc<Cluster>, Option<Instant>) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let since = inner.pending_since.take();
        let stale = std::mem::take(&mut inner.stale);
        let sources = &inner.sources;
        let cluster = match inner.assembled.as_mut() {
            Some(cached) if !stale.any() => cached,
            Some(cached) => {
                // Copies the cluster first only if a sync still holds it (the state in force
                // does): the cache and the state in force are one copy otherwise.
                let cluster = Arc::make_mut(cached);
                if stale.workloads {
                    cluster.workloads = assemble_workloads(sources);
                }
                if stale.policies {
                    cluster.policies = assemble_policies(sources);
                    cluster.admin_policies = assemble_admin_policies(sources);
                }
                // Implicit namespaces follow the workloads and policies: always redone (cheap).
                cluster.namespaces = assemble_namespaces(sources);
                finish(cluster);
                cached
            }
            None => inner.assembled.insert(Arc::new(assemble(sources))),
        };
        (cluster.clone(), since)
    }
}

fn describe_trouble(t: &Trouble, now: SystemTime) -> String {
    let ago = now.duration_since(t.since).unwrap_or_default().as_secs();
    format!("{} (since {}, {ago} s ago)", t.what, utc(t.since))
}

/// `2026-12-01T23:41:02Z`: a time in UTC without a date crate (days to civil date by Howard
/// Hinnant's algorithm).
pub fn utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// Merges every source's objects into one valid `Cluster`.
///
/// * A namespace defined by an object wins over an implicit one; the first definition (in source
///   and key order) wins over later ones.
/// * A workload or policy key defined twice keeps the first definition.
/// * A VM, its instance and its launcher pods are one workload, by the loader's own rule
///   ([`netpol_k8s::fold`]), whichever files or watches they come from: during live migration
///   the source and target launcher pods both carry the VM's address, and the VM (enforced on
///   the node in its `status.nodeName`) is the one workload behind them.
pub fn assemble(sources: &BTreeMap<String, BTreeMap<String, Cluster>>) -> Cluster {
    let mut cluster = Cluster {
        namespaces: assemble_namespaces(sources),
        workloads: assemble_workloads(sources),
        policies: assemble_policies(sources),
        admin_policies: assemble_admin_policies(sources),
        ..Cluster::default()
    };
    finish(&mut cluster);
    cluster
}

type Sources = BTreeMap<String, BTreeMap<String, Cluster>>;

fn fragments(sources: &Sources) -> impl Iterator<Item = &Cluster> {
    sources.values().flat_map(|entries| entries.values())
}

/// The namespaces defined by objects (first definition wins), sorted by name; implicit ones are
/// added by [`finish`].
fn assemble_namespaces(sources: &Sources) -> Vec<netpol_core::Namespace> {
    let mut namespaces: BTreeMap<&str, &netpol_core::Namespace> = BTreeMap::new();
    for ns in fragments(sources).flat_map(|f| &f.namespaces) {
        if !ns.implicit {
            namespaces.entry(&ns.name).or_insert(ns);
        }
    }
    namespaces.into_values().cloned().collect()
}

/// Every workload once (first definition wins), sorted by namespace, name and kind, then folded
/// ([`netpol_k8s::Folding`]): the fragments are loaded unfolded (`netpol_k8s::load_fragment`),
/// so folding happens once, over everything, exactly as `netpol_k8s::load_paths` does it.
fn assemble_workloads(sources: &Sources) -> Vec<netpol_core::Workload> {
    // Keys and values borrow from the fragments; each workload is cloned once, at the end.
    let mut workloads: BTreeMap<(&str, &str, WorkloadKind), &netpol_core::Workload> =
        BTreeMap::new();
    for w in fragments(sources).flat_map(|f| &f.workloads) {
        workloads
            .entry((&w.namespace, &w.name, w.kind))
            .or_insert(w);
    }
    let workloads: Vec<&netpol_core::Workload> = workloads.into_values().collect();
    netpol_k8s::Folding::plan(&workloads).apply_cloned(&workloads)
}

/// Every policy once (first definition wins), sorted by namespace and name.
fn assemble_policies(sources: &Sources) -> Vec<netpol_core::Policy> {
    let mut policies: BTreeMap<(&str, &str), &netpol_core::Policy> = BTreeMap::new();
    for p in fragments(sources).flat_map(|f| &f.policies) {
        policies.entry((&p.namespace, &p.name)).or_insert(p);
    }
    policies.into_values().cloned().collect()
}

/// Every ClusterNetworkPolicy, AdminNetworkPolicy and BaselineAdminNetworkPolicy once (first
/// definition wins), sorted by kind and name (the tiers' walk orders them by priority itself).
fn assemble_admin_policies(sources: &Sources) -> Vec<netpol_core::AdminPolicy> {
    let mut policies: BTreeMap<(netpol_core::AdminApi, &str), &netpol_core::AdminPolicy> =
        BTreeMap::new();
    for p in fragments(sources).flat_map(|f| &f.admin_policies) {
        policies.entry((p.api, &p.name)).or_insert(p);
    }
    policies.into_values().cloned().collect()
}

/// Adds the implicit namespaces of workloads and policies, and sorts the namespaces.
fn finish(cluster: &mut Cluster) {
    cluster.add_missing_namespaces();
    cluster.namespaces.sort_by(|a, b| a.name.cmp(&b.name));
}

#[cfg(test)]
mod tests;
