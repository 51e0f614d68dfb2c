//! The Kubernetes API source: one `kube::runtime::watcher` per kind (NetworkPolicy, Namespace,
//! Pod, and the VM kinds whose CRDs exist).
//!
//! Objects are watched as `DynamicObject`s so that one malformed object can never fail a whole
//! list; each object is pruned to the fields netpol reads (managedFields, annotations and all of
//! the spec and status that enforcement does not need are dropped at once, which keeps memory low)
//! and converted by the same loader as manifest files (`netpol-k8s`), so validation and defaulting
//! are exactly those of `netpol check`. An object that does not convert is skipped with a warning
//! naming it; when an update of a known object does not convert, its last good version stays.
//!
//! Relists are buffered: `Init` starts a fresh buffer, `InitApply` fills it and only `InitDone`
//! replaces the kind's objects in the store in one step, so a partial relist is never applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use netpol_core::Cluster;
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::store::{ManifestLoader, Store};
use crate::{AgentError, KubeConfig};

/// One watched kind.
#[derive(Clone, Debug)]
pub struct Kind {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
}

pub const NAMESPACE: Kind = Kind {
    kind: "Namespace",
    api_version: "v1",
    group: "",
    version: "v1",
    plural: "namespaces",
};
pub const POD: Kind = Kind {
    kind: "Pod",
    api_version: "v1",
    group: "",
    version: "v1",
    plural: "pods",
};
pub const NETWORK_POLICY: Kind = Kind {
    kind: "NetworkPolicy",
    api_version: "networking.k8s.io/v1",
    group: "networking.k8s.io",
    version: "v1",
    plural: "networkpolicies",
};
pub const VIRTUAL_MACHINE: Kind = Kind {
    kind: "VirtualMachine",
    api_version: "virtualization.deckhouse.io/v1alpha2",
    group: "virtualization.deckhouse.io",
    version: "v1alpha2",
    plural: "virtualmachines",
};
pub const VIRTUAL_MACHINE_INSTANCE: Kind = Kind {
    kind: "VirtualMachineInstance",
    api_version: "kubevirt.io/v1",
    group: "kubevirt.io",
    version: "v1",
    plural: "virtualmachineinstances",
};

