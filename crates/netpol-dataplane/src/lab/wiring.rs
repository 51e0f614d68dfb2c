//! Creating the lab's namespaces and wiring them: the fabric bridge, each node's uplink and
//! workload veths, each host's addresses and routes, then waiting for every link and starting
//! the listeners.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::addressing::*;
use super::{lab_error, HostState, Lab};
use crate::cmd;
use crate::error::DataplaneError;
use crate::listeners::{HostListeners, ListenSpec};
use crate::netns::{self, Netns};

/// How long build waits for every link to be operationally up.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(5);

impl Lab {
    pub(super) fn create_namespaces(&mut self) -> Result<(), DataplaneError> {
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

    pub(super) fn node_position(&self, node: &str) -> Option<usize> {
        self.nodes.iter().position(|(name, _)| name == node)
    }

    /// The underlay addresses a packet to `host` goes to from the fabric.
    pub(super) fn next_hop_of(
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

    /// Wires every namespace, in this order (the order of the `ip` batches): the fabric bridge,
    /// each node (uplink, local workload veths, routes to every other host), each host
    /// (addresses and routes; an external host also gets its fabric veth), then every fabric
    /// port joins the bridge.
    pub(super) fn wire(&self) -> Result<(), DataplaneError> {
        let externals = self.external_indices();
        self.wire_fabric_bridge()?;
        let mut fabric_ports = Vec::new();
        for (i, (_, node_ns)) in self.nodes.iter().enumerate() {
            self.wire_node(i, node_ns, &externals)?;
            fabric_ports.push(format!("n{i}"));
        }
        for (j, host) in self.hosts.iter().enumerate() {
            let lines = match externals.get(&j) {
                None => workload_host_lines(host),
                Some(&e) => {
                    fabric_ports.push(format!("x{e}"));
                    self.external_host_lines(j, e, &externals)
                }
            };
            cmd::ip_batch(Some(&host.netns), &lines)?;
        }
        self.attach_fabric_ports(&fabric_ports)
    }

    /// External host j -> its index among external hosts (for underlay numbering).
    pub(super) fn external_indices(&self) -> HashMap<usize, usize> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.spec.node.is_none())
            .enumerate()
            .map(|(e, (j, _))| (j, e))
            .collect()
    }

    /// The fabric namespace's bridge, which every node uplink and external host joins.
    fn wire_fabric_bridge(&self) -> Result<(), DataplaneError> {
        cmd::ip_batch(
            Some(&self.fabric),
            &[
                "link set lo up".into(),
                "link add br0 type bridge mcast_snooping 0".into(),
                "link set br0 up".into(),
            ],
        )
    }

    /// Node `i`: its uplink `up0` (peer `n{i}` in the fabric) with its underlay addresses, a
    /// veth `h{j}` with proxy ARP to each local workload j, and a route via the underlay to each
    /// other host.
    fn wire_node(
        &self,
        i: usize,
        node_ns: &str,
        externals: &HashMap<usize, usize>,
    ) -> Result<(), DataplaneError> {
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
        let mut proxy_arp = Vec::new();
        for (j, host) in self.hosts.iter().enumerate() {
            let local = host
                .spec
                .node
                .as_deref()
                .and_then(|n| self.node_position(n))
                == Some(i);
            if local {
                lines.extend(local_workload_lines(j, host));
                proxy_arp.push((format!("ipv4/conf/h{j}/proxy_arp"), "1"));
                // Proxy ARP answers are otherwise delayed up to 0.8 s (Calico sets this
                // too). Per interface: non-initial namespaces have no neigh/default.
                proxy_arp.push((format!("ipv4/neigh/h{j}/proxy_delay"), "0"));
            } else {
                let (via4, via6) = self.next_hop_of(host, externals, j);
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
        netns::write_sysctls(node_ns, &proxy_arp)
    }

    /// External host j (external index `e`): its fabric veth with its own and underlay
    /// addresses, a route to every other host via that host's next hop, and a default route via
    /// the first node.
    fn external_host_lines(
        &self,
        j: usize,
        e: usize,
        externals: &HashMap<usize, usize>,
    ) -> Vec<String> {
        let host = &self.hosts[j];
        let (ul4, ul6) = external_underlay(e);
        let own_v4 = first_of_family(&host.spec.addresses, false);
        let own_v6 = first_of_family(&host.spec.addresses, true);
        let mut lines = vec![
            "link set lo up".to_string(),
            format!(
                "link add eth0 type veth peer name x{e} netns {}",
                self.fabric
            ),
        ];
        lines.extend(own_address_lines(host));
        lines.push(format!("addr add {ul4}/{UNDERLAY_V4_LEN} dev eth0"));
        lines.push(format!("addr add {ul6}/{UNDERLAY_V6_LEN} dev eth0 nodad"));
        lines.push("link set eth0 up".into());
        for (k, other) in self.hosts.iter().enumerate() {
            if k == j {
                continue;
            }
            let (via4, via6) = self.next_hop_of(other, externals, k);
            for &addr in &other.spec.addresses {
                // Without an own address of that family there is nothing to say.
                let Some(src) = (if addr.is_ipv6() { own_v6 } else { own_v4 }) else {
                    continue;
                };
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
                lines.push(format!("route add 0.0.0.0/0 via {via4} dev eth0 src {src}"));
            }
            if let Some(src) = own_v6 {
                lines.push(format!("route add ::/0 via {via6} dev eth0 src {src}"));
            }
        }
        lines
    }

    /// Every fabric port joins the bridge.
    fn attach_fabric_ports(&self, fabric_ports: &[String]) -> Result<(), DataplaneError> {
        let lines: Vec<String> = fabric_ports
            .iter()
            .map(|port| format!("link set {port} master br0 up"))
            .collect();
        cmd::ip_batch(Some(&self.fabric), &lines)
    }

    /// Waits until every link is operationally up: until then a veth may still have its noop
    /// qdisc and silently drop the first packets, which would turn into 1 s TCP retransmits.
    pub(super) fn wait_for_links(&self) -> Result<(), DataplaneError> {
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

    pub(super) fn start_listeners(&mut self) -> Result<(), DataplaneError> {
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
}

/// On a node: the veth `h{j}` to local workload j (its peer is the workload's `eth0`), the
/// gateway address on it, and a host route to each of the workload's addresses.
fn local_workload_lines(j: usize, host: &HostState) -> Vec<String> {
    let mut lines = vec![
        format!(
            "link add h{j} type veth peer name eth0 netns {}",
            host.netns
        ),
        format!("link set h{j} up"),
        format!("addr add {WORKLOAD_GATEWAY_V6}/64 dev h{j} nodad"),
    ];
    for &addr in &host.spec.addresses {
        lines.push(format!("route add {} dev h{j}", host_prefix(addr)));
    }
    lines
}

/// A host's own addresses on its `eth0` (IPv6 without duplicate address detection).
fn own_address_lines(host: &HostState) -> Vec<String> {
    host.spec
        .addresses
        .iter()
        .map(|&addr| {
            let nodad = if addr.is_ipv6() { " nodad" } else { "" };
            format!("addr add {} dev eth0{nodad}", host_prefix(addr))
        })
        .collect()
}

/// Inside a workload: its addresses, and default routes via the node's proxy-ARP gateway
/// (IPv4) and link-local gateway (IPv6) for each family it has.
fn workload_host_lines(host: &HostState) -> Vec<String> {
    let own_v4 = first_of_family(&host.spec.addresses, false);
    let own_v6 = first_of_family(&host.spec.addresses, true);
    let mut lines = vec!["link set lo up".to_string()];
    lines.extend(own_address_lines(host));
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
    lines
}
