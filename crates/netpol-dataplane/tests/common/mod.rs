//! Shared by the kernel tests: the root check (from netpol-test-support) and small spec builders.
#![allow(dead_code)]

use std::net::IpAddr;

use netpol_dataplane::LabHost;

/// These tests create network namespaces: they must run as root, and fail otherwise instead of
/// skipping.
pub use netpol_test_support::require_root;

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
