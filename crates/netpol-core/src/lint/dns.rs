//! NP004, egress isolation without DNS.
//!
//! A workload isolated for egress can resolve names when the rules of the policies isolating it
//! allow port 53 over UDP and over TCP (both: TCP carries large answers) to the cluster DNS or to
//! anywhere. The cluster DNS is the workloads of `kube-system` labelled `k8s-app: kube-dns` (both
//! kube-dns and CoreDNS carry it); when the input has none, a typical one stands in (namespace
//! `kube-system` with its name label, or its labels when that Namespace is loaded; labels
//! `k8s-app: kube-dns`; ports named `dns`/UDP and `dns-tcp`/TCP, 53). "Anywhere" is a rule without
//! `to`, or an ipBlock with a `/0` CIDR. An ipBlock naming some other resolver (a node-local cache)
//! is not recognised: the finding then says which protocols are missing, and the hint how to
//! silence it.
//!
//! With workloads loaded, every egress-isolated workload is checked against all the policies
//! isolating it and a finding is reported on each of those policies; without, each egress policy
//! is checked with the policies of its namespace that select everything (they surely apply too).

use crate::model::{
    AdminPolicy, Cluster, Direction, Labels, NamedPort, Namespace, Peer, Policy, PortSpec,
    Protocol, Rule, Workload, WorkloadKind,
};

use super::{Check, Finding};

const DNS_NAMESPACE: &str = "kube-system";
const DNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

/// Which of the two DNS protocols some rule allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DnsReach {
    udp: bool,
    tcp: bool,
}

impl DnsReach {
    fn complete(self) -> bool {
        self.udp && self.tcp
    }

    fn missing(self) -> String {
        match (self.udp, self.tcp) {
            (false, false) => "UDP/53 and TCP/53".into(),
            (false, true) => "UDP/53".into(),
            (true, false) => "TCP/53".into(),
            (true, true) => String::new(),
        }
    }
}

/// The cluster DNS workloads of the input, or a typical stand-in.
fn dns_servers(cluster: &Cluster) -> (Vec<Workload>, Namespace) {
    let namespace = cluster
        .namespace(DNS_NAMESPACE)
        .cloned()
        .unwrap_or_else(|| Namespace::new(DNS_NAMESPACE, Labels::new(), true));
    let real: Vec<Workload> = cluster
        .workloads
        .iter()
        .filter(|w| {
            w.namespace == DNS_NAMESPACE
                && w.labels.get(DNS_LABEL.0).map(String::as_str) == Some(DNS_LABEL.1)
        })
        .cloned()
        .collect();
    if !real.is_empty() {
        return (real, namespace);
    }
    let mut labels = Labels::new();
    labels.insert(DNS_LABEL.0.into(), DNS_LABEL.1.into());
    let named = |name: &str, protocol| NamedPort {
        name: name.into(),
        protocol,
        port: 53,
    };
    let standin = Workload {
        kind: WorkloadKind::Pod,
        namespace: DNS_NAMESPACE.into(),
        name: "coredns".into(),
        labels,
        addresses: Vec::new(),
        node: None,
        phase: None,
        named_ports: vec![named("dns", Protocol::Udp), named("dns-tcp", Protocol::Tcp)],
        origin: None,
        instances: Default::default(),
    };
    (vec![standin], namespace)
}

/// Whether `rule` of `policy` allows `protocol`/53 to `server` (or to anywhere).
fn rule_allows_dns(
    policy: &Policy,
    rule: &Rule,
    ns: &Namespace,
    server: &Workload,
    protocol: Protocol,
) -> bool {
    let port_ok = rule.ports.is_empty()
        || rule.ports.iter().any(|p| {
            p.protocol == protocol
                && match &p.port {
                    None => true,
                    Some(PortSpec::Number(n)) => *n == 53,
                    Some(PortSpec::Range { start, end }) => *start <= 53 && 53 <= *end,
                    Some(PortSpec::Named(name)) => {
                        server.resolve_named_port(name, protocol) == Some(53)
                    }
                }
        });
    if !port_ok {
        return false;
    }
    rule.peers.is_empty()
        || rule.peers.iter().any(|peer| match peer {
            Peer::IpBlock(b) => b.cidr.prefix_len() == 0,
            Peer::Selector {
                pod_selector,
                namespace_selector,
            } => {
                let ns_ok = match namespace_selector {
                    None => policy.namespace == ns.name,
                    Some(sel) => sel.matches(&ns.labels),
                };
                ns_ok
                    && pod_selector
                        .as_ref()
                        .is_none_or(|s| s.matches(&server.labels))
            }
        })
}

fn reach(policies: &[&Policy], servers: &[Workload], ns: &Namespace) -> DnsReach {
    let mut r = DnsReach::default();
    for p in policies {
        for rule in &p.egress {
            for s in servers {
                r.udp |= rule_allows_dns(p, rule, ns, s, Protocol::Udp);
                r.tcp |= rule_allows_dns(p, rule, ns, s, Protocol::Tcp);
            }
        }
    }
    r
}

