//! The objects that explain a connectivity diff: namespaces, workloads, policies and nodes added,
//! removed or changed between two clusters, with the fields that differ (only what the analysis
//! reads: where an object was loaded from is not a change).
//!
//! A pair's connectivity depends only on the policies selecting its source (egress) or its
//! destination (ingress), the two endpoints (labels, addresses, named ports, node, and for a
//! workload's own pair its instances: several make it a pair of two replicas) and their
//! namespaces' labels; [`MapDiff::explaining`] lists the changes among those, so the list is
//! complete for every changed pair.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::eval::{admin_policy_selects, policy_selects};
use crate::model::{AdminPolicy, Cluster, Labels, Policy, Workload};
use crate::render::render_admin_subject;

use super::pairs::PairChange;
use super::MapDiff;

/// What kind of object changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ObjectKind {
    /// A Namespace.
    Namespace,
    /// A Pod or VM.
    Workload,
    /// A NetworkPolicy.
    NetworkPolicy,
    /// A ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy (named by its
    /// key, `cnp/NAME`).
    AdminPolicy,
    /// A Node.
    Node,
}

/// Whether an object was added, removed or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// Only the new cluster has it.
    Added,
    /// Only the old cluster had it.
    Removed,
    /// Both have it, with different fields.
    Changed,
}

/// One object added, removed or changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectChange {
    /// What kind of object.
    pub kind: ObjectKind,
    /// Its name as outputs write it: `ns/name`, `vm/ns/name` (workloads with their kind), or
    /// `NAME` (namespaces and nodes).
    pub name: String,
    /// Added, removed or changed.
    pub presence: Presence,
    /// For a changed object, each differing field, short: `spec.ingress[0]`,
    /// `labels: +app=web -app=api`.
    pub fields: Vec<String>,
}

/// Every object added, removed or changed from `old` to `new`, by kind, then name.
pub fn object_changes(old: &Cluster, new: &Cluster) -> Vec<ObjectChange> {
    let mut out = Vec::new();
    compare(
        &mut out,
        ObjectKind::Namespace,
        by_name(&old.namespaces, |n| n.name.clone()),
        by_name(&new.namespaces, |n| n.name.clone()),
        |a, b| {
            labels_field("labels", &a.labels, &b.labels)
                .into_iter()
                .collect()
        },
    );
    compare(
        &mut out,
        ObjectKind::Workload,
        by_name(&old.workloads, workload_name),
        by_name(&new.workloads, workload_name),
        workload_fields,
    );
    compare(
        &mut out,
        ObjectKind::NetworkPolicy,
        by_name(&old.policies, Policy::key),
        by_name(&new.policies, Policy::key),
        policy_fields,
    );
    compare(
        &mut out,
        ObjectKind::AdminPolicy,
        by_name(&old.admin_policies, AdminPolicy::key),
        by_name(&new.admin_policies, AdminPolicy::key),
        admin_policy_fields,
    );
    compare(
        &mut out,
        ObjectKind::Node,
        by_name(&old.nodes, |n| n.name.clone()),
        by_name(&new.nodes, |n| n.name.clone()),
        |a, b| {
            let mut f = Vec::new();
            if let Some(l) = labels_field("labels", &a.labels, &b.labels) {
                f.push(l);
            }
            if a.addresses != b.addresses {
                f.push(format!(
                    "addresses: {} -> {}",
                    addresses(&a.addresses),
                    addresses(&b.addresses)
                ));
            }
            f
        },
    );
    out
}

/// `vm/ns/name`: a workload's kind and key, how a diff names it.
pub fn workload_name(w: &Workload) -> String {
    format!("{}/{}", w.kind.short_name(), w.key())
}

fn by_name<T>(items: &[T], name: impl Fn(&T) -> String) -> BTreeMap<String, &T> {
    items.iter().map(|i| (name(i), i)).collect()
}

