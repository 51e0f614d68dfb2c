//! The exposure report: VM-first sentences (`VM test-project/vm-a accepts TCP/22 from anywhere
//! outside the cluster`) and a Markdown table. JSON is `Exposure`'s own.

use std::fmt::Write;

use netpol_core::exposure::{AddressGrant, Exposure, PortRanges, WorkloadExposure};
use netpol_core::{Protocol, WorkloadKind};

/// How a sentence names a workload's kind, VMs first.
pub(crate) fn kind_word(kind: WorkloadKind) -> &'static str {
    if matches!(
        kind,
        WorkloadKind::VirtualMachine | WorkloadKind::VirtualMachineInstance
    ) {
        "VM"
    } else if kind == WorkloadKind::Pod {
        "Pod"
    } else {
        kind.short_name()
    }
}

/// `a` minus `b`, both sorted and merged.
fn subtract(a: &[(u16, u16)], b: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for &(lo, hi) in a {
        let mut cur = u32::from(lo);
        let hi = u32::from(hi);
        for &(blo, bhi) in b {
            let (blo, bhi) = (u32::from(blo), u32::from(bhi));
            if bhi < cur || blo > hi {
                continue;
            }
            if blo > cur {
                out.push((cur, blo - 1));
            }
            cur = cur.max(bhi + 1);
        }
        if cur <= hi {
            out.push((cur, hi));
        }
    }
    out.into_iter()
        .map(|(l, h)| (narrow(l), narrow(h)))
        .collect()
}

fn narrow(p: u32) -> u16 {
    u16::try_from(p).unwrap_or(u16::MAX)
}

