//! The one proptest generator of random small clusters, for the property tests that hold a fast
//! path (the analyzer's truth tables and map, the nodes' nftables tables) against the plain
//! evaluator.
//!
//! Small vocabularies make coincidences likely: three label keys and values, three namespaces,
//! three port names, a handful of port numbers and CIDRs chosen to overlap each other and the
//! workload addresses. Every feature of the model appears: Pods, VMs and VMIs, address-less
//! controllers (Deployments, CronJobs), and in the analyzer's shapes controllers with their
//! Pods folded in (addresses) and several instances (replicas); declared and
//! implicit namespaces with labels; `matchLabels` (also on the namespace name label) and every
//! `matchExpressions` operator; pod, namespace and combined selector peers; ipBlocks with holes
//! (inside, overlapping or outside their CIDR); numeric, ranged and named ports of every
//! protocol; policies affecting ingress, egress, both or neither.
//!
//! It replaces the two generators the analyzer's and the compiler's property tests had, and
//! draws from both: half the selectors and labels are the compiler test's simple ones (select
//! everything, one `app` value, all but one `app` value; one `app` label), which select often,
//! half the analyzer test's arbitrary combinations; CIDRs, holes and port vocabularies are the
//! union of theirs.
//!
//! What differs between tests is a [`ClusterShape`]: how many namespaces, workloads and policies,
//! whether workloads share addresses from a pool or each get their own, and which nodes they run
//! on. Names are `w0, w1, ...` and `p0, p1, ...` in generation order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use netpol_core::{
    Cluster, Instances, IpBlock, LabelSelector, Labels, NamedPort, Namespace, Node, Peer, Policy,
    PolicyPort, PortSpec, Protocol, Rule, SelectorOperator, SelectorRequirement, Workload,
    WorkloadKind, NAMESPACE_NAME_LABEL,
};
use proptest::prelude::*;

pub mod tiers;

pub use tiers::{with_tiers, TierShape};

/// The namespace names, in order; a shape uses the first [`ClusterShape::namespaces`].
pub const NAMESPACES: [&str; 3] = ["ns0", "ns1", "ns2"];
/// The nodes of [`ClusterShape::on_two_nodes`].
pub const NODES: [&str; 2] = ["n1", "n2"];

const LABEL_KEYS: [&str; 3] = ["app", "tier", "env"];
const LABEL_VALUES: [&str; 3] = ["web", "db", "x"];
const PORT_NAMES: [&str; 3] = ["http", "dns", "metrics"];
/// Port numbers of rules and named ports: the ends of the range and neighbours of each other.
const NUMBERS: [u16; 6] = [1, 53, 80, 81, 8080, 65535];
const CIDRS: [&str; 12] = [
    "10.0.0.0/8",
    "10.0.0.0/24",
    "10.0.0.0/30",
    "10.1.0.0/16",
    "0.0.0.0/0",
    "192.0.2.0/24",
    "192.0.2.0/25",
    "203.0.113.0/24",
    "fd00::/8",
    "fd00::/120",
    "fd00::/126",
    "::/0",
];
const HOLES: [&str; 7] = [
    "10.0.0.0/31",
    "10.0.0.2/32",
    "10.0.0.0/29",
    "10.1.0.0/24",
    "192.0.2.0/30",
    "fd00::/127",
    "fd00::/126",
];
/// The pool of [`Addresses::Shared`]: inside and around the CIDRs and holes above.
const SHARED_POOL: [&str; 10] = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.3",
    "10.1.0.1",
    "10.1.0.9",
    "192.0.2.5",
    "fd00::1",
    "fd00::2",
    "fd00::5",
    "fe80::1",
];

/// How workloads get their addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// Each workload draws this many addresses from a shared pool of v4 and v6 addresses, so
    /// workloads may share an address and one workload may list one twice (the analyzer and
    /// the evaluator must still agree).
    Shared {
        /// How many draws per workload.
        per_workload: Range<usize>,
    },
    /// The i-th workload has exactly one address of its own: `10.0.0.i`, or `fd00::i` one time
    /// in four (inside and around the CIDRs and holes), as address-based enforcement needs.
    Distinct,
}

