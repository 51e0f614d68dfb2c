//! `ValidateNetworkPolicy`: CIDRs (parsed sloppily, as the API server does), peers, ports and
//! the policy as a whole.

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{
    forbidden, invalid, label_selector, not_supported, object_meta, port_name, port_num, required,
    FPath, NameRule, Problem, Val,
};

/// A parsed CIDR and, when it was written in a non-canonical form the API server still accepts,
/// the warning the API server returns.
pub(crate) struct ParsedCidr {
    pub net: IpNet,
    pub warning: Option<String>,
}

/// `netutils.ParseCIDRSloppy`, as the API server uses for `ipBlock` (with the
/// `StrictIPCIDRValidation` gate off, the default through Kubernetes 1.3x): IPv4 octets may carry
/// leading zeros (read as decimal) and the address may have bits set past the prefix length
/// (`10.0.0.1/24` means `10.0.0.0/24`). Both are accepted with a warning.
pub(crate) fn parse_cidr(s: &str) -> Option<ParsedCidr> {
    let (addr, len) = s.split_once('/')?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = len.parse().ok()?;
    let (ip, sloppy_zeros) = match addr.parse::<IpAddr>() {
        Ok(ip) => (ip, false),
        Err(_) => (parse_ipv4_leading_zeros(addr)?, true),
    };
    let net = IpNet::new(ip, prefix).ok()?;
    let canonical = net.trunc();
    let warning = if sloppy_zeros || canonical.addr() != ip {
        Some(format!(
            "non-standard CIDR value {s:?} will be considered invalid in a future Kubernetes release: use {:?}",
            canonical.to_string()
        ))
    } else {
        None
    };
    Some(ParsedCidr {
        net: canonical,
        warning,
    })
}

fn parse_ipv4_leading_zeros(s: &str) -> Option<IpAddr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(IpAddr::from(octets))
}

const CIDR_DETAIL: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// `ValidateIPBlock`.
fn ip_block(b: &IPBlock, path: &FPath, out: &mut Vec<Problem>) {
    if b.cidr.is_empty() {
        out.push(required(path.f("cidr"), ""));
        return;
    }
    let cidr = parse_cidr(&b.cidr);
    if cidr.is_none() {
        out.push(invalid(path.f("cidr"), Val::S(&b.cidr), CIDR_DETAIL));
    }
    for (i, e) in b.except.iter().flatten().enumerate() {
        let ep = path.f("except").i(i);
        let Some(except) = parse_cidr(e) else {
            out.push(invalid(ep, Val::S(e), CIDR_DETAIL));
            continue;
        };
        let Some(cidr) = &cidr else { continue };
        let inside = cidr.net.contains(&except.net.network())
            && except.net.prefix_len() > cidr.net.prefix_len()
            && cidr.net.addr().is_ipv4() == except.net.addr().is_ipv4();
        if !inside {
            out.push(invalid(ep, Val::S(e), "must be a strict subset of `cidr`"));
        }
    }
}

/// `ValidateNetworkPolicyPeer`.
fn peer(p: &NetworkPolicyPeer, path: &FPath, out: &mut Vec<Problem>) {
    let mut n = 0;
    if let Some(s) = &p.pod_selector {
        n += 1;
        label_selector(s, &path.f("podSelector"), out);
    }
    if let Some(s) = &p.namespace_selector {
        n += 1;
        label_selector(s, &path.f("namespaceSelector"), out);
    }
    if let Some(b) = &p.ip_block {
        n += 1;
        ip_block(b, &path.f("ipBlock"), out);
    }
    if n == 0 {
        out.push(required(path.clone(), "must specify a peer"));
    } else if n > 1 && p.ip_block.is_some() {
        out.push(forbidden(
            path.clone(),
            "may not specify both ipBlock and another peer",
        ));
    }
}

pub(crate) const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];

/// `ValidateNetworkPolicyPort`.
fn port(p: &NetworkPolicyPort, path: &FPath, out: &mut Vec<Problem>) {
    if let Some(proto) = &p.protocol {
        if !PROTOCOLS.contains(&proto.as_str()) {
            out.push(not_supported(path.f("protocol"), proto, &PROTOCOLS));
        }
    }
    match &p.port {
        Some(IntOrString::Int(n)) => {
            for m in port_num(i64::from(*n)) {
                out.push(invalid(path.f("port"), Val::N(i64::from(*n)), &m));
            }
            if let Some(end) = p.end_port {
                if end < *n {
                    out.push(invalid(
                        path.f("endPort"),
                        Val::N(i64::from(*n)),
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in port_num(i64::from(end)) {
                    out.push(invalid(path.f("endPort"), Val::N(i64::from(end)), &m));
                }
            }
        }
        Some(IntOrString::String(name)) => {
            if let Some(end) = p.end_port {
                out.push(invalid(
                    path.f("endPort"),
                    Val::N(i64::from(end)),
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for m in port_name(name) {
                out.push(invalid(path.f("port"), Val::S(name), &m));
            }
        }
        None => {
            if let Some(end) = p.end_port {
                out.push(invalid(
                    path.f("endPort"),
                    Val::N(i64::from(end)),
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
}

/// `ValidateNetworkPolicy`: metadata plus spec.
pub(crate) fn network_policy(np: &NetworkPolicy) -> Vec<Problem> {
    let mut out = Vec::new();
    object_meta(&np.metadata, true, NameRule::Subdomain, &mut out);
    let Some(spec) = &np.spec else { return out };
    let sp = FPath::root().f("spec");
    if let Some(sel) = &spec.pod_selector {
        label_selector(sel, &sp.f("podSelector"), &mut out);
    }
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let rp = sp.f("ingress").i(i);
        for (j, p) in rule.ports.iter().flatten().enumerate() {
            port(p, &rp.f("ports").i(j), &mut out);
        }
        for (j, p) in rule.from.iter().flatten().enumerate() {
            peer(p, &rp.f("from").i(j), &mut out);
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let rp = sp.f("egress").i(i);
        for (j, p) in rule.ports.iter().flatten().enumerate() {
            port(p, &rp.f("ports").i(j), &mut out);
        }
        for (j, p) in rule.to.iter().flatten().enumerate() {
            peer(p, &rp.f("to").i(j), &mut out);
        }
    }
    if let Some(types) = &spec.policy_types {
        let tp = sp.f("policyTypes");
        if types.len() > 2 {
            let shown: Vec<String> = types.iter().map(|t| format!("{t:?}")).collect();
            out.push(Problem {
                path: tp,
                at: None,
                detail: format!(
                    "Invalid value: [{}]: may not specify more than two policyTypes",
                    shown.join(", ")
                ),
            });
            return out;
        }
        for (i, t) in types.iter().enumerate() {
            if t != "Ingress" && t != "Egress" {
                out.push(not_supported(tp.i(i), t, &["Ingress", "Egress"]));
            } else if types[..i].contains(t) {
                // Upstream ValidateNetworkPolicySpec does not check this; a repeated type is
                // meaningless and almost certainly a typo for the other one, so netpol rejects it.
                out.push(Problem {
                    path: tp.i(i),
                    at: None,
                    detail: format!("Duplicate value: {t:?}"),
                });
            }
        }
    }
    out
}
