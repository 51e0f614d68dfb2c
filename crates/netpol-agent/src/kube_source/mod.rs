//! The Kubernetes API source: one list-and-watch loop per kind of netpol-k8s's schema of what
//! netpol reads (`netpol_k8s::schema`: Namespace, Pod, NetworkPolicy, and the CRD kinds that are
//! served: the VM kinds and the admin policy kinds, ClusterNetworkPolicy, AdminNetworkPolicy and
//! BaselineAdminNetworkPolicy).
//!
//! Objects are read as `DynamicObject`s so that one malformed object can never fail a whole
//! list; each object is pruned to the fields the schema lists (managedFields, annotations and all
//! of the spec and status that enforcement does not need are dropped at once, which keeps memory
//! low) and converted by the same loader as manifest files (`netpol-k8s`), so validation and
//! defaulting are exactly those of `netpol check`. An object that does not convert keeps its last
//! good version (in memory, and across restarts in the state file, see
//! [`crate::store::last_good`]); one never seen valid is skipped with a warning naming it.
//!
//! **Fail static.** The API being unreadable never shrinks enforcement. Only a definite answer
//! (404 on the group version, or a discovery list without the resource) means a CRD is not
//! installed; any other outcome (HTTP 500, a reset, 401/403, a timeout) means "unknown": the kind
//! is registered as a source the agent waits for (nothing is applied, so the rules in force stay),
//! and discovery is retried with the capped backoff. Lists and watches are retried the same way
//! ([`watch`]); while one fails or is stuck, `/readyz` names the kind and since when.
//!
//! CRDs (the VM kinds' and the admin policy kinds') may come and go while the agent runs: a
//! missing one is looked for again every `crd_recheck_interval` and watched once served (without
//! blocking syncs, see `follow_crd_kinds`); a watched one whose CRD is removed stops being
//! watched and its objects leave the store (see `crd_removed`).
//!
//! **One-shot reads** ([`snapshot`]): the CLI reads a live cluster with one paged list per kind
//! (no watch), discovery deciding which CRD kinds are served, every object pruned and named by
//! the same code as here ([`ObjectText`]) and loaded by the same netpol-k8s loader.

mod client;
pub mod errors;
mod list;
pub mod snapshot;
mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::Client;
use netpol_core::{Cluster, WorkloadKind};
use netpol_k8s::schema::{self, KindSchema, KnownKind};
use tokio::sync::watch as signal;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{timeout, Instant, MissedTickBehavior};

pub use client::{client, connect, user_agent, Backoff, ClusterAccess, Connection};
use errors::Verb;

use crate::metrics::Metrics;
use crate::store::last_good::{self, LastGood};
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

/// What discovery says about a CRD kind.
#[derive(Debug)]
enum Discovered {
    /// The API serves it.
    Served,
    /// A definite answer that it is not installed: 404 on the group version, or a discovery
    /// list without the resource.
    NotServed,
    /// No answer (an error, a timeout): it may or may not be installed.
    Unknown(String),
}

/// Asks discovery (`GET /apis/<group>/<version>`) whether the API serves `kind`.
///
/// Discovery is open to every authenticated client (`system:discovery`), so asking again needs
/// no RBAC beyond the agent's get/list/watch rules.
async fn discover(ctx: &Ctx, kind: Kind) -> Discovered {
    discover_with(
        &ctx.client,
        ctx.config.request_timeout,
        kind,
        errors::Asker::Agent,
    )
    .await
}

/// [`discover`] with a client of its own (the CLI's snapshot), within `after`.
async fn discover_with(
    client: &Client,
    after: Duration,
    kind: Kind,
    asker: errors::Asker,
) -> Discovered {
    match timeout(after, client.list_api_group_resources(kind.api_version)).await {
        Err(_) => Discovered::Unknown(format!(
            "discovery not answered within {} s (request timeout)",
            after.as_secs_f64()
        )),
        Ok(Ok(list)) if list.resources.iter().any(|r| r.name == kind.plural) => Discovered::Served,
        Ok(Ok(_)) => Discovered::NotServed,
        Ok(Err(kube::Error::Api(status))) if status.code == 404 => Discovered::NotServed,
        Ok(Err(error)) => Discovered::Unknown(format!(
            "discovery failed: {}",
            errors::describe_for(&error, kind, Verb::Discover, asker)
        )),
    }
}

