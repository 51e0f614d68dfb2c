//! The model: what the rest of netpol knows about a cluster after loading, defaulting and
//! validation. Values here are already valid and defaulted (see `netpol-k8s`), so evaluation never
//! has to second-guess them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

mod admin;
mod nodes;

pub use admin::{
    admin_order, domain_matches, AdminAction, AdminApi, AdminPeer, AdminPolicy, AdminPort,
    AdminRule, AdminSubject, AdminTier,
};
pub use nodes::{address_of_family, families_of, IpFamily, Node};

/// Labels of an object, sorted by key so that every rendering is deterministic.
pub type Labels = BTreeMap<String, String>;

/// The label the API server puts on every namespace, holding the namespace's name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// An L4 protocol a NetworkPolicy port can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// Transmission Control Protocol (IP protocol 6).
    Tcp,
    /// User Datagram Protocol (IP protocol 17).
    Udp,
    /// Stream Control Transmission Protocol (IP protocol 132).
    Sctp,
}

impl Protocol {
    /// Every protocol, in the order outputs list them.
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

    /// The API spelling: `TCP`, `UDP`, `SCTP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a protocol name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol {0:?}: expected TCP, UDP or SCTP")]
pub struct UnknownProtocol(pub String);

impl FromStr for Protocol {
    type Err = UnknownProtocol;

    /// Accepts any case, for command lines. The API's exact-case rule is checked by the loader.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            "SCTP" => Ok(Protocol::Sctp),
            _ => Err(UnknownProtocol(s.to_string())),
        }
    }
}

/// What kind of object a workload came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WorkloadKind {
    /// A core/v1 Pod.
    Pod,
    /// A Deckhouse `virtualization.deckhouse.io/v1alpha2` VirtualMachine.
    VirtualMachine,
    /// A KubeVirt `kubevirt.io/v1` VirtualMachineInstance.
    VirtualMachineInstance,
    /// An `apps/v1` Deployment: its pod template, and its live Pods folded in when loaded.
    Deployment,
    /// An `apps/v1` StatefulSet.
    StatefulSet,
    /// An `apps/v1` DaemonSet.
    DaemonSet,
    /// An `apps/v1` ReplicaSet (one not owned by a loaded Deployment).
    ReplicaSet,
    /// A core/v1 ReplicationController.
    ReplicationController,
    /// A `batch/v1` Job (one not owned by a loaded CronJob).
    Job,
    /// A `batch/v1` CronJob: the pod template inside its job template.
    CronJob,
}

impl WorkloadKind {
    /// The short prefix used in references such as `vm/ns/name`, `pod/ns/name` and
    /// `deployment/ns/name`.
    pub fn short_name(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "pod",
            WorkloadKind::VirtualMachine => "vm",
            WorkloadKind::VirtualMachineInstance => "vmi",
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
            WorkloadKind::ReplicaSet => "replicaset",
            WorkloadKind::ReplicationController => "replicationcontroller",
            WorkloadKind::Job => "job",
            WorkloadKind::CronJob => "cronjob",
        }
    }

    /// A virtual machine (or its instance), as `get vms` lists them.
    pub fn is_vm(self) -> bool {
        matches!(
            self,
            WorkloadKind::VirtualMachine | WorkloadKind::VirtualMachineInstance
        )
    }

    /// A workload controller: a pod template (no address of its own; its Pods' when they are
    /// loaded and fold into it).
    pub fn is_controller(self) -> bool {
        !self.is_vm() && self != WorkloadKind::Pod
    }
}

/// A named container port of a pod, the target of a policy port given by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NamedPort {
    /// The port's name as a policy refers to it (`ports[].port: http`).
    pub name: String,
    /// The protocol the container port is declared for.
    pub protocol: Protocol,
    /// The container port number the name resolves to.
    pub port: u16,
}

