//! The ports where a property test's answers can change: the property tests check port by port,
//! and checking every port of 65,535 per pair would be too slow.

use std::collections::BTreeSet;

use netpol_core::model::{AdminPort, Cluster, PortSpec};

/// Every port where a rule's port or range (admin rules' too) or a workload's named port starts
/// or ends, with its
/// neighbours, plus 1, 2, 65534, 65535 and `extra`, sorted, over all of `clusters`.
pub fn interesting_ports<'a>(
    clusters: impl IntoIterator<Item = &'a Cluster>,
    extra: &[u16],
) -> Vec<u16> {
    let mut s: BTreeSet<u32> = [1, 2, 65534, 65535].into_iter().collect();
    s.extend(extra.iter().map(|&p| u32::from(p)));
    let mut add = |p: u32| {
        for q in [p.saturating_sub(1), p, p + 1] {
            if (1..=65535).contains(&q) {
                s.insert(q);
            }
        }
    };
    for c in clusters {
        for r in c
            .policies
            .iter()
            .flat_map(|p| p.ingress.iter().chain(&p.egress))
        {
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
        for r in c
            .admin_policies
            .iter()
            .flat_map(|p| p.ingress.iter().chain(&p.egress))
        {
            for port in r.ports.iter().flatten() {
                if let AdminPort::Protocol {
                    ports: Some((start, end)),
                    ..
                } = port
                {
                    add(u32::from(*start));
                    add(u32::from(*end));
                }
            }
        }
        for np in c.workloads.iter().flat_map(|w| &w.named_ports) {
            add(u32::from(np.port));
        }
    }
    s.into_iter()
        .filter_map(|p| u16::try_from(p).ok())
        .filter(|p| *p >= 1)
        .collect()
}
