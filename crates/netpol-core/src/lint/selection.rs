//! The checks about what selectors, ipBlocks and named ports select: NP001, NP002, NP005, NP006,
//! NP007 and NP008. Selectors are matched against the loaded workloads through an index by
//! namespace, and every search stops at the first match, so a selector that matches costs little.

use std::collections::HashMap;

use crate::model::{
    Cluster, Direction, EvalOptions, LabelSelector, Labels, Peer, Policy, PortSpec, Protocol, Rule,
    RuleItem, Workload,
};
use crate::render::render_peer;

use super::{Check, Finding, LintSeverity};

/// The workloads by namespace and by named port, and the namespaces' labels.
pub struct Index<'a> {
    cluster: &'a Cluster,
    by_namespace: HashMap<&'a str, Vec<usize>>,
    by_named_port: HashMap<(&'a str, Protocol), Vec<usize>>,
}

impl<'a> Index<'a> {
    /// Indexes the cluster's workloads.
    pub fn new(cluster: &'a Cluster) -> Self {
        let mut by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_named_port: HashMap<(&str, Protocol), Vec<usize>> = HashMap::new();
        for (i, w) in cluster.workloads.iter().enumerate() {
            by_namespace
                .entry(w.namespace.as_str())
                .or_default()
                .push(i);
            for np in &w.named_ports {
                by_named_port
                    .entry((np.name.as_str(), np.protocol))
                    .or_default()
                    .push(i);
            }
        }
        Index {
            cluster,
            by_namespace,
            by_named_port,
        }
    }

    fn namespace_labels(&self, name: &str) -> Option<&'a Labels> {
        self.cluster.namespace(name).map(|n| &n.labels)
    }

    /// Whether a selector peer of `policy` selects workload `w`.
    pub fn peer_selects(
        &self,
        policy: &Policy,
        pods: Option<&LabelSelector>,
        namespaces: Option<&LabelSelector>,
        w: &Workload,
    ) -> bool {
        let ns_ok = match namespaces {
            None => w.namespace == policy.namespace,
            Some(sel) => self
                .namespace_labels(&w.namespace)
                .is_some_and(|l| sel.matches(l)),
        };
        ns_ok && pods.is_none_or(|s| s.matches(&w.labels))
    }

    /// The first workload a selector peer selects.
    fn first_selected(
        &self,
        policy: &Policy,
        pods: Option<&LabelSelector>,
        namespaces: Option<&LabelSelector>,
    ) -> Option<usize> {
        let candidates: Box<dyn Iterator<Item = usize> + '_> = match namespaces {
            None => Box::new(self.in_namespace(&policy.namespace).iter().copied()),
            Some(sel) => Box::new(
                self.cluster
                    .namespaces
                    .iter()
                    .filter(|n| sel.matches(&n.labels))
                    .flat_map(|n| self.in_namespace(&n.name).iter().copied()),
            ),
        };
        let mut candidates = candidates;
        candidates.find(|&i| pods.is_none_or(|s| s.matches(&self.cluster.workloads[i].labels)))
    }

    fn in_namespace(&self, ns: &str) -> &[usize] {
        self.by_namespace.get(ns).map_or(&[], Vec::as_slice)
    }

    /// The workloads `policy` selects.
    pub fn subjects(&self, policy: &Policy) -> impl Iterator<Item = usize> + '_ {
        let selector = policy.pod_selector.clone();
        self.in_namespace(&policy.namespace)
            .iter()
            .copied()
            .filter(move |&i| selector.matches(&self.cluster.workloads[i].labels))
    }
}

fn field(direction: Direction) -> &'static str {
    match direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    }
}

/// The rules of both directions with their direction and index.
fn all_rules(policy: &Policy) -> impl Iterator<Item = (Direction, usize, &Rule)> {
    let ingress = policy
        .ingress
        .iter()
        .enumerate()
        .map(|(i, r)| (Direction::Ingress, i, r));
    let egress = policy
        .egress
        .iter()
        .enumerate()
        .map(|(i, r)| (Direction::Egress, i, r));
    ingress.chain(egress)
}

/// NP001: policies whose `podSelector` selects no workload of their namespace.
pub fn policies_selecting_nothing(cluster: &Cluster, index: &Index<'_>) -> Vec<Finding> {
    cluster
        .policies
        .iter()
        .filter(|p| index.subjects(p).next().is_none())
        .map(|p| {
            let message = format!(
                "podSelector {} selects no workload of namespace {}",
                p.pod_selector, p.namespace
            );
            Finding::about(Check::SelectsNoWorkload, p, message)
        })
        .collect()
}

