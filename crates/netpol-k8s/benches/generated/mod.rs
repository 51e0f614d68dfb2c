//! A generated cluster for the load benchmark and example: `workloads` workloads (pods with a
//! named port, half of them dual-stack, and Deckhouse VMs) in 50 namespaces, plus 200 policies.

// A benchmark aborts on a setup failure by design: without the setup there is nothing to measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netpol_core::{
    Cluster, IpBlock, LabelSelector, Labels, NamedPort, Namespace, Peer, Policy, PolicyPort,
    PortSpec, Protocol, Rule, Workload, WorkloadKind,
};

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

pub fn cluster(workloads: usize) -> Cluster {
    let namespaces = 50;
    let mut c = Cluster::default();
    for n in 0..namespaces {
        c.namespaces.push(Namespace::new(
            format!("ns-{n}"),
            labels(&[("team", format!("t{}", n % 5))]),
            false,
        ));
    }
    for i in 0..workloads {
        let ns = format!("ns-{}", i % namespaces);
        let v4 = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + i as u32));
        let pod = i % 2 == 0;
        let mut addresses = vec![v4];
        if i % 4 == 0 {
            addresses.push(IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0,
                0,
                0,
                0,
                0,
                (i >> 16) as u16,
                i as u16,
            )));
        }
        c.workloads.push(Workload {
            kind: if pod {
                WorkloadKind::Pod
            } else {
                WorkloadKind::VirtualMachine
            },
            namespace: ns,
            name: format!("w-{i}"),
            labels: labels(&[
                ("app", format!("app-{}", i % 20)),
                ("tier", ["web", "db", "cache"][i % 3].to_string()),
            ]),
            addresses: if pod { addresses } else { vec![v4] },
            node: Some(format!("node-{}", i % 16)),
            phase: Some("Running".to_string()),
            named_ports: if pod {
                vec![NamedPort {
                    name: "http".into(),
                    protocol: Protocol::Tcp,
                    port: 8080,
                }]
            } else {
                vec![]
            },
            origin: None,
            instances: Default::default(),
        });
    }
    for p in 0..200 {
        c.policies.push(Policy {
            namespace: format!("ns-{}", p % namespaces),
            name: format!("p-{p}"),
            pod_selector: LabelSelector {
                match_labels: labels(&[("app", format!("app-{}", p % 20))]),
                match_expressions: vec![],
            },
            affects_ingress: true,
            affects_egress: true,
            ingress: vec![Rule {
                peers: vec![Peer::Selector {
                    pod_selector: Some(LabelSelector {
                        match_labels: labels(&[("tier", "web".into())]),
                        match_expressions: vec![],
                    }),
                    namespace_selector: Some(LabelSelector::default()),
                }],
                ports: vec![PolicyPort {
                    protocol: Protocol::Tcp,
                    port: Some(PortSpec::Named("http".into())),
                }],
            }],
            egress: vec![Rule {
                peers: vec![Peer::IpBlock(IpBlock {
                    cidr: "192.0.2.0/24".parse().unwrap(),
                    except: vec!["192.0.2.128/25".parse().unwrap()],
                })],
                ports: vec![PolicyPort {
                    protocol: Protocol::Udp,
                    port: Some(PortSpec::Range {
                        start: 1000,
                        end: 2000,
                    }),
                }],
            }],
            origin: None,
            rule_lines: Default::default(),
        });
    }
    c
}
