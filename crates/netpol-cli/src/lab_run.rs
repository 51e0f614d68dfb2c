//! A lab built from a cluster: one network namespace per node and per workload (see
//! `netpol-dataplane`), each node enforcing its compiled ruleset, probed with real packets and
//! compared with the analyzer.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use netpol_core::analysis::output_keys;
use netpol_core::{Analyzer, Cluster, EvalOptions, Protocol};
use netpol_dataplane::{Lab, LabHost, LabSpec, ProbeProtocol, ProbeRequest};
use serde::Serialize;

/// The node of every workload that names none.
pub const DEFAULT_NODE: &str = "default-node";

/// How long a probe waits before it counts as denied. Dropped packets are never answered, so
/// this bounds the time of every denied probe; the lab's links answer in well under a millisecond.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(700);

/// What a probe run needs besides the cluster.
pub struct LabPlan {
    /// (protocol, port) pairs every workload listens on.
    pub listen: Vec<(Protocol, u16)>,
    /// Addresses outside the cluster that get an external host of their own.
    pub externals: Vec<IpAddr>,
}

pub struct LabRun {
    pub lab: Lab,
    /// The cluster as enforced: workloads without a node moved to [`DEFAULT_NODE`].
    pub cluster: Cluster,
    pub opts: EvalOptions,
    pub nodes: Vec<String>,
    /// Indices of workloads that are in the lab (those with at least one address).
    pub members: Vec<usize>,
    /// Workloads left out because they have no address, by key.
    pub skipped: Vec<String>,
}

/// Checks the privileges and tools the lab needs, naming exactly what is missing.
pub fn preflight() -> Result<()> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push(
            "root privileges (network namespaces and nftables need CAP_NET_ADMIN and CAP_SYS_ADMIN): run with sudo"
                .to_string(),
        );
    }
    for (tool, package) in [("nft", "nftables"), ("ip", "iproute2")] {
        if !on_path(tool) {
            missing.push(format!(
                "the `{tool}` command (Debian/Ubuntu: apt-get install -y {package})"
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("the lab needs:\n  - {}", missing.join("\n  - ")))
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file())
            || ["/usr/sbin", "/sbin"]
                .iter()
                .any(|d| std::path::Path::new(d).join(tool).is_file())
    })
}

pub fn probe_protocol(protocol: Protocol) -> ProbeProtocol {
    match protocol {
        Protocol::Tcp => ProbeProtocol::Tcp,
        Protocol::Udp => ProbeProtocol::Udp,
        Protocol::Sctp => ProbeProtocol::Sctp,
    }
}

