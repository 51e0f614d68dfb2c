//! Shared by the kernel tests: the root check and small spec builders.
#![allow(dead_code)]

use std::net::IpAddr;

use netpol_dataplane::LabHost;

/// These tests create network namespaces: they must run as root, and say so loudly otherwise
/// instead of skipping.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "netpol-dataplane kernel tests need root (network namespaces, veths, nftables); \
         run them as root, e.g. `sudo -E cargo test -p netpol-dataplane`"
    );
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

pub fn host(
    name: &str,
    node: Option<&str>,
    addresses: &[&str],
    tcp: &[u16],
    udp: &[u16],
    sctp: &[u16],
) -> LabHost {
    LabHost {
        name: name.to_owned(),
        node: node.map(str::to_owned),
        addresses: addresses.iter().map(|a| ip(a)).collect(),
        tcp_ports: tcp.to_vec(),
        udp_ports: udp.to_vec(),
        sctp_ports: sctp.to_vec(),
    }
}

/// Whether a namespace of that name exists right now.
pub fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}