/// Where an object was read from, for messages that point a user at the source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Origin {
    /// The file path as given on the command line, or `-` for standard input.
    pub file: String,
    /// 1-based line of the object's first line in that file.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A Pod or VM that policies can select and that can send or receive traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Which kind of object it was loaded from.
    pub kind: WorkloadKind,
    /// The namespace it lives in.
    pub namespace: String,
    /// Its name, unique per kind within the namespace.
    pub name: String,
    /// Its labels, which pod selectors are matched against.
    pub labels: Labels,
    /// Every address of the workload; a dual-stack workload has one per family. May be empty
    /// (not yet scheduled): selectors still match it, ipBlocks never do.
    pub addresses: Vec<IpAddr>,
    /// The node the workload runs on (`spec.nodeName` of a Pod, `status.nodeName` of a VM).
    pub node: Option<String>,
    /// The phase as the object reports it (`Running`, `Pending`, ...), for display.
    pub phase: Option<String>,
    /// Named container ports; always empty for VMs.
    pub named_ports: Vec<NamedPort>,
    /// The file and line it was loaded from; `None` for objects from the API server.
    pub origin: Option<Origin>,
    /// How many instances of it may run at once: a controller with several has replicas that
    /// talk to each other as two pods do (see [`Workload::has_replicas`]).
    #[serde(default)]
    pub instances: Instances,
}

/// How many instances of a workload may run at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Instances {
    /// Exactly this many: 1 for a Pod or a VM; a controller's `spec.replicas` (Job and CronJob:
    /// `parallelism`), or the number of its live Pods when more of them are loaded.
    Count(u32),
    /// One per node its Pods are scheduled on (a DaemonSet): how many nodes that is, a manifest
    /// does not say, so netpol takes it as more than one.
    PerNode,
}

impl Default for Instances {
    /// A single instance, as a Pod or a VM is.
    fn default() -> Self {
        Instances::Count(1)
    }
}

impl Instances {
    /// Whether two instances may run at once (and so may talk to each other).
    pub fn several(self) -> bool {
        match self {
            Instances::Count(n) => n >= 2,
            Instances::PerNode => true,
        }
    }

    /// The larger of two counts; one per node counts as more than any number.
    pub fn max(self, other: Instances) -> Instances {
        match (self, other) {
            (Instances::Count(a), Instances::Count(b)) => Instances::Count(a.max(b)),
            _ => Instances::PerNode,
        }
    }
}

impl fmt::Display for Instances {
    /// `3`, or `per node`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Instances::Count(n) => write!(f, "{n}"),
            Instances::PerNode => f.write_str("per node"),
        }
    }
}

impl Workload {
    /// Whether it runs as two or more instances (replicas) at once: a flow from one to another
    /// is then an ordinary pod-to-pod flow, which policies decide, unlike an instance reaching
    /// its own address.
    pub fn has_replicas(&self) -> bool {
        self.instances.several()
    }

    /// `kind/namespace/name` (`deployment/shop/api`), the workload named with its kind.
    pub fn kind_key(&self) -> String {
        format!("{}/{}", self.kind.short_name(), self.key())
    }

    /// `namespace/name`, the key used in every output.
    pub fn key(&self) -> String {
        namespaced_key(&self.namespace, &self.name)
    }

    /// Resolves a named port against this workload's container ports for one protocol.
    pub fn resolve_named_port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.named_ports
            .iter()
            .find(|p| p.name == name && p.protocol == protocol)
            .map(|p| p.port)
    }
}

/// A namespace and its labels (always including [`NAMESPACE_NAME_LABEL`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// The namespace's name.
    pub name: String,
    /// Its labels, which namespace selectors are matched against.
    pub labels: Labels,
    /// True when no Namespace object was loaded and netpol created it because something referred
    /// to it.
    pub implicit: bool,
}

impl Namespace {
    /// A namespace carrying the automatic name label plus `labels`.
    pub fn new(name: impl Into<String>, mut labels: Labels, implicit: bool) -> Self {
        let name = name.into();
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.clone());
        Namespace {
            name,
            labels,
            implicit,
        }
    }
}

/// The operator of a `matchExpressions` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SelectorOperator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present, whatever its value.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl fmt::Display for SelectorOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SelectorOperator::In => "In",
            SelectorOperator::NotIn => "NotIn",
            SelectorOperator::Exists => "Exists",
            SelectorOperator::DoesNotExist => "DoesNotExist",
        })
    }
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SelectorRequirement {
    /// The label key the requirement tests.
    pub key: String,
    /// How the label's value is tested.
    pub operator: SelectorOperator,
    /// The values `In` and `NotIn` compare against; empty for `Exists` and `DoesNotExist`.
    pub values: Vec<String>,
}

impl SelectorRequirement {
    /// Kubernetes semantics: `NotIn` and `DoesNotExist` match an object without the key.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            SelectorOperator::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            SelectorOperator::NotIn => value.is_none_or(|v| self.values.iter().all(|x| x != v)),
            SelectorOperator::Exists => value.is_some(),
            SelectorOperator::DoesNotExist => value.is_none(),
        }
    }
}