fn compare<T>(
    out: &mut Vec<ObjectChange>,
    kind: ObjectKind,
    old: BTreeMap<String, &T>,
    mut new: BTreeMap<String, &T>,
    fields: impl Fn(&T, &T) -> Vec<String>,
) {
    let mut changes = Vec::new();
    for (name, a) in old {
        let (presence, fields) = match new.remove(&name) {
            None => (Presence::Removed, Vec::new()),
            Some(b) => {
                let f = fields(a, b);
                if f.is_empty() {
                    continue;
                }
                (Presence::Changed, f)
            }
        };
        changes.push(ObjectChange {
            kind,
            name,
            presence,
            fields,
        });
    }
    changes.extend(new.into_keys().map(|name| ObjectChange {
        kind,
        name,
        presence: Presence::Added,
        fields: Vec::new(),
    }));
    changes.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(changes);
}

/// `labels: +app=web -app=api`, or nothing when equal.
fn labels_field(what: &str, a: &Labels, b: &Labels) -> Option<String> {
    if a == b {
        return None;
    }
    let mut parts = Vec::new();
    for (k, v) in b {
        if a.get(k) != Some(v) {
            parts.push(format!("+{k}={v}"));
        }
    }
    for (k, v) in a {
        if b.get(k) != Some(v) {
            parts.push(format!("-{k}={v}"));
        }
    }
    Some(format!("{what}: {}", parts.join(" ")))
}

