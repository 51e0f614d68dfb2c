//! A node namespace routing for VMs on real veths, as a routed CNI wires them, and how tests
//! send TCP through it: shared by the kernel tests of the node's own traffic and of the tiers.
//!
//! "Reached" is told from "dropped" by TCP alone: nothing listens anywhere, so a SYN that arrives
//! is answered by a RST (connection refused at once) and a dropped one times out.

use std::process::Command;

use netpol_dataplane::Netns;
use netpol_test_support::{ip_in, sysctl_in};

/// The node's InternalIP (on its loopback).
pub const NODE_IP: &str = "10.66.0.1";
/// The node's IPv6 InternalIP.
pub const NODE_IP6: &str = "fd00:66::1";

pub fn ok(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn nft_in(ns: &str, script: &str) {
    // Named after the namespace: the tests of this file run in parallel.
    let path = std::env::temp_dir().join(format!("{ns}.nft"));
    std::fs::write(&path, script).unwrap();
    ok(&[
        "ip",
        "netns",
        "exec",
        ns,
        "nft",
        "-f",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
}

/// `nft list WHAT` in namespace `ns`.
pub fn nft_list(ns: &str, what: &str) -> String {
    let mut args = vec!["netns", "exec", ns, "nft", "list"];
    args.extend(what.split_whitespace());
    let out = Command::new("ip").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a TCP connection attempt met.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A RST came back: the SYN arrived.
    Reached,
    /// Nothing came back within the timeout: the SYN was dropped.
    Dropped,
}

pub fn connect(ns: &str, dst: &str, port: u16) -> Outcome {
    let script = format!("exec 3<>/dev/tcp/{dst}/{port}");
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "timeout", "2", "bash", "-c", &script])
        .output()
        .unwrap();
    match out.status.code() {
        Some(124) => Outcome::Dropped,
        _ if String::from_utf8_lossy(&out.stderr).contains("refused") => Outcome::Reached,
        other => panic!(
            "connect {ns} -> {dst}:{port}: exit {other:?}, {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The node namespace and the VMs wired to it; every namespace goes away with this value.
pub struct NodeLab {
    pub node: Netns,
    pub vms: Vec<Netns>,
}

impl NodeLab {
    pub fn new() -> NodeLab {
        let node = Netns::create("node").unwrap();
        let n = node.name().to_string();
        sysctl_in(&n, "net.ipv4.ip_forward=1");
        sysctl_in(&n, "net.ipv6.conf.all.forwarding=1");
        // The kernel's own reverse-path filter off, as on many nodes (and required by some
        // CNIs): what is dropped here is dropped by the table.
        sysctl_in(&n, "net.ipv4.conf.all.rp_filter=0");
        sysctl_in(&n, "net.ipv4.conf.default.rp_filter=0");
        // On loopback: this kernel may lack the dummy module, and a node address is local
        // either way.
        ip_in(&n, &format!("addr add {NODE_IP}/32 dev lo"));
        ip_in(&n, &format!("addr add {NODE_IP6}/128 dev lo"));
        NodeLab {
            node,
            vms: Vec::new(),
        }
    }

    /// A VM namespace with `addr` and `addr6`, its veth's host side named like a CNI's
    /// (`lxc...`), routed as a routed CNI does: a /32 and a /128 through the veth, the guest's
    /// gateways 169.254.1.1 (proxy ARP) and fe80::1 (neighbour discovery).
    pub fn vm(&mut self, tag: &str, addr: &str, addr6: &str) -> String {
        let vm = Netns::create(tag).unwrap();
        let (v, n) = (vm.name().to_string(), self.node.name().to_string());
        let host = format!("lxc{}{}", std::process::id() % 100_000, self.vms.len());
        ip_in(
            &v,
            &format!("link add eth0 type veth peer name {host} netns {n}"),
        );
        ip_in(&v, "link set eth0 up");
        ip_in(&v, &format!("addr add {addr}/32 dev eth0"));
        ip_in(&v, &format!("addr add {addr6}/128 dev eth0 nodad"));
        ip_in(&v, "route add 169.254.1.1 dev eth0");
        ip_in(&v, "route add default via 169.254.1.1");
        ip_in(&v, "-6 route add default via fe80::1 dev eth0");
        ip_in(&n, &format!("link set {host} up"));
        ip_in(&n, &format!("addr add 169.254.1.1/32 dev {host}"));
        ip_in(&n, &format!("addr add fe80::1/64 dev {host} nodad"));
        ip_in(&n, &format!("route add {addr}/32 dev {host}"));
        ip_in(&n, &format!("-6 route add {addr6}/128 dev {host}"));
        sysctl_in(&n, &format!("net.ipv4.conf.{host}.proxy_arp=1"));
        self.vms.push(vm);
        v
    }

    pub fn node(&self) -> &str {
        self.node.name()
    }
}
