//! The rule that makes a controller and its live Pods one workload: a Pod owned by a controller
//! netpol loaded (`metadata.ownerReferences` with `controller: true`) is one of its replicas.
//!
//! * Pod → StatefulSet, DaemonSet, ReplicationController, Deployment's ReplicaSet or Job, as its
//!   owner reference names it; a ReplicaSet owned by a loaded Deployment folds into the
//!   Deployment, a Job owned by a loaded CronJob into the CronJob, and so do their Pods.
//! * A dump often lacks the ReplicaSets and Jobs in between. Their names are derived from their
//!   owners', so the chain is followed without them: ReplicaSet `NAME-HASH` where the Pod carries
//!   `pod-template-hash=HASH` is Deployment `NAME`'s; Job `NAME-DIGITS` is CronJob `NAME`'s.
//! * A Pod whose owner is not loaded (or not a controller netpol reads, like a virt-launcher's
//!   VirtualMachineInstance, which [`super::Folding`] handles first) stays a Pod.
//! * The controller takes every address of its Pods (each replica has its own), in input order;
//!   the node they run on (none when they run on several); and, because the Pods are what
//!   runs, their labels and named ports instead of the template's: the labels every Pod carries
//!   with the same value (the per-replica ones, such as `statefulset.kubernetes.io/pod-name`,
//!   differ and are dropped) and the named ports of all of them.
//! * Its instances: as many as its Pods when more of them are loaded than its spec counts (a dump
//!   taken during a rollout or a scale-down holds more); a DaemonSet stays one per node.
//!
//! The agent does not apply this rule: it does not watch controllers (they have no address), so
//! its Pods stay Pods and its tables are per Pod as before.

use std::borrow::Borrow;
use std::collections::HashMap;

use netpol_core::{Instances, Labels, Workload, WorkloadKind};

/// The label a Deployment's ReplicaSet puts on its Pods (and at the end of its own name).
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// The controller an object names in `metadata.ownerReferences` (the one with `controller:
/// true`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Owner {
    /// Its `kind` (`ReplicaSet`, `Job`, ...).
    pub kind: String,
    /// Its name, in the object's namespace.
    pub name: String,
}

/// Workload `folded` (an index into the input) is one of controller `into`'s Pods, or the
/// ReplicaSet or Job between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ControllerFold {
    /// The Pod (or ReplicaSet, Job) that is not a workload of its own.
    pub folded: usize,
    /// The controller it is part of.
    pub into: usize,
}

/// Which workloads fold into which controller (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControllerFolding {
    folds: Vec<ControllerFold>,
    kept: Vec<bool>,
}

/// The controller kind an owner reference's `kind` names, if netpol reads it.
fn controller_kind(kind: &str) -> Option<WorkloadKind> {
    Some(match kind {
        "Deployment" => WorkloadKind::Deployment,
        "StatefulSet" => WorkloadKind::StatefulSet,
        "DaemonSet" => WorkloadKind::DaemonSet,
        "ReplicaSet" => WorkloadKind::ReplicaSet,
        "ReplicationController" => WorkloadKind::ReplicationController,
        "Job" => WorkloadKind::Job,
        "CronJob" => WorkloadKind::CronJob,
        _ => return None,
    })
}

/// The loaded controllers by (kind, namespace, name), and the owners of the workloads.
struct Index<'a> {
    controllers: HashMap<(WorkloadKind, &'a str, &'a str), usize>,
    ws: Vec<&'a Workload>,
    owners: &'a [Option<Owner>],
}

