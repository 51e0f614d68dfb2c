//! `render_manifests` and loading are inverse: a random valid cluster survives the round trip.

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use ipnet::IpNet;
use netpol_core::{
    AdminAction, AdminApi, AdminPeer, AdminPolicy, AdminPort, AdminRule, AdminSubject, AdminTier,
    Cluster, IpBlock, LabelSelector, Labels, NamedPort, Namespace, Peer, Policy, PolicyPort,
    PortSpec, Protocol, Rule, SelectorOperator, SelectorRequirement, Workload, WorkloadKind,
};
use netpol_k8s::{load_str, render_manifests, LoadOptions};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,6}[a-z0-9]"
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9_.-]{0,5}[a-zA-Z0-9]",
        "[a-z]{1,5}\\.io/[a-z]{1,6}",
        Just("vm".to_string()),
    ]
}

/// Label values, including the ones YAML would read as bools, numbers or null unquoted.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9]([A-Za-z0-9_.-]{0,6}[A-Za-z0-9])?",
        Just(String::new()),
        Just("yes".to_string()),
        Just("on".to_string()),
        Just("Null".to_string()),
        Just("0x1F".to_string()),
        Just("1e3".to_string()),
        Just("010".to_string()),
    ]
}

fn labels() -> impl Strategy<Value = Labels> {
    prop::collection::btree_map(key(), value(), 0..4)
}

fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u16; 8]>().prop_map(|s| IpAddr::from(std::net::Ipv6Addr::from(s))),
    ]
}

fn selector() -> impl Strategy<Value = LabelSelector> {
    let req =
        (key(), 0..4usize, prop::collection::vec(value(), 1..3)).prop_map(|(key, op, values)| {
            let operator = [
                SelectorOperator::In,
                SelectorOperator::NotIn,
                SelectorOperator::Exists,
                SelectorOperator::DoesNotExist,
            ][op];
            let values = if matches!(operator, SelectorOperator::In | SelectorOperator::NotIn) {
                values
            } else {
                vec![]
            };
            SelectorRequirement {
                key,
                operator,
                values,
            }
        });
    (labels(), prop::collection::vec(req, 0..3)).prop_map(|(match_labels, match_expressions)| {
        LabelSelector {
            match_labels,
            match_expressions,
        }
    })
}

fn ip_block() -> impl Strategy<Value = IpBlock> {
    (address(), 0u8..=24, any::<bool>()).prop_map(|(a, len, hole)| {
        let len = if a.is_ipv4() { len } else { len * 4 };
        let cidr = IpNet::new(a, len).unwrap().trunc();
        let except = if hole {
            vec![IpNet::new(a, len + 8).unwrap().trunc()]
        } else {
            vec![]
        };
        IpBlock { cidr, except }
    })
}

fn peer() -> impl Strategy<Value = Peer> {
    prop_oneof![
        ip_block().prop_map(Peer::IpBlock),
        (
            prop::option::of(selector()),
            prop::option::of(selector()),
            any::<bool>()
        )
            .prop_map(|(p, n, which)| {
                let (pod_selector, namespace_selector) = match (p, n) {
                    (None, None) if which => (Some(LabelSelector::default()), None),
                    (None, None) => (None, Some(LabelSelector::default())),
                    other => other,
                };
                Peer::Selector {
                    pod_selector,
                    namespace_selector,
                }
            }),
    ]
}

fn port() -> impl Strategy<Value = PolicyPort> {
    let spec = prop_oneof![
        Just(None),
        (1u16..).prop_map(|n| Some(PortSpec::Number(n))),
        (1u16.., 0u16..100).prop_map(|(s, d)| Some(PortSpec::Range {
            start: s,
            end: s.saturating_add(d)
        })),
        "[a-z]([a-z0-9]{0,8})".prop_map(|n| Some(PortSpec::Named(n))),
    ];
    (0..3usize, spec).prop_map(|(p, port)| PolicyPort {
        protocol: Protocol::ALL[p],
        port,
    })
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::collection::vec(peer(), 0..3),
        prop::collection::vec(port(), 0..3),
    )
        .prop_map(|(peers, ports)| Rule { peers, ports })
}

fn policy(ns: String) -> impl Strategy<Value = Policy> {
    (
        name(),
        selector(),
        0..3usize,
        prop::collection::vec(rule(), 0..3),
        prop::collection::vec(rule(), 0..3),
    )
        .prop_map(move |(name, pod_selector, types, ingress, egress)| {
            let (affects_ingress, affects_egress) =
                [(true, false), (false, true), (true, true)][types];
            Policy {
                namespace: ns.clone(),
                name,
                pod_selector,
                affects_ingress,
                affects_egress,
                ingress: if affects_ingress { ingress } else { vec![] },
                egress: if affects_egress { egress } else { vec![] },
                origin: None,
                rule_lines: Default::default(),
            }
        })
}