fn addresses(a: &[std::net::IpAddr]) -> String {
    if a.is_empty() {
        return "none".to_string();
    }
    a.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn workload_fields(a: &Workload, b: &Workload) -> Vec<String> {
    let mut f: Vec<String> = labels_field("labels", &a.labels, &b.labels)
        .into_iter()
        .collect();
    if a.addresses != b.addresses {
        f.push(format!(
            "addresses: {} -> {}",
            addresses(&a.addresses),
            addresses(&b.addresses)
        ));
    }
    if a.named_ports != b.named_ports {
        f.push("named ports".to_string());
    }
    if a.node != b.node {
        let node = |n: &Option<String>| n.clone().unwrap_or_else(|| "none".to_string());
        f.push(format!("node: {} -> {}", node(&a.node), node(&b.node)));
    }
    if a.instances != b.instances {
        f.push(format!("instances: {} -> {}", a.instances, b.instances));
    }
    f
}

fn policy_fields(a: &Policy, b: &Policy) -> Vec<String> {
    let mut f = Vec::new();
    if a.pod_selector != b.pod_selector {
        f.push(format!(
            "spec.podSelector: {} -> {}",
            a.pod_selector, b.pod_selector
        ));
    }
    if (a.affects_ingress, a.affects_egress) != (b.affects_ingress, b.affects_egress) {
        let types = |p: &Policy| {
            let mut t = Vec::new();
            if p.affects_ingress {
                t.push("Ingress");
            }
            if p.affects_egress {
                t.push("Egress");
            }
            format!("[{}]", t.join(","))
        };
        f.push(format!("spec.policyTypes: {} -> {}", types(a), types(b)));
    }
    rules_fields(&mut f, "spec.ingress", &a.ingress, &b.ingress);
    rules_fields(&mut f, "spec.egress", &a.egress, &b.egress);
    f
}

fn admin_policy_fields(a: &AdminPolicy, b: &AdminPolicy) -> Vec<String> {
    let mut f = Vec::new();
    if a.tier != b.tier {
        f.push(format!("spec.tier: {} -> {}", a.tier, b.tier));
    }
    if a.priority != b.priority {
        f.push(format!("spec.priority: {} -> {}", a.priority, b.priority));
    }
    if a.subject != b.subject {
        f.push(format!(
            "spec.subject: {} -> {}",
            render_admin_subject(&a.subject),
            render_admin_subject(&b.subject)
        ));
    }
    rules_fields(&mut f, "spec.ingress", &a.ingress, &b.ingress);
    rules_fields(&mut f, "spec.egress", &a.egress, &b.egress);
    f
}

/// `spec.ingress[1]` per differing rule, and `spec.ingress: 2 rules -> 3` when the count changed.
fn rules_fields<R: PartialEq>(out: &mut Vec<String>, what: &str, a: &[R], b: &[R]) {
    if a.len() != b.len() {
        out.push(format!("{what}: {} rules -> {}", a.len(), b.len()));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x != y {
            out.push(format!("{what}[{i}]"));
        }
    }
}

impl MapDiff<'_> {
    /// The changes among `changes` (from [`object_changes`] of the same two clusters) that can
    /// explain `pair`'s change: policies selecting its source with egress or its destination with
    /// ingress (before or after), the two endpoints, their namespaces and nodes.
    pub fn explaining<'c>(
        &self,
        changes: &'c [ObjectChange],
        pair: &PairChange,
    ) -> Vec<&'c ObjectChange> {
        let ends = [
            self.end(pair.old.0, pair.new.0),
            self.end(pair.old.1, pair.new.1),
        ];
        changes
            .iter()
            .filter(|c| match c.kind {
                ObjectKind::NetworkPolicy => self.policy_explains(&c.name, &ends),
                ObjectKind::AdminPolicy => self.admin_policy_explains(&c.name, &ends),
                ObjectKind::Workload => ends.iter().any(|e| e.workload.as_deref() == Some(&c.name)),
                ObjectKind::Namespace => ends.iter().any(|e| e.namespace == Some(c.name.as_str())),
                ObjectKind::Node => ends.iter().any(|e| e.node.as_deref() == Some(&c.name)),
            })
            .collect()
    }

    fn end(&self, old: usize, new: usize) -> End<'_> {
        let (oc, nc) = (self.old.cluster, self.new.cluster);
        match (oc.workloads.get(old), nc.workloads.get(new)) {
            (Some(a), Some(b)) => End {
                workloads: [Some(a), Some(b)],
                workload: Some(workload_name(b)),
                namespace: Some(b.namespace.as_str()),
                node: None,
            },
            _ => End {
                workloads: [None, None],
                workload: None,
                namespace: None,
                node: nc
                    .nodes
                    .get(new - nc.workloads.len().min(new))
                    .map(|n| n.name.clone()),
            },
        }
    }

    /// Whether the policy (in either cluster) selects the source with egress or the destination
    /// with ingress.
    fn policy_explains(&self, key: &str, ends: &[End<'_>; 2]) -> bool {
        let sides = [
            (self.old.cluster, &self.old_policies),
            (self.new.cluster, &self.new_policies),
        ];
        sides.iter().enumerate().any(|(side, (c, index))| {
            let Some(p) = index.get(key).and_then(|&i| c.policies.get(i)) else {
                return false;
            };
            let selects = |e: &End<'_>| e.workloads[side].is_some_and(|w| policy_selects(p, w));
            (p.affects_egress && selects(&ends[0])) || (p.affects_ingress && selects(&ends[1]))
        })
    }
}

impl MapDiff<'_> {
    /// Whether the admin policy (in either cluster) selects the source and has egress rules, or
    /// the destination and has ingress rules.
    fn admin_policy_explains(&self, key: &str, ends: &[End<'_>; 2]) -> bool {
        [self.old.cluster, self.new.cluster]
            .iter()
            .enumerate()
            .any(|(side, c)| {
                let Some(p) = c.admin_policies.iter().find(|p| p.key() == key) else {
                    return false;
                };
                let selects =
                    |e: &End<'_>| e.workloads[side].is_some_and(|w| admin_policy_selects(c, p, w));
                (!p.egress.is_empty() && selects(&ends[0]))
                    || (!p.ingress.is_empty() && selects(&ends[1]))
            })
    }
}

/// One end of a pair, as the explanation needs it.
struct End<'a> {
    /// The workload in the old and in the new cluster (none for a node).
    workloads: [Option<&'a Workload>; 2],
    workload: Option<String>,
    namespace: Option<&'a str>,
    node: Option<String>,
}