/// A `metav1.LabelSelector`: all of `match_labels` and all of `match_expressions` must hold. The
/// empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LabelSelector {
    /// Labels that must all be present with exactly these values.
    pub match_labels: Labels,
    /// Requirements that must all hold.
    pub match_expressions: Vec<SelectorRequirement>,
}

impl LabelSelector {
    /// The empty selector, which matches every object.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Whether the selector has no constraints (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether an object with `labels` is selected.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

impl fmt::Display for LabelSelector {
    /// The kubectl rendering (`vm=a,tier in (db,web),!legacy`); the empty selector prints as
    /// `<all>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("<all>");
        }
        let mut parts: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        for r in &self.match_expressions {
            parts.push(match r.operator {
                SelectorOperator::In => format!("{} in ({})", r.key, r.values.join(",")),
                SelectorOperator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                SelectorOperator::Exists => r.key.clone(),
                SelectorOperator::DoesNotExist => format!("!{}", r.key),
            });
        }
        f.write_str(&parts.join(","))
    }
}

/// An `ipBlock` peer: `cidr` minus every `except` hole.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IpBlock {
    /// The block of addresses the peer covers.
    pub cidr: IpNet,
    /// Sub-blocks of `cidr` the peer does not cover.
    pub except: Vec<IpNet>,
}

impl IpBlock {
    /// Whether `address` is in the block and in none of its holes.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.cidr.contains(&address) && !self.except.iter().any(|e| e.contains(&address))
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cidr)?;
        if !self.except.is_empty() {
            let holes: Vec<String> = self.except.iter().map(|e| e.to_string()).collect();
            write!(f, " except {}", holes.join(", "))?;
        }
        Ok(())
    }
}

/// One entry of a rule's `from` or `to`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Peer {
    /// `podSelector` and/or `namespaceSelector` (at least one is set, as validation requires).
    /// `namespace_selector: None` means the policy's own namespace; `pod_selector: None` means every
    /// workload of the selected namespaces. Both set are ANDed.
    Selector {
        /// Selects workloads by their labels; `None` selects every workload of the namespaces.
        pod_selector: Option<LabelSelector>,
        /// Selects namespaces by their labels; `None` means the policy's own namespace.
        namespace_selector: Option<LabelSelector>,
    },
    /// An `ipBlock` peer.
    IpBlock(IpBlock),
}

/// The port part of a `NetworkPolicyPort`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PortSpec {
    /// `port: N` without `endPort`.
    Number(u16),
    /// `port: start` with `endPort: end` (inclusive, `start <= end`).
    Range {
        /// The first port of the range.
        start: u16,
        /// The last port of the range (inclusive).
        end: u16,
    },
    /// `port: name`, resolved against the destination's named container ports.
    Named(String),
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Number(n) => write!(f, "{n}"),
            PortSpec::Range { start, end } => write!(f, "{start}-{end}"),
            PortSpec::Named(name) => write!(f, "{name:?}"),
        }
    }
}

/// A `NetworkPolicyPort` after defaulting (`protocol` defaults to TCP). `port: None` means every
/// port of the protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PolicyPort {
    /// The protocol the port applies to.
    pub protocol: Protocol,
    /// The port or ports; `None` means every port of the protocol.
    pub port: Option<PortSpec>,
}

impl fmt::Display for PolicyPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.port {
            None => write!(f, "{} (all ports)", self.protocol),
            Some(p) => write!(f, "{} {}", self.protocol, p),
        }
    }
}

/// One ingress or egress rule. An empty `peers` list means every peer (no `from`/`to`); an empty
/// `ports` list means every port of every protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule {
    /// The peers the rule admits; empty means every peer.
    pub peers: Vec<Peer>,
    /// The ports the rule admits; empty means every port of every protocol.
    pub ports: Vec<PolicyPort>,
}

