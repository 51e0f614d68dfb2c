//! Builders for hand-made clusters and a checker that asks every implementation the same question.

#![allow(dead_code)]

use std::net::IpAddr;

use netpol_core::analysis::Analyzer;
use netpol_core::eval::{evaluate, Endpoint, Verdict};
use netpol_core::model::*;

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

pub fn vm(ns: &str, name: &str, l: &[(&str, &str)], addrs: &[&str]) -> Workload {
    Workload {
        kind: WorkloadKind::VirtualMachine,
        namespace: ns.into(),
        name: name.into(),
        labels: labels(l),
        addresses: addrs.iter().map(|a| ip(a)).collect(),
        node: None,
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
    named: &[(&str, Protocol, u16)],
) -> Workload {
    let mut w = vm(ns, name, l, addrs);
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

/// A policy with no rules that affects the given directions.
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

pub fn pods_in_own_ns(s: &[(&str, &str)]) -> Peer {
    Peer::Selector {
        pod_selector: Some(sel(s)),
        namespace_selector: None,
    }
}

pub fn block(cidr: &str, except: &[&str]) -> Peer {
    Peer::IpBlock(IpBlock {
        cidr: cidr.parse().unwrap(),
        except: except.iter().map(|e| e.parse().unwrap()).collect(),
    })
}

pub fn tcp(port: u16) -> PolicyPort {
    PolicyPort {
        protocol: Protocol::Tcp,
        port: Some(PortSpec::Number(port)),
    }
}

pub fn cluster(
    namespaces: Vec<Namespace>,
    workloads: Vec<Workload>,
    policies: Vec<Policy>,
) -> Cluster {
    let mut c = Cluster {
        namespaces,
        workloads,
        policies,
    };
    c.add_missing_namespaces();
    c
}

pub fn index(c: &Cluster, key: &str) -> usize {
    c.workloads
        .iter()
        .position(|w| w.key() == key)
        .unwrap_or_else(|| panic!("no workload {key}"))
}

pub fn endpoint(c: &Cluster, s: &str) -> Endpoint {
    match s.parse::<IpAddr>() {
        Ok(a) => Endpoint::External(a),
        Err(_) => Endpoint::Workload(index(c, s)),
    }
}

/// Evaluates a flow with the reference evaluator and, when both ends are workloads, also with the
/// analyzer's truth table and connectivity map; panics if they disagree. Returns the verdict.
pub fn flow(
    c: &Cluster,
    opts: EvalOptions,
    src: &str,
    dst: &str,
    p: Protocol,
    port: u16,
) -> Verdict {
    let s = endpoint(c, src);
    let d = endpoint(c, dst);
    let v = evaluate(c, opts, &s, &d, p, port);
    if let (Endpoint::Workload(si), Endpoint::Workload(di)) = (s, d) {
        let a = Analyzer::new(c, opts);
        let t = a.truth_table(p, port);
        assert_eq!(
            t.allowed(si, di),
            v.allowed,
            "truth table disagrees with the evaluator on {src} -> {dst} {p}/{port}"
        );
        let m = a.connectivity_map();
        let in_map = m
            .ports(si, di, p)
            .iter()
            .any(|(lo, hi)| *lo <= port && port <= *hi);
        if port != 0 {
            assert_eq!(
                in_map, v.allowed,
                "connectivity map disagrees with the evaluator on {src} -> {dst} {p}/{port}"
            );
        }
    }
    v
}

pub fn allowed(
    c: &Cluster,
    opts: EvalOptions,
    src: &str,
    dst: &str,
    p: Protocol,
    port: u16,
) -> bool {
    flow(c, opts, src, dst, p, port).allowed
}

pub fn up() -> EvalOptions {
    EvalOptions {
        ipblock_matches_workloads: true,
    }
}

pub fn cilium() -> EvalOptions {
    EvalOptions {
        ipblock_matches_workloads: false,
    }
}