/// The size and shape of the generated clusters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterShape {
    /// How many of [`NAMESPACES`] workloads and policies live in (1 to 3). Between one and all of
    /// them are declared, with random labels; the rest are implicit.
    pub namespaces: usize,
    /// How many workloads.
    pub workloads: Range<usize>,
    /// How many policies.
    pub policies: Range<usize>,
    /// How workloads get their addresses.
    pub addresses: Addresses,
    /// The nodes workloads are spread over; none leaves every workload without a node.
    pub nodes: &'static [&'static str],
    /// Whether the cluster has Node objects for them (most of the time, each with one to three
    /// addresses of its own from [`NODE_ADDRESSES`], in random order); without, workloads name
    /// nodes netpol knows nothing of.
    pub node_objects: bool,
    /// Whether controllers may run as several instances (`replicas` 0 to 3, or one per node),
    /// half of them with their Pods folded in (addresses and node kept); without, every
    /// controller is a single address-less pod template.
    pub replicas: bool,
}

/// The addresses node `i` of [`ClusterShape::nodes`] draws from: both families, inside and
/// outside the generated CIDRs and holes, never a workload's.
pub const NODE_ADDRESSES: [[&str; 3]; 2] = [
    ["10.0.0.201", "fd00::81", "192.0.2.201"],
    ["10.1.0.202", "fd00::202", "192.0.2.100"],
];

impl ClusterShape {
    /// For the analyzer against the evaluator: three namespaces, 1 to 6 workloads with up to two
    /// shared addresses each and no node, up to 4 policies.
    pub fn for_the_analyzer() -> Self {
        ClusterShape {
            namespaces: 3,
            workloads: 1..7,
            policies: 0..5,
            addresses: Addresses::Shared { per_workload: 0..3 },
            nodes: &[],
            node_objects: false,
            replicas: true,
        }
    }

    /// Like [`for_the_analyzer`](Self::for_the_analyzer), with workloads spread over the two
    /// [`NODES`] and (most of the time) Node objects with addresses of both families.
    pub fn for_the_analyzer_with_nodes() -> Self {
        ClusterShape {
            nodes: &NODES,
            node_objects: true,
            ..ClusterShape::for_the_analyzer()
        }
    }

    /// For the node compiler: two namespaces, 2 to 5 workloads with one distinct address each,
    /// spread over the two [`NODES`], up to 3 policies.
    pub fn on_two_nodes() -> Self {
        ClusterShape {
            namespaces: 2,
            workloads: 2..6,
            policies: 0..4,
            addresses: Addresses::Distinct,
            nodes: &NODES,
            node_objects: false,
            replicas: false,
        }
    }

    fn namespace_count(&self) -> usize {
        self.namespaces.clamp(1, NAMESPACES.len())
    }
}

/// Random clusters of this shape.
pub fn cluster(shape: &ClusterShape) -> impl Strategy<Value = Cluster> {
    let shape = shape.clone();
    let n = shape.namespace_count();
    (
        prop::collection::vec(labels(), n),
        1..=n,
        prop::collection::vec(draft(&shape), shape.workloads.clone()),
        prop::collection::vec(policy(&shape), shape.policies.clone()),
        node_objects(&shape),
    )
        .prop_map(move |(ns_labels, declared, drafts, mut policies, nodes)| {
            let workloads = drafts
                .into_iter()
                .enumerate()
                .map(|(i, d)| d.finish(i, &shape))
                .collect();
            for (i, p) in policies.iter_mut().enumerate() {
                p.name = format!("p{i}");
            }
            let namespaces = ns_labels
                .into_iter()
                .zip(NAMESPACES)
                .take(declared)
                .map(|(l, name)| Namespace::new(name, l, false))
                .collect();
            let mut c = Cluster {
                namespaces,
                workloads,
                policies,
                nodes,
                ..Default::default()
            };
            c.add_missing_namespaces();
            c
        })
}

/// The Node objects of a shape: each of its nodes with probability 0.8 when it has them, with a
/// non-empty, shuffled subset of its [`NODE_ADDRESSES`].
fn node_objects(shape: &ClusterShape) -> impl Strategy<Value = Vec<Node>> {
    let names = if shape.node_objects { shape.nodes } else { &[] };
    let per_node: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let pool = NODE_ADDRESSES[i % NODE_ADDRESSES.len()];
            (
                prop::bool::weighted(0.8),
                prop::sample::subsequence(pool.to_vec(), 1..=pool.len()).prop_shuffle(),
            )
                .prop_map(move |(present, addresses)| {
                    present.then(|| Node {
                        name: name.to_string(),
                        addresses: addresses.into_iter().map(parse).collect(),
                        ..Node::default()
                    })
                })
        })
        .collect();
    per_node.prop_map(|nodes| nodes.into_iter().flatten().collect())
}