/// NP002: selector peers that select no workload.
pub fn peers_selecting_nothing(cluster: &Cluster, index: &Index<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &cluster.policies {
        for (d, ri, rule) in all_rules(p) {
            for (pi, peer) in rule.peers.iter().enumerate() {
                let Peer::Selector {
                    pod_selector,
                    namespace_selector,
                } = peer
                else {
                    continue;
                };
                let found =
                    index.first_selected(p, pod_selector.as_ref(), namespace_selector.as_ref());
                if found.is_some() {
                    continue;
                }
                let no_namespace = namespace_selector
                    .as_ref()
                    .is_some_and(|sel| !cluster.namespaces.iter().any(|n| sel.matches(&n.labels)));
                let what = if no_namespace {
                    "selects no namespace"
                } else {
                    "selects no workload"
                };
                let message = format!(
                    "{d}[{ri}].{}[{pi}] ({}) {what}",
                    field(d),
                    render_peer(p, peer)
                );
                out.push(Finding::about_item(
                    Check::PeerSelectsNothing,
                    p,
                    (d, ri, RuleItem::Peer(pi)),
                    message,
                ));
            }
        }
    }
    out
}

/// NP006: named ports that no destination of their rule defines for the entry's protocol. The
/// destinations of an ingress rule are the policy's subjects; of an egress rule, the workloads its
/// peers select (every workload when it lists none; none when it lists only ipBlocks, because a
/// named port never matches an address outside the cluster's workloads).
pub fn unknown_named_ports(cluster: &Cluster, index: &Index<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &cluster.policies {
        for (d, ri, rule) in all_rules(p) {
            for (ei, entry) in rule.ports.iter().enumerate() {
                let Some(PortSpec::Named(name)) = &entry.port else {
                    continue;
                };
                let defining = index
                    .by_named_port
                    .get(&(name.as_str(), entry.protocol))
                    .map_or(&[][..], Vec::as_slice);
                let found = defining.iter().any(|&i| {
                    let w = &cluster.workloads[i];
                    is_destination(index, p, d, rule, w)
                });
                if found {
                    continue;
                }
                let message = format!(
                    "{d}[{ri}].ports[{ei}]: no {} of this rule defines a {} port named {name:?}",
                    match d {
                        Direction::Ingress => "workload the policy selects",
                        Direction::Egress => "destination",
                    },
                    entry.protocol
                );
                out.push(Finding::about_item(
                    Check::UnknownNamedPort,
                    p,
                    (d, ri, RuleItem::Port(ei)),
                    message,
                ));
            }
        }
    }
    out
}

fn is_destination(index: &Index<'_>, p: &Policy, d: Direction, rule: &Rule, w: &Workload) -> bool {
    match d {
        Direction::Ingress => w.namespace == p.namespace && p.pod_selector.matches(&w.labels),
        Direction::Egress => {
            rule.peers.is_empty()
                || rule.peers.iter().any(|peer| match peer {
                    Peer::Selector {
                        pod_selector,
                        namespace_selector,
                    } => {
                        index.peer_selects(p, pod_selector.as_ref(), namespace_selector.as_ref(), w)
                    }
                    Peer::IpBlock(_) => false,
                })
        }
    }
}

/// NP005: ipBlocks that contain addresses of in-cluster workloads. Upstream conformance matches
/// those workloads; Cilium (which Deckhouse runs) never does, so the finding says what the current
/// `--ipblock-matches-workloads` setting makes of it.
pub fn ip_blocks_covering_workloads(cluster: &Cluster, opts: EvalOptions) -> Vec<Finding> {
    // Every workload address once, sorted, so a block finds its addresses by binary search.
    let mut addresses: Vec<(std::net::IpAddr, usize)> = cluster
        .workloads
        .iter()
        .enumerate()
        .flat_map(|(i, w)| w.addresses.iter().map(move |a| (*a, i)))
        .collect();
    addresses.sort_unstable();
    let mut out = Vec::new();
    for p in &cluster.policies {
        for (d, ri, rule) in all_rules(p) {
            for (pi, peer) in rule.peers.iter().enumerate() {
                let Peer::IpBlock(block) = peer else {
                    continue;
                };
                let (first, last) = (block.cidr.network(), block.cidr.broadcast());
                let lo = addresses.partition_point(|(a, _)| *a < first);
                let hi = addresses.partition_point(|(a, _)| *a <= last);
                let mut covered: Vec<(usize, std::net::IpAddr)> = addresses[lo..hi]
                    .iter()
                    .filter(|(a, _)| block.contains(*a))
                    .map(|(a, i)| (*i, *a))
                    .collect();
                covered.sort_unstable();
                covered.dedup_by_key(|(i, _)| *i);
                let Some(&(example, addr)) = covered.first() else {
                    continue;
                };
                let meaning = if opts.ipblock_matches_workloads {
                    "here (upstream behaviour) the rule admits them; on Cilium, which Deckhouse runs, it does not"
                } else {
                    "on Cilium (the current setting) the rule does not admit them, although the block contains them"
                };
                let message = format!(
                    "{d}[{ri}].{}[{pi}] ipBlock {block} contains the addresses of {} workload(s), e.g. {} ({addr}): {meaning}",
                    field(d),
                    covered.len(),
                    cluster.workloads[example].key()
                );
                out.push(Finding::about_item(
                    Check::IpBlockCoversWorkloads,
                    p,
                    (d, ri, RuleItem::Peer(pi)),
                    message,
                ));
            }
        }
    }
    out
}