/// True only when discovery answers that `kind` is not served. No answer proves nothing.
async fn confirmed_not_served(ctx: &Ctx, kind: Kind) -> bool {
    matches!(discover(ctx, kind).await, Discovered::NotServed)
}

/// Everything a kind's loop needs besides its kind.
#[derive(Clone)]
struct Ctx {
    client: Client,
    config: Arc<KubeConfig>,
    loader: Arc<dyn ManifestLoader>,
    store: Store,
    metrics: Arc<Metrics>,
    last_good: Arc<LastGood>,
}

impl Ctx {
    fn converter(&self, kind: Kind) -> Converter<'_> {
        Converter { kind, ctx: self }
    }
}

/// How one kind's watch is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A built-in kind: errors (even 404) are retried with backoff for ever.
    BuiltIn,
    /// A CRD kind served (or not known to be missing) at start: registered as a blocking
    /// source (nothing is applied before its initial list), stops when its CRD is removed.
    CrdAtStart,
    /// A CRD kind that became served after start: NOT a blocking source (see
    /// [`follow_crd_kinds`]), stops when its CRD is removed.
    CrdLate,
}

/// Why a watcher returned.
enum Ended {
    /// Shutdown.
    Stopped,
    /// The kind's CRD is no longer served; its objects were removed from the store.
    NotServed(Kind),
}

/// The CRD kinds as discovery saw them at start.
#[derive(Default)]
struct CrdKinds {
    served: Vec<Kind>,
    missing: Vec<Kind>,
    unknown: Vec<Kind>,
}

/// Registers and starts one loop per built-in kind, plus (when a VM kind is enabled) the task
/// that follows the VM CRDs; and the task that saves last good versions, when configured.
pub async fn spawn(
    config: KubeConfig,
    node: &str,
    loader: Arc<dyn ManifestLoader>,
    store: Store,
    metrics: Arc<Metrics>,
    shutdown: signal::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, AgentError> {
    let client = client(&config, node).await?;
    let last_good = Arc::new(match &config.state_dir {
        Some(dir) => LastGood::open(dir),
        None => LastGood::disabled(),
    });
    let (builtin, optional) = watched(&config);
    let ctx = Ctx {
        client,
        config: Arc::new(config),
        loader,
        store,
        metrics,
        last_good,
    };
    let crds = discover_at_start(&ctx, optional).await;
    // Every kind that is or may be served must finish its initial list before anything is
    // applied: until then the rules in force (of the previous run) stay.
    for k in builtin.iter().chain(&crds.served).chain(&crds.unknown) {
        ctx.store.register_source(&source_name(k));
    }
    let mut handles: Vec<JoinHandle<()>> = builtin
        .into_iter()
        .map(|kind| {
            let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
            tokio::spawn(async move {
                watch::watch_kind(ctx, kind, Mode::BuiltIn, shutdown).await;
            })
        })
        .collect();
    if ctx.last_good.path().is_some() {
        handles.push(tokio::spawn(save_last_good(ctx.clone(), shutdown.clone())));
    }
    if !(crds.served.is_empty() && crds.missing.is_empty() && crds.unknown.is_empty()) {
        handles.push(tokio::spawn(follow_crd_kinds(ctx, crds, shutdown)));
    }
    Ok(handles)
}

async fn discover_at_start(ctx: &Ctx, optional: Vec<Kind>) -> CrdKinds {
    let every = ctx.config.crd_recheck_interval;
    let mut crds = CrdKinds::default();
    // Asked together: a discovery that hangs costs one request timeout, not one per kind.
    let answers = futures::future::join_all(optional.iter().map(|k| discover(ctx, k))).await;
    for (kind, answer) in optional.into_iter().zip(answers) {
        match answer {
            Discovered::Served => crds.served.push(kind),
            Discovered::NotServed => {
                tracing::info!(kind = kind.kind, api_version = kind.api_version, ?every,
                    "kind not served (CRD not installed); not watching it yet, asking again periodically");
                crds.missing.push(kind);
            }
            Discovered::Unknown(why) => {
                unknown_kind(ctx, kind, &why);
                crds.unknown.push(kind);
            }
        }
    }
    crds
}

fn unknown_kind(ctx: &Ctx, kind: Kind, why: &str) {
    tracing::warn!(kind = kind.kind, api_version = kind.api_version, error = %why,
        "cannot tell whether the CRD is installed; waiting for it (the rules in force stay), retrying");
    let source = source_name(kind);
    ctx.store.set_trouble(&source, why.to_string());
    ctx.metrics.set_source_stale(&source, true);
}

/// Writes the last good versions out while anything changed, and once more at shutdown.
async fn save_last_good(ctx: Ctx, mut shutdown: signal::Receiver<bool>) {
    let mut tick = tokio::time::interval(last_good::SAVE_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let stop = tokio::select! {
            _ = tick.tick() => false,
            _ = crate::stopped(&mut shutdown) => true,
        };
        let lg = ctx.last_good.clone();
        match tokio::task::spawn_blocking(move || lg.save_if_dirty()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                let file = ctx.last_good.path().map(|p| p.display().to_string());
                tracing::warn!(?file, %error, "cannot write the state file; retrying");
            }
            Err(error) => tracing::warn!(%error, "state file task failed"),
        }
        if stop {
            return;
        }
    }
}