fn workload(ns: String) -> impl Strategy<Value = Workload> {
    let named = ("[a-z][a-z0-9]{0,8}", 0..3usize, 1u16..).prop_map(|(name, p, port)| NamedPort {
        name,
        protocol: Protocol::ALL[p],
        port,
    });
    (
        name(),
        0..3usize,
        labels(),
        prop::collection::vec(address(), 0..3),
        prop::option::of(name()),
        prop::option::of(prop_oneof![
            Just("Running".to_string()),
            Just("Pending".to_string())
        ]),
        prop::collection::vec(named, 0..3),
    )
        .prop_map(
            move |(name, kind, labels, mut addresses, node, phase, mut named_ports)| {
                let kind = [
                    WorkloadKind::Pod,
                    WorkloadKind::VirtualMachine,
                    WorkloadKind::VirtualMachineInstance,
                ][kind];
                addresses.dedup();
                if kind != WorkloadKind::Pod {
                    named_ports.clear();
                }
                if kind == WorkloadKind::VirtualMachine {
                    // A Deckhouse VirtualMachine reports one address.
                    addresses.truncate(1);
                }
                if kind == WorkloadKind::VirtualMachineInstance {
                    // Link-local addresses are not loaded from a VMI.
                    addresses.retain(
                        |a| !matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80),
                    );
                }
                Workload {
                    kind,
                    namespace: ns.clone(),
                    name,
                    labels,
                    addresses,
                    node,
                    phase,
                    named_ports,
                    origin: None,
                    instances: Default::default(),
                }
            },
        )
}

fn cluster() -> impl Strategy<Value = Cluster> {
    (name(), name(), labels()).prop_flat_map(|(a, b, ns_labels)| {
        let b = if a == b { format!("{b}x") } else { b };
        (
            prop::collection::vec(prop_oneof![workload(a.clone()), workload(b.clone())], 0..6),
            prop::collection::vec(prop_oneof![policy(a.clone()), policy(b.clone())], 0..4),
            Just((a, b, ns_labels)),
        )
            .prop_map(|(workloads, policies, (a, b, ns_labels))| {
                let mut c = Cluster {
                    namespaces: vec![Namespace::new(a, ns_labels, false)],
                    workloads,
                    policies,
                    ..Cluster::default()
                };
                // Names are unique per kind and namespace in a real cluster.
                let mut seen = std::collections::HashSet::new();
                c.workloads.retain(|w| seen.insert((w.kind, w.key())));
                // Keep pods from looking like virt-launchers of loaded VMs.
                c.workloads.iter_mut().for_each(|w| {
                    w.labels.remove("vm.kubevirt.io/name");
                });
                let mut seen = std::collections::HashSet::new();
                c.policies.retain(|p| seen.insert(p.key()));
                let _ = b;
                c.add_missing_namespaces();
                c
            })
    })
}

/// An admin peer valid in a rule of `action` of `api`'s direction (`egress`).
fn admin_peer(api: AdminApi, egress: bool, action: AdminAction) -> BoxedStrategy<AdminPeer> {
    let mut options = vec![
        selector().prop_map(AdminPeer::Namespaces).boxed(),
        (selector(), selector())
            .prop_map(|(n, p)| AdminPeer::Pods {
                namespace_selector: n,
                pod_selector: p,
            })
            .boxed(),
        Just(AdminPeer::Unknown).boxed(),
    ];
    if egress {
        options.push(selector().prop_map(AdminPeer::Nodes).boxed());
        let net = (address(), 0u8..=128).prop_map(|(a, len)| {
            let len = if a.is_ipv4() { len % 33 } else { len };
            IpNet::new(a, len).unwrap().trunc()
        });
        options.push(
            prop::collection::btree_set(net, 1..3)
                .prop_map(|s| AdminPeer::Networks(s.into_iter().collect()))
                .boxed(),
        );
        if api != AdminApi::BaselineAdminNetworkPolicy && action == AdminAction::Accept {
            let domain = prop_oneof!["[a-z]{1,5}\\.[a-z]{2,3}", "\\*\\.[a-z]{1,5}\\.io"];
            options.push(
                prop::collection::btree_set(domain, 1..3)
                    .prop_map(|s| AdminPeer::DomainNames(s.into_iter().collect()))
                    .boxed(),
            );
        }
    }
    prop::strategy::Union::new(options).boxed()
}

fn admin_port() -> impl Strategy<Value = AdminPort> {
    let protocol = prop_oneof![
        Just(Protocol::Tcp),
        Just(Protocol::Udp),
        Just(Protocol::Sctp)
    ];
    prop_oneof![
        (protocol, 1u16..=65535, 0u16..3).prop_map(|(protocol, a, extra)| AdminPort::Protocol {
            protocol,
            ports: Some((a, a.saturating_add(extra))),
        }),
        "[a-z]{1,8}".prop_map(AdminPort::Named),
    ]
}

