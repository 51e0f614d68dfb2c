//! The lab against the real kernel: namespaces, routing, listeners and probes.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{host, ip, netns_exists, require_root};
use netpol_dataplane::{Lab, LabSpec, ProbeProtocol, ProbeRequest};

const TCP_PORTS: [u16; 2] = [8080, 9090];
const UDP_PORTS: [u16; 2] = [8080, 5353];
const SCTP_PORTS: [u16; 2] = [8080, 7777];

/// Two nodes, a dual-stack workload on each, and a dual-stack external host.
fn three_host_spec() -> LabSpec {
    LabSpec {
        nodes: vec!["node-a".into(), "node-b".into()],
        hosts: vec![
            host(
                "test-project/vm-a",
                Some("node-a"),
                &["10.66.20.70", "2001:db8:66::70"],
                &TCP_PORTS,
                &UDP_PORTS,
                &SCTP_PORTS,
            ),
            host(
                "test-project/vm-b",
                Some("node-b"),
                &["10.66.21.80", "2001:db8:66::80"],
                &TCP_PORTS,
                &UDP_PORTS,
                &SCTP_PORTS,
            ),
            host(
                "external",
                None,
                &["192.0.2.10", "2001:db8:ff::10"],
                &TCP_PORTS,
                &UDP_PORTS,
                &SCTP_PORTS,
            ),
        ],
    }
}

/// Every (source, destination address, protocol, port) between different hosts of the spec
/// where both ends have that address family and the destination listens.
fn all_probes(spec: &LabSpec, timeout: Duration) -> Vec<(ProbeRequest, String)> {
    let mut out = Vec::new();
    for from in &spec.hosts {
        for to in &spec.hosts {
            if from.name == to.name {
                continue;
            }
            for &addr in &to.addresses {
                if !from.addresses.iter().any(|a| a.is_ipv6() == addr.is_ipv6()) {
                    continue;
                }
                let ports = [
                    (ProbeProtocol::Tcp, &to.tcp_ports),
                    (ProbeProtocol::Udp, &to.udp_ports),
                    (ProbeProtocol::Sctp, &to.sctp_ports),
                ];
                for (protocol, list) in ports {
                    for &port in list.iter() {
                        out.push((
                            ProbeRequest {
                                from_host: from.name.clone(),
                                to_addr: addr,
                                protocol,
                                port,
                                timeout,
                            },
                            to.name.clone(),
                        ));
                    }
                }
            }
        }
    }
    out
}

fn run_matrix(lab: &Lab, probes: &[(ProbeRequest, String)]) -> Vec<bool> {
    let requests: Vec<ProbeRequest> = probes.iter().map(|(r, _)| r.clone()).collect();
    lab.probe_many(&requests)
        .into_iter()
        .zip(&requests)
        .map(|(result, r)| result.unwrap_or_else(|e| panic!("probe {r:?} errored: {e}")))
        .collect()
}

#[test]
fn every_protocol_passes_without_rules_and_a_drop_rule_blocks_exactly_its_port() {
    require_root();
    let spec = three_host_spec();
    let lab = Lab::build(&spec).expect("lab");
    let probes = all_probes(&spec, Duration::from_secs(1));
    // 3 ordered pairs x 2 families x 6 ports, both directions.
    assert_eq!(probes.len(), 6 * 2 * 6);
    assert!(probes.iter().any(|(r, _)| r.to_addr.is_ipv6()));

    let open = run_matrix(&lab, &probes);
    let failed: Vec<_> = probes
        .iter()
        .zip(&open)
        .filter(|(_, ok)| !**ok)
        .map(|(p, _)| &p.0)
        .collect();
    assert!(
        failed.is_empty(),
        "without rules every probe passes; failed: {failed:#?}"
    );

    lab.apply_ruleset(
        "node-b",
        "table inet netpol {
            chain forward {
                type filter hook forward priority filter; policy accept;
                ip daddr 10.66.21.80 tcp dport 8080 drop
                ip6 daddr 2001:db8:66::80 tcp dport 8080 drop
            }
        }",
    )
    .expect("ruleset");
    let started = Instant::now();
    let filtered = run_matrix(&lab, &probes);
    let took = started.elapsed();
    let mut blocked = 0;
    for ((request, to_host), passed) in probes.iter().zip(&filtered) {
        let should_block = to_host == "test-project/vm-b"
            && request.protocol == ProbeProtocol::Tcp
            && request.port == 8080;
        blocked += usize::from(should_block);
        assert_eq!(*passed, !should_block, "{request:?} (to {to_host})");
    }
    // From vm-a and the external host, over IPv4 and IPv6.
    assert_eq!(blocked, 4);
    assert!(
        took < Duration::from_secs(4),
        "concurrent probes took {took:?}"
    );
}