impl Kind {
    fn resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// The store's source name for this kind.
    pub fn source(&self) -> String {
        format!("kube:{}", self.plural)
    }
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

/// Whether the API serves `kind` (its CRD is installed).
async fn served(client: &Client, kind: &Kind) -> bool {
    match client.list_api_group_resources(kind.api_version).await {
        Ok(list) => list.resources.iter().any(|r| r.name == kind.plural),
        Err(error) => {
            tracing::info!(kind = kind.kind, api_version = kind.api_version, %error, "kind not served (CRD missing?); not watching it");
            false
        }
    }
}

/// Registers and starts one watcher per served kind.
pub async fn spawn(
    config: KubeConfig,
    loader: Arc<dyn ManifestLoader>,
    store: Store,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, AgentError> {
    let client = client(&config).await?;
    let mut kinds = vec![NAMESPACE, POD, NETWORK_POLICY];
    if config.watch_virtual_machines && served(&client, &VIRTUAL_MACHINE).await {
        kinds.push(VIRTUAL_MACHINE);
    }
    if config.watch_virtual_machine_instances && served(&client, &VIRTUAL_MACHINE_INSTANCE).await {
        kinds.push(VIRTUAL_MACHINE_INSTANCE);
    }
    for k in &kinds {
        store.register_source(&k.source());
    }
    Ok(kinds
        .into_iter()
        .map(|kind| {
            tokio::spawn(watch_kind(
                client.clone(),
                kind,
                loader.clone(),
                store.clone(),
                metrics.clone(),
                shutdown.clone(),
            ))
        })
        .collect())
}

async fn watch_kind(
    client: Client,
    kind: Kind,
    loader: Arc<dyn ManifestLoader>,
    store: Store,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let source = kind.source();
    let api: Api<DynamicObject> = Api::all_with(client, &kind.resource());
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut relist: Option<BTreeMap<String, Cluster>> = None;
    let mut conv = Converter {
        kind: kind.clone(),
        loader,
        metrics: metrics.clone(),
        source: source.clone(),
    };
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = crate::stopped(&mut shutdown) => return,
        };
        let Some(event) = event else { return };
        match event {
            Ok(Event::Init) => {
                tracing::debug!(%source, "relist started");
                relist = Some(BTreeMap::new());
            }
            Ok(Event::InitApply(obj)) => {
                let key = object_key(&obj);
                if let Some(buffer) = relist.as_mut() {
                    // During a relist a failed conversion keeps the previous good version.
                    match conv.convert(obj) {
                        Ok(c) => {
                            buffer.insert(key, c);
                        }
                        Err(()) => {
                            if let Some(old) = store.get(&source, &key) {
                                buffer.insert(key, old);
                            }
                        }
                    }
                }
            }
            Ok(Event::InitDone) => {
                let buffer = relist.take().unwrap_or_default();
                tracing::info!(%source, objects = buffer.len(), "list complete");
                store.replace_source(&source, buffer);
                store.mark_ready(&source);
            }
            Ok(Event::Apply(obj)) => {
                let key = object_key(&obj);
                if let Ok(c) = conv.convert(obj) {
                    store.upsert(&source, &key, c);
                }
            }
            Ok(Event::Delete(obj)) => {
                store.remove(&source, &object_key(&obj));
            }
            Err(error) => {
                // The watcher retries with backoff (and relists after 410 Gone) by itself.
                tracing::warn!(%source, %error, "watch error; retrying");
                metrics.source_error(&source);
            }
        }
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
        let value = prune(&self.kind, obj);
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

fn pick(from: &Value, fields: &[&str]) -> Value {
    let mut out = Map::new();
    if let Some(m) = from.as_object() {
        for f in fields {
            if let Some(v) = m.get(*f) {
                out.insert((*f).to_string(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn pick_containers(spec: &Value, field: &str) -> Option<Value> {
    let list = spec.get(field)?.as_array()?;
    Some(Value::Array(
        list.iter()
            .map(|c| pick(c, &["name", "ports", "restartPolicy"]))
            .collect(),
    ))
}

/// Keeps only what netpol reads: metadata name, namespace and labels, and the kind's spec/status
/// fields that the model holds. Everything else (managedFields, annotations, volumes, ...) goes.
pub fn prune(kind: &Kind, obj: DynamicObject) -> Value {
    let mut metadata = Map::new();
    if let Some(n) = obj.metadata.name {
        metadata.insert("name".into(), Value::String(n));
    }
    if let Some(ns) = obj.metadata.namespace {
        metadata.insert("namespace".into(), Value::String(ns));
    }
    if let Some(labels) = obj.metadata.labels {
        metadata.insert("labels".into(), json!(labels));
    }
    let data = obj.data;
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(kind.api_version.into()));
    out.insert("kind".into(), Value::String(kind.kind.into()));
    out.insert("metadata".into(), Value::Object(metadata));
    let spec = data.get("spec").cloned().unwrap_or(Value::Null);
    let status = data.get("status").cloned().unwrap_or(Value::Null);
    match kind.kind {
        "NetworkPolicy" if !spec.is_null() => {
            out.insert("spec".into(), spec);
        }
        "Pod" => {
            let mut s = pick(&spec, &["nodeName", "hostNetwork"]);
            if let Some(m) = s.as_object_mut() {
                if let Some(c) = pick_containers(&spec, "containers") {
                    m.insert("containers".into(), c);
                }
                if let Some(c) = pick_containers(&spec, "initContainers") {
                    m.insert("initContainers".into(), c);
                }
            }
            out.insert("spec".into(), s);
            out.insert(
                "status".into(),
                pick(&status, &["phase", "podIP", "podIPs"]),
            );
        }
        "VirtualMachine" => {
            out.insert(
                "status".into(),
                pick(&status, &["ipAddress", "nodeName", "phase"]),
            );
        }
        "VirtualMachineInstance" => {
            let mut s = pick(&status, &["nodeName", "phase"]);
            if let (Some(m), Some(ifaces)) = (
                s.as_object_mut(),
                status.get("interfaces").and_then(Value::as_array),
            ) {
                m.insert(
                    "interfaces".into(),
                    Value::Array(
                        ifaces
                            .iter()
                            .map(|i| pick(i, &["ipAddress", "ipAddresses"]))
                            .collect(),
                    ),
                );
            }
            out.insert("status".into(), s);
        }
        _ => {}
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v = prune(&POD, obj);
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
