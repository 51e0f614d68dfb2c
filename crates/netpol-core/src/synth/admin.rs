//! Synthetic admin policies for the benchmarks: ClusterNetworkPolicies of both tiers,
//! AdminNetworkPolicies and the BaselineAdminNetworkPolicy, using every feature (every action,
//! priorities with ties, namespace and pod subjects and peers, `networks` over workload and
//! outside ranges, `nodes`, `domainNames` resolved to workload and outside addresses, protocols
//! by number, range and name, and the odd peer of an unknown kind that fails closed).
//!
//! Guardrails look like real ones: most policies select a team or an environment (many
//! workloads each) and have a few rules; a handful select everything.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::{labels, selector, Rng, ENVS, TEAMS, TIERS};
use crate::model::{
    AdminAction, AdminApi, AdminPeer, AdminPolicy, AdminPort, AdminRule, AdminSubject, AdminTier,
    Cluster, LabelSelector, Node, Protocol,
};

/// Adds `count` admin policies to `cluster` (deterministic in `seed`), Node objects with
/// labels and addresses for the node names its workloads use (when it has none), and resolved
/// names for the policies' `domainNames`.
pub fn add_admin_policies(cluster: &mut Cluster, count: usize, seed: u64) {
    let mut rng = Rng(seed ^ 0x0061_646D_696E);
    if cluster.nodes.is_empty() {
        cluster.nodes = nodes_of(cluster);
    }
    let resolved_to_workload = cluster.workloads.iter().find_map(|w| w.addresses.first());
    let mut names = vec![
        ("api.example.com", ip(192, 0, 2, 10)),
        ("db.example.org", ip(203, 0, 113, 9)),
    ];
    if let Some(a) = resolved_to_workload {
        names.push(("svc.example.com", *a));
    }
    for (name, a) in names {
        cluster.resolved_names.insert(name.to_string(), vec![a]);
    }
    for i in 0..count {
        let p = admin_policy(&mut rng, i, count);
        cluster.admin_policies.push(p);
    }
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// One Node per node name the workloads use, sorted by name, with a zone label and an IPv4
/// address from 172.16.0.0/16.
fn nodes_of(cluster: &Cluster) -> Vec<Node> {
    let mut names: Vec<&str> = cluster
        .workloads
        .iter()
        .filter_map(|w| w.node.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| Node {
            name: name.to_string(),
            labels: labels(&[("zone", ["a", "b", "c"][i % 3])]),
            addresses: vec![ip(172, 16, (i / 250) as u8, (i % 250 + 1) as u8)],
            ..Node::default()
        })
        .collect()
}

/// Policy `i` of `count`: the last is the BANP `default`, a tenth are Baseline CNPs, a fifth
/// ANPs, the rest Admin CNPs.
fn admin_policy(rng: &mut Rng, i: usize, count: usize) -> AdminPolicy {
    let (api, tier, name) = if i + 1 == count {
        (
            AdminApi::BaselineAdminNetworkPolicy,
            AdminTier::Baseline,
            "default".to_string(),
        )
    } else {
        match i % 10 {
            0 => (
                AdminApi::ClusterNetworkPolicy,
                AdminTier::Baseline,
                format!("baseline-{i:03}"),
            ),
            1 | 2 => (
                AdminApi::AdminNetworkPolicy,
                AdminTier::Admin,
                format!("anp-{i:03}"),
            ),
            _ => (
                AdminApi::ClusterNetworkPolicy,
                AdminTier::Admin,
                format!("admin-{i:03}"),
            ),
        }
    };
    let egress_only = api == AdminApi::BaselineAdminNetworkPolicy;
    let ingress = (0..rng.below(3))
        .map(|_| rule(rng, false, tier, api))
        .collect();
    let egress = (0..1 + rng.below(3))
        .map(|_| rule(rng, true, tier, api))
        .collect();
    AdminPolicy {
        api,
        name,
        tier,
        // Ties happen (ten priorities for a hundred policies), as they do in real clusters.
        priority: if egress_only {
            0
        } else {
            10 * rng.below(10) as u32
        },
        subject: subject(rng, i),
        ingress,
        egress,
        origin: None,
    }
}

fn subject(rng: &mut Rng, i: usize) -> AdminSubject {
    match i % 7 {
        0 => AdminSubject::Namespaces(LabelSelector::everything()),
        1 | 2 => AdminSubject::Namespaces(selector(&[("team", *rng.pick(&TEAMS))])),
        3 | 4 => AdminSubject::Namespaces(selector(&[("env", *rng.pick(&ENVS))])),
        _ => AdminSubject::Pods {
            namespace_selector: selector(&[("env", *rng.pick(&ENVS))]),
            pod_selector: selector(&[("tier", *rng.pick(&TIERS))]),
        },
    }
}

fn rule(rng: &mut Rng, egress: bool, tier: AdminTier, api: AdminApi) -> AdminRule {
    let action = match (api, rng.below(3)) {
        // The BANP has no Pass.
        (AdminApi::BaselineAdminNetworkPolicy, 2) => AdminAction::Deny,
        (_, 0) => AdminAction::Accept,
        (_, 1) => AdminAction::Deny,
        _ => AdminAction::Pass,
    };
    let action = if tier == AdminTier::Baseline && action == AdminAction::Pass {
        AdminAction::Accept
    } else {
        action
    };
    let peers = (0..1 + rng.below(2))
        .map(|_| peer(rng, egress, action))
        .collect();
    AdminRule {
        name: None,
        action,
        peers,
        ports: ports(rng),
        origin: None,
    }
}

fn peer(rng: &mut Rng, egress: bool, action: AdminAction) -> AdminPeer {
    let kinds = if egress { 7 } else { 3 };
    match rng.below(kinds) {
        0 => AdminPeer::Namespaces(selector(&[("team", *rng.pick(&TEAMS))])),
        1 => AdminPeer::Pods {
            namespace_selector: selector(&[("env", *rng.pick(&ENVS))]),
            pod_selector: selector(&[("tier", *rng.pick(&TIERS))]),
        },
        // One policy in a few hundred comes from a newer CRD (fails closed).
        2 if rng.chance(2) => AdminPeer::Unknown,
        2 => AdminPeer::Namespaces(selector(&[("env", *rng.pick(&ENVS))])),
        3 => AdminPeer::Networks(vec![net(rng)]),
        4 => AdminPeer::Networks(vec![net(rng), net(rng)]),
        5 => AdminPeer::Nodes(selector(&[("zone", *rng.pick(&["a", "b", "c"]))])),
        _ if action == AdminAction::Accept => AdminPeer::DomainNames(vec![(*rng
            .pick(&["*.example.com", "db.example.org"]))
        .to_string()]),
        _ => AdminPeer::Networks(vec![net(rng)]),
    }
}

fn net(rng: &mut Rng) -> IpNet {
    let nets = [
        "10.0.0.0/8",
        "10.0.0.0/20",
        "10.0.16.0/24",
        "fd00::/8",
        "0.0.0.0/0",
        "192.0.2.0/24",
        "203.0.113.0/25",
        "172.16.0.0/16",
    ];
    // The constants parse; an unparsable one would stand for no network at all.
    rng.pick(&nets)
        .parse()
        .unwrap_or(IpNet::V4(ipnet::Ipv4Net::default()))
}

fn ports(rng: &mut Rng) -> Option<Vec<AdminPort>> {
    if rng.chance(30) {
        return None;
    }
    let ports = (0..1 + rng.below(2))
        .map(|_| match rng.below(4) {
            0 => AdminPort::Protocol {
                protocol: Protocol::Tcp,
                ports: Some((443, 443)),
            },
            1 => AdminPort::Protocol {
                protocol: *rng.pick(&[Protocol::Udp, Protocol::Tcp]),
                ports: Some((53, 53)),
            },
            2 => AdminPort::Protocol {
                protocol: Protocol::Tcp,
                ports: Some((8000, 8999)),
            },
            _ => AdminPort::Named((*rng.pick(&["http", "metrics", "dns"])).to_string()),
        })
        .collect();
    Some(ports)
}