/// NP007: `Egress` in `policyTypes` and no egress rule, which denies all egress of the selected
/// workloads. A warning when the policy has ingress rules (the usual mistake: `policyTypes`
/// copied with both types onto an ingress policy); info when it has no rule at all (an explicit
/// default deny, usually intended).
pub fn egress_without_rules(cluster: &Cluster) -> Vec<Finding> {
    cluster
        .policies
        .iter()
        .filter(|p| p.affects_egress && p.egress.is_empty())
        .map(|p| {
            let (severity, message) = if p.ingress.is_empty() {
                (
                    LintSeverity::Info,
                    "policyTypes has Egress and the policy has no egress rules: it denies all egress of the workloads it selects (a default deny)".to_string(),
                )
            } else {
                (
                    LintSeverity::Warning,
                    format!(
                        "policyTypes has Egress but the policy has only ingress rules ({}): it also denies all egress of the workloads it selects",
                        p.ingress.len()
                    ),
                )
            };
            Finding::about(Check::EgressWithoutRules, p, message).with_severity(severity)
        })
        .collect()
}

/// NP008, the AND/OR dash mistake. Flagged: two adjacent items of one `from`/`to` list, one with
/// only a `namespaceSelector` and one with only a `podSelector` (either order), where the
/// `podSelector` selects no workload of the policy's own namespace (where a lone podSelector
/// looks) but does select workloads of a namespace the `namespaceSelector` selects. The labels
/// then point at one peer, "these pods in those namespaces", written as two.
pub fn dash_mistakes(cluster: &Cluster, index: &Index<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &cluster.policies {
        for (d, ri, rule) in all_rules(p) {
            for pi in 0..rule.peers.len().saturating_sub(1) {
                let pair = (&rule.peers[pi], &rule.peers[pi + 1]);
                let Some((ns_sel, pod_sel)) = split_pair(pair) else {
                    continue;
                };
                let own = index.first_selected(p, Some(pod_sel), None);
                let combined = index.first_selected(p, Some(pod_sel), Some(ns_sel));
                let (None, Some(w)) = (own, combined) else {
                    continue;
                };
                let message = format!(
                    "{d}[{ri}].{f}[{pi}] and {f}[{}] are two peers (namespaceSelector {ns_sel} OR podSelector {pod_sel} in namespace {}), but podSelector {pod_sel} selects nothing in {} and selects e.g. {} in the namespaces the namespaceSelector picks: one peer (AND) was probably meant",
                    pi + 1,
                    p.namespace,
                    p.namespace,
                    cluster.workloads[w].key(),
                    f = field(d),
                );
                // At the pair's second item: the dash that removed joins the two.
                out.push(Finding::about_item(
                    Check::SplitPeer,
                    p,
                    (d, ri, RuleItem::Peer(pi + 1)),
                    message,
                ));
            }
        }
    }
    out
}

/// `(namespaceSelector, podSelector)` when one peer has only the first and the other only the
/// second.
fn split_pair<'p>(pair: (&'p Peer, &'p Peer)) -> Option<(&'p LabelSelector, &'p LabelSelector)> {
    let only_ns = |p: &'p Peer| match p {
        Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(ns),
        } => Some(ns),
        _ => None,
    };
    let only_pods = |p: &'p Peer| match p {
        Peer::Selector {
            pod_selector: Some(pods),
            namespace_selector: None,
        } => Some(pods),
        _ => None,
    };
    match (
        only_ns(pair.0),
        only_pods(pair.1),
        only_pods(pair.0),
        only_ns(pair.1),
    ) {
        (Some(ns), Some(pods), _, _) | (_, _, Some(pods), Some(ns)) => Some((ns, pods)),
        _ => None,
    }
}
