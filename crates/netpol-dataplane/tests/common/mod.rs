//! Shared by the kernel tests: the root check (from netpol-test-support) and small spec builders.
#![allow(dead_code)]
// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