/// Random policies in this shape's namespaces, named `p` (a cluster renames them `p0, p1, ...`).
pub fn policy(shape: &ClusterShape) -> impl Strategy<Value = Policy> {
    (
        0..shape.namespace_count(),
        selector(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(rule(), 0..3),
        prop::collection::vec(rule(), 0..3),
    )
        .prop_map(
            |(ns, pod_selector, affects_ingress, affects_egress, ingress, egress)| Policy {
                namespace: NAMESPACES[ns].to_string(),
                name: "p".to_string(),
                pod_selector,
                affects_ingress,
                affects_egress,
                ingress,
                egress,
                origin: None,
                rule_lines: Default::default(),
            },
        )
}

/// A workload before its index is known; [`Addresses::Distinct`] addresses follow the index.
#[derive(Clone, Debug)]
struct Draft {
    workload: Workload,
    v6: bool,
    /// A controller with its Pods folded in (when the shape has replicas).
    folded: bool,
}

impl Draft {
    fn finish(mut self, index: usize, shape: &ClusterShape) -> Workload {
        self.workload.name = format!("w{index}");
        let controller = self.workload.kind.is_controller();
        if !controller || !shape.replicas {
            self.workload.instances = Instances::default();
        }
        // A controller as loaded from git: a pod template, no address, no node.
        if controller && !(shape.replicas && self.folded) {
            self.workload.addresses.clear();
            self.workload.node = None;
            self.workload.phase = None;
        } else if shape.addresses == Addresses::Distinct {
            let low = u8::try_from(index)
                .unwrap_or_else(|_| panic!("Addresses::Distinct numbers at most 256 workloads"));
            self.workload.addresses = vec![if self.v6 {
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(low)))
            } else {
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, low))
            }];
        }
        self.workload
    }
}

/// The kinds of generated workloads: the controllers (address-less, like a Deployment or
/// CronJob read from git) must not change what the fast paths and the evaluator agree on.
const KINDS: [WorkloadKind; 5] = [
    WorkloadKind::Pod,
    WorkloadKind::VirtualMachine,
    WorkloadKind::VirtualMachineInstance,
    WorkloadKind::Deployment,
    WorkloadKind::CronJob,
];

fn draft(shape: &ClusterShape) -> impl Strategy<Value = Draft> {
    let draws = match &shape.addresses {
        Addresses::Shared { per_workload } => per_workload.clone(),
        Addresses::Distinct => 0..1,
    };
    let nodes = shape.nodes;
    (
        (0..shape.namespace_count(), 0..KINDS.len(), labels()),
        prop::collection::vec(0..SHARED_POOL.len(), draws),
        prop::bool::weighted(0.25),
        0..nodes.len().max(1),
        prop::collection::vec((0..PORT_NAMES.len(), protocol(), 0..NUMBERS.len()), 0..3),
        (instances(), any::<bool>()),
    )
        .prop_map(
            move |((ns, kind, labels), pool, v6, node, named, (instances, folded))| {
                let node = nodes.get(node).map(|n| n.to_string());
                let workload = Workload {
                    kind: KINDS[kind],
                    namespace: NAMESPACES[ns].to_string(),
                    name: String::new(),
                    labels,
                    addresses: pool.into_iter().map(|i| parse(SHARED_POOL[i])).collect(),
                    phase: node.as_ref().map(|_| "Running".to_string()),
                    node,
                    named_ports: named
                        .into_iter()
                        .map(|(n, protocol, p)| NamedPort {
                            name: PORT_NAMES[n].to_string(),
                            protocol,
                            port: NUMBERS[p],
                        })
                        .collect(),
                    origin: None,
                    instances,
                };
                Draft {
                    workload,
                    v6,
                    folded,
                }
            },
        )
}

/// How many instances a controller runs: none, one, several (most often), or one per node.
fn instances() -> impl Strategy<Value = Instances> {
    prop_oneof![
        1 => Just(Instances::Count(0)),
        2 => Just(Instances::Count(1)),
        4 => (2u32..4).prop_map(Instances::Count),
        1 => Just(Instances::PerNode),
    ]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Sctp)
    ]
}

/// Labels: half the time one `app` label (so the simple selectors select often), otherwise up
/// to two pairs of any key (possibly none).
fn labels() -> impl Strategy<Value = Labels> {
    let pairs = prop_oneof![
        (0..LABEL_VALUES.len()).prop_map(|v| vec![(0, v)]),
        prop::collection::vec((0..LABEL_KEYS.len(), 0..LABEL_VALUES.len()), 0..3),
    ];
    pairs.prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| (LABEL_KEYS[k].to_string(), LABEL_VALUES[v].to_string()))
            .collect()
    })
}