/// A NetworkPolicy after validation and defaulting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The namespace the policy lives in and whose workloads it can select.
    pub namespace: String,
    /// The policy's name, unique within its namespace.
    pub name: String,
    /// Selects the workloads of `namespace` the policy applies to; empty selects all of them.
    pub pod_selector: LabelSelector,
    /// `policyTypes` contains `Ingress` (after defaulting: true unless only `Egress` was given).
    pub affects_ingress: bool,
    /// `policyTypes` contains `Egress` (after defaulting: true when `egress` rules exist).
    pub affects_egress: bool,
    /// Ingress rules: each admits traffic from its peers to its ports.
    pub ingress: Vec<Rule>,
    /// Egress rules: each admits traffic to its peers on its ports.
    pub egress: Vec<Rule>,
    /// The file and line it was loaded from; `None` for objects from the API server.
    pub origin: Option<Origin>,
    /// The lines (in `origin`'s file) of its rules and their peers and ports; empty when
    /// `origin` is `None` or the policy was built in code.
    #[serde(default, skip_serializing_if = "RuleLines::is_empty")]
    pub rule_lines: RuleLines,
}

/// Where a NetworkPolicy's rules were written: one [`RuleLine`] per rule of each direction, in
/// the rules' order, so a finding about a rule, a peer or a port can point at that item.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleLines {
    /// One per `ingress` rule.
    pub ingress: Vec<RuleLine>,
    /// One per `egress` rule.
    pub egress: Vec<RuleLine>,
}

impl RuleLines {
    /// Whether no line is known.
    pub fn is_empty(&self) -> bool {
        self.ingress.is_empty() && self.egress.is_empty()
    }

    /// The lines of one direction's rules.
    pub fn of(&self, direction: Direction) -> &[RuleLine] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// The 1-based lines of one rule, of each of its peers (`from`/`to` items) and of each of its
/// `ports` items, in the order of `Rule::peers` and `Rule::ports`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleLine {
    /// The rule's first line (its list item).
    pub line: usize,
    /// One per peer.
    pub peers: Vec<usize>,
    /// One per port.
    pub ports: Vec<usize>,
}

/// An item of a NetworkPolicy rule that a message can point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleItem {
    /// The rule itself.
    Rule,
    /// Its peer at this index of `Rule::peers`.
    Peer(usize),
    /// Its port at this index of `Rule::ports`.
    Port(usize),
}

impl Policy {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        namespaced_key(&self.namespace, &self.name)
    }

    /// The rules of one direction.
    pub fn rules(&self, direction: Direction) -> &[Rule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// Whether `policyTypes` names this direction.
    pub fn affects(&self, direction: Direction) -> bool {
        match direction {
            Direction::Ingress => self.affects_ingress,
            Direction::Egress => self.affects_egress,
        }
    }

    /// Where an item of rule `rule` of `direction` was written: the policy's file with the item's
    /// line, or the policy's own origin when the item's line is not known.
    pub fn item_origin(&self, direction: Direction, rule: usize, item: RuleItem) -> Option<Origin> {
        let origin = self.origin.as_ref()?;
        let lines = self.rule_lines.of(direction).get(rule);
        let line = lines.and_then(|l| match item {
            RuleItem::Rule => Some(l.line),
            RuleItem::Peer(i) => l.peers.get(i).copied(),
            RuleItem::Port(i) => l.ports.get(i).copied(),
        });
        Some(Origin {
            file: origin.file.clone(),
            line: line.unwrap_or(origin.line),
        })
    }
}

/// Traffic direction as seen from a selected workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    /// Traffic arriving at the workload.
    Ingress,
    /// Traffic leaving the workload.
    Egress,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

/// Everything netpol knows about a cluster.
///
/// Invariants (established by the loader, relied on by evaluation): every namespace named by a
/// workload or policy is in `namespaces` (created `implicit` when no object defined it); every
/// namespace carries [`NAMESPACE_NAME_LABEL`]; namespace names are unique; workload keys are
/// unique per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// Every namespace, explicit or implicit.
    pub namespaces: Vec<Namespace>,
    /// Every Pod and VM.
    pub workloads: Vec<Workload>,
    /// Every NetworkPolicy.
    pub policies: Vec<Policy>,
    /// Every Node, sorted by name (empty when no Node object was loaded).
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// Every ClusterNetworkPolicy, AdminNetworkPolicy and BaselineAdminNetworkPolicy, in load
    /// order (the walk's order is [`admin_order`]).
    #[serde(default)]
    pub admin_policies: Vec<AdminPolicy>,
    /// Addresses the user resolved domain names to (`--resolve NAME=IP`), the only way a
    /// `domainNames` peer matches anything in the analyzer.
    #[serde(default)]
    pub resolved_names: BTreeMap<String, Vec<IpAddr>>,
}

