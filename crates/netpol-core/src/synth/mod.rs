//! A deterministic generator of realistic synthetic clusters, for benchmarks and scale tests.
//!
//! The same [`SynthParams`] always give the same [`Cluster`] (own splitmix64 generator, no
//! randomness from the environment). Clusters look like real ones: namespaces labelled by team and
//! environment, applications with replicas (so many workloads share labels), pods with named ports,
//! VMs, some dual-stack and IPv6-only workloads, and policies that use every feature of the model.
//! Addresses come from 10.0.0.0/8 and fd00::/8 (workloads) and the documentation ranges 192.0.2.0/24,
//! 198.51.100.0/24 and 203.0.113.0/24 (external peers).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{
    Cluster, IpBlock, LabelSelector, Labels, NamedPort, Namespace, Origin, Peer, Policy,
    PolicyPort, PortSpec, Protocol, Rule, SelectorOperator, SelectorRequirement, Workload,
    WorkloadKind, NAMESPACE_NAME_LABEL,
};

mod admin;
mod shapes;

pub use admin::add_admin_policies;

use shapes::*;

/// The size and seed of a synthetic cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SynthParams {
    /// How many workloads (pods and VMs) to generate.
    pub workloads: usize,
    /// How many namespaces they are spread over.
    pub namespaces: usize,
    /// How many NetworkPolicies to generate.
    pub policies: usize,
    /// How many nodes the workloads are scheduled on.
    pub nodes: usize,
    /// The random seed: the same parameters always give the same cluster.
    pub seed: u64,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            workloads: 10_000,
            namespaces: 200,
            policies: 2_000,
            nodes: 50,
            seed: 1,
        }
    }
}

/// splitmix64: tiny, fast, and good enough for picking shapes of test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TEAMS: [&str; 5] = ["alpha", "beta", "gamma", "delta", "platform"];
const ENVS: [&str; 3] = ["prod", "staging", "dev"];
/// (app, tier, default http port)
const APPS: [(&str, &str, u16); 10] = [
    ("web", "frontend", 8080),
    ("gateway", "frontend", 8443),
    ("api", "backend", 8080),
    ("auth", "backend", 9000),
    ("worker", "backend", 8081),
    ("search", "backend", 9200),
    ("db", "data", 5432),
    ("cache", "data", 6379),
    ("queue", "data", 5672),
    ("metrics", "ops", 9090),
];
const TIERS: [&str; 4] = ["frontend", "backend", "data", "ops"];

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

fn expr(key: &str, operator: SelectorOperator, values: &[&str]) -> SelectorRequirement {
    SelectorRequirement {
        key: key.to_string(),
        operator,
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn port(protocol: Protocol, spec: Option<PortSpec>) -> PolicyPort {
    PolicyPort {
        protocol,
        port: spec,
    }
}

fn tcp(n: u16) -> PolicyPort {
    port(Protocol::Tcp, Some(PortSpec::Number(n)))
}

fn block(cidr: &str, except: &[&str]) -> Peer {
    // The literals below are valid; a parse failure would only drop the peer's holes or fall back
    // to a documentation range, never panic.
    let cidr = cidr
        .parse()
        .unwrap_or_else(|_| ipnet::IpNet::from(ipnet::Ipv4Net::from(Ipv4Addr::new(192, 0, 2, 0))));
    Peer::IpBlock(IpBlock {
        cidr,
        except: except.iter().filter_map(|e| e.parse().ok()).collect(),
    })
}

/// The i-th workload address of each family: 10.0.0.0/8 and fd00::/8, never .0.
fn v4(i: usize) -> IpAddr {
    let n = (i as u32).wrapping_add(1) % (1 << 24);
    IpAddr::V4(Ipv4Addr::from(0x0A00_0000 | n))
}

fn v6(i: usize) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0xfd00,
        0,
        0,
        0,
        0,
        0,
        (i >> 16) as u16,
        (i as u16).wrapping_add(1),
    ))
}

/// Generates a cluster; deterministic in `params`.
pub fn generate(params: &SynthParams) -> Cluster {
    let mut rng = Rng(params.seed ^ 0x6E65_7470_6F6C);
    let net = generate_namespaces(&mut rng, params.namespaces.max(1));
    let mut counter: Vec<usize> = vec![0; net.namespaces.len() * APPS.len()];
    let workloads = (0..params.workloads)
        .map(|i| generate_workload(&mut rng, params, &net, &mut counter, i))
        .collect();
    let policies = (0..params.policies)
        .map(|i| generate_policy(&mut rng, &net, i))
        .collect();
    Cluster {
        namespaces: net.namespaces,
        workloads,
        policies,
        ..Cluster::default()
    }
}

/// The namespaces and what each runs.
struct Network {
    namespaces: Vec<Namespace>,
    /// Per namespace: the applications (indices into `APPS`) it runs.
    apps: Vec<Vec<usize>>,
    /// Per namespace: its address families (0 IPv4, 1 dual-stack IPv4 first, 2 dual-stack IPv6
    /// first, 3 IPv6 only).
    stack: Vec<usize>,
}

