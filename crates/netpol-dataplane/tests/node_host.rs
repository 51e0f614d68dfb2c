//! A node as a host of its own and a Service address with hairpin, against the real kernel, with
//! no policy table: the node's addresses are reachable from its workloads, from other nodes'
//! workloads and from external hosts over both families, and a workload reaches itself through
//! its Service for every protocol; addresses already in use are refused.

// Helpers outside #[test] functions panic too: in a test a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{host, ip, require_root};
use netpol_dataplane::lab::SERVICES_TABLE;
use netpol_dataplane::{HairpinService, Lab, LabSpec, ProbeProtocol};

const TCP: [u16; 1] = [8080];
const UDP: [u16; 1] = [8080];
const SCTP: [u16; 1] = [8080];
const TIMEOUT: Duration = Duration::from_millis(700);

fn lab() -> Lab {
    require_root();
    let mut lab = Lab::build(&LabSpec {
        nodes: vec!["n1".into(), "n2".into()],
        hosts: vec![
            host(
                "a",
                Some("n1"),
                &["10.66.20.70", "2001:db8:66::70"],
                &TCP,
                &UDP,
                &SCTP,
            ),
            host(
                "b",
                Some("n2"),
                &["10.66.21.80", "2001:db8:66::80"],
                &TCP,
                &UDP,
                &SCTP,
            ),
            host(
                "x",
                None,
                &["192.0.2.10", "2001:db8:ff::10"],
                &TCP,
                &UDP,
                &SCTP,
            ),
        ],
    })
    .unwrap();
    let node = host(
        "node/n1",
        Some("n1"),
        &["10.66.0.11", "2001:db8:66:1::11"],
        &TCP,
        &UDP,
        &SCTP,
    );
    lab.add_node_host(node).unwrap();
    lab
}

#[test]
fn a_node_host_is_reached_from_its_workloads_other_nodes_and_outside_and_reaches_them() {
    let lab = lab();
    for to in ["10.66.0.11", "2001:db8:66:1::11"] {
        for from in ["a", "b", "x"] {
            for protocol in [ProbeProtocol::Tcp, ProbeProtocol::Udp, ProbeProtocol::Sctp] {
                assert!(
                    lab.probe(from, ip(to), protocol, 8080, TIMEOUT).unwrap(),
                    "{from} -> {to} {protocol:?}"
                );
            }
        }
    }
    for to in ["10.66.20.70", "2001:db8:66::80", "192.0.2.10"] {
        assert!(
            lab.probe("node/n1", ip(to), ProbeProtocol::Tcp, 8080, TIMEOUT)
                .unwrap(),
            "node/n1 -> {to}"
        );
    }
    // The node host lives in the node's namespace: no namespace of its own.
    assert_eq!(lab.host_netns("node/n1"), lab.node_netns("n1"));
}

#[test]
fn a_workload_reaches_itself_through_its_service_and_others_reach_it_too() {
    let mut lab = lab();
    // Before the Service exists nothing answers on its address.
    assert!(!lab
        .probe("a", ip("10.96.0.1"), ProbeProtocol::Tcp, 8080, TIMEOUT)
        .unwrap());
    lab.add_hairpin_services(&[
        HairpinService {
            host: "a".into(),
            address: ip("10.96.0.1"),
        },
        HairpinService {
            host: "a".into(),
            address: ip("fd00:96::1"),
        },
    ])
    .unwrap();
    for service in ["10.96.0.1", "fd00:96::1"] {
        for protocol in [ProbeProtocol::Tcp, ProbeProtocol::Udp, ProbeProtocol::Sctp] {
            assert!(
                lab.probe("a", ip(service), protocol, 8080, TIMEOUT)
                    .unwrap(),
                "a -> {service} {protocol:?}"
            );
        }
    }
    // The Services live in a table of their own, never in the policy table.
    let table = netpol_dataplane::nft::table_exists(lab.node_netns("n1"), "inet", SERVICES_TABLE);
    assert!(table.unwrap());
}

#[test]
fn addresses_already_in_use_are_refused_for_node_hosts_and_services() {
    let mut lab = lab();
    let taken = host("node/n2", Some("n2"), &["10.66.20.70"], &TCP, &UDP, &SCTP);
    assert!(lab.add_node_host(taken).is_err());
    let underlay = host("node/n2", Some("n2"), &["169.254.7.7"], &TCP, &UDP, &SCTP);
    assert!(lab.add_node_host(underlay).is_err());
    let on_node = HairpinService {
        host: "a".into(),
        address: ip("10.66.0.11"),
    };
    assert!(lab.add_hairpin_services(&[on_node]).is_err());
    let to_external = HairpinService {
        host: "x".into(),
        address: ip("10.96.0.9"),
    };
    assert!(lab.add_hairpin_services(&[to_external]).is_err());
}