/// A key of [`LABEL_KEYS`], or (index 3) the namespace name label, with a value of its own
/// vocabulary.
fn key_value(k: usize, v: usize) -> (String, String) {
    match LABEL_KEYS.get(k) {
        Some(key) => (key.to_string(), LABEL_VALUES[v].to_string()),
        None => (NAMESPACE_NAME_LABEL.to_string(), NAMESPACES[v].to_string()),
    }
}

fn requirement() -> impl Strategy<Value = SelectorRequirement> {
    (
        0..=LABEL_KEYS.len(),
        prop_oneof![
            Just(SelectorOperator::In),
            Just(SelectorOperator::NotIn),
            Just(SelectorOperator::Exists),
            Just(SelectorOperator::DoesNotExist)
        ],
        prop::collection::btree_set(0..3usize, 1..3),
    )
        .prop_map(|(k, operator, values)| {
            let key = key_value(k, 0).0;
            let values = match operator {
                SelectorOperator::In | SelectorOperator::NotIn => {
                    values.into_iter().map(|v| key_value(k, v).1).collect()
                }
                _ => vec![],
            };
            SelectorRequirement {
                key,
                operator,
                values,
            }
        })
}

/// Selectors: half of them simple ones that select often (everything, one `app` value, all
/// but one `app` value), half any combination of `matchLabels` (also on the namespace name
/// label) and expressions.
fn selector() -> impl Strategy<Value = LabelSelector> {
    let simple = prop_oneof![
        Just(LabelSelector::everything()),
        (0..LABEL_VALUES.len()).prop_map(|v| LabelSelector {
            match_labels: [key_value(0, v)].into_iter().collect(),
            match_expressions: vec![],
        }),
        (0..LABEL_VALUES.len()).prop_map(|v| LabelSelector {
            match_labels: Labels::new(),
            match_expressions: vec![SelectorRequirement {
                key: LABEL_KEYS[0].to_string(),
                operator: SelectorOperator::NotIn,
                values: vec![LABEL_VALUES[v].to_string()],
            }],
        }),
    ];
    let combined = (
        prop::collection::vec((0..=LABEL_KEYS.len(), 0..3usize), 0..2),
        prop::collection::vec(requirement(), 0..2),
    )
        .prop_map(|(kv, match_expressions)| LabelSelector {
            match_labels: kv.into_iter().map(|(k, v)| key_value(k, v)).collect(),
            match_expressions,
        });
    prop_oneof![simple, combined]
}

fn peer() -> impl Strategy<Value = Peer> {
    prop_oneof![
        3 => (prop::option::of(selector()), prop::option::of(selector()), any::<bool>()).prop_map(
            |(pod, ns, pick_pod)| {
                // Validation guarantees at least one of the two is set.
                let (pod_selector, namespace_selector) = match (pod, ns) {
                    (None, None) if pick_pod => (Some(LabelSelector::everything()), None),
                    (None, None) => (None, Some(LabelSelector::everything())),
                    other => other,
                };
                Peer::Selector {
                    pod_selector,
                    namespace_selector,
                }
            }
        ),
        2 => (0..CIDRS.len(), prop::collection::vec(0..HOLES.len(), 0..2)).prop_map(|(c, holes)| {
            Peer::IpBlock(IpBlock {
                cidr: parse(CIDRS[c]),
                except: holes.into_iter().map(|h| parse(HOLES[h])).collect(),
            })
        }),
    ]
}

fn policy_port() -> impl Strategy<Value = PolicyPort> {
    (
        protocol(),
        prop_oneof![
            1 => Just(None),
            3 => (0..NUMBERS.len()).prop_map(|i| Some(PortSpec::Number(NUMBERS[i]))),
            2 => (0..NUMBERS.len(), 0u16..3).prop_map(|(i, len)| {
                let start = NUMBERS[i];
                Some(PortSpec::Range { start, end: start.saturating_add(len) })
            }),
            2 => (0..PORT_NAMES.len()).prop_map(|i| Some(PortSpec::Named(PORT_NAMES[i].into()))),
        ],
    )
        .prop_map(|(protocol, port)| PolicyPort { protocol, port })
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::collection::vec(peer(), 0..3),
        prop::collection::vec(policy_port(), 0..3),
    )
        .prop_map(|(peers, ports)| Rule { peers, ports })
}

