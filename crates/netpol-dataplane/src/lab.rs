//! The lab: nodes, VMs/pods and external hosts as network namespaces exchanging real packets.
//!
//! Topology (Calico style, so no per-node pod subnets are needed):
//!
//! ```text
//!  workload ns (eth0: its own /32 and /128)        external ns (eth0: its own addresses
//!     | default via 169.254.1.1 (proxy ARP)             + underlay 169.254.128.x/16, fd00:6e70::1:x/64)
//!     | ::/0 via fe80::1                                  |
//!  node ns: hJ (proxy_arp, fe80::1) ... up0 ---- fabric ns: bridge br0 ---- xE
//!           underlay 169.254.0.(i+2)/16, fd00:6e70::(i+2)/64     |
//!                                                  other nodes' up0 ...
//! ```
//!
//! Every node forwards (v4 and v6) and has a host route to each local workload via its veth,
//! a route to each remote workload via that workload's node underlay address, and a route to
//! each external host via its underlay address. External hosts route each workload address via
//! its node, other external hosts directly, and everything else via the first node. Policy
//! rulesets go into node namespaces (forward hook) through [`Lab::apply_ruleset`].

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cmd;
use crate::error::DataplaneError;
use crate::listeners::{HostListeners, ListenSpec};
use crate::netns::{self, Netns};
use crate::nft;
use crate::probe;

/// What to build: node names and hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    /// Node names; each becomes a router namespace.
    pub nodes: Vec<String>,
    /// The VMs, pods and external hosts, each in its own namespace.
    pub hosts: Vec<LabHost>,
}

/// One VM, pod or external host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabHost {
    /// Unique key, e.g. `test-project/vm-a`.
    pub name: String,
    /// The node it runs on; `None` for a host outside the cluster, attached to the fabric.
    pub node: Option<String>,
    /// Its addresses (at least one); the first of each family is the source of its probes.
    pub addresses: Vec<IpAddr>,
    /// TCP ports its listener accepts and echoes on.
    pub tcp_ports: Vec<u16>,
    /// UDP ports its listener echoes on.
    pub udp_ports: Vec<u16>,
    /// SCTP ports whose INITs its listener records.
    pub sctp_ports: Vec<u16>,
}

/// The L4 protocol of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProbeProtocol {
    /// A TCP handshake plus an echoed ping.
    Tcp,
    /// An echoed UDP datagram.
    Udp,
    /// A raw SCTP INIT seen by the destination's listener.
    Sctp,
}

/// One probe of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRequest {
    /// The host the probe is sent from.
    pub from_host: String,
    /// The address probed.
    pub to_addr: IpAddr,
    /// The L4 protocol of the probe.
    pub protocol: ProbeProtocol,
    /// The destination port.
    pub port: u16,
    /// How long to wait for an answer before counting it as blocked.
    pub timeout: Duration,
}

/// Most probes running at once in [`Lab::probe_many`]; each holds a thread.
const MAX_CONCURRENT_PROBES: usize = 256;
/// The largest node count the underlay numbering supports.
const MAX_NODES: usize = 250;
/// The largest external host count the underlay numbering supports.
const MAX_EXTERNALS: usize = 30_000;
/// The gateway workloads use; answered by proxy ARP on the node side.
const WORKLOAD_GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The link-local address every node-side workload veth carries.
const WORKLOAD_GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const UNDERLAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 0, 0);
const UNDERLAY_V4_LEN: u8 = 16;
const UNDERLAY_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x6e70, 0, 0, 0, 0, 0, 0);
const UNDERLAY_V6_LEN: u8 = 64;
/// How long build waits for every link to be operationally up.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(5);

fn node_underlay(index: usize) -> (Ipv4Addr, Ipv6Addr) {
    let offset = index as u32 + 2; // .0.0 is the network, .0.1 is left unused
    (
        Ipv4Addr::from(u32::from(UNDERLAY_V4) + offset),
        Ipv6Addr::from(u128::from(UNDERLAY_V6) + u128::from(offset)),
    )
}

fn external_underlay(index: usize) -> (Ipv4Addr, Ipv6Addr) {
    let offset = index as u32 + 1;
    (
        Ipv4Addr::from(u32::from(Ipv4Addr::new(169, 254, 128, 0)) + offset),
        Ipv6Addr::from(u128::from(UNDERLAY_V6) + (1u128 << 16) + u128::from(offset)),
    )
}

