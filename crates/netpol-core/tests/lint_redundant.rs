//! Property test: NP003 is sound. On random clusters, removing every rule and policy it reports,
//! all together, changes no verdict of the plain evaluator: no pair of workloads, no address
//! outside them, no port that any rule or named port names (or its neighbours).

use std::collections::BTreeSet;
use std::net::IpAddr;

use netpol_core::eval::{evaluate, Endpoint};
use netpol_core::model::*;
use netpol_test_support::arb::{self, ClusterShape};
use netpol_test_support::ip;
use netpol_test_support::lint::without_redundancies;
use proptest::prelude::*;

fn ports(c: &Cluster) -> Vec<u16> {
    let mut s: BTreeSet<u16> = [1, 65535].into_iter().collect();
    for p in &c.policies {
        for r in p.ingress.iter().chain(&p.egress) {
            for port in &r.ports {
                match &port.port {
                    Some(PortSpec::Number(n)) => {
                        s.extend([n.saturating_sub(1).max(1), *n, n.saturating_add(1)]);
                    }
                    Some(PortSpec::Range { start, end }) => {
                        s.extend([
                            start.saturating_sub(1).max(1),
                            *start,
                            *end,
                            end.saturating_add(1),
                        ]);
                    }
                    _ => {}
                }
            }
        }
    }
    for w in &c.workloads {
        s.extend(w.named_ports.iter().map(|n| n.port));
    }
    s.into_iter().collect()
}

fn endpoints(c: &Cluster) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = (0..c.workloads.len()).map(Endpoint::Workload).collect();
    let mut addrs: BTreeSet<IpAddr> = [
        "192.0.2.1",
        "192.0.2.200",
        "203.0.113.9",
        "10.0.0.1",
        "10.0.0.3",
        "10.1.2.3",
        "fd00::1",
        "fd00::1:0",
        "2001:db8::1",
    ]
    .iter()
    .map(|a| ip(a))
    .collect();
    for p in &c.policies {
        for r in p.ingress.iter().chain(&p.egress) {
            for peer in &r.peers {
                if let Peer::IpBlock(b) = peer {
                    addrs.insert(b.cidr.network());
                    addrs.insert(b.cidr.broadcast());
                    for e in &b.except {
                        addrs.insert(e.network());
                        addrs.insert(e.broadcast());
                    }
                }
            }
        }
    }
    for n in &c.nodes {
        addrs.extend(n.addresses.iter().copied());
    }
    addrs.retain(|a| !c.workloads.iter().any(|w| w.addresses.contains(a)));
    out.extend(addrs.into_iter().map(Endpoint::External));
    out
}

fn check(c: &Cluster, opts: EvalOptions) -> Result<(), TestCaseError> {
    let reduced = without_redundancies(c, opts);
    let ends = endpoints(c);
    for src in &ends {
        for dst in &ends {
            if matches!((src, dst), (Endpoint::External(_), Endpoint::External(_))) {
                continue;
            }
            for p in Protocol::ALL {
                for port in ports(c) {
                    let before = evaluate(c, opts, src, dst, p, port);
                    let after = evaluate(&reduced, opts, src, dst, p, port);
                    prop_assert_eq!(
                        (before.egress.allows(), before.ingress.allows()),
                        (after.egress.allows(), after.ingress.allows()),
                        "{} -> {} {} {}",
                        before.src,
                        before.dst,
                        p,
                        port
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn removing_everything_np003_reports_changes_no_verdict(c in arb::cluster(&ClusterShape::for_the_analyzer_with_nodes())) {
        check(&c, EvalOptions { ipblock_matches_workloads: true })?;
        check(&c, EvalOptions { ipblock_matches_workloads: false })?;
    }
}
