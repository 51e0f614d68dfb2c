//! The Kubernetes API source: one `kube::runtime::watcher` per kind of netpol-k8s's schema of
//! what netpol reads (`netpol_k8s::schema`: Namespace, Pod, NetworkPolicy, and the VM kinds whose
//! CRDs exist).
//!
//! Objects are watched as `DynamicObject`s so that one malformed object can never fail a whole
//! list; each object is pruned to the fields the schema lists (managedFields, annotations and all
//! of the spec and status that enforcement does not need are dropped at once, which keeps memory
//! low) and converted by the same loader as manifest files (`netpol-k8s`), so validation and
//! defaulting are exactly those of `netpol check`. An object that does not convert is skipped with
//! a warning naming it; when an update of a known object does not convert, its last good version
//! stays.
//!
//! Relists are buffered: `Init` starts a fresh buffer, `InitApply` fills it and only `InitDone`
//! replaces the kind's objects in the store in one step, so a partial relist is never applied.
//!
//! VM CRDs may come and go while the agent runs: a missing one is looked for again every
//! `crd_recheck_interval` and watched once served (without blocking syncs, see
//! `follow_crd_kinds`); a watched one whose CRD is removed stops being watched and its objects
//! leave the store (see `crd_removed`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use netpol_core::Cluster;
use netpol_k8s::schema::{self, KindSchema, KnownKind};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use crate::metrics::Metrics;
use crate::store::{ManifestLoader, Store};
use crate::{AgentError, KubeConfig};

/// One watched kind: an entry of netpol-k8s's schema of what netpol reads.
pub type Kind = &'static KindSchema;

fn resource(kind: Kind) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(kind.group, kind.version, kind.kind),
        kind.plural,
    )
}

/// The store's source name for `kind`.
pub fn source_name(kind: Kind) -> String {
    format!("kube:{}", kind.plural)
}

/// The kinds to watch: every built-in kind of the schema, and the CRD kinds `config` enables.
fn watched(config: &KubeConfig) -> (Vec<Kind>, Vec<Kind>) {
    let enabled = |k: Kind| match k.id {
        KnownKind::VirtualMachine => config.watch_virtual_machines,
        KnownKind::VirtualMachineInstance => config.watch_virtual_machine_instances,
        _ => true,
    };
    schema::KINDS
        .iter()
        .filter(|k| enabled(k))
        .partition(|k| !k.crd)
}

/// Builds the client from the configuration.
pub async fn client(config: &KubeConfig) -> Result<Client, AgentError> {
    let cfg = match &config.api_server {
        Some(url) => {
            let uri: axum::http::Uri = url
                .parse()
                .map_err(|e| AgentError::Kube(format!("bad API server URL {url:?}: {e}")))?;
            kube::Config::new(uri)
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| AgentError::Kube(e.to_string()))?,
    };
    Client::try_from(cfg).map_err(|e| AgentError::Kube(e.to_string()))
}

/// Whether the API serves `kind` (its CRD is installed): `Err` carries the discovery error (a
/// 404 for a group that is not installed at all, or a transport error).
///
/// Discovery (`GET /apis/<group>/<version>`) is open to every authenticated client
/// (`system:discovery`), so asking again needs no RBAC beyond the agent's get/list/watch rules.
async fn served(client: &Client, kind: Kind) -> Result<bool, kube::Error> {
    client
        .list_api_group_resources(kind.api_version)
        .await
        .map(|list| list.resources.iter().any(|r| r.name == kind.plural))
}

/// Consecutive 404 Not Found errors of a CRD kind's watch before discovery is asked whether the
/// CRD is gone. The watcher's backoff (0.8 s, doubling to 30 s) spaces them, so a removed CRD is
/// noticed within about a second and is never retried hot.
const NOT_FOUND_BEFORE_RECHECK: u32 = 2;

/// Everything a watcher needs besides its kind.
#[derive(Clone)]
struct Ctx {
    client: Client,
    loader: Arc<dyn ManifestLoader>,
    store: Store,
    metrics: Arc<Metrics>,
}

/// How one kind's watch is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A built-in kind: errors (even 404) are retried with backoff for ever.
    BuiltIn,
    /// A CRD kind served at start: registered as a blocking source (nothing is applied before
    /// its initial list), stops when its CRD is removed.
    CrdAtStart,
    /// A CRD kind that became served after start: NOT a blocking source (see
    /// [`follow_crd_kinds`]), stops when its CRD is removed.
    CrdLate,
}

/// Why a watcher returned.
enum Ended {
    /// Shutdown, or the stream ended.
    Stopped,
    /// The kind's CRD is no longer served; its objects were removed from the store.
    NotServed(Kind),
}

