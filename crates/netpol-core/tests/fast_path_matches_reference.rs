//! Property test: on random small clusters using every feature of the model, the analyzer's truth
//! tables and connectivity map agree with the reference evaluator on every pair.

use std::collections::BTreeSet;
use std::net::IpAddr;

use netpol_core::analysis::Analyzer;
use netpol_core::eval::{evaluate, Endpoint};
use netpol_core::model::*;
use proptest::prelude::*;

const LABEL_KEYS: [&str; 3] = ["app", "tier", "env"];
const LABEL_VALUES: [&str; 3] = ["web", "db", "x"];
const PORT_NAMES: [&str; 3] = ["http", "dns", "metrics"];
const NUMBERS: [u16; 6] = [1, 53, 80, 81, 8080, 65535];

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Sctp)
    ]
}

fn labels() -> impl Strategy<Value = Labels> {
    prop::collection::vec((0..3usize, 0..3usize), 0..3).prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| (LABEL_KEYS[k].to_string(), LABEL_VALUES[v].to_string()))
            .collect()
    })
}

fn requirement() -> impl Strategy<Value = SelectorRequirement> {
    (
        0..4usize,
        prop_oneof![
            Just(SelectorOperator::In),
            Just(SelectorOperator::NotIn),
            Just(SelectorOperator::Exists),
            Just(SelectorOperator::DoesNotExist)
        ],
        prop::collection::btree_set(0..3usize, 1..3),
    )
        .prop_map(|(k, operator, values)| {
            let key = if k == 3 {
                NAMESPACE_NAME_LABEL.to_string()
            } else {
                LABEL_KEYS[k].to_string()
            };
            let values = match operator {
                SelectorOperator::In | SelectorOperator::NotIn => values
                    .into_iter()
                    .map(|v| {
                        if k == 3 {
                            ["a", "b", "c"][v].to_string()
                        } else {
                            LABEL_VALUES[v].to_string()
                        }
                    })
                    .collect(),
                _ => vec![],
            };
            SelectorRequirement {
                key,
                operator,
                values,
            }
        })
}

fn selector() -> impl Strategy<Value = LabelSelector> {
    (
        prop::collection::vec((0..3usize, 0..3usize), 0..2),
        prop::collection::vec(requirement(), 0..2),
    )
        .prop_map(|(kv, match_expressions)| LabelSelector {
            match_labels: kv
                .into_iter()
                .map(|(k, v)| (LABEL_KEYS[k].to_string(), LABEL_VALUES[v].to_string()))
                .collect(),
            match_expressions,
        })
}

const CIDRS: [&str; 8] = [
    "10.0.0.0/8",
    "10.0.0.0/30",
    "10.1.0.0/16",
    "0.0.0.0/0",
    "fd00::/8",
    "fd00::/126",
    "::/0",
    "192.0.2.0/24",
];
const HOLES: [&str; 4] = ["10.0.0.0/31", "10.1.0.0/24", "fd00::/127", "10.0.0.2/32"];

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
                cidr: CIDRS[c].parse().unwrap(),
                except: holes.into_iter().map(|h| HOLES[h].parse().unwrap()).collect(),
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

fn address_pool(i: usize) -> IpAddr {
    [
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
    ][i]
        .parse()
        .unwrap()
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        0..3usize,
        labels(),
        prop::collection::vec(0..10usize, 0..3),
        prop::collection::vec((0..3usize, protocol(), 0..NUMBERS.len()), 0..3),
        0..3usize,
    )
        .prop_map(|(ns, labels, addrs, named, kind)| Workload {
            kind: [
                WorkloadKind::Pod,
                WorkloadKind::VirtualMachine,
                WorkloadKind::VirtualMachineInstance,
            ][kind],
            namespace: ["a", "b", "c"][ns].to_string(),
            name: String::new(),
            labels,
            addresses: addrs.into_iter().map(address_pool).collect(),
            node: None,
            phase: None,
            named_ports: named
                .into_iter()
                .map(|(n, protocol, p)| NamedPort {
                    name: PORT_NAMES[n].to_string(),
                    protocol,
                    port: NUMBERS[p],
                })
                .collect(),
            origin: None,
        })
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        0..3usize,
        selector(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(rule(), 0..3),
        prop::collection::vec(rule(), 0..3),
    )
        .prop_map(
            |(ns, pod_selector, affects_ingress, affects_egress, ingress, egress)| Policy {
                namespace: ["a", "b", "c"][ns].to_string(),
                name: String::new(),
                pod_selector,
                affects_ingress,
                affects_egress,
                ingress,
                egress,
                origin: None,
            },
        )
}

