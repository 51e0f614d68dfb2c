//! What the node's datapath lets the table see.
//!
//! The table hooks netfilter's `forward` and `input`. A packet that never reaches them is never
//! checked, and the most common way to miss them is a Linux bridge: two workloads on the same
//! bridge exchange frames that netfilter's IP hooks see only when `br_netfilter` is loaded and
//! either the namespace's `net.bridge.bridge-nf-call-iptables` (`-ip6tables` for IPv6) or the
//! bridge's own `nf_call_iptables` option is on. eBPF datapaths (Cilium's host routing, Calico
//! eBPF, an eBPF VM bridge) bypass the hooks entirely and cannot be told from here; the README
//! lists the supported datapaths.
//!
//! [`bridge_bypasses`] asks the kernel where each local workload address is routed (one
//! `ip route get` each) and reports the addresses whose route leads to a bridge that
//! does not hand IP packets of that family to netfilter.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

use crate::cmd;
use crate::netns::run_in;
use crate::DataplaneError;

/// A local workload address whose packets to others on its bridge bypass the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeBypass {
    /// The workload address.
    pub address: IpAddr,
    /// The bridge its route leads to.
    pub bridge: String,
}

#[derive(Deserialize)]
struct RouteAnswer {
    dev: Option<String>,
}

#[derive(Deserialize)]
struct LinkAnswer {
    ifname: String,
    linkinfo: Option<LinkInfo>,
}

#[derive(Deserialize)]
struct LinkInfo {
    info_kind: Option<String>,
    info_data: Option<BridgeData>,
}

#[derive(Deserialize)]
struct BridgeData {
    nf_call_iptables: Option<u8>,
    nf_call_ip6tables: Option<u8>,
}

/// Whether a bridge hands IP packets of each family to netfilter on its own (`[v4, v6]`).
type BridgeCalls = [bool; 2];

/// The local workload addresses (of `addresses`) whose packets to other workloads on the same
/// bridge never reach the table, in the named namespace (`None`: this process's).
pub fn bridge_bypasses(
    netns: Option<&str>,
    addresses: &[IpAddr],
) -> Result<Vec<BridgeBypass>, DataplaneError> {
    if addresses.is_empty() {
        return Ok(Vec::new());
    }
    let bridges = bridges(netns)?;
    if bridges.is_empty() {
        return Ok(Vec::new());
    }
    let settings = bridge_netfilter(netns)?;
    let devices = route_devices(netns, addresses)?;
    let mut out = Vec::new();
    for (address, dev) in addresses.iter().zip(devices) {
        let Some(calls) = dev.as_ref().and_then(|d| bridges.get(d)) else {
            continue;
        };
        let family = usize::from(address.is_ipv6());
        if !settings.loaded || !(settings.calls[family] || calls[family]) {
            out.push(BridgeBypass {
                address: *address,
                bridge: dev.unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// Every bridge of the namespace and its own netfilter options.
fn bridges(netns: Option<&str>) -> Result<BTreeMap<String, BridgeCalls>, DataplaneError> {
    let text = cmd::ip(netns, &["-j", "-d", "link", "show", "type", "bridge"])?;
    let links: Vec<LinkAnswer> = parse_json(&text, "ip -j -d link show type bridge")?;
    Ok(links
        .into_iter()
        .filter_map(|l| {
            let info = l.linkinfo?;
            (info.info_kind.as_deref() == Some("bridge")).then(|| {
                let data = info.info_data;
                let on = |v: Option<u8>| v == Some(1);
                let calls = [
                    on(data.as_ref().and_then(|d| d.nf_call_iptables)),
                    on(data.as_ref().and_then(|d| d.nf_call_ip6tables)),
                ];
                (l.ifname, calls)
            })
        })
        .collect())
}

/// Whether `br_netfilter` is loaded (`/proc/sys/net/bridge` exists) and, if so, the
/// namespace's `net.bridge.bridge-nf-call-ip{,6}tables`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeNetfilter {
    /// `br_netfilter` is loaded: without it no bridged packet reaches an IP hook, whatever the
    /// bridges' own options say.
    pub loaded: bool,
    /// The namespace hands bridged IPv4 / IPv6 packets to netfilter.
    pub calls: [bool; 2],
}

/// The bridge netfilter settings of the named namespace (`None`: this process's).
pub fn bridge_netfilter(netns: Option<&str>) -> Result<BridgeNetfilter, DataplaneError> {
    let read = || -> Result<BridgeNetfilter, DataplaneError> {
        let on = |key: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/bridge/{key}"))
                .map(|v| v.trim() == "1")
                .unwrap_or(false)
        };
        Ok(BridgeNetfilter {
            loaded: std::path::Path::new("/proc/sys/net/bridge").is_dir(),
            calls: [
                on("bridge-nf-call-iptables"),
                on("bridge-nf-call-ip6tables"),
            ],
        })
    };
    match netns {
        // Sysctls under /proc/sys/net follow the namespace of the thread that opens them.
        Some(name) => run_in(name, read),
        None => read(),
    }
}

/// The device each address is routed to (`None` for an address without a route). One
/// `ip route get` each: a batch stops at, or silently skips, an unroutable address, and a
/// node's few hundred local addresses take a fraction of a second.
fn route_devices(
    netns: Option<&str>,
    addresses: &[IpAddr],
) -> Result<Vec<Option<String>>, DataplaneError> {
    let mut out = Vec::with_capacity(addresses.len());
    for a in addresses {
        let text = a.to_string();
        let finished = cmd::run(netns, "ip", &["-j", "route", "get", &text], None)?;
        let dev = if finished.success {
            parse_json::<Vec<RouteAnswer>>(&finished.stdout, "ip -j route get")?
                .into_iter()
                .next()
                .and_then(|r| r.dev)
        } else {
            None
        };
        out.push(dev);
    }
    Ok(out)
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, DataplaneError> {
    serde_json::from_str(text).map_err(|e| DataplaneError::Lab(format!("{what}: {e}: {text}")))
}
