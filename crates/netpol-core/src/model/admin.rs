//! The admin tiers: ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`) and the v1alpha1
//! AdminNetworkPolicy / BaselineAdminNetworkPolicy, after validation and the v1alpha1 → v1alpha2
//! mapping (Allow → Accept, `ports` → protocols, BANP → the Baseline tier after every v1alpha2
//! Baseline policy). One shape for all three, so the oracle, the analyzer and the compiler walk
//! one kind of rule.
//!
//! Evaluation order (see [`admin_order`]): Admin tier policies by priority (lower first), then
//! NetworkPolicy v1, then Baseline tier policies by priority, then the default (allow). Equal
//! priorities are undefined upstream; netpol breaks ties by API (v1alpha2 before v1alpha1) and
//! then by name, and lint warns when tied policies overlap.

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{Cluster, LabelSelector, Origin, Protocol, Workload};

/// The tier an admin policy decides in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AdminTier {
    /// Before NetworkPolicy: its Accept and Deny cannot be overridden.
    Admin,
    /// After NetworkPolicy: only for workloads no NetworkPolicy isolates in the direction.
    Baseline,
}

impl AdminTier {
    /// `Admin` or `Baseline`, the API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminTier::Admin => "Admin",
            AdminTier::Baseline => "Baseline",
        }
    }
}

impl fmt::Display for AdminTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which API object an admin policy was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AdminApi {
    /// `policy.networking.k8s.io/v1alpha2` ClusterNetworkPolicy (either tier).
    ClusterNetworkPolicy,
    /// `policy.networking.k8s.io/v1alpha1` AdminNetworkPolicy (Admin tier).
    AdminNetworkPolicy,
    /// `policy.networking.k8s.io/v1alpha1` BaselineAdminNetworkPolicy (Baseline tier, after every
    /// ClusterNetworkPolicy of that tier).
    BaselineAdminNetworkPolicy,
}

impl AdminApi {
    /// The prefix of the policy's key: `cnp`, `anp`, `banp`.
    pub fn short_name(self) -> &'static str {
        match self {
            AdminApi::ClusterNetworkPolicy => "cnp",
            AdminApi::AdminNetworkPolicy => "anp",
            AdminApi::BaselineAdminNetworkPolicy => "banp",
        }
    }

    /// The kind as written in manifests.
    pub fn kind(self) -> &'static str {
        match self {
            AdminApi::ClusterNetworkPolicy => "ClusterNetworkPolicy",
            AdminApi::AdminNetworkPolicy => "AdminNetworkPolicy",
            AdminApi::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
        }
    }
}

/// What a matching admin rule does to the direction it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AdminAction {
    /// Allows the direction; no later rule of any tier is consulted for it.
    Accept,
    /// Denies the direction; final.
    Deny,
    /// Skips the rest of the tier (later rules and later policies of the tier).
    Pass,
}

impl AdminAction {
    /// `Accept`, `Deny` or `Pass`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminAction::Accept => "Accept",
            AdminAction::Deny => "Deny",
            AdminAction::Pass => "Pass",
        }
    }
}

impl fmt::Display for AdminAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The workloads an admin policy applies to (`spec.subject`, exactly one of its fields).
/// hostNetwork pods are never subjects (they are not workloads in the model).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AdminSubject {
    /// `namespaces`: every workload of the namespaces the selector matches.
    Namespaces(LabelSelector),
    /// `pods`: workloads the pod selector matches in namespaces the namespace selector matches.
    Pods {
        /// Selects namespaces by their labels (the empty selector: all of them).
        namespace_selector: LabelSelector,
        /// Selects workloads by their labels (the empty selector: all of them).
        pod_selector: LabelSelector,
    },
}