fn cluster() -> impl Strategy<Value = Cluster> {
    (
        prop::collection::vec(labels(), 3),
        1..3usize,
        prop::collection::vec(workload(), 1..7),
        prop::collection::vec(policy(), 0..5),
    )
        .prop_map(|(ns_labels, ns_count, mut workloads, mut policies)| {
            for (i, w) in workloads.iter_mut().enumerate() {
                w.name = format!("w{i}");
            }
            for (i, p) in policies.iter_mut().enumerate() {
                p.name = format!("p{i}");
            }
            let namespaces = ns_labels
                .into_iter()
                .zip(["a", "b", "c"])
                .take(ns_count)
                .map(|(l, n)| Namespace::new(n, l, false))
                .collect();
            let mut c = Cluster {
                namespaces,
                workloads,
                policies,
            };
            c.add_missing_namespaces();
            c
        })
}

/// Every port where a rule or named port starts or ends, with its neighbours.
fn interesting_ports(c: &Cluster, extra: u16) -> Vec<u16> {
    let mut s: BTreeSet<u32> = [1, 2, 65534, 65535, u32::from(extra)].into_iter().collect();
    let mut add = |p: u32| {
        for q in [p.saturating_sub(1), p, p + 1] {
            if (1..=65535).contains(&q) {
                s.insert(q);
            }
        }
    };
    for p in &c.policies {
        for r in p.ingress.iter().chain(&p.egress) {
            for port in &r.ports {
                match &port.port {
                    Some(PortSpec::Number(n)) => add(u32::from(*n)),
                    Some(PortSpec::Range { start, end }) => {
                        add(u32::from(*start));
                        add(u32::from(*end));
                    }
                    _ => {}
                }
            }
        }
    }
    for w in &c.workloads {
        for np in &w.named_ports {
            add(u32::from(np.port));
        }
    }
    s.into_iter()
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|p| *p >= 1)
        .collect()
}

fn check(c: &Cluster, opts: EvalOptions, extra: u16) -> Result<(), TestCaseError> {
    let analyzer = Analyzer::new(c, opts);
    let map = analyzer.connectivity_map();
    let n = c.workloads.len();
    let ports = interesting_ports(c, extra);
    for protocol in Protocol::ALL {
        for &port in &ports {
            let table = analyzer.truth_table(protocol, port);
            for s in 0..n {
                for d in 0..n {
                    let v = evaluate(
                        c,
                        opts,
                        &Endpoint::Workload(s),
                        &Endpoint::Workload(d),
                        protocol,
                        port,
                    );
                    prop_assert_eq!(
                        table.allowed(s, d),
                        v.allowed,
                        "truth table {} -> {} {}/{} ({:?})\n{}",
                        s,
                        d,
                        protocol,
                        port,
                        opts,
                        v.explain()
                    );
                    let in_map = map
                        .ports(s, d, protocol)
                        .iter()
                        .any(|(lo, hi)| *lo <= port && port <= *hi);
                    prop_assert_eq!(
                        in_map,
                        v.allowed,
                        "map {} -> {} {}/{} ({:?}): {:?}\n{}",
                        s,
                        d,
                        protocol,
                        port,
                        opts,
                        map.ports(s, d, protocol),
                        v.explain()
                    );
                }
            }
        }
    }
    // The map's ranges are sorted, merged and within 1..=65535.
    for s in 0..n {
        for d in 0..n {
            for protocol in Protocol::ALL {
                let r = map.ports(s, d, protocol);
                for w in r.windows(2) {
                    prop_assert!(u32::from(w[0].1) + 1 < u32::from(w[1].0), "{:?}", r);
                }
                for (lo, hi) in r {
                    prop_assert!(1 <= *lo && lo <= hi);
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn the_fast_path_agrees_with_the_reference_evaluator(
        c in cluster(),
        extra in 1u16..=65535,
    ) {
        check(&c, EvalOptions { ipblock_matches_workloads: true }, extra)?;
        check(&c, EvalOptions { ipblock_matches_workloads: false }, extra)?;
    }
}