impl Index<'_> {
    fn get(&self, kind: WorkloadKind, ns: &str, name: &str) -> Option<usize> {
        self.controllers.get(&(kind, ns, name)).copied()
    }

    /// The loaded owner of workload `i` that is of kind `kind`.
    fn owner_of_kind(&self, i: usize, kind: WorkloadKind) -> Option<usize> {
        let owner = self.owners.get(i)?.as_ref()?;
        (controller_kind(&owner.kind)? == kind)
            .then(|| self.get(kind, &self.ws[i].namespace, &owner.name))
            .flatten()
    }

    /// The controller workload `i` (owned by `owner`) folds into: the top of its loaded chain.
    fn target(&self, i: usize, owner: &Owner) -> Option<usize> {
        let w = self.ws[i];
        let ns = w.namespace.as_str();
        let kind = controller_kind(&owner.kind)?;
        let (parent_kind, derived_parent) = match kind {
            WorkloadKind::ReplicaSet => (
                WorkloadKind::Deployment,
                w.labels
                    .get(POD_TEMPLATE_HASH_LABEL)
                    .and_then(|h| owner.name.strip_suffix(h.as_str()))
                    .and_then(|n| n.strip_suffix('-')),
            ),
            WorkloadKind::Job => (
                WorkloadKind::CronJob,
                owner
                    .name
                    .rsplit_once('-')
                    .filter(|(_, d)| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                    .map(|(n, _)| n),
            ),
            _ => return self.get(kind, ns, &owner.name),
        };
        match self.get(kind, ns, &owner.name) {
            Some(middle) => Some(self.owner_of_kind(middle, parent_kind).unwrap_or(middle)),
            None => derived_parent.and_then(|n| self.get(parent_kind, ns, n)),
        }
    }
}

impl ControllerFolding {
    /// Decides which of `workloads` fold into a controller; `owners[i]` is workload `i`'s owner
    /// reference (missing entries: none). Only Pods, ReplicaSets and Jobs fold.
    pub fn plan<W: Borrow<Workload>>(workloads: &[W], owners: &[Option<Owner>]) -> Self {
        let ws: Vec<&Workload> = workloads.iter().map(Borrow::borrow).collect();
        let mut controllers = HashMap::new();
        for (i, w) in ws.iter().enumerate() {
            if w.kind.is_controller() {
                controllers
                    .entry((w.kind, w.namespace.as_str(), w.name.as_str()))
                    .or_insert(i);
            }
        }
        let index = Index {
            controllers,
            ws,
            owners,
        };
        let mut plan = ControllerFolding {
            folds: Vec::new(),
            kept: vec![true; index.ws.len()],
        };
        for (i, w) in index.ws.iter().enumerate() {
            let folds = matches!(
                w.kind,
                WorkloadKind::Pod | WorkloadKind::ReplicaSet | WorkloadKind::Job
            );
            let Some(owner) = owners.get(i).and_then(Option::as_ref).filter(|_| folds) else {
                continue;
            };
            if let Some(into) = index.target(i, owner).filter(|&t| t != i) {
                plan.kept[i] = false;
                plan.folds.push(ControllerFold { folded: i, into });
            }
        }
        plan
    }

    /// Every fold, in input order.
    pub fn folds(&self) -> &[ControllerFold] {
        &self.folds
    }

    /// Whether workload `i` of the input stays a workload of its own.
    pub fn is_kept(&self, i: usize) -> bool {
        self.kept.get(i).copied().unwrap_or(true)
    }

    /// The workloads of the plan's input, folded: each controller with its Pods' addresses,
    /// node, labels and named ports (see the module documentation).
    pub fn apply(&self, mut workloads: Vec<Workload>) -> Vec<Workload> {
        let mut pods_of: HashMap<usize, Vec<usize>> = HashMap::new();
        for f in &self.folds {
            if workloads.get(f.folded).map(|w| w.kind) == Some(WorkloadKind::Pod) {
                pods_of.entry(f.into).or_default().push(f.folded);
            }
        }
        for (into, pods) in pods_of {
            let pods: Vec<&Workload> = pods.iter().filter_map(|&p| workloads.get(p)).collect();
            let running = Instances::Count(u32::try_from(pods.len()).unwrap_or(u32::MAX));
            let merged = merge(&pods);
            if let (Some(m), Some(target)) = (merged, workloads.get_mut(into)) {
                target.addresses = m.addresses;
                target.node = m.node;
                target.labels = m.labels;
                target.named_ports = m.named_ports;
                target.phase = m.phase;
                target.instances = target.instances.max(running);
            }
        }
        workloads
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.is_kept(*i))
            .map(|(_, w)| w)
            .collect()
    }
}