/// One peer of an admin rule (exactly one field of the API's peer).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AdminPeer {
    /// `namespaces`: every workload of the namespaces the selector matches.
    Namespaces(LabelSelector),
    /// `pods`: workloads by namespace and pod selector, ANDed.
    Pods {
        /// Selects namespaces by their labels.
        namespace_selector: LabelSelector,
        /// Selects workloads by their labels.
        pod_selector: LabelSelector,
    },
    /// `networks` (egress only): any address in one of the CIDRs, workload addresses included.
    Networks(Vec<IpNet>),
    /// `nodes` (egress only): the addresses of the Node objects the selector matches.
    Nodes(LabelSelector),
    /// `domainNames` (egress, Accept rules only): matched only through addresses the user
    /// resolved (`--resolve NAME=IP`); the kernel does not enforce them.
    DomainNames(Vec<String>),
    /// A peer with no field netpol knows (a newer CRD): fails closed, so an Accept rule with it
    /// matches no traffic at all (its other peers neither), and a Deny or Pass rule with it
    /// denies everything.
    Unknown,
}

/// The destination ports an admin rule applies to (one entry of `protocols`, or a v1alpha1
/// `ports` entry mapped onto it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AdminPort {
    /// `tcp|udp|sctp` with an optional `destinationPort`; `None` is every port of the protocol.
    Protocol {
        /// The protocol.
        protocol: Protocol,
        /// The inclusive port range (a single port has `start == end`); `None` is every port.
        ports: Option<(u16, u16)>,
    },
    /// `destinationNamedPort`: the destination's container port of that name, whatever its
    /// protocol.
    Named(String),
}

impl fmt::Display for AdminPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminPort::Protocol {
                protocol,
                ports: None,
            } => write!(f, "{protocol} (all ports)"),
            AdminPort::Protocol {
                protocol,
                ports: Some((a, b)),
            } if a == b => write!(f, "{protocol} {a}"),
            AdminPort::Protocol {
                protocol,
                ports: Some((a, b)),
            } => write!(f, "{protocol} {a}-{b}"),
            AdminPort::Named(name) => write!(f, "named port {name:?}"),
        }
    }
}

impl AdminPort {
    /// Whether the entry admits `protocol`/`port` towards `destination` (a named port resolves
    /// on the destination workload's container ports, the first of that name under the flow's
    /// protocol, as NetworkPolicy resolves them; an address has none).
    pub fn admits(&self, protocol: Protocol, port: u16, destination: Option<&Workload>) -> bool {
        match self {
            AdminPort::Protocol { protocol: p, ports } => {
                *p == protocol && ports.is_none_or(|(start, end)| (start..=end).contains(&port))
            }
            AdminPort::Named(name) => {
                destination.is_some_and(|d| d.resolve_named_port(name, protocol) == Some(port))
            }
        }
    }
}

/// One ingress or egress rule of an admin policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AdminRule {
    /// The rule's `name`, when it has one.
    pub name: Option<String>,
    /// What a match does.
    pub action: AdminAction,
    /// The peers (`from` or `to`); validation requires at least one.
    pub peers: Vec<AdminPeer>,
    /// The ports; `None` when the rule has no `protocols` (every port of every protocol).
    pub ports: Option<Vec<AdminPort>>,
    /// The file and line of the rule itself, when known.
    pub origin: Option<Origin>,
}

/// A ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy after validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminPolicy {
    /// Which object it was read from.
    pub api: AdminApi,
    /// The object's name (cluster-scoped: no namespace).
    pub name: String,
    /// The tier it decides in.
    pub tier: AdminTier,
    /// Lower decides first within the tier (0-1000; a BaselineAdminNetworkPolicy has none and
    /// comes after every ClusterNetworkPolicy of the Baseline tier).
    pub priority: u32,
    /// The workloads it applies to.
    pub subject: AdminSubject,
    /// Ingress rules in written order; the first that matches decides.
    pub ingress: Vec<AdminRule>,
    /// Egress rules in written order; the first that matches decides.
    pub egress: Vec<AdminRule>,
    /// The file and line it was loaded from; `None` for objects from the API server.
    pub origin: Option<Origin>,
}

impl AdminPolicy {
    /// `cnp/NAME`, `anp/NAME` or `banp/NAME`: how outputs name the policy.
    pub fn key(&self) -> String {
        format!("{}/{}", self.api.short_name(), self.name)
    }