impl LabRun {
    /// Builds the topology (no rulesets loaded yet).
    pub fn build(cluster: &Cluster, opts: EvalOptions, plan: &LabPlan) -> Result<LabRun> {
        preflight()?;
        let mut cluster = cluster.clone();
        for w in &mut cluster.workloads {
            if w.node.is_none() {
                w.node = Some(DEFAULT_NODE.to_string());
            }
        }
        let keys = output_keys(&cluster);
        let mut members = Vec::new();
        let mut skipped = Vec::new();
        for (i, w) in cluster.workloads.iter().enumerate() {
            if w.addresses.is_empty() {
                skipped.push(keys[i].clone());
            } else {
                members.push(i);
            }
        }
        let nodes: Vec<String> = members
            .iter()
            .filter_map(|&i| cluster.workloads[i].node.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let ports_of = |protocol: Protocol| -> Vec<u16> {
            plan.listen
                .iter()
                .filter(|(p, _)| *p == protocol)
                .map(|(_, port)| *port)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        let mut hosts: Vec<LabHost> = members
            .iter()
            .map(|&i| {
                let w = &cluster.workloads[i];
                LabHost {
                    name: keys[i].clone(),
                    node: w.node.clone(),
                    addresses: w.addresses.clone(),
                    tcp_ports: ports_of(Protocol::Tcp),
                    udp_ports: ports_of(Protocol::Udp),
                    sctp_ports: ports_of(Protocol::Sctp),
                }
            })
            .collect();
        for address in plan.externals.iter().collect::<BTreeSet<_>>() {
            hosts.push(LabHost {
                name: external_host_name(*address),
                node: None,
                addresses: vec![*address],
                tcp_ports: ports_of(Protocol::Tcp),
                udp_ports: ports_of(Protocol::Udp),
                sctp_ports: ports_of(Protocol::Sctp),
            });
        }
        let lab = Lab::build(&LabSpec {
            nodes: nodes.clone(),
            hosts,
        })
        .context("building the lab")?;
        Ok(LabRun {
            lab,
            cluster,
            opts,
            nodes,
            members,
            skipped,
        })
    }

    /// Compiles `cluster` (with this lab's node assignment) for every node and loads each ruleset
    /// into its node, one atomic transaction per node.
    pub fn enforce(&self, policies: &[netpol_core::Policy]) -> Result<()> {
        let mut cluster = self.cluster.clone();
        cluster.policies = policies.to_vec();
        cluster.add_missing_namespaces();
        for node in &self.nodes {
            let ruleset = netpol_nft::compile(&cluster, self.opts, node)
                .with_context(|| format!("compiling the ruleset of node {node}"))?;
            self.lab
                .apply_ruleset(node, &ruleset.text)
                .with_context(|| format!("loading the ruleset into node {node}"))?;
        }
        Ok(())
    }

    /// Probes every ordered pair of lab workloads on one port and compares with the analyzer's
    /// prediction for `policies`.
    pub fn probe_matrix(
        &self,
        policies: &[netpol_core::Policy],
        protocol: Protocol,
        port: u16,
    ) -> Result<ProbeReport> {
        let mut cluster = self.cluster.clone();
        cluster.policies = policies.to_vec();
        cluster.add_missing_namespaces();
        let predicted = Analyzer::new(&cluster, self.opts).truth_table(protocol, port);
        let keys = output_keys(&cluster);
        let mut order = self.members.clone();
        order.sort_by_key(|&i| {
            let w = &cluster.workloads[i];
            (w.namespace.clone(), w.name.clone(), w.kind)
        });
        let mut pairs = Vec::new();
        let mut requests = Vec::new();
        for &from in &order {
            for &to in &order {
                let (_, dst) =
                    netpol_core::flow_addresses(&cluster.workloads[from], &cluster.workloads[to])
                        .ok_or_else(|| {
                        anyhow!(
                            "{} and {} share no address family: they cannot talk",
                            keys[from],
                            keys[to]
                        )
                    })?;
                pairs.push((from, to));
                requests.push(ProbeRequest {
                    from_host: keys[from].clone(),
                    to_addr: dst,
                    protocol: probe_protocol(protocol),
                    port,
                    timeout: PROBE_TIMEOUT,
                });
            }
        }
        let results = self.lab.probe_many(&requests);
        let mut observed = serde_json::Map::new();
        let mut mismatches = Vec::new();
        for ((from, to), result) in pairs.iter().zip(results) {
            let seen = result.with_context(|| {
                format!("probing {} -> {} {protocol}/{port}", keys[*from], keys[*to])
            })?;
            let expected = predicted.allowed(*from, *to);
            if seen != expected {
                mismatches.push(Mismatch {
                    from: keys[*from].clone(),
                    to: keys[*to].clone(),
                    observed: seen,
                    predicted: expected,
                });
            }
            observed
                .entry(keys[*from].clone())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()))
                .as_object_mut()
                .map(|row| row.insert(keys[*to].clone(), seen.into()));
        }
        Ok(ProbeReport {
            port,
            protocol: protocol.as_str().to_string(),
            workloads: order.iter().map(|&i| keys[i].clone()).collect(),
            allowed: observed.into(),
            mismatches,
            predicted: predicted.to_json()["allowed"].clone(),
            method: method_note(protocol).to_string(),
        })
    }

    /// Probes flows to addresses outside the cluster (external hosts of this lab).
    pub fn probe_external(
        &self,
        from: &str,
        to: IpAddr,
        protocol: Protocol,
        port: u16,
    ) -> Result<bool> {
        self.lab
            .probe(from, to, probe_protocol(protocol), port, PROBE_TIMEOUT)
            .with_context(|| format!("probing {from} -> {to} {protocol}/{port}"))
    }
}

pub fn external_host_name(address: IpAddr) -> String {
    format!("external/{address}")
}

/// How a protocol is probed, said in every output.
pub fn method_note(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "TCP: a full handshake and an echoed message",
        Protocol::Udp => "UDP: a datagram echoed back by the destination",
        Protocol::Sctp => "SCTP: this kernel has no SCTP sockets, so the probe sends a raw SCTP INIT and watches for its arrival at the destination",
    }
}

/// A disagreement between the kernel and the analyzer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mismatch {
    pub from: String,
    pub to: String,
    pub observed: bool,
    pub predicted: bool,
}

/// What `netpol probe` prints: the matrix JSON schema (`port`, `protocol`, `workloads`,
/// `allowed`) with observed values, plus `mismatches` against the prediction.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub port: u16,
    pub protocol: String,
    pub workloads: Vec<String>,
    pub allowed: serde_json::Value,
    pub mismatches: Vec<Mismatch>,
    #[serde(skip)]
    pub predicted: serde_json::Value,
    #[serde(skip)]
    pub method: String,
}

impl ProbeReport {
    pub fn observed(&self, from: &str, to: &str) -> bool {
        self.allowed[from][to].as_bool().unwrap_or(false)
    }

    pub fn predicted(&self, from: &str, to: &str) -> bool {
        self.predicted[from][to].as_bool().unwrap_or(false)
    }
}
