//! NFLOG reception against the real kernel: a node namespace forwards between two workloads,
//! logs and drops what is not allowed, and the records read from its NFLOG group must describe
//! the real packets that were sent (addresses, protocol, ports, the rule's prefix).
//! Runs as root (fails loudly otherwise).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::*;
use netpol_dataplane::{DataplaneError, Lab, LabSpec, NflogRecord, NflogSocket, ProbeProtocol};

const GROUP: u16 = 4711;

/// Everything to 10.70.0.2 / fd00:70::2 except TCP 80 is logged with a prefix, then dropped.
const TABLE: &str = r#"
table inet nflogtest {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state established,related accept
		ip daddr 10.70.0.2 tcp dport 80 accept
		ip daddr 10.70.0.2 log prefix "test:ingress:b" group 4711
		ip6 daddr fd00:70::2 log prefix "test:ingress:b6" group 4711
		ip daddr 10.70.0.2 drop
		ip6 daddr fd00:70::2 drop
	}
}
"#;

fn lab() -> Lab {
    Lab::build(&LabSpec {
        nodes: vec!["n1".into()],
        hosts: vec![
            host("a", Some("n1"), &["10.70.0.1", "fd00:70::1"], &[], &[], &[]),
            host(
                "b",
                Some("n1"),
                &["10.70.0.2", "fd00:70::2"],
                &[80, 81],
                &[53],
                &[],
            ),
        ],
    })
    .expect("lab")
}

/// Reads records until one satisfies `want` or two seconds pass; returns everything read.
fn read_until(socket: &mut NflogSocket, want: impl Fn(&NflogRecord) -> bool) -> Vec<NflogRecord> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match socket.recv_timeout(Some(left)).expect("receive") {
            Some(r) => {
                let done = want(&r);
                seen.push(r);
                if done {
                    break;
                }
            }
            None => break,
        }
    }
    seen
}

#[test]
fn dropped_tcp_and_udp_packets_arrive_as_records_naming_their_addresses_ports_and_prefix() {
    require_root();
    let lab = lab();
    let node = lab.node_netns("n1").expect("node netns").to_owned();
    lab.apply_ruleset("n1", TABLE).expect("table loads");
    let mut socket = NflogSocket::open(Some(&node), GROUP).expect("NFLOG socket in the node");
    assert_eq!(socket.group(), GROUP);
    let (a, b) = (ip("10.70.0.1"), ip("10.70.0.2"));
    let probe = |to: IpAddr, protocol, port| {
        lab.probe("a", to, protocol, port, Duration::from_millis(300))
            .expect("probe request")
    };

    // A TCP SYN to a port that is not allowed: dropped, and logged as TCP to port 81.
    assert!(!probe(b, ProbeProtocol::Tcp, 81), "the table drops TCP 81");
    let seen = read_until(&mut socket, |r| r.protocol == 6);
    let syn = seen
        .iter()
        .find(|r| r.protocol == 6)
        .unwrap_or_else(|| panic!("no TCP record; got {seen:?}"));
    assert_eq!(syn.prefix, "test:ingress:b");
    assert_eq!((syn.src, syn.dst), (a, b));
    assert_eq!(syn.dst_port, Some(81));
    assert!(
        syn.src_port.is_some_and(|p| p >= 1024),
        "an ephemeral source port: {syn:?}"
    );
    assert_eq!((syn.icmp_type, syn.icmp_code), (None, None));

    // A UDP datagram: logged as UDP to port 53.
    assert!(!probe(b, ProbeProtocol::Udp, 53), "the table drops UDP 53");
    let seen = read_until(&mut socket, |r| r.protocol == 17);
    let udp = seen
        .iter()
        .find(|r| r.protocol == 17)
        .unwrap_or_else(|| panic!("no UDP record; got {seen:?}"));
    assert_eq!(udp.prefix, "test:ingress:b");
    assert_eq!((udp.src, udp.dst, udp.dst_port), (a, b, Some(53)));

    // The same over IPv6, through the other log rule.
    let (a6, b6) = (ip("fd00:70::1"), ip("fd00:70::2"));
    assert!(
        !probe(b6, ProbeProtocol::Udp, 53),
        "the table drops UDP 53 over v6"
    );
    let seen = read_until(&mut socket, |r| r.dst == b6);
    let v6 = seen
        .iter()
        .find(|r| r.dst == b6)
        .unwrap_or_else(|| panic!("no IPv6 record; got {seen:?}"));
    assert_eq!(v6.prefix, "test:ingress:b6");
    assert_eq!((v6.src, v6.protocol, v6.dst_port), (a6, 17, Some(53)));

    // Allowed traffic passes and is not logged.
    assert!(probe(b, ProbeProtocol::Tcp, 80), "TCP 80 is allowed");
    let seen = read_until(&mut socket, |_| false);
    assert!(
        seen.iter().all(|r| r.dst_port != Some(80)),
        "allowed packets were logged: {seen:?}"
    );
    assert_eq!(socket.stats().unparsable, 0);
    assert!(socket.stats().records >= 3);
}

#[test]
fn a_group_has_one_listener_per_namespace_and_the_socket_stays_in_its_namespace() {
    require_root();
    let lab = lab();
    let node = lab.node_netns("n1").expect("node netns").to_owned();
    let host_a = lab.host_netns("a").expect("host netns").to_owned();
    lab.apply_ruleset("n1", TABLE).expect("table loads");
    let mut in_node = NflogSocket::open(Some(&node), GROUP).expect("first listener");
    let err = NflogSocket::open(Some(&node), GROUP).expect_err("the group is taken");
    assert!(
        matches!(&err, DataplaneError::Io { source, .. } if source.raw_os_error() == Some(libc::EPERM)),
        "the kernel refuses a second listener with EPERM: {err}"
    );
    // The same group in another namespace is another group: binding works, and it sees nothing
    // of what the node logs.
    let mut in_host = NflogSocket::open(Some(&host_a), GROUP).expect("listener in a's netns");
    assert!(!lab
        .probe(
            "a",
            ip("10.70.0.2"),
            ProbeProtocol::Tcp,
            81,
            Duration::from_millis(300)
        )
        .expect("probe"));
    let seen = read_until(&mut in_node, |r| r.dst_port == Some(81));
    assert!(seen.iter().any(|r| r.dst_port == Some(81)), "{seen:?}");
    assert_eq!(
        in_host
            .recv_timeout(Some(Duration::from_millis(300)))
            .expect("receive"),
        None
    );
    // Closing the socket frees the group.
    drop(in_node);
    NflogSocket::open(Some(&node), GROUP).expect("the group is free again");
}