/// Runs the loops of the VM kinds and keeps the set of them in step with the CRDs the API
/// serves: every `crd_recheck_interval` it asks discovery again about each enabled kind known
/// to be missing, and starts its loop once it is served; a loop that finds its CRD removed
/// hands its kind back to be asked about again (so a reinstalled CRD is followed too). A kind
/// discovery could not answer about is asked again after the capped backoff, and stays a
/// source the agent waits for until discovery answers.
///
/// Readiness: a kind found late is deliberately NOT registered as a blocking store source.
/// Registering it would stop every sync (pods and policies included) until its initial list
/// completes, and that list may never complete (say RBAC allows discovery but not listing, or the
/// CRD is half installed): enforcement would silently freeze. Instead the agent keeps
/// enforcing what it had (launcher pods enforced as pods), the new kind's initial list is
/// buffered and applied in one `replace_source` at its end, so no sync ever sees part of it,
/// and from then on its changes are applied as they come.
async fn follow_crd_kinds(ctx: Ctx, crds: CrdKinds, mut shutdown: signal::Receiver<bool>) {
    let CrdKinds {
        served,
        mut missing,
        mut unknown,
    } = crds;
    let mut running: JoinSet<Ended> = JoinSet::new();
    for kind in served {
        running.spawn(watch::watch_kind(
            ctx.clone(),
            kind,
            Mode::CrdAtStart,
            shutdown.clone(),
        ));
    }
    // A zero interval would make `interval` panic and discovery spin; never below 100 ms.
    let recheck = ctx
        .config
        .crd_recheck_interval
        .max(Duration::from_millis(100));
    let mut tick = tokio::time::interval_at(Instant::now() + recheck, recheck);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut backoff = Backoff::new(ctx.config.backoff_initial, ctx.config.backoff_max);
    let mut ask_unknown = Instant::now() + backoff.delay();
    loop {
        tokio::select! {
            _ = crate::stopped(&mut shutdown) => return,
            _ = tokio::time::sleep_until(ask_unknown), if !unknown.is_empty() => {
                unknown = resolve_unknown(&ctx, unknown, &mut missing, &mut running, &shutdown).await;
                ask_unknown = Instant::now() + backoff.delay();
            }
            _ = tick.tick(), if !missing.is_empty() => {
                let mut still_missing = Vec::new();
                for kind in missing.drain(..) {
                    match discover(&ctx, kind).await {
                        Discovered::Served => {
                            tracing::info!(kind = kind.kind, api_version = kind.api_version,
                                "CRD now served; watching {}", kind.kind);
                            let (ctx, stop) = (ctx.clone(), shutdown.clone());
                            running.spawn(watch::watch_kind(ctx, kind, Mode::CrdLate, stop));
                        }
                        // Known missing stays missing until discovery says otherwise.
                        Discovered::NotServed => still_missing.push(kind),
                        Discovered::Unknown(why) => {
                            tracing::debug!(kind = kind.kind, error = %why, "CRD still not known to be served");
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

/// Asks discovery again about the kinds it could not answer about at start: a served one is
/// watched (still a blocking source), a definitely missing one stops blocking and is asked
/// about every recheck interval; the rest stay unknown.
async fn resolve_unknown(
    ctx: &Ctx,
    unknown: Vec<Kind>,
    missing: &mut Vec<Kind>,
    running: &mut JoinSet<Ended>,
    shutdown: &signal::Receiver<bool>,
) -> Vec<Kind> {
    let mut still = Vec::new();
    for kind in unknown {
        let source = source_name(kind);
        match discover(ctx, kind).await {
            Discovered::Served => {
                tracing::info!(
                    kind = kind.kind,
                    "discovery answers again: {} is served; listing it",
                    kind.kind
                );
                running.spawn(watch::watch_kind(
                    ctx.clone(),
                    kind,
                    Mode::CrdAtStart,
                    shutdown.clone(),
                ));
            }
            Discovered::NotServed => {
                tracing::info!(
                    kind = kind.kind,
                    "discovery answers again: {} is not installed; not waiting for it",
                    kind.kind
                );
                ctx.store.clear_trouble(&source);
                ctx.metrics.set_source_stale(&source, false);
                ctx.store.mark_ready(&source);
                missing.push(kind);
            }
            Discovered::Unknown(why) => {
                unknown_kind(ctx, kind, &why);
                still.push(kind);
            }
        }
    }
    still
}

/// A watched kind's CRD is gone: its objects leave the store.
///
/// Why remove rather than keep the last known objects: deleting a CRD deletes every object of
/// it, so the API now says there are none, and an agent restarted at this point would enforce
/// none; keeping them would enforce VMs that no longer exist (and keep hiding the pods that now
/// hold their addresses, since assembly folds a pod into the VM with its address) until some
/// unrelated restart changed enforcement. Normally the watch has already seen a DELETED event per
/// object before the 404s, so this only removes what was missed. Only a definite answer of
/// discovery leads here, never an error. Readiness is unaffected.
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

/// One API object as the loader reads it: pruned to the schema's fields (see [`prune`]) and
/// named `Kind/namespace/name` (`Kind/name` when cluster-scoped) in diagnostics. The watch and
/// the snapshot both turn objects into this, and nothing else, before loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectText {
    /// `namespace/name` (`/name` when cluster-scoped): the object's key in a source.
    pub key: String,
    /// What diagnostics call it: `Pod/shop/api`.
    pub name: String,
    /// The pruned object as JSON.
    pub text: String,
}

impl ObjectText {
    /// `obj`, an object of `kind`, pruned and named.
    pub fn of(kind: Kind, obj: &DynamicObject) -> ObjectText {
        ObjectText::named(kind, obj, prune(kind, obj))
    }

    /// [`of`](Self::of), keeping the `metadata.ownerReferences` of a Pod, ReplicaSet or Job:
    /// what folds Pods into their controllers (netpol-k8s's `fold::controllers`), which the
    /// CLI's snapshot does and the agent does not (it does not list controllers), so the
    /// watch drops them with the rest of the metadata.
    pub fn with_owners(kind: Kind, obj: &DynamicObject) -> ObjectText {
        let mut value = prune(kind, obj);
        let owned = matches!(
            kind.id,
            KnownKind::Pod
                | KnownKind::Controller(WorkloadKind::ReplicaSet)
                | KnownKind::Controller(WorkloadKind::Job)
        );
        if let (true, Some(owners)) = (owned, &obj.metadata.owner_references) {
            if let Ok(owners) = serde_json::to_value(owners) {
                value["metadata"]["ownerReferences"] = owners;
            }
        }
        ObjectText::named(kind, obj, value)
    }

    fn named(kind: Kind, obj: &DynamicObject, value: serde_json::Value) -> ObjectText {
        let key = object_key(obj);
        let name = format!("{}/{}", kind.kind, key.trim_start_matches('/'));
        let text = value.to_string();
        ObjectText { key, name, text }
    }
}

struct Converter<'a> {
    kind: Kind,
    ctx: &'a Ctx,
}

impl Converter<'_> {
    /// Prunes and loads one object: its model objects and its pruned JSON text, or the loader's
    /// errors (counted as a source error).
    fn convert(&self, obj: DynamicObject) -> Result<(Cluster, String), String> {
        let ObjectText { name, text, .. } = ObjectText::of(self.kind, &obj);
        let outcome = self.ctx.loader.load(&name, &text);
        if outcome.errors.is_empty() {
            for w in &outcome.warnings {
                if says_how_traffic_is_treated(self.kind) {
                    tracing::warn!(object = %name, warning = %w);
                } else {
                    tracing::debug!(object = %name, warning = %w);
                }
            }
            Ok((outcome.cluster, text))
        } else {
            self.ctx.metrics.source_error(&source_name(self.kind));
            Err(outcome.errors.join("; "))
        }
    }
}

/// Whether the loader's warnings about objects of `kind` say that traffic is treated otherwise
/// than written, and so are worth a warning in the log rather than a debug line: an admin
/// policy's peer that fails closed, or a `domainNames` rule the kernel does not enforce.
fn says_how_traffic_is_treated(kind: Kind) -> bool {
    matches!(
        kind.id,
        KnownKind::ClusterNetworkPolicy
            | KnownKind::AdminNetworkPolicy
            | KnownKind::BaselineAdminNetworkPolicy
    )
}

/// Keeps only what netpol reads (the schema's fields of the kind): managedFields, annotations,
/// volumes and the rest never reach the loader, nor stay in memory.
pub fn prune(kind: Kind, obj: &DynamicObject) -> serde_json::Value {
    kind.prune_parts(&obj.metadata, &obj.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The `(apiGroups, resources)` of every rule of deploy/rbac.yaml's ClusterRole that grants
    /// exactly get, list and watch (the file writes each as one flow list per line).
    fn rbac_rules() -> Vec<(Vec<String>, Vec<String>)> {
        let text = include_str!("../../../../deploy/rbac.yaml");
        let list = |line: &str| -> Vec<String> {
            let inner = line.split_once('[').map_or("", |(_, r)| r);
            let inner = inner.split_once(']').map_or("", |(l, _)| l);
            inner
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .collect()
        };
        let mut rules = Vec::new();
        let (mut groups, mut resources) = (Vec::new(), Vec::new());
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("- apiGroups:") {
                groups = list(rest);
            } else if let Some(rest) = line.strip_prefix("resources:") {
                resources = list(rest);
            } else if let Some(rest) = line.strip_prefix("verbs:") {
                if list(rest) == ["get", "list", "watch"] {
                    rules.push((groups.clone(), resources.clone()));
                }
            }
        }
        rules
    }

    #[test]
    fn the_deployed_rbac_lets_the_agent_read_every_kind_it_watches() {
        let rules = rbac_rules();
        for kind in &schema::KINDS {
            let granted = rules.iter().any(|(groups, resources)| {
                groups.iter().any(|g| g == kind.group) && resources.iter().any(|r| r == kind.plural)
            });
            assert!(
                granted,
                "deploy/rbac.yaml grants no get/list/watch on {}/{}",
                kind.group, kind.plural
            );
        }
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