#[test]
fn probes_fail_when_nothing_listens_and_refuse_impossible_requests() {
    require_root();
    let spec = three_host_spec();
    let lab = Lab::build(&spec).expect("lab");
    let t = Duration::from_millis(500);
    let vm_b = ip("10.66.21.80");
    assert!(lab
        .probe("test-project/vm-a", vm_b, ProbeProtocol::Tcp, 8080, t)
        .expect("probe"));
    // Closed ports: RST, ICMP port unreachable, and an INIT nobody records.
    assert!(!lab
        .probe("test-project/vm-a", vm_b, ProbeProtocol::Tcp, 1234, t)
        .expect("probe"));
    assert!(!lab
        .probe("test-project/vm-a", vm_b, ProbeProtocol::Udp, 1234, t)
        .expect("probe"));
    assert!(!lab
        .probe("test-project/vm-a", vm_b, ProbeProtocol::Sctp, 1234, t)
        .expect("probe"));
    // An address no lab host has (documentation range).
    let nowhere = ip("203.0.113.7");
    assert!(!lab
        .probe("test-project/vm-a", nowhere, ProbeProtocol::Tcp, 80, t)
        .expect("probe"));
    assert!(!lab
        .probe("external", nowhere, ProbeProtocol::Sctp, 80, t)
        .expect("probe"));
    // Unknown hosts and missing families are errors, not "blocked".
    assert!(lab
        .probe("nobody", vm_b, ProbeProtocol::Tcp, 8080, t)
        .is_err());

    // SCTP arrivals are recorded by source address and port.
    let a: IpAddr = ip("10.66.20.70");
    let before = lab
        .sctp_arrivals("test-project/vm-b", a, 7777)
        .expect("count");
    assert!(lab
        .probe("test-project/vm-a", vm_b, ProbeProtocol::Sctp, 7777, t)
        .expect("probe"));
    assert_eq!(
        lab.sctp_arrivals("test-project/vm-b", a, 7777)
            .expect("count"),
        before + 1
    );
}

#[test]
fn sctp_probes_pass_conntrack_checksum_validation_and_match_sctp_rules() {
    require_root();
    let spec = three_host_spec();
    let lab = Lab::build(&spec).expect("lab");
    let t = Duration::from_millis(700);
    // Conntrack validates the SCTP CRC32c of forwarded packets (nf_conntrack_checksum=1) and
    // marks bad ones invalid: a wrong checksum would make every probe below fail.
    lab.apply_ruleset(
        "node-b",
        "table inet netpol {
            chain forward {
                type filter hook forward priority filter; policy accept;
                ct state invalid drop
                ip daddr 10.66.21.80 sctp dport 7777 drop
            }
        }",
    )
    .expect("ruleset");
    let vm_b = ip("10.66.21.80");
    for from in ["test-project/vm-a", "external"] {
        assert!(
            lab.probe(from, vm_b, ProbeProtocol::Sctp, 8080, t)
                .expect("probe"),
            "{from}"
        );
        assert!(
            !lab.probe(from, vm_b, ProbeProtocol::Sctp, 7777, t)
                .expect("probe"),
            "{from}"
        );
        assert!(lab
            .probe(from, ip("2001:db8:66::80"), ProbeProtocol::Sctp, 7777, t)
            .expect("probe"));
    }
}

#[test]
fn dropping_the_lab_removes_every_namespace_it_created() {
    require_root();
    let lab = Lab::build(&three_host_spec()).expect("lab");
    let names = lab.netns_names();
    assert_eq!(names.len(), 1 + 2 + 3);
    assert!(names
        .iter()
        .all(|n| n.starts_with(lab.prefix()) && netns_exists(n)));
    let prefix = lab.prefix().to_owned();
    drop(lab);
    let left: Vec<String> = netpol_dataplane::netns::list_lab_namespaces()
        .expect("list")
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn stale_cleanup_removes_leftovers_of_dead_processes_only() {
    require_root();
    // A pid that surely belonged to a process that has exited.
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead_pid = child.id();
    child.wait().expect("wait");
    let dead = format!("nplab-{dead_pid}-0-leftover");
    // pid 1 is always alive: its namespaces belong to a live run and must be kept.
    let live = format!("nplab-1-{}-live", std::process::id());
    for name in [&dead, &live] {
        let status = std::process::Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .expect("ip netns add");
        assert!(status.success());
    }
    let cleanup = netpol_dataplane::cleanup_stale();
    let live_survived = netns_exists(&live);
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &live])
        .status();
    cleanup.expect("cleanup");
    // Another test's Lab::build may have run the cleanup first; either way it is gone.
    assert!(!netns_exists(&dead), "{dead} should have been removed");
    assert!(live_survived, "{live} belongs to a live pid and must stay");
}