/// Registers and starts one watcher per served kind, plus (when a VM kind is enabled) the task
/// that starts VM watchers for CRDs installed later and stops them when their CRD goes.
pub async fn spawn(
    config: KubeConfig,
    loader: Arc<dyn ManifestLoader>,
    store: Store,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, AgentError> {
    let client = client(&config).await?;
    let (builtin, optional) = watched(&config);
    let mut served_at_start = Vec::new();
    let mut missing = Vec::new();
    for kind in optional {
        match served(&client, kind).await {
            Ok(true) => served_at_start.push(kind),
            Ok(false) => {
                tracing::info!(kind = kind.kind, api_version = kind.api_version, every = ?config.crd_recheck_interval,
                    "kind not served (CRD missing); not watching it yet, asking again periodically");
                missing.push(kind);
            }
            Err(error) => {
                tracing::info!(kind = kind.kind, api_version = kind.api_version, %error, every = ?config.crd_recheck_interval,
                    "kind not served (CRD missing?); not watching it yet, asking again periodically");
                missing.push(kind);
            }
        }
    }
    // Every kind known now must finish its initial list before anything is applied.
    for k in builtin.iter().chain(&served_at_start) {
        store.register_source(&source_name(k));
    }
    let ctx = Ctx {
        client,
        loader,
        store,
        metrics,
    };
    let mut handles: Vec<JoinHandle<()>> = builtin
        .into_iter()
        .map(|kind| {
            let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
            tokio::spawn(async move {
                watch_kind(ctx, kind, Mode::BuiltIn, shutdown).await;
            })
        })
        .collect();
    if !served_at_start.is_empty() || !missing.is_empty() {
        handles.push(tokio::spawn(follow_crd_kinds(
            ctx,
            served_at_start,
            missing,
            config.crd_recheck_interval,
            shutdown,
        )));
    }
    Ok(handles)
}

/// Runs the watchers of the VM kinds and keeps the set of them in step with the CRDs the API
/// serves: every `recheck` it asks discovery again about each enabled kind not watched, and
/// starts its watcher once it is served; a watcher that finds its CRD removed hands its kind
/// back to be asked about again (so a reinstalled CRD is followed too).
///
/// Readiness: a kind found late is deliberately NOT registered as a blocking store source.
/// Registering it would stop every sync (pods and policies included) until its initial list
/// completes, and that list may never complete (say RBAC allows discovery but not listing, or the
/// CRD is half installed): enforcement would silently freeze. Instead the agent stays ready and
/// keeps enforcing what it had (launcher pods enforced as pods), the new kind's initial list is
/// buffered and applied in one `replace_source` at `InitDone`, so no sync ever sees part of it,
/// and from then on its changes are applied as they come.
async fn follow_crd_kinds(
    ctx: Ctx,
    served_at_start: Vec<Kind>,
    mut missing: Vec<Kind>,
    recheck: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut running: JoinSet<Ended> = JoinSet::new();
    for kind in served_at_start {
        running.spawn(watch_kind(
            ctx.clone(),
            kind,
            Mode::CrdAtStart,
            shutdown.clone(),
        ));
    }
    // A zero interval would make `interval` panic and discovery spin; never below 100 ms.
    let recheck = recheck.max(Duration::from_millis(100));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + recheck, recheck);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = crate::stopped(&mut shutdown) => return,
            _ = tick.tick(), if !missing.is_empty() => {
                let mut still_missing = Vec::new();
                for kind in missing.drain(..) {
                    match served(&ctx.client, kind).await {
                        Ok(true) => {
                            tracing::info!(
                                kind = kind.kind,
                                api_version = kind.api_version,
                                "CRD now served; watching {}",
                                kind.kind
                            );
                            let (ctx, stop) = (ctx.clone(), shutdown.clone());
                            running.spawn(watch_kind(ctx, kind, Mode::CrdLate, stop));
                        }
                        Ok(false) => still_missing.push(kind),
                        Err(error) => {
                            tracing::debug!(kind = kind.kind, %error, "CRD still not served");
                            still_missing.push(kind);
                        }
                    }
                }
                missing = still_missing;
            }
            Some(ended) = running.join_next() => match ended {
                Ok(Ended::NotServed(kind)) => missing.push(kind),
                Ok(Ended::Stopped) => {}
                Err(error) => tracing::error!(%error, "a VM kind watcher failed"),
            },
        }
    }
}

