//! Which local workload addresses sit on a bridge whose packets bypass netfilter, asked of the
//! real kernel in a throwaway namespace: a bridge with a subnet per family and a veth with a /32
//! route, as a routed CNI has.
//!
//! `br_netfilter` is a module of the host's kernel, global to every namespace; the test never
//! loads or unloads it (that would change the host's bridges). Where it is loaded, the test
//! switches this namespace's own `bridge-nf-call-*` sysctls and the bridge's own option; where it
//! is not, every bridged address must be reported whatever the bridge's option says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use netpol_dataplane::datapath::{bridge_bypasses, bridge_netfilter};
use netpol_dataplane::Netns;
use netpol_test_support::{ip_in, require_root, sysctl_in};

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// `10.1.0.5`, `fd00:1::5` on the bridge; `10.2.0.5` behind a veth; `203.0.113.5` unroutable.
fn node() -> Netns {
    require_root();
    let ns = Netns::create("bridge").unwrap();
    let n = ns.name();
    ip_in(n, "link add br0 type bridge");
    ip_in(n, "link set br0 up");
    ip_in(n, "addr add 10.1.0.1/24 dev br0");
    ip_in(n, "addr add fd00:1::1/64 dev br0 nodad");
    ip_in(n, "link add lxc0 type veth peer name lxc0p");
    ip_in(n, "link set lxc0 up");
    ip_in(n, "route add 10.2.0.5/32 dev lxc0");
    ns
}

fn bypassed(ns: &Netns) -> Vec<String> {
    let addresses = ["10.1.0.5", "fd00:1::5", "10.2.0.5", "203.0.113.5"].map(addr);
    bridge_bypasses(Some(ns.name()), &addresses)
        .unwrap()
        .into_iter()
        .map(|b| format!("{} {}", b.address, b.bridge))
        .collect()
}

#[test]
fn bridged_workload_addresses_are_reported_unless_the_bridge_hands_them_to_netfilter() {
    let ns = node();
    let n = ns.name();
    let settings = bridge_netfilter(Some(n)).unwrap();
    if !settings.loaded {
        // Nothing bridged reaches an IP hook, the bridge's own option notwithstanding.
        ip_in(
            n,
            "link set br0 type bridge nf_call_iptables 1 nf_call_ip6tables 1",
        );
        assert_eq!(bypassed(&ns), ["10.1.0.5 br0", "fd00:1::5 br0"]);
        return;
    }
    sysctl_in(n, "net.bridge.bridge-nf-call-iptables=0");
    sysctl_in(n, "net.bridge.bridge-nf-call-ip6tables=0");
    assert_eq!(bypassed(&ns), ["10.1.0.5 br0", "fd00:1::5 br0"]);
    // One family handed over by the namespace: only the other bypasses.
    sysctl_in(n, "net.bridge.bridge-nf-call-iptables=1");
    assert_eq!(bypassed(&ns), ["fd00:1::5 br0"]);
    // The bridge's own option counts as well.
    ip_in(n, "link set br0 type bridge nf_call_ip6tables 1");
    assert!(bypassed(&ns).is_empty());
}