    /// The rules of one direction.
    pub fn rules(&self, direction: super::Direction) -> &[AdminRule] {
        match direction {
            super::Direction::Ingress => &self.ingress,
            super::Direction::Egress => &self.egress,
        }
    }

    /// The position in the walk of its tier: priority, then v1alpha2 before v1alpha1 (a BANP
    /// after everything), then name.
    fn order_key(&self) -> (AdminTier, bool, u32, AdminApi, &str) {
        (
            self.tier,
            self.api == AdminApi::BaselineAdminNetworkPolicy,
            self.priority,
            self.api,
            &self.name,
        )
    }
}

/// Indices of `policies` in the order the tiers walk them: Admin before Baseline, then
/// [`AdminPolicy`]'s tie-breaking order (documented in the module).
pub fn admin_order(policies: &[AdminPolicy]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..policies.len()).collect();
    order.sort_by(|&a, &b| policies[a].order_key().cmp(&policies[b].order_key()));
    order
}

impl Cluster {
    /// The addresses the user resolved (`resolved_names`) for the names `patterns` match, in
    /// name order, each once.
    pub fn resolved_addresses(&self, patterns: &[String]) -> Vec<std::net::IpAddr> {
        let mut out = Vec::new();
        for (name, addresses) in &self.resolved_names {
            if patterns.iter().any(|p| domain_matches(p, name)) {
                for a in addresses {
                    if !out.contains(a) {
                        out.push(*a);
                    }
                }
            }
        }
        out
    }
}

/// Whether a `domainNames` entry matches a (resolved) name: exactly, or, for `*.suffix`, any name
/// with one or more whole labels before `suffix`. Case and a final dot do not matter (DNS names).
pub fn domain_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .strip_suffix(suffix)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|labels| !labels.is_empty()),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_domain_matches_only_itself() {
        assert!(domain_matches("kubernetes.io", "kubernetes.io"));
        assert!(domain_matches("kubernetes.io", "Kubernetes.IO."));
        assert!(!domain_matches("kubernetes.io", "www.kubernetes.io"));
        assert!(!domain_matches("kubernetes.io", "my-kubernetes.io"));
    }

    #[test]
    fn a_wildcard_domain_matches_one_or_more_whole_labels_but_not_the_suffix_itself() {
        assert!(domain_matches("*.kubernetes.io", "www.kubernetes.io"));
        assert!(domain_matches(
            "*.kubernetes.io",
            "latest.blog.kubernetes.io"
        ));
        assert!(!domain_matches("*.kubernetes.io", "kubernetes.io"));
        assert!(!domain_matches("*.kubernetes.io", "my-kubernetes.io"));
        assert!(!domain_matches("*.kubernetes.io", "wikipedia.org"));
    }

    fn policy(api: AdminApi, tier: AdminTier, priority: u32, name: &str) -> AdminPolicy {
        AdminPolicy {
            api,
            name: name.into(),
            tier,
            priority,
            subject: AdminSubject::Namespaces(LabelSelector::everything()),
            ingress: vec![],
            egress: vec![],
            origin: None,
        }
    }

    #[test]
    fn the_walk_orders_admin_before_baseline_then_priority_then_api_then_name_with_the_banp_last() {
        use AdminApi::*;
        use AdminTier::*;
        let ps = vec![
            policy(BaselineAdminNetworkPolicy, Baseline, 0, "default"),
            policy(ClusterNetworkPolicy, Baseline, 1000, "late-baseline"),
            policy(ClusterNetworkPolicy, Admin, 5, "b"),
            policy(AdminNetworkPolicy, Admin, 5, "a"),
            policy(ClusterNetworkPolicy, Admin, 5, "a"),
            policy(ClusterNetworkPolicy, Admin, 1, "z"),
        ];
        let keys: Vec<String> = admin_order(&ps).into_iter().map(|i| ps[i].key()).collect();
        assert_eq!(
            keys,
            [
                "cnp/z",
                "cnp/a",
                "cnp/b",
                "anp/a",
                "cnp/late-baseline",
                "banp/default"
            ]
        );
    }
}
