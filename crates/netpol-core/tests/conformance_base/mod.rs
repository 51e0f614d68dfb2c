//! The upstream conformance suite's base cluster (kubernetes-sigs/network-policy-api
//! `conformance/base/manifests.yaml`) as a model, and a checker of its probes through the
//! oracle.
//!
//! Four namespaces `network-policy-conformance-<house>` labelled `conformance-house: <house>`,
//! each with a StatefulSet of two pods (`harry-potter-{0,1}` in gryffindor, `draco-malfoy-*` in
//! slytherin, `cedric-diggory-*` in hufflepuff, `luna-lovegood-*` in ravenclaw) labelled
//! `conformance-house: <house>` plus the `statefulset.kubernetes.io/pod-name` label the
//! StatefulSet controller adds, serving TCP 80 and 8080, UDP 5353 and 53, SCTP 9003 and 9005.
//! The named ports the named-port tests rely on ("web" is TCP 80, "dns" is UDP 53, their
//! comments say) are declared on every pod; the stored version of the manifest read here names no
//! container port, a later one does. The node-peer tests also use host-networked `centaur-*` pods
//! in `network-policy-conformance-forbidden-forrest` on Nodes labelled `kubernetes.io/os: linux`:
//! the model folds them into their nodes, so their address is the node's.

#![allow(dead_code)]

use netpol_core::model::*;
use netpol_core::Verdict;
pub use netpol_test_support::*;
pub use Protocol::{Sctp, Tcp, Udp};

/// `(house, StatefulSet)` of the base manifest, in its order.
pub const HOUSES: [(&str, &str); 4] = [
    ("gryffindor", "harry-potter"),
    ("slytherin", "draco-malfoy"),
    ("hufflepuff", "cedric-diggory"),
    ("ravenclaw", "luna-lovegood"),
];

/// The suite's `HostNetworkPorts` (a configurable list upstream): the ports the centaur pods
/// serve on their nodes.
pub const HOST_PORTS: [u16; 7] = [36363, 36364, 36365, 36366, 36367, 36368, 36369];

/// The address of the node `kind-worker2`, where `centaur-1` runs on the host network.
pub const CENTAUR_1: &str = "198.51.100.2";

/// `network-policy-conformance-<house>`.
pub fn house_ns(house: &str) -> String {
    format!("network-policy-conformance-{house}")
}

/// The selector of a house's namespace by `kubernetes.io/metadata.name`.
pub fn ns_of(house: &str) -> LabelSelector {
    ns_name(&house_ns(house))
}

/// The selector `conformance-house: <house>` (namespaces and pods carry it alike).
pub fn house(house: &str) -> LabelSelector {
    sel(&[("conformance-house", house)])
}

/// The selector of one StatefulSet pod by name.
pub fn pod_named(name: &str) -> LabelSelector {
    sel(&[("statefulset.kubernetes.io/pod-name", name)])
}

/// `namespace/name` of a base pod given by its name (`harry-potter-0`); an address is returned
/// as it is.
pub fn key(end: &str) -> String {
    if end.parse::<std::net::IpAddr>().is_ok() {
        return end.to_string();
    }
    let (house, _) = HOUSES
        .iter()
        .find(|(_, sts)| end.strip_prefix(sts).is_some_and(|r| r.starts_with('-')))
        .unwrap_or_else(|| panic!("{end} is no pod of the base manifest"));
    format!("{}/{end}", house_ns(house))
}

/// The address of a base pod (the pods of house `i` are `10.244.<i>.10` and `.11`).
pub fn address(pod: &str) -> String {
    let (i, _) = HOUSES
        .iter()
        .enumerate()
        .find(|(_, (_, sts))| pod.starts_with(sts))
        .unwrap_or_else(|| panic!("{pod} is no pod of the base manifest"));
    let replica = if pod.ends_with("-0") { 10 } else { 11 };
    format!("10.244.{i}.{replica}")
}