/// Namespaces: team and env labels, a few with extra labels.
fn generate_namespaces(rng: &mut Rng, ns_count: usize) -> Network {
    let mut namespaces = Vec::with_capacity(ns_count);
    let mut ns_apps: Vec<Vec<usize>> = Vec::with_capacity(ns_count);
    // Address families are a property of the namespace's network: mostly IPv4, some dual-stack
    // (either family first), a few IPv6-only.
    let mut ns_stack: Vec<usize> = Vec::with_capacity(ns_count);
    for i in 0..ns_count {
        let team = *rng.pick(&TEAMS);
        let env = *rng.pick(&ENVS);
        let mut l = labels(&[("team", team), ("env", env)]);
        if rng.chance(20) {
            l.insert("compliance".into(), "pci".into());
        }
        namespaces.push(Namespace::new(format!("ns-{i:03}"), l, false));
        // Each namespace runs a handful of the applications.
        let mut apps: Vec<usize> = (0..APPS.len()).collect();
        for j in (1..apps.len()).rev() {
            let k = rng.below(j + 1);
            apps.swap(j, k);
        }
        apps.truncate(4 + rng.below(5));
        ns_apps.push(apps);
        ns_stack.push(match i % 10 {
            0..=5 => 0,
            6 | 7 => 1,
            8 => 2,
            _ => 3,
        });
    }
    Network {
        namespaces,
        apps: ns_apps,
        stack: ns_stack,
    }
}

/// Workload `i`: a replica of (namespace, app, version).
fn generate_workload(
    rng: &mut Rng,
    params: &SynthParams,
    net: &Network,
    counter: &mut [usize],
    i: usize,
) -> Workload {
    let ns_count = net.namespaces.len();
    let ns = i % ns_count;
    let app_idx = *rng.pick(&net.apps[ns]);
    let (app, tier, http) = APPS[app_idx];
    let version = if rng.chance(80) { "v1" } else { "v2" };
    // An application runs either as pods or as VMs, fixed per namespace and app.
    let kind = match (ns * 7 + app_idx * 3) % 10 {
        0..=5 => WorkloadKind::Pod,
        6..=8 => WorkloadKind::VirtualMachine,
        _ => WorkloadKind::VirtualMachineInstance,
    };
    let mut l = labels(&[("app", app), ("tier", tier), ("version", version)]);
    if matches!(app_idx, 0 | 3 | 6 | 9) && version == "v2" {
        l.insert("legacy".into(), "true".into());
    }
    let slot = ns * APPS.len() + app_idx;
    let n = counter[slot];
    counter[slot] += 1;
    // A few workloads are still pending, without addresses.
    let addresses = if rng.chance(1) {
        vec![]
    } else {
        match net.stack[ns] {
            1 => vec![v4(i), v6(i)],
            2 => vec![v6(i), v4(i)],
            3 => vec![v6(i)],
            _ => vec![v4(i)],
        }
    };
    let named_ports = if kind == WorkloadKind::Pod {
        let mut ports = vec![NamedPort {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: http,
        }];
        if app == "metrics" || version == "v2" {
            ports.push(NamedPort {
                name: "metrics".into(),
                protocol: Protocol::Tcp,
                port: 9090,
            });
        }
        if app == "cache" || app == "queue" {
            ports.push(NamedPort {
                name: "dns".into(),
                protocol: Protocol::Udp,
                port: 53,
            });
        }
        ports
    } else {
        vec![]
    };
    let node = if params.nodes == 0 || addresses.is_empty() {
        None
    } else {
        Some(format!("node-{:02}", rng.below(params.nodes)))
    };
    Workload {
        kind,
        namespace: net.namespaces[ns].name.clone(),
        name: format!("{app}-{version}-{n}"),
        labels: l,
        addresses,
        node: node.clone(),
        phase: Some(if node.is_some() { "Running" } else { "Pending" }.to_string()),
        named_ports,
        origin: None,
        instances: Default::default(),
    }
}

/// What a policy's shape is filled in with.
struct Picks {
    app: (&'static str, &'static str, u16),
    other: (&'static str, &'static str, u16),
    team: &'static str,
    env: &'static str,
}