/// `TCP/22, 80-81` or `every TCP port`.
fn protocol_ports(protocol: Protocol, ranges: &[(u16, u16)]) -> String {
    if ranges == [(1, 65535)] {
        return format!("every {protocol} port");
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect();
    format!("{protocol}/{}", parts.join(", "))
}

/// Every protocol's ports, `every port` when all are complete; empty when there are none.
fn ports(r: &PortRanges) -> String {
    if Protocol::ALL.iter().all(|p| r.get(*p) == [(1, 65535)]) {
        return "every port".into();
    }
    let parts: Vec<String> = Protocol::ALL
        .iter()
        .filter(|p| !r.get(**p).is_empty())
        .map(|p| protocol_ports(*p, r.get(*p)))
        .collect();
    parts.join(" and ")
}

fn minus(a: &PortRanges, b: &PortRanges) -> PortRanges {
    PortRanges {
        tcp: subtract(&a.tcp, &b.tcp),
        udp: subtract(&a.udp, &b.udp),
        sctp: subtract(&a.sctp, &b.sctp),
    }
}

fn addresses(g: &AddressGrant) -> String {
    if g.anywhere {
        return "anywhere outside the cluster".into();
    }
    const SHOWN: usize = 6;
    let mut s = g
        .blocks
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if g.blocks.len() > SHOWN {
        let _ = write!(s, " and {} more", g.blocks.len() - SHOWN);
    }
    s
}

/// Grants with the same addresses, their protocols' ports joined (`every port` when complete).
fn by_addresses(grants: &[(AddressGrant, Vec<(u16, u16)>)]) -> Vec<(&AddressGrant, String)> {
    let mut groups: Vec<(&AddressGrant, PortRanges)> = Vec::new();
    for (g, shown) in grants {
        if shown.is_empty() {
            continue;
        }
        let i = match groups
            .iter()
            .position(|(h, _)| h.blocks == g.blocks && h.anywhere == g.anywhere)
        {
            Some(i) => i,
            None => {
                groups.push((g, PortRanges::default()));
                groups.len() - 1
            }
        };
        let r = &mut groups[i].1;
        match g.protocol {
            Protocol::Tcp => r.tcp = shown.clone(),
            Protocol::Udp => r.udp = shown.clone(),
            Protocol::Sctp => r.sctp = shown.clone(),
        }
    }
    groups.into_iter().map(|(g, r)| (g, ports(&r))).collect()
}

/// The grants from outside, without the ports `from_everything` already says are open to
/// anywhere.
fn from_outside_shown(w: &WorkloadExposure) -> Vec<(AddressGrant, Vec<(u16, u16)>)> {
    w.from_outside
        .iter()
        .map(|g| {
            let shown = if g.anywhere {
                subtract(&g.ports, w.from_everything.get(g.protocol))
            } else {
                g.ports.clone()
            };
            (g.clone(), shown)
        })
        .collect()
}

/// The sentences about one workload, each without the subject.
pub(crate) fn sentences(w: &WorkloadExposure) -> Vec<String> {
    let mut out = Vec::new();
    if !w.from_everything.is_empty() {
        out.push(format!(
            "accepts {} from everything (every workload and anywhere outside the cluster)",
            ports(&w.from_everything)
        ));
    }
    let namespaces = minus(&w.from_every_namespace, &w.from_everything);
    if !namespaces.is_empty() {
        out.push(format!(
            "accepts {} from every namespace (every other workload of the cluster)",
            ports(&namespaces)
        ));
    }
    for (g, ports) in by_addresses(&from_outside_shown(w)) {
        out.push(format!("accepts {ports} from {}", addresses(g)));
    }
    let to: Vec<(AddressGrant, Vec<(u16, u16)>)> = w
        .to_outside
        .iter()
        .map(|g| (g.clone(), g.ports.clone()))
        .collect();
    for (g, ports) in by_addresses(&to) {
        let at = if g.anywhere {
            "anywhere outside the cluster".to_string()
        } else {
            format!("{} (outside the cluster)", addresses(g))
        };
        out.push(format!("may reach {at} on {ports}"));
    }
    out
}

/// One sentence a line, workloads in output order.
pub fn text(report: &Exposure) -> String {
    let mut out = String::new();
    for w in &report.workloads {
        let subject = format!("{} {}", kind_word(w.kind), w.workload);
        let lines = sentences(w);
        if lines.is_empty() {
            let _ = writeln!(out, "{subject} exposes nothing");
        }
        for line in lines {
            let _ = writeln!(out, "{subject} {line}");
        }
    }
    if report.workloads.is_empty() {
        out.push_str("No workload accepts connections from outside the cluster or every namespace, and none reaches outside.\n");
    }
    out
}

fn cell(parts: Vec<String>) -> String {
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("<br>").replace('|', "\\|")
    }
}

/// A Markdown table, one row per workload (fits a pull-request comment).
pub fn markdown(report: &Exposure) -> String {
    let mut out = String::from(
        "| workload | from everything | from every namespace | from outside the cluster | to outside the cluster |\n|---|---|---|---|---|\n",
    );
    for w in &report.workloads {
        let every = ports(&w.from_everything);
        let namespaces = ports(&minus(&w.from_every_namespace, &w.from_everything));
        let from: Vec<String> = by_addresses(&from_outside_shown(w))
            .into_iter()
            .map(|(g, ports)| format!("{ports} from {}", addresses(g)))
            .collect();
        let to_all: Vec<(AddressGrant, Vec<(u16, u16)>)> = w
            .to_outside
            .iter()
            .map(|g| (g.clone(), g.ports.clone()))
            .collect();
        let to: Vec<String> = by_addresses(&to_all)
            .into_iter()
            .map(|(g, ports)| format!("{ports} to {}", addresses(g)))
            .collect();
        let nonempty = |s: String| if s.is_empty() { vec![] } else { vec![s] };
        let _ = writeln!(
            out,
            "| {} {} | {} | {} | {} | {} |",
            kind_word(w.kind),
            w.workload,
            cell(nonempty(every)),
            cell(nonempty(namespaces)),
            cell(from),
            cell(to)
        );
    }
    out
}