fn admin_rule(api: AdminApi, egress: bool) -> BoxedStrategy<AdminRule> {
    let actions: Vec<AdminAction> = match api {
        AdminApi::BaselineAdminNetworkPolicy => vec![AdminAction::Accept, AdminAction::Deny],
        _ => vec![AdminAction::Accept, AdminAction::Deny, AdminAction::Pass],
    };
    prop::sample::select(actions)
        .prop_flat_map(move |action| {
            (
                Just(action),
                prop::option::of(name()),
                prop::collection::vec(admin_peer(api, egress, action), 1..3),
                prop::option::of(prop::collection::vec(admin_port(), 1..3)),
            )
        })
        .prop_map(move |(action, name, peers, mut ports)| {
            // The CEL rule: no named port with a networks, nodes or domainNames peer.
            let address_peer = peers.iter().any(|p| {
                matches!(
                    p,
                    AdminPeer::Networks(_) | AdminPeer::Nodes(_) | AdminPeer::DomainNames(_)
                )
            });
            if address_peer {
                if let Some(ps) = &mut ports {
                    ps.retain(|p| !matches!(p, AdminPort::Named(_)));
                    if ps.is_empty() {
                        ports = None;
                    }
                }
            }
            AdminRule {
                name,
                action,
                peers,
                ports,
                origin: None,
            }
        })
        .boxed()
}

fn admin_policy() -> impl Strategy<Value = AdminPolicy> {
    prop_oneof![
        Just(AdminApi::ClusterNetworkPolicy),
        Just(AdminApi::AdminNetworkPolicy),
        Just(AdminApi::BaselineAdminNetworkPolicy),
    ]
    .prop_flat_map(|api| {
        let subject = prop_oneof![
            selector().prop_map(AdminSubject::Namespaces),
            (selector(), selector()).prop_map(|(n, p)| AdminSubject::Pods {
                namespace_selector: n,
                pod_selector: p,
            }),
        ];
        (
            Just(api),
            name(),
            any::<bool>(),
            0u32..=1000,
            subject,
            prop::collection::vec(admin_rule(api, false), 0..3),
            prop::collection::vec(admin_rule(api, true), 0..3),
        )
    })
    .prop_map(|(api, name, admin, priority, subject, ingress, egress)| {
        let (name, tier, priority) = match api {
            AdminApi::ClusterNetworkPolicy => {
                let tier = if admin {
                    AdminTier::Admin
                } else {
                    AdminTier::Baseline
                };
                (name, tier, priority)
            }
            AdminApi::AdminNetworkPolicy => (name, AdminTier::Admin, priority),
            AdminApi::BaselineAdminNetworkPolicy => ("default".into(), AdminTier::Baseline, 0),
        };
        AdminPolicy {
            api,
            name,
            tier,
            priority,
            subject,
            ingress,
            egress,
            origin: None,
        }
    })
}

fn normalized(mut c: Cluster) -> Cluster {
    c.namespaces.sort_by(|x, y| x.name.cmp(&y.name));
    c.workloads.iter_mut().for_each(|w| w.origin = None);
    for p in &mut c.policies {
        p.origin = None;
        p.rule_lines = Default::default();
    }
    for p in &mut c.admin_policies {
        p.origin = None;
        for r in p.ingress.iter_mut().chain(p.egress.iter_mut()) {
            r.origin = None;
        }
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn rendered_manifests_load_back_into_the_same_cluster(c in cluster()) {
        let text = render_manifests(&c);
        let loaded = load_str("rendered.yaml", &text, &LoadOptions::default());
        let errors: Vec<String> = loaded.diagnostics.iter().filter(|d| d.severity == netpol_k8s::Severity::Error).map(|d| d.to_string()).collect();
        prop_assert!(errors.is_empty(), "{errors:?}\n{text}");
        prop_assert_eq!(normalized(loaded.cluster), normalized(c), "{}", text);
    }

    #[test]
    fn rendered_admin_policies_load_back_into_the_same_policies(
        policies in prop::collection::vec(admin_policy(), 1..4),
    ) {
        let mut seen = std::collections::HashSet::new();
        let admin_policies: Vec<AdminPolicy> =
            policies.into_iter().filter(|p| seen.insert((p.api, p.name.clone()))).collect();
        let c = Cluster { admin_policies, ..Cluster::default() };
        let text = render_manifests(&c);
        let loaded = load_str("rendered.yaml", &text, &LoadOptions::default());
        let errors: Vec<String> = loaded.diagnostics.iter().filter(|d| d.severity == netpol_k8s::Severity::Error).map(|d| d.to_string()).collect();
        prop_assert!(errors.is_empty(), "{errors:?}\n{text}");
        prop_assert_eq!(normalized(loaded.cluster), normalized(c), "{}", text);
    }
}