fn in_underlay(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => u32::from(a) >> (32 - UNDERLAY_V4_LEN) == u32::from(UNDERLAY_V4) >> 16,
        IpAddr::V6(a) => u128::from(a) >> 64 == u128::from(UNDERLAY_V6) >> 64,
    }
}

fn host_prefix(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

fn first_of_family(addresses: &[IpAddr], v6: bool) -> Option<IpAddr> {
    addresses.iter().copied().find(|a| a.is_ipv6() == v6)
}

struct HostState {
    spec: LabHost,
    netns: String,
    listeners: Option<HostListeners>,
}

/// A running lab. Dropping it stops the listeners and removes every namespace it created.
pub struct Lab {
    prefix: String,
    fabric: String,
    /// (node name, netns name), in spec order.
    nodes: Vec<(String, String)>,
    hosts: Vec<HostState>,
    host_index: HashMap<String, usize>,
    address_owner: HashMap<IpAddr, usize>,
    /// Declared last: removed after the listeners have stopped.
    namespaces: Vec<Netns>,
}

fn lab_error(message: impl Into<String>) -> DataplaneError {
    DataplaneError::Lab(message.into())
}

fn validate(spec: &LabSpec) -> Result<(), DataplaneError> {
    let mut node_names = HashSet::new();
    for node in &spec.nodes {
        if !node_names.insert(node.as_str()) {
            return Err(lab_error(format!("node {node:?} is listed twice")));
        }
    }
    if spec.nodes.len() > MAX_NODES {
        return Err(lab_error(format!(
            "at most {MAX_NODES} nodes are supported"
        )));
    }
    let externals = spec.hosts.iter().filter(|h| h.node.is_none()).count();
    if externals > MAX_EXTERNALS {
        return Err(lab_error(format!(
            "at most {MAX_EXTERNALS} external hosts are supported"
        )));
    }
    let mut host_names = HashSet::new();
    let mut owners: HashMap<IpAddr, &str> = HashMap::new();
    for host in &spec.hosts {
        if !host_names.insert(host.name.as_str()) {
            return Err(lab_error(format!("host {:?} is listed twice", host.name)));
        }
        if let Some(node) = &host.node {
            if !node_names.contains(node.as_str()) {
                return Err(lab_error(format!(
                    "host {:?} runs on unknown node {node:?}",
                    host.name
                )));
            }
        }
        if host.addresses.is_empty() {
            return Err(lab_error(format!("host {:?} has no addresses", host.name)));
        }
        for &addr in &host.addresses {
            let usable = match addr {
                IpAddr::V4(a) => {
                    !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast())
                }
                IpAddr::V6(a) => {
                    !(a.is_unspecified()
                        || a.is_loopback()
                        || a.is_multicast()
                        || a.is_unicast_link_local())
                }
            };
            if !usable {
                return Err(lab_error(format!(
                    "host {:?}: {addr} cannot be a host address",
                    host.name
                )));
            }
            if in_underlay(addr) {
                return Err(lab_error(format!(
                    "host {:?}: {addr} collides with the lab underlay \
                     ({UNDERLAY_V4}/{UNDERLAY_V4_LEN}, {UNDERLAY_V6}/{UNDERLAY_V6_LEN})",
                    host.name
                )));
            }
            if let Some(other) = owners.insert(addr, &host.name) {
                return Err(lab_error(format!(
                    "{addr} belongs to both {other:?} and {:?}",
                    host.name
                )));
            }
        }
    }
    Ok(())
}