impl Cluster {
    /// The namespace called `name`, if known.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.name == name)
    }

    /// The node called `name`, by index into [`Cluster::nodes`].
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The node owning `address`, by index into [`Cluster::nodes`].
    pub fn node_of_address(&self, address: IpAddr) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.addresses.contains(&address))
    }

    /// Whether `address` is an address of the node `workload` runs on.
    pub fn is_own_node_address(&self, workload: &Workload, address: IpAddr) -> bool {
        workload
            .node
            .as_deref()
            .and_then(|name| self.nodes.iter().find(|n| n.name == name))
            .is_some_and(|n| n.addresses.contains(&address))
    }

    /// Adds an implicit namespace (only the automatic label) for every namespace that a workload
    /// or policy refers to and that is not defined, returning the names added.
    pub fn add_missing_namespaces(&mut self) -> Vec<String> {
        let mut known: std::collections::BTreeSet<String> =
            self.namespaces.iter().map(|n| n.name.clone()).collect();
        let referenced = self
            .workloads
            .iter()
            .map(|w| w.namespace.clone())
            .chain(self.policies.iter().map(|p| p.namespace.clone()))
            .collect::<std::collections::BTreeSet<String>>();
        let mut added = Vec::new();
        for name in referenced {
            if known.insert(name.clone()) {
                self.namespaces
                    .push(Namespace::new(name.clone(), Labels::new(), true));
                added.push(name);
            }
        }
        added
    }
}

/// Choices where implementations of NetworkPolicy differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Whether an `ipBlock` also matches the addresses of in-cluster workloads. True is what the
    /// upstream conformance tests expect; false is Cilium's behaviour (ipBlock only matches
    /// addresses that are not workloads), which Deckhouse uses.
    pub ipblock_matches_workloads: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            ipblock_matches_workloads: true,
        }
    }
}

/// `namespace/name`, built without the formatting machinery: compiles and analyses build one
/// per workload address, tens of thousands per run.
fn namespaced_key(namespace: &str, name: &str) -> String {
    let mut key = String::with_capacity(namespace.len() + 1 + name.len());
    key.push_str(namespace);
    key.push('/');
    key.push_str(name);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    // Labels is a std map, so the builder of netpol-test-support (which links the non-test build
    // of this crate) yields the same type; its model types would not be ours here.
    use netpol_test_support::labels;

    #[test]
    fn not_in_matches_an_object_without_the_key() {
        let r = SelectorRequirement {
            key: "tier".into(),
            operator: SelectorOperator::NotIn,
            values: vec!["db".into()],
        };
        assert!(r.matches(&labels(&[])));
        assert!(r.matches(&labels(&[("tier", "web")])));
        assert!(!r.matches(&labels(&[("tier", "db")])));
    }

    #[test]
    fn the_empty_selector_matches_everything_and_prints_as_all() {
        let s = LabelSelector::everything();
        assert!(s.matches(&labels(&[])));
        assert!(s.matches(&labels(&[("a", "b")])));
        assert_eq!(s.to_string(), "<all>");
    }

    #[test]
    fn ip_block_excludes_its_holes() {
        let b = IpBlock {
            cidr: "10.0.0.0/8".parse().unwrap(),
            except: vec!["10.1.0.0/16".parse().unwrap()],
        };
        assert!(b.contains("10.2.3.4".parse().unwrap()));
        assert!(!b.contains("10.1.3.4".parse().unwrap()));
        assert!(!b.contains("192.0.2.1".parse().unwrap()));
        assert!(!b.contains("::1".parse().unwrap()));
    }

    #[test]
    fn missing_namespaces_are_added_with_only_the_name_label() {
        let mut c = Cluster::default();
        c.policies.push(Policy {
            namespace: "ghost".into(),
            name: "p".into(),
            pod_selector: LabelSelector::everything(),
            affects_ingress: true,
            affects_egress: false,
            ingress: vec![],
            egress: vec![],
            origin: None,
            rule_lines: RuleLines::default(),
        });
        assert_eq!(c.add_missing_namespaces(), vec!["ghost".to_string()]);
        let ns = c.namespace("ghost").unwrap();
        assert!(ns.implicit);
        assert_eq!(ns.labels, labels(&[(NAMESPACE_NAME_LABEL, "ghost")]));
        assert!(c.add_missing_namespaces().is_empty());
    }
}