/// Policy `i`: the shapes cycle so every feature appears, with random parameters.
fn generate_policy(rng: &mut Rng, net: &Network, i: usize) -> Policy {
    let ns_count = net.namespaces.len();
    let ns = rng.below(ns_count);
    let ns_name = net.namespaces[ns].name.clone();
    let app = APPS[*rng.pick(&net.apps[ns])];
    let other = APPS[*rng.pick(&net.apps[ns])];
    let team = *rng.pick(&TEAMS);
    let env = *rng.pick(&ENVS);
    let picks = Picks {
        app,
        other,
        team,
        env,
    };
    let mut p = Policy {
        namespace: ns_name.clone(),
        name: String::new(),
        pod_selector: selector(&[("app", picks.app.0)]),
        affects_ingress: true,
        affects_egress: false,
        ingress: vec![],
        egress: vec![],
        origin: Some(Origin {
            file: "synthetic".into(),
            line: i + 1,
        }),
        rule_lines: Default::default(),
    };
    let shape = i % 14;
    let name = match shape {
        0 => shape_0(&mut p, &picks, rng),
        1 => shape_1(&mut p, &picks, rng),
        2 => shape_2(&mut p, &picks, rng),
        3 => shape_3(&mut p, &picks, rng),
        4 => shape_4(&mut p, &picks, rng),
        5 => shape_5(&mut p, &picks, rng),
        6 => shape_6(&mut p, &picks, rng),
        7 => shape_7(&mut p, &picks, rng),
        8 => shape_8(&mut p, &picks, rng),
        9 => shape_9(&mut p, &picks, rng),
        10 => shape_10(&mut p, &picks, rng),
        11 => shape_11(&mut p, &picks, rng),
        12 => shape_12(&mut p, &picks, rng),
        _ => shape_rest(&mut p, &picks, rng),
    };
    p.name = format!("{name}-{i}");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthParams {
        SynthParams {
            workloads: 300,
            namespaces: 12,
            policies: 60,
            nodes: 4,
            seed: 7,
        }
    }

    #[test]
    fn the_same_parameters_give_the_same_cluster() {
        assert_eq!(generate(&small()), generate(&small()));
        let other = SynthParams { seed: 8, ..small() };
        assert_ne!(generate(&small()), generate(&other));
    }

    #[test]
    fn the_cluster_has_the_requested_size_and_unique_keys() {
        let c = generate(&small());
        assert_eq!(c.workloads.len(), 300);
        assert_eq!(c.namespaces.len(), 12);
        assert_eq!(c.policies.len(), 60);
        let keys: std::collections::BTreeSet<String> =
            c.workloads.iter().map(|w| w.key()).collect();
        assert_eq!(keys.len(), 300);
        let pkeys: std::collections::BTreeSet<String> =
            c.policies.iter().map(|p| p.key()).collect();
        assert_eq!(pkeys.len(), 60);
        // Every namespace a workload or policy uses exists.
        let mut c2 = c.clone();
        assert!(c2.add_missing_namespaces().is_empty());
    }

    #[test]
    fn every_feature_of_the_model_appears() {
        let c = generate(&small());
        let rules = || {
            c.policies
                .iter()
                .flat_map(|p| p.ingress.iter().chain(&p.egress))
        };
        let peers = || rules().flat_map(|r| r.peers.iter());
        let ports = || rules().flat_map(|r| r.ports.iter());
        assert!(c
            .policies
            .iter()
            .any(|p| p.affects_ingress && p.ingress.is_empty() && p.pod_selector.is_empty()));
        assert!(c
            .policies
            .iter()
            .any(|p| p.affects_egress && p.egress.is_empty()));
        assert!(rules().any(|r| r.peers.is_empty()));
        assert!(rules().any(|r| r.ports.is_empty()));
        assert!(peers().any(|p| matches!(
            p,
            Peer::Selector {
                pod_selector: Some(_),
                namespace_selector: Some(_)
            }
        )));
        assert!(peers().any(|p| matches!(
            p,
            Peer::Selector {
                pod_selector: None,
                namespace_selector: Some(_)
            }
        )));
        assert!(peers().any(|p| matches!(
            p,
            Peer::Selector {
                pod_selector: Some(_),
                namespace_selector: None
            }
        )));
        assert!(peers().any(|p| matches!(p, Peer::IpBlock(b) if !b.except.is_empty())));
        for op in [
            SelectorOperator::In,
            SelectorOperator::NotIn,
            SelectorOperator::Exists,
            SelectorOperator::DoesNotExist,
        ] {
            let uses = |s: &LabelSelector| s.match_expressions.iter().any(|e| e.operator == op);
            let in_peers = peers().any(|p| match p {
                Peer::Selector {
                    pod_selector,
                    namespace_selector,
                } => {
                    pod_selector.as_ref().is_some_and(uses)
                        || namespace_selector.as_ref().is_some_and(uses)
                }
                Peer::IpBlock(_) => false,
            });
            assert!(
                in_peers || c.policies.iter().any(|p| uses(&p.pod_selector)),
                "{op}"
            );
        }
        assert!(ports().any(|p| matches!(p.port, Some(PortSpec::Named(_)))));
        assert!(ports().any(|p| matches!(p.port, Some(PortSpec::Range { .. }))));
        assert!(ports().any(|p| p.port.is_none()));
        assert!(ports().any(|p| p.protocol == Protocol::Sctp));
        assert!(ports().any(|p| p.protocol == Protocol::Udp));
        assert!(c.workloads.iter().any(|w| w.addresses.len() == 2));
        assert!(c
            .workloads
            .iter()
            .any(|w| w.addresses.len() == 1 && w.addresses[0].is_ipv6()));
        assert!(c
            .workloads
            .iter()
            .any(|w| w.kind == WorkloadKind::VirtualMachine));
        assert!(c.workloads.iter().any(|w| !w.named_ports.is_empty()));
        assert!(c
            .workloads
            .iter()
            .all(|w| w.addresses.iter().all(|a| match a {
                IpAddr::V4(v) => v.octets()[0] == 10,
                IpAddr::V6(v) => v.segments()[0] == 0xfd00,
            })));
    }
}