/// NP004 findings.
pub fn egress_without_dns(cluster: &Cluster) -> Vec<Finding> {
    let (servers, ns) = dns_servers(cluster);
    let isolating: Vec<usize> = (0..cluster.policies.len())
        .filter(|&i| cluster.policies[i].affects(Direction::Egress))
        .collect();
    if isolating.is_empty() {
        return Vec::new();
    }
    let policies =
        |ids: &[usize]| -> Vec<&Policy> { ids.iter().map(|&i| &cluster.policies[i]).collect() };
    // Per policy: how many workloads lack DNS, an example, what all of them miss.
    let all = DnsReach {
        udp: true,
        tcp: true,
    };
    let mut per_policy: Vec<(usize, Option<String>, DnsReach)> =
        vec![(0, None, all); cluster.policies.len()];
    if cluster.workloads.is_empty() {
        for &i in &isolating {
            let p = &cluster.policies[i];
            let mut applying = vec![i];
            applying.extend(isolating.iter().copied().filter(|&j| {
                j != i
                    && cluster.policies[j].namespace == p.namespace
                    && cluster.policies[j].pod_selector.is_empty()
            }));
            let r = reach(&policies(&applying), &servers, &ns);
            per_policy[i] = (usize::from(!r.complete()), None, r);
        }
    } else {
        let mut by_namespace: std::collections::HashMap<&str, Vec<usize>> =
            std::collections::HashMap::new();
        for &i in &isolating {
            by_namespace
                .entry(cluster.policies[i].namespace.as_str())
                .or_default()
                .push(i);
        }
        let mut cache: std::collections::HashMap<Vec<usize>, DnsReach> =
            std::collections::HashMap::new();
        let admin = (!cluster.admin_policies.is_empty()).then(|| AdminDns::new(cluster, &servers));
        for (wi, w) in cluster.workloads.iter().enumerate() {
            let Some(candidates) = by_namespace.get(w.namespace.as_str()) else {
                continue;
            };
            if servers
                .iter()
                .any(|s| s.namespace == w.namespace && s.name == w.name)
            {
                continue;
            }
            let ids: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&i| cluster.policies[i].pod_selector.matches(&w.labels))
                .collect();
            if ids.is_empty() {
                continue;
            }
            let mut r = *cache
                .entry(ids.clone())
                .or_insert_with(|| reach(&policies(&ids), &servers, &ns));
            if !r.complete() {
                if let Some(admin) = &admin {
                    r = admin.or_accepted(r, wi);
                }
            }
            if r.complete() {
                continue;
            }
            for i in ids {
                let entry = &mut per_policy[i];
                entry.0 += 1;
                entry.1.get_or_insert_with(|| w.key());
                entry.2.udp &= r.udp;
                entry.2.tcp &= r.tcp;
            }
        }
    }
    findings(cluster, per_policy)
}

/// The Admin tier decides before NetworkPolicy: an Admin-tier Accept of DNS gives a workload
/// DNS whatever its NetworkPolicies say. A cluster with the DNS servers in it (the stand-in added
/// when the input has none) to evaluate that on.
struct AdminDns {
    cluster: Cluster,
    servers: Vec<usize>,
}

impl AdminDns {
    fn new(cluster: &Cluster, servers: &[Workload]) -> Self {
        let mut with_servers = cluster.clone();
        let mut indices = Vec::new();
        for s in servers {
            let found = with_servers
                .workloads
                .iter()
                .position(|w| w.namespace == s.namespace && w.name == s.name && w.kind == s.kind);
            let i = found.unwrap_or_else(|| {
                with_servers.workloads.push(s.clone());
                with_servers.workloads.len() - 1
            });
            indices.push(i);
        }
        with_servers.add_missing_namespaces();
        AdminDns {
            cluster: with_servers,
            servers: indices,
        }
    }

    /// `reach` plus the protocols an Admin-tier rule accepts from workload `src` (an index of
    /// the input's workloads, the same here: servers are added after them) to a DNS server on 53.
    fn or_accepted(&self, mut reach: DnsReach, src: usize) -> DnsReach {
        let w = &self.cluster.workloads[src];
        let admin = crate::eval::tier_policies(&self.cluster, w, Direction::Egress).admin;
        if admin.is_empty() {
            return reach;
        }
        for &dst in &self.servers {
            reach.udp |= self.accepts(&admin, src, dst, Protocol::Udp);
            reach.tcp |= self.accepts(&admin, src, dst, Protocol::Tcp);
        }
        reach
    }

    /// Whether the Admin tier (`admin`: `src`'s Admin-tier policies) accepts `src`'s egress to
    /// server `dst` on 53: the walk's first step alone, as the full evaluation would report it
    /// (a server reaching itself is own-address traffic, which no tier decides).
    fn accepts(&self, admin: &[&AdminPolicy], src: usize, dst: usize, protocol: Protocol) -> bool {
        if src == dst {
            return false;
        }
        let flow = crate::eval::WorkloadFlow {
            src: &self.cluster.workloads[src],
            dst: &self.cluster.workloads[dst],
            protocol,
            port: 53,
        };
        crate::eval::admin_tier_first_match(
            &self.cluster,
            crate::model::EvalOptions::default(),
            Direction::Egress,
            admin,
            flow,
        )
        .is_some_and(|m| m.action == crate::model::AdminAction::Accept)
    }
}

fn findings(cluster: &Cluster, per_policy: Vec<(usize, Option<String>, DnsReach)>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, (count, example, r)) in per_policy.into_iter().enumerate() {
        if count == 0 {
            continue;
        }
        let p = &cluster.policies[i];
        let whom = match example {
            Some(e) => format!("{count} workload(s) it isolates for egress (e.g. {e})"),
            None => "the workloads it isolates for egress".to_string(),
        };
        let message = format!(
            "{whom} cannot reach the cluster DNS ({DNS_NAMESPACE} {}={}) or anywhere on {}: no policy isolating them allows it, so name resolution fails",
            DNS_LABEL.0,
            DNS_LABEL.1,
            r.missing()
        );
        out.push(Finding::about(Check::EgressWithoutDns, p, message));
    }
    out
}
