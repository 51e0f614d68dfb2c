//! Builders for hand-made clusters and the `nft` binary check shared by the tests.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use netpol_core::*;

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn sel(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn vm(ns: &str, name: &str, l: &[(&str, &str)], addrs: &[&str], node: &str) -> Workload {
    Workload {
        kind: WorkloadKind::VirtualMachine,
        namespace: ns.into(),
        name: name.into(),
        labels: labels(l),
        addresses: addrs.iter().map(|a| ip(a)).collect(),
        node: Some(node.into()),
        phase: Some("Running".into()),
        named_ports: vec![],
        origin: None,
    }
}

pub fn pod(
    ns: &str,
    name: &str,
    l: &[(&str, &str)],
    addrs: &[&str],
    node: &str,
    named: &[(&str, Protocol, u16)],
) -> Workload {
    let mut w = vm(ns, name, l, addrs, node);
    w.kind = WorkloadKind::Pod;
    w.named_ports = named
        .iter()
        .map(|(n, p, port)| NamedPort {
            name: n.to_string(),
            protocol: *p,
            port: *port,
        })
        .collect();
    w
}

pub fn policy(
    ns: &str,
    name: &str,
    selector: LabelSelector,
    ingress: bool,
    egress: bool,
) -> Policy {
    Policy {
        namespace: ns.into(),
        name: name.into(),
        pod_selector: selector,
        affects_ingress: ingress,
        affects_egress: egress,
        ingress: vec![],
        egress: vec![],
        origin: None,
    }
}

pub fn pods(s: &[(&str, &str)]) -> Peer {
    Peer::Selector {
        pod_selector: Some(sel(s)),
        namespace_selector: None,
    }
}

pub fn namespace_named(name: &str) -> Peer {
    Peer::Selector {
        pod_selector: None,
        namespace_selector: Some(sel(&[(NAMESPACE_NAME_LABEL, name)])),
    }
}

pub fn block(cidr: &str, except: &[&str]) -> Peer {
    Peer::IpBlock(IpBlock {
        cidr: cidr.parse().unwrap(),
        except: except.iter().map(|e| e.parse().unwrap()).collect(),
    })
}

pub fn port(protocol: Protocol, spec: Option<PortSpec>) -> PolicyPort {
    PolicyPort {
        protocol,
        port: spec,
    }
}

pub fn tcp(n: u16) -> PolicyPort {
    port(Protocol::Tcp, Some(PortSpec::Number(n)))
}

pub fn cluster(namespaces: &[&str], workloads: Vec<Workload>, policies: Vec<Policy>) -> Cluster {
    let mut c = Cluster {
        namespaces: namespaces
            .iter()
            .map(|n| Namespace::new(*n, Labels::new(), false))
            .collect(),
        workloads,
        policies,
    };
    c.add_missing_namespaces();
    c
}

/// The cluster of the user's page: vm-a (virtlab-2) isolated for ingress except from vm-b and
/// from namespace another-project, and for egress except to 192.0.2.53 TCP 53 and TCP
/// 32000-32768; vm-b (virtlab-1) and vm-c (another-project, virtlab-1) open.
pub fn users_page() -> Cluster {
    let mut deny = policy(
        "test-project",
        "vm-a-deny-ingress",
        sel(&[("vm", "a")]),
        true,
        false,
    );
    deny.ingress = vec![];
    let mut from_b = policy(
        "test-project",
        "allow-ingress-from-vm-b-to-vm-a",
        sel(&[("vm", "a")]),
        true,
        false,
    );
    from_b.ingress = vec![Rule {
        peers: vec![pods(&[("vm", "b")])],
        ports: vec![],
    }];
    let mut dns = policy(
        "test-project",
        "allow-egress-from-vm-a-to-dns",
        sel(&[("vm", "a")]),
        false,
        true,
    );
    dns.egress = vec![Rule {
        peers: vec![block("192.0.2.53/32", &[])],
        ports: vec![tcp(53)],
    }];
    let mut range = policy(
        "test-project",
        "allow-egress-from-vm-a-port-range",
        sel(&[("vm", "a")]),
        false,
        true,
    );
    range.egress = vec![Rule {
        peers: vec![block("192.0.2.53/32", &[])],
        ports: vec![port(
            Protocol::Tcp,
            Some(PortSpec::Range {
                start: 32000,
                end: 32768,
            }),
        )],
    }];
    let mut from_ns = policy(
        "test-project",
        "allow-ingress-from-namespace-another-project-to-vm-a",
        sel(&[("vm", "a")]),
        true,
        false,
    );
    from_ns.ingress = vec![Rule {
        peers: vec![namespace_named("another-project")],
        ports: vec![],
    }];
    cluster(
        &["test-project", "another-project"],
        vec![
            vm(
                "test-project",
                "vm-a",
                &[("vm", "a")],
                &["10.66.20.70"],
                "virtlab-2",
            ),
            vm(
                "test-project",
                "vm-b",
                &[("vm", "b")],
                &["10.66.20.71"],
                "virtlab-1",
            ),
            vm(
                "another-project",
                "vm-c",
                &[("vm", "c")],
                &["10.66.20.72"],
                "virtlab-1",
            ),
        ],
        vec![deny, from_b, dns, range, from_ns],
    )
}

/// Whether `nft -c` can be used here (binary present, allowed to talk netlink).
pub fn nft_available() -> bool {
    Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs `nft -c -f -` (check only: nothing is applied) on `text`; `Err` holds nft's complaint.
pub fn nft_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