impl Lab {
    /// Builds the namespaces, links, addresses, routes and listeners described by `spec`.
    /// Leftovers of dead runs are removed first. On failure everything created is removed.
    pub fn build(spec: &LabSpec) -> Result<Lab, DataplaneError> {
        validate(spec)?;
        // A failure to clean somebody else's leftovers must not stop this run.
        let _ = netns::cleanup_stale();

        let prefix = netns::fresh_name("");
        let fabric = format!("{prefix}fabric");
        let nodes: Vec<(String, String)> = spec
            .nodes
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), format!("{prefix}node{i}")))
            .collect();
        let mut lab = Lab {
            prefix,
            fabric,
            nodes,
            hosts: spec
                .hosts
                .iter()
                .map(|host| HostState {
                    spec: host.clone(),
                    netns: String::new(),
                    listeners: None,
                })
                .collect(),
            host_index: HashMap::new(),
            address_owner: HashMap::new(),
            namespaces: Vec::new(),
        };
        for (j, host) in lab.hosts.iter_mut().enumerate() {
            host.netns = format!("{}host{j}", lab.prefix);
        }
        for (j, host) in spec.hosts.iter().enumerate() {
            lab.host_index.insert(host.name.clone(), j);
            for &addr in &host.addresses {
                lab.address_owner.insert(addr, j);
            }
        }
        lab.create_namespaces()?;
        lab.wire()?;
        lab.wait_for_links()?;
        lab.start_listeners()?;
        Ok(lab)
    }

    fn all_netns_names(&self) -> Vec<String> {
        std::iter::once(self.fabric.clone())
            .chain(self.nodes.iter().map(|(_, ns)| ns.clone()))
            .chain(self.hosts.iter().map(|h| h.netns.clone()))
            .collect()
    }

    fn create_namespaces(&mut self) -> Result<(), DataplaneError> {
        let names = self.all_netns_names();
        for name in &names {
            netns::validate_name(name)?;
        }
        // Guards first, so a batch that fails halfway still has everything removed.
        self.namespaces = names.iter().map(|n| Netns::adopt(n.clone())).collect();
        let lines: Vec<String> = names.iter().map(|n| format!("netns add {n}")).collect();
        cmd::ip_batch(None, &lines)?;

        let common = [
            ("ipv4/conf/all/rp_filter", "0"),
            ("ipv4/conf/default/rp_filter", "0"),
            ("ipv6/conf/all/accept_dad", "0"),
            ("ipv6/conf/default/accept_dad", "0"),
        ];
        let router = [
            ("ipv4/ip_forward", "1"),
            ("ipv6/conf/all/forwarding", "1"),
            ("ipv6/conf/default/forwarding", "1"),
        ];
        let node_names: HashSet<&str> = self.nodes.iter().map(|(_, ns)| ns.as_str()).collect();
        for name in &names {
            let mut settings: Vec<(String, &str)> =
                common.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            if node_names.contains(name.as_str()) {
                settings.extend(router.iter().map(|(k, v)| (k.to_string(), *v)));
            }
            netns::write_sysctls(name, &settings)?;
        }
        Ok(())
    }

    fn node_position(&self, node: &str) -> Option<usize> {
        self.nodes.iter().position(|(name, _)| name == node)
    }

    /// The underlay addresses a packet to `host` goes to from the fabric.
    fn next_hop_of(
        &self,
        host: &HostState,
        externals: &HashMap<usize, usize>,
        j: usize,
    ) -> (Ipv4Addr, Ipv6Addr) {
        match host
            .spec
            .node
            .as_deref()
            .and_then(|n| self.node_position(n))
        {
            Some(i) => node_underlay(i),
            None => external_underlay(externals.get(&j).copied().unwrap_or(0)),
        }
    }

    fn wire(&self) -> Result<(), DataplaneError> {
        // External host j -> its index among external hosts (for underlay numbering).
        let externals: HashMap<usize, usize> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.spec.node.is_none())
            .enumerate()
            .map(|(e, (j, _))| (j, e))
            .collect();

        cmd::ip_batch(
            Some(&self.fabric),
            &[
                "link set lo up".into(),
                "link add br0 type bridge mcast_snooping 0".into(),
                "link set br0 up".into(),
            ],
        )?;

        let mut fabric_ports = Vec::new();
        for (i, (_, node_ns)) in self.nodes.iter().enumerate() {
            let (ul4, ul6) = node_underlay(i);
            let mut lines = vec![
                "link set lo up".to_string(),
                format!(
                    "link add up0 type veth peer name n{i} netns {}",
                    self.fabric
                ),
                format!("addr add {ul4}/{UNDERLAY_V4_LEN} dev up0"),
                format!("addr add {ul6}/{UNDERLAY_V6_LEN} dev up0 nodad"),
                "link set up0 up".to_string(),
            ];
            fabric_ports.push(format!("n{i}"));
            let mut proxy_arp = Vec::new();
            for (j, host) in self.hosts.iter().enumerate() {
                let local = host
                    .spec
                    .node
                    .as_deref()
                    .and_then(|n| self.node_position(n))
                    == Some(i);
                if local {
                    lines.push(format!(
                        "link add h{j} type veth peer name eth0 netns {}",
                        host.netns
                    ));
                    lines.push(format!("link set h{j} up"));
                    lines.push(format!("addr add {WORKLOAD_GATEWAY_V6}/64 dev h{j} nodad"));
                    for &addr in &host.spec.addresses {
                        lines.push(format!("route add {} dev h{j}", host_prefix(addr)));
                    }
                    proxy_arp.push((format!("ipv4/conf/h{j}/proxy_arp"), "1"));
                    // Proxy ARP answers are otherwise delayed up to 0.8 s (Calico sets this
                    // too). Per interface: non-initial namespaces have no neigh/default.
                    proxy_arp.push((format!("ipv4/neigh/h{j}/proxy_delay"), "0"));
                } else {
                    let (via4, via6) = self.next_hop_of(host, &externals, j);
                    for &addr in &host.spec.addresses {
                        let via = if addr.is_ipv6() {
                            via6.to_string()
                        } else {
                            via4.to_string()
                        };
                        lines.push(format!("route add {} via {via} dev up0", host_prefix(addr)));
                    }
                }
            }
            cmd::ip_batch(Some(node_ns), &lines)?;
            netns::write_sysctls(node_ns, &proxy_arp)?;
        }

        for (j, host) in self.hosts.iter().enumerate() {
            let mut lines = vec!["link set lo up".to_string()];
            let own_v4 = first_of_family(&host.spec.addresses, false);
            let own_v6 = first_of_family(&host.spec.addresses, true);
            let src_for = |addr: IpAddr| if addr.is_ipv6() { own_v6 } else { own_v4 };
            match externals.get(&j) {
                None => {
                    for &addr in &host.spec.addresses {
                        let nodad = if addr.is_ipv6() { " nodad" } else { "" };
                        lines.push(format!("addr add {} dev eth0{nodad}", host_prefix(addr)));
                    }
                    lines.push("link set eth0 up".into());
                    if let Some(src) = own_v4 {
                        lines.push(format!(
                            "route add {WORKLOAD_GATEWAY_V4}/32 dev eth0 scope link"
                        ));
                        lines.push(format!(
                            "route add 0.0.0.0/0 via {WORKLOAD_GATEWAY_V4} dev eth0 src {src}"
                        ));
                    }
                    if let Some(src) = own_v6 {
                        lines.push(format!(
                            "route add ::/0 via {WORKLOAD_GATEWAY_V6} dev eth0 src {src}"
                        ));
                    }
                }
                Some(&e) => {
                    let (ul4, ul6) = external_underlay(e);
                    lines.push(format!(
                        "link add eth0 type veth peer name x{e} netns {}",
                        self.fabric
                    ));
                    fabric_ports.push(format!("x{e}"));
                    for &addr in &host.spec.addresses {
                        let nodad = if addr.is_ipv6() { " nodad" } else { "" };
                        lines.push(format!("addr add {} dev eth0{nodad}", host_prefix(addr)));
                    }
                    lines.push(format!("addr add {ul4}/{UNDERLAY_V4_LEN} dev eth0"));
                    lines.push(format!("addr add {ul6}/{UNDERLAY_V6_LEN} dev eth0 nodad"));
                    lines.push("link set eth0 up".into());
                    for (k, other) in self.hosts.iter().enumerate() {
                        if k == j {
                            continue;
                        }
                        let (via4, via6) = self.next_hop_of(other, &externals, k);
                        for &addr in &other.spec.addresses {
                            // Without an own address of that family there is nothing to say.
                            let Some(src) = src_for(addr) else { continue };
                            let via = if addr.is_ipv6() {
                                via6.to_string()
                            } else {
                                via4.to_string()
                            };
                            lines.push(format!(
                                "route add {} via {via} dev eth0 src {src}",
                                host_prefix(addr)
                            ));
                        }
                    }
                    if !self.nodes.is_empty() {
                        let (via4, via6) = node_underlay(0);
                        if let Some(src) = own_v4 {
                            lines
                                .push(format!("route add 0.0.0.0/0 via {via4} dev eth0 src {src}"));
                        }
                        if let Some(src) = own_v6 {
                            lines.push(format!("route add ::/0 via {via6} dev eth0 src {src}"));
                        }
                    }
                }
            }
            cmd::ip_batch(Some(&host.netns), &lines)?;
        }

        let lines: Vec<String> = fabric_ports
            .iter()
            .map(|port| format!("link set {port} master br0 up"))
            .collect();
        cmd::ip_batch(Some(&self.fabric), &lines)?;
        Ok(())
    }

    /// Waits until every link is operationally up: until then a veth may still have its noop
    /// qdisc and silently drop the first packets, which would turn into 1 s TCP retransmits.
    fn wait_for_links(&self) -> Result<(), DataplaneError> {
        let deadline = Instant::now() + LINK_UP_TIMEOUT;
        let mut pending = self.all_netns_names();
        loop {
            let mut still = Vec::new();
            for name in pending {
                let out = cmd::ip(Some(&name), &["-o", "link", "show"])?;
                let down = out.lines().any(|line| {
                    let is_lo = line.split(':').nth(1).map(str::trim) == Some("lo");
                    !is_lo && !line.contains("state UP")
                });
                if down {
                    still.push(name);
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(lab_error(format!(
                    "links in {} did not come up within {LINK_UP_TIMEOUT:?}",
                    still.join(", ")
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
            pending = still;
        }
    }

    fn start_listeners(&mut self) -> Result<(), DataplaneError> {
        for host in &mut self.hosts {
            let spec = ListenSpec {
                netns: &host.netns,
                ipv4: host.spec.addresses.iter().any(|a| a.is_ipv4()),
                ipv6: host.spec.addresses.iter().any(|a| a.is_ipv6()),
                tcp_ports: &host.spec.tcp_ports,
                udp_ports: &host.spec.udp_ports,
                sctp_ports: &host.spec.sctp_ports,
            };
            host.listeners = Some(HostListeners::start(&spec)?);
        }
        Ok(())
    }

    /// The `nplab-<pid>-<seq>-` prefix of every namespace of this lab.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every namespace of this lab (fabric, nodes, hosts).
    pub fn netns_names(&self) -> Vec<String> {
        self.all_netns_names()
    }

    /// The namespace acting as a node's router, where its ruleset goes.
    pub fn node_netns(&self, node: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(name, _)| name == node)
            .map(|(_, ns)| ns.as_str())
    }

    /// The namespace of a host.
    pub fn host_netns(&self, host: &str) -> Option<&str> {
        self.host(host).ok().map(|h| h.netns.as_str())
    }

    fn host(&self, name: &str) -> Result<&HostState, DataplaneError> {
        self.host_index
            .get(name)
            .map(|&j| &self.hosts[j])
            .ok_or_else(|| lab_error(format!("no host named {name:?} in this lab")))
    }

    /// Applies an nft script inside a node's namespace (one transaction).
    pub fn apply_ruleset(&self, node: &str, script: &str) -> Result<(), DataplaneError> {
        let ns = self
            .node_netns(node)
            .ok_or_else(|| lab_error(format!("no node named {node:?} in this lab")))?;
        nft::apply(Some(ns), script)
    }

    /// The address `from` sends from towards `to`: its first address of the same family.
    fn source_address(&self, from: &HostState, to: IpAddr) -> Result<IpAddr, DataplaneError> {
        first_of_family(&from.spec.addresses, to.is_ipv6()).ok_or_else(|| {
            lab_error(format!(
                "host {:?} has no {} address to reach {to}",
                from.spec.name,
                if to.is_ipv6() { "IPv6" } else { "IPv4" }
            ))
        })
    }

    /// Probes once: TCP = handshake plus echoed ping; UDP = echoed datagram; SCTP = a raw INIT
    /// seen by the destination's listener. `Ok(false)` means blocked or nobody listening;
    /// `Err` means the request itself is wrong (unknown host, no address of that family).
    pub fn probe(
        &self,
        from_host: &str,
        to_addr: IpAddr,
        protocol: ProbeProtocol,
        port: u16,
        timeout: Duration,
    ) -> Result<bool, DataplaneError> {
        let request = ProbeRequest {
            from_host: from_host.to_owned(),
            to_addr,
            protocol,
            port,
            timeout,
        };
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.run_probe(&request))
                .join()
                .unwrap_or_else(|_| Err(lab_error("a probe thread panicked")))
        })
    }

    /// Runs all probes concurrently (up to 256 at a time); results are in request order.
    pub fn probe_many(&self, requests: &[ProbeRequest]) -> Vec<Result<bool, DataplaneError>> {
        let mut results = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(MAX_CONCURRENT_PROBES) {
            std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|request| scope.spawn(move || self.run_probe(request)))
                    .collect();
                for handle in handles {
                    results.push(
                        handle
                            .join()
                            .unwrap_or_else(|_| Err(lab_error("a probe thread panicked"))),
                    );
                }
            });
        }
        results
    }

    /// Runs on a dedicated thread: it enters the source namespace and never leaves it.
    fn run_probe(&self, request: &ProbeRequest) -> Result<bool, DataplaneError> {
        let from = self.host(&request.from_host)?;
        let src = self.source_address(from, request.to_addr)?;
        netns::enter(&from.netns)?;
        let dst = SocketAddr::new(request.to_addr, request.port);
        match request.protocol {
            ProbeProtocol::Tcp => probe::tcp(src, dst, request.timeout),
            ProbeProtocol::Udp => probe::udp(src, dst, request.timeout),
            ProbeProtocol::Sctp => {
                let deadline = Instant::now() + request.timeout;
                let Some(tag) = probe::sctp_send(src, dst)? else {
                    return Ok(false);
                };
                let Some(log) = self
                    .address_owner
                    .get(&request.to_addr)
                    .and_then(|&j| self.hosts[j].listeners.as_ref())
                    .map(|l| &l.sctp)
                else {
                    // Not a lab address: nobody could see it arrive.
                    return Ok(false);
                };
                Ok(log.wait_for(src, request.port, tag, deadline))
            }
        }
    }

    /// How many SCTP INITs from `src` to `port` the host's listener has seen so far.
    pub fn sctp_arrivals(&self, host: &str, src: IpAddr, port: u16) -> Result<u64, DataplaneError> {
        let state = self.host(host)?;
        Ok(state
            .listeners
            .as_ref()
            .map(|l| l.sctp.count(src, port))
            .unwrap_or(0))
    }

    /// Opens a TCP connection from a host (the socket lives in that host's namespace and can be
    /// used from any thread afterwards). `Ok(None)` when it cannot be established in time.
    /// The peer's listener echoes whatever is sent.
    pub fn connect_tcp(
        &self,
        from_host: &str,
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<Option<TcpStream>, DataplaneError> {
        let from = self.host(from_host)?;
        let src = self.source_address(from, to.ip())?;
        netns::run_in(&from.netns, || probe::tcp_connect(src, to, timeout))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Signal every listener first so their ~100 ms poll intervals overlap, then join.
        for host in &self.hosts {
            if let Some(listeners) = &host.listeners {
                listeners.signal_stop();
            }
        }
        for host in &mut self.hosts {
            host.listeners = None;
        }
        // One process removes them all; the guards then find nothing left to do.
        let names: Vec<String> = self
            .all_netns_names()
            .into_iter()
            .filter(|n| std::path::Path::new("/run/netns").join(n).exists())
            .map(|n| format!("netns del {n}"))
            .collect();
        let _ = cmd::ip_batch(None, &names);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, node: Option<&str>, addrs: &[&str]) -> LabHost {
        LabHost {
            name: name.into(),
            node: node.map(Into::into),
            addresses: addrs.iter().filter_map(|a| a.parse().ok()).collect(),
            ..LabHost::default()
        }
    }

    #[test]
    fn underlay_addresses_never_include_the_workload_gateway() {
        for i in 0..MAX_NODES {
            assert_ne!(node_underlay(i).0, WORKLOAD_GATEWAY_V4);
        }
        for e in 0..MAX_EXTERNALS {
            assert_ne!(external_underlay(e).0, WORKLOAD_GATEWAY_V4);
        }
        assert!(in_underlay(IpAddr::V4(node_underlay(MAX_NODES - 1).0)));
        assert!(in_underlay(IpAddr::V6(
            external_underlay(MAX_EXTERNALS - 1).1
        )));
        assert_ne!(node_underlay(MAX_NODES - 1).0, external_underlay(0).0);
    }

    #[test]
    fn a_spec_with_duplicate_addresses_is_rejected() {
        let spec = LabSpec {
            nodes: vec!["n".into()],
            hosts: vec![
                host("a", Some("n"), &["10.0.0.1"]),
                host("b", Some("n"), &["10.0.0.1"]),
            ],
        };
        assert!(validate(&spec).is_err());
    }

    #[test]
    fn a_host_on_an_unknown_node_is_rejected() {
        let spec = LabSpec {
            nodes: vec!["n".into()],
            hosts: vec![host("a", Some("m"), &["10.0.0.1"])],
        };
        assert!(validate(&spec).is_err());
    }

    #[test]
    fn addresses_inside_the_underlay_are_rejected() {
        let spec = LabSpec {
            nodes: vec![],
            hosts: vec![host("a", None, &["169.254.3.3"])],
        };
        assert!(validate(&spec).is_err());
        let ok = LabSpec {
            nodes: vec!["n".into()],
            hosts: vec![host("a", Some("n"), &["10.66.20.70", "2001:db8::70"])],
        };
        assert!(validate(&ok).is_ok());
    }
}