async fn watch_kind(
    ctx: Ctx,
    kind: Kind,
    mode: Mode,
    mut shutdown: watch::Receiver<bool>,
) -> Ended {
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource(kind));
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut w = KindWatch::new(ctx, kind, mode);
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = crate::stopped(&mut shutdown) => return Ended::Stopped,
        };
        match event {
            None => return Ended::Stopped,
            Some(Ok(event)) => w.event(event),
            Some(Err(error)) => {
                if let Some(ended) = w.error(error).await {
                    return ended;
                }
            }
        }
    }
}

/// The state of one kind's watch between events.
struct KindWatch {
    client: Client,
    store: Store,
    metrics: Arc<Metrics>,
    kind: Kind,
    mode: Mode,
    source: String,
    conv: Converter,
    /// The relist being received (`Init` .. `InitDone`), applied in one step at its end.
    relist: Option<BTreeMap<String, Cluster>>,
    /// Consecutive 404 Not Found errors.
    not_found: u32,
    /// An initial list completed once.
    listed: bool,
}

impl KindWatch {
    fn new(ctx: Ctx, kind: Kind, mode: Mode) -> Self {
        let source = source_name(kind);
        let conv = Converter {
            kind,
            loader: ctx.loader,
            metrics: ctx.metrics.clone(),
            source: source.clone(),
        };
        KindWatch {
            client: ctx.client,
            store: ctx.store,
            metrics: ctx.metrics,
            kind,
            mode,
            source,
            conv,
            relist: None,
            not_found: 0,
            listed: false,
        }
    }

    fn event(&mut self, event: Event<DynamicObject>) {
        self.not_found = 0;
        let source = &self.source;
        match event {
            Event::Init => {
                tracing::debug!(%source, "relist started");
                self.relist = Some(BTreeMap::new());
            }
            Event::InitApply(obj) => {
                let key = object_key(&obj);
                if let Some(buffer) = self.relist.as_mut() {
                    // During a relist a failed conversion keeps the previous good version.
                    match self.conv.convert(obj) {
                        Ok(c) => {
                            buffer.insert(key, c);
                        }
                        Err(()) => {
                            if let Some(old) = self.store.get(source, &key) {
                                buffer.insert(key, old);
                            }
                        }
                    }
                }
            }
            Event::InitDone => self.relist_done(),
            Event::Apply(obj) => {
                let key = object_key(&obj);
                if let Ok(c) = self.conv.convert(obj) {
                    self.store.upsert(source, &key, c);
                }
            }
            Event::Delete(obj) => {
                self.store.remove(source, &object_key(&obj));
            }
        }
    }

    fn relist_done(&mut self) {
        let (source, kind) = (&self.source, self.kind);
        let buffer = self.relist.take().unwrap_or_default();
        if self.mode == Mode::CrdLate && !self.listed {
            tracing::info!(%source, objects = buffer.len(), "initial list of {} applied (CRD installed after start)", kind.kind);
        } else {
            tracing::info!(%source, objects = buffer.len(), "list complete");
        }
        self.listed = true;
        self.store.replace_source(source, buffer);
        if self.mode != Mode::CrdLate {
            self.store.mark_ready(source);
        }
    }

    /// A watch error: `Some` when the watch must end (its CRD is gone).
    async fn error(&mut self, error: watcher::Error) -> Option<Ended> {
        let (source, kind) = (&self.source, self.kind);
        // The watcher retries with backoff (and relists after 410 Gone) by itself.
        self.metrics.source_error(source);
        if self.mode == Mode::BuiltIn || !is_not_found(&error) {
            tracing::warn!(%source, %error, "watch error; retrying");
            return None;
        }
        self.not_found += 1;
        tracing::warn!(%source, %error, "{} not found (CRD being removed?); retrying", kind.plural);
        if self.not_found < NOT_FOUND_BEFORE_RECHECK {
            return None;
        }
        if confirmed_not_served(&self.client, kind).await {
            crd_removed(&self.store, kind, self.mode);
            return Some(Ended::NotServed(kind));
        }
        // Discovery still lists it (a CRD being re-created) or cannot be asked now.
        tracing::warn!(%source, "{} is not confirmed gone by discovery; retrying", kind.plural);
        None
    }
}

/// Whether a watch error is the API's 404 Not Found (the resource is not served).
fn is_not_found(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => {
            matches!(e, kube::Error::Api(status) if status.is_not_found())
        }
        watcher::Error::WatchError(status) => status.is_not_found(),
        _ => false,
    }
}

/// True only when discovery answers that `kind` is not served: its group version is unknown
/// (404) or no longer lists the resource. A transport error proves nothing and is `false`.
async fn confirmed_not_served(client: &Client, kind: Kind) -> bool {
    match served(client, kind).await {
        Ok(served) => !served,
        Err(kube::Error::Api(status)) => status.is_not_found(),
        Err(_) => false,
    }
}