/// What a controller takes from its Pods.
struct Merged {
    addresses: Vec<std::net::IpAddr>,
    node: Option<String>,
    labels: Labels,
    named_ports: Vec<netpol_core::NamedPort>,
    phase: Option<String>,
}

/// The Pods' addresses and named ports (all, first occurrence kept), the labels they share, the
/// node when those that have one agree, the phase when all agree.
fn merge(pods: &[&Workload]) -> Option<Merged> {
    let (first, rest) = pods.split_first()?;
    let mut m = Merged {
        addresses: first.addresses.clone(),
        node: None,
        labels: first.labels.clone(),
        named_ports: first.named_ports.clone(),
        phase: first.phase.clone(),
    };
    for p in rest {
        for a in &p.addresses {
            if !m.addresses.contains(a) {
                m.addresses.push(*a);
            }
        }
        for np in &p.named_ports {
            if !m.named_ports.contains(np) {
                m.named_ports.push(np.clone());
            }
        }
        m.labels.retain(|k, v| p.labels.get(k) == Some(v));
        if m.phase != p.phase {
            m.phase = None;
        }
    }
    // A Pod not scheduled yet does not move its controller off the node of the others.
    m.node = match nodes_of(pods.iter().copied()).as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    };
    Some(m)
}

/// The distinct nodes `pods` run on, in input order.
pub(crate) fn nodes_of<'a>(pods: impl Iterator<Item = &'a Workload>) -> Vec<&'a str> {
    let mut nodes: Vec<&str> = Vec::new();
    for n in pods.filter_map(|p| p.node.as_deref()) {
        if !nodes.contains(&n) {
            nodes.push(n);
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kind: WorkloadKind, name: &str, labels: &[(&str, &str)]) -> Workload {
        Workload {
            kind,
            namespace: "shop".into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            addresses: vec![],
            node: None,
            phase: None,
            named_ports: vec![],
            origin: None,
            instances: Default::default(),
        }
    }

    fn owner(kind: &str, name: &str) -> Option<Owner> {
        Some(Owner {
            kind: kind.into(),
            name: name.into(),
        })
    }

    #[test]
    fn a_job_named_after_a_cronjob_folds_into_it_even_when_the_job_is_not_loaded() {
        let input = [
            w(WorkloadKind::CronJob, "backup", &[]),
            w(WorkloadKind::Pod, "backup-29001-x", &[]),
            w(WorkloadKind::Pod, "backup-abc-y", &[]),
        ];
        let owners = [
            None,
            owner("Job", "backup-29001"),
            owner("Job", "backup-abc"),
        ];
        let plan = ControllerFolding::plan(&input, &owners);
        assert_eq!(plan.folds(), [ControllerFold { folded: 1, into: 0 }]);
        assert!(
            plan.is_kept(2),
            "a Job name without the digits is not derived"
        );
    }

    #[test]
    fn a_replicaset_hash_must_match_the_pods_label_to_reach_the_deployment() {
        let input = [
            w(WorkloadKind::Deployment, "api", &[]),
            w(
                WorkloadKind::Pod,
                "api-7c9d-a",
                &[(POD_TEMPLATE_HASH_LABEL, "7c9d")],
            ),
            w(
                WorkloadKind::Pod,
                "api-7c9d-b",
                &[(POD_TEMPLATE_HASH_LABEL, "other")],
            ),
        ];
        let owners = [
            None,
            owner("ReplicaSet", "api-7c9d"),
            owner("ReplicaSet", "api-7c9d"),
        ];
        let plan = ControllerFolding::plan(&input, &owners);
        assert_eq!(plan.folds(), [ControllerFold { folded: 1, into: 0 }]);
    }
}