/// Parses one of the constants above.
fn parse<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .unwrap_or_else(|e| panic!("generator constant {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn samples(shape: &ClusterShape, n: usize) -> Vec<Cluster> {
        let mut runner = TestRunner::deterministic();
        let strategy = cluster(shape);
        (0..n)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect()
    }

    #[test]
    fn distinct_addresses_give_every_workload_one_address_of_its_own_on_a_node() {
        // Controllers have none (see the generator-covers-everything test).
        for c in samples(&ClusterShape::on_two_nodes(), 200) {
            let mut seen = std::collections::BTreeSet::new();
            for w in c.workloads.iter().filter(|w| !w.kind.is_controller()) {
                assert_eq!(w.addresses.len(), 1, "{w:?}");
                assert!(seen.insert(w.addresses[0]), "shared address in {c:?}");
                assert!(NODES.contains(&w.node.as_deref().unwrap()), "{w:?}");
                assert!(["ns0", "ns1"].contains(&w.namespace.as_str()));
            }
            assert!((2..6).contains(&c.workloads.len()));
            assert!(c.policies.len() < 4);
        }
    }

    #[test]
    fn shared_addresses_reuse_the_pool_and_leave_workloads_off_any_node() {
        let clusters = samples(&ClusterShape::for_the_analyzer(), 300);
        let mut shared = false;
        for c in &clusters {
            let all: Vec<_> = c.workloads.iter().flat_map(|w| &w.addresses).collect();
            let distinct: std::collections::BTreeSet<_> = all.iter().collect();
            shared |= distinct.len() < all.len();
            assert!(c
                .workloads
                .iter()
                .all(|w| w.node.is_none() && w.addresses.len() < 3));
        }
        assert!(shared, "no two draws of the pool ever met");
    }

    #[test]
    fn the_generated_clusters_use_every_feature_of_the_model() {
        let clusters = samples(&ClusterShape::for_the_analyzer(), 500);
        let workloads = || clusters.iter().flat_map(|c| &c.workloads);
        let rules = || {
            clusters
                .iter()
                .flat_map(|c| &c.policies)
                .flat_map(|p| p.ingress.iter().chain(&p.egress))
        };
        let peers = || rules().flat_map(|r| &r.peers);
        let selectors = || {
            peers()
                .filter_map(|p| match p {
                    Peer::Selector {
                        pod_selector,
                        namespace_selector,
                    } => Some(pod_selector.iter().chain(namespace_selector)),
                    Peer::IpBlock(_) => None,
                })
                .flatten()
        };
        for kind in KINDS {
            assert!(workloads().any(|w| w.kind == kind), "{kind:?}");
        }
        assert!(workloads()
            .filter(|w| !w.kind.is_controller())
            .all(|w| !w.has_replicas()));
        assert!(workloads().any(|w| w.has_replicas() && !w.addresses.is_empty()));
        assert!(workloads().any(|w| w.has_replicas() && w.addresses.is_empty()));
        assert!(workloads().any(|w| w.kind.is_controller() && !w.has_replicas()));
        let compiler = samples(&ClusterShape::on_two_nodes(), 200);
        assert!(compiler
            .iter()
            .flat_map(|c| &c.workloads)
            .filter(|w| w.kind.is_controller())
            .all(|w| w.addresses.is_empty() && w.node.is_none() && !w.has_replicas()));
        assert!(clusters
            .iter()
            .any(|c| c.namespaces.iter().any(|n| n.implicit)));
        assert!(clusters
            .iter()
            .any(|c| c.namespaces.iter().all(|n| !n.implicit)));
        assert!(workloads().any(|w| !w.named_ports.is_empty()));
        assert!(selectors().any(|s| s.match_labels.contains_key(NAMESPACE_NAME_LABEL)));
        for op in [
            SelectorOperator::In,
            SelectorOperator::NotIn,
            SelectorOperator::Exists,
            SelectorOperator::DoesNotExist,
        ] {
            assert!(
                selectors().any(|s| s.match_expressions.iter().any(|r| r.operator == op)),
                "{op:?}"
            );
        }
        assert!(peers().any(|p| matches!(p, Peer::IpBlock(b) if !b.except.is_empty())));
        assert!(peers().any(|p| matches!(
            p,
            Peer::Selector {
                pod_selector: Some(_),
                namespace_selector: Some(_)
            }
        )));
        let specs: Vec<_> = rules().flat_map(|r| &r.ports).map(|p| &p.port).collect();
        assert!(specs.iter().any(|s| s.is_none()));
        assert!(specs.iter().any(|s| matches!(s, Some(PortSpec::Number(_)))));
        assert!(specs
            .iter()
            .any(|s| matches!(s, Some(PortSpec::Range { .. }))));
        assert!(specs.iter().any(|s| matches!(s, Some(PortSpec::Named(_)))));
        let policies = || clusters.iter().flat_map(|c| &c.policies);
        assert!(policies().any(|p| p.affects_ingress && p.affects_egress));
        assert!(policies().any(|p| !p.affects_ingress && !p.affects_egress));
    }
}