/// A watched kind's CRD is gone: its objects leave the store.
///
/// Why remove rather than keep the last known objects: deleting a CRD deletes every object of
/// it, so the API now says there are none, and an agent restarted at this point would enforce
/// none; keeping them would enforce VMs that no longer exist (and keep hiding the pods that now
/// hold their addresses, since assembly folds a pod into the VM with its address) until some
/// unrelated restart changed enforcement. Normally the watch has already seen a DELETED event per
/// object before the 404s, so this only removes what was missed. Readiness is unaffected.
fn crd_removed(store: &Store, kind: Kind, mode: Mode) {
    let source = source_name(kind);
    let removed = store.keys(&source).len();
    tracing::warn!(%source, removed_objects = removed,
        "CRD no longer served; stopped watching {}, its objects are removed from the enforced state; watching again once it is reinstalled", kind.kind);
    store.replace_source(&source, BTreeMap::new());
    if mode == Mode::CrdAtStart {
        // Registered at start: if its initial list never completed, it must not block syncs
        // for ever now that the API says there is nothing to list.
        store.mark_ready(&source);
    }
}

fn object_key(obj: &DynamicObject) -> String {
    format!(
        "{}/{}",
        obj.metadata.namespace.as_deref().unwrap_or(""),
        obj.metadata.name.as_deref().unwrap_or("")
    )
}

struct Converter {
    kind: Kind,
    loader: Arc<dyn ManifestLoader>,
    metrics: Arc<Metrics>,
    source: String,
}

impl Converter {
    /// Prunes and loads one object; `Err` when it does not load (already logged and counted).
    fn convert(&mut self, obj: DynamicObject) -> Result<Cluster, ()> {
        let key = object_key(&obj);
        let value = prune(self.kind, &obj);
        let name = format!("{}/{}", self.kind.kind, key.trim_start_matches('/'));
        let text = value.to_string();
        let outcome = self.loader.load(&name, &text);
        if outcome.errors.is_empty() {
            for w in &outcome.warnings {
                tracing::debug!(object = %name, warning = %w);
            }
            Ok(outcome.cluster)
        } else {
            tracing::warn!(object = %name, errors = %outcome.errors.join("; "), "object skipped: it does not convert");
            self.metrics.source_error(&self.source);
            Err(())
        }
    }
}

/// Keeps only what netpol reads (the schema's fields of the kind): managedFields, annotations,
/// volumes and the rest never reach the loader, nor stay in memory.
pub fn prune(kind: Kind, obj: &DynamicObject) -> serde_json::Value {
    kind.prune_parts(&obj.metadata, &obj.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use serde_json::json;

    #[test]
    fn only_a_not_found_answer_counts_as_a_missing_resource() {
        let status = |code: u16, reason: &str| Status::failure("x", reason).with_code(code);
        let api = |code: u16, reason: &str| kube::Error::Api(status(code, reason).boxed());
        assert!(is_not_found(&watcher::Error::InitialListFailed(api(
            404, "NotFound"
        ))));
        assert!(is_not_found(&watcher::Error::WatchStartFailed(api(
            404, "NotFound"
        ))));
        assert!(is_not_found(&watcher::Error::WatchError(
            status(404, "NotFound").boxed()
        )));
        // Gone (a relist follows), Forbidden and a missing resourceVersion are not a removed CRD.
        assert!(!is_not_found(&watcher::Error::WatchError(
            status(410, "Expired").boxed()
        )));
        assert!(!is_not_found(&watcher::Error::InitialListFailed(api(
            403,
            "Forbidden"
        ))));
        assert!(!is_not_found(&watcher::Error::NoResourceVersion));
    }

    #[test]
    fn pruning_drops_managed_fields_annotations_and_unread_pod_fields() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "a", "labels": {"app": "x"},
                "annotations": {"big": "x".repeat(1000)},
                "managedFields": [{"manager": "kubelet"}]},
            "spec": {"nodeName": "n1", "volumes": [{"name": "v"}],
                "containers": [{"name": "c", "image": "i", "env": [{"name": "E"}],
                    "ports": [{"name": "http", "containerPort": 80}]}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready"}]}
        }))
        .unwrap();
        let v = prune(&schema::POD, &obj);
        assert_eq!(
            v,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "a", "labels": {"app": "x"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80}]}]},
                "status": {"phase": "Running", "podIP": "10.0.0.1"}
            })
        );
    }
}