/// The base cluster: namespaces, pods on two nodes, the nodes, no policy.
pub fn base_cluster() -> Cluster {
    let mut namespaces: Vec<Namespace> = HOUSES
        .iter()
        .map(|(h, _)| namespace(&house_ns(h), &[("conformance-house", h)]))
        .collect();
    namespaces.push(namespace(&house_ns("forbidden-forrest"), &[]));
    let mut workloads = Vec::new();
    for (h, sts) in HOUSES {
        for replica in 0..2 {
            let name = format!("{sts}-{replica}");
            let labels = [
                ("conformance-house", h),
                ("statefulset.kubernetes.io/pod-name", name.as_str()),
            ];
            let named = [("web", Tcp, 80), ("dns", Udp, 53)];
            let p = pod(&house_ns(h), &name, &labels, &[&address(&name)], &named);
            workloads.push(p.on(if replica == 0 {
                "kind-worker"
            } else {
                "kind-worker2"
            }));
        }
    }
    let mut c = cluster(namespaces, workloads, vec![]);
    let linux = [("kubernetes.io/os", "linux")];
    let mut w1 = node("kind-worker", &linux, &["198.51.100.1"]);
    w1.host_network_pods = vec![format!("{}/centaur-0", house_ns("forbidden-forrest"))];
    let mut w2 = node("kind-worker2", &linux, &[CENTAUR_1]);
    w2.host_network_pods = vec![format!("{}/centaur-1", house_ns("forbidden-forrest"))];
    c.nodes = vec![w1, w2];
    c
}

/// The base cluster with these admin policies and NetworkPolicies.
pub fn with_policies(admin: Vec<AdminPolicy>, policies: Vec<Policy>) -> Cluster {
    let mut c = base_cluster();
    c.admin_policies = admin;
    c.policies = policies;
    c
}

/// One `PokeServer` call: from a client pod to a server pod (or address), and whether it must
/// connect.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The client pod.
    pub from: String,
    /// The server pod, or an address.
    pub to: String,
    /// The protocol.
    pub protocol: Protocol,
    /// The server port.
    pub port: u16,
    /// `shouldConnect`.
    pub connects: bool,
}

/// A probe that must connect.
pub fn ok(from: &str, to: &str, protocol: Protocol, port: u16) -> Probe {
    Probe {
        from: from.into(),
        to: to.into(),
        protocol,
        port,
        connects: true,
    }
}

/// A probe that must not connect.
pub fn no(from: &str, to: &str, protocol: Protocol, port: u16) -> Probe {
    Probe {
        connects: false,
        ..ok(from, to, protocol, port)
    }
}

/// The oracle's verdict on one probe.
pub fn probe_verdict(c: &Cluster, p: &Probe) -> Verdict {
    oracle_verdict(c, &key(&p.from), &key(&p.to), p.protocol, p.port)
}

/// Runs every probe of one upstream subtest (`case`) and panics with the explanation of each
/// one whose verdict is not the upstream expectation.
pub fn check(c: &Cluster, case: &str, probes: &[Probe]) {
    let wrong: Vec<String> = probes
        .iter()
        .map(|p| (p, probe_verdict(c, p)))
        .filter(|(p, v)| v.allowed != p.connects)
        .map(|(p, v)| {
            format!(
                "expected connects={} for {p:?}:\n{}",
                p.connects,
                v.explain()
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{case}:\n{}", wrong.join("\n"));
}

/// The rules of a direction, to mutate as the upstream tests patch them.
pub fn rules_mut(p: &mut AdminPolicy, direction: Direction) -> &mut Vec<AdminRule> {
    match direction {
        Direction::Ingress => &mut p.ingress,
        Direction::Egress => &mut p.egress,
    }
}

/// The namespaces peer of a house's namespace (by `kubernetes.io/metadata.name`).
pub fn to_house(h: &str) -> Vec<AdminPeer> {
    vec![peer_namespaces(ns_of(h))]
}

/// The base cluster with one admin policy.
pub fn cluster_of(p: &AdminPolicy) -> Cluster {
    with_policies(vec![p.clone()], vec![])
}

mod cases;
mod gress;
pub use cases::*;
pub use gress::*;
