//! The node itself, on the real kernel: a node namespace routing for two VMs (veths with /32
//! routes and a link-local gateway, as routed CNIs do) and holding its own InternalIP on an
//! interface (loopback here). Each case fails on a table with only a `forward` hook:
//! * an egress-isolated VM reaches its node only where a rule allows it (the `input` hook);
//! * an ingress-isolated VM still accepts connections from its own node (kubelet probes);
//! * a VM reaching itself through its own Service (kube-proxy-like DNAT back to itself plus
//!   masquerade, a table the test loads in the node namespace) is not dropped.
//!
//! "Reached" is told from "dropped" by TCP alone: nothing listens anywhere, so a SYN that arrives
//! is answered by a RST (connection refused at once) and a dropped one times out.

// Helpers outside #[test] functions panic too: in a test a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use netpol_core::{Cluster, EvalOptions};
use netpol_dataplane::Netns;
use netpol_nft::{compile_for_node, NodeOptions, SourceCheck, SPOOFED_LOG_PREFIX};

const NODE: &str = "n1";
const NODE_IP: &str = "10.66.0.1";
const NODE_IP6: &str = "fd00:66::1";
const SERVICE_IP: &str = "10.96.0.10";

fn ok(args: &[&str]) {
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

fn nft_in(ns: &str, script: &str) {
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
fn nft_list(ns: &str, what: &str) -> String {
    let mut args = vec!["netns", "exec", ns, "nft", "list"];
    args.extend(what.split_whitespace());
    let out = Command::new("ip").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a TCP connection attempt met.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// A RST came back: the SYN arrived.
    Reached,
    /// Nothing came back within the timeout: the SYN was dropped.
    Dropped,
}

fn connect(ns: &str, dst: &str, port: u16) -> Outcome {
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
struct NodeLab {
    node: Netns,
    vms: Vec<Netns>,
}

impl NodeLab {
    fn new() -> NodeLab {
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
    fn vm(&mut self, tag: &str, addr: &str, addr6: &str) -> String {
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

    fn node(&self) -> &str {
        self.node.name()
    }
}

/// vm-a may reach only its node's kubelet (ipBlock NODE_IP/32, TCP 10250) and accepts nothing;
/// vm-b accepts nothing; vm-c is open.
fn cluster_on_one_node() -> Cluster {
    let mut a_egress = policy("p", "a-to-kubelet", sel(&[("vm", "a")]), false, true);
    a_egress.egress = vec![rule(
        vec![block(&format!("{NODE_IP}/32"), &[])],
        vec![tcp(10250)],
    )];
    let a_ingress = policy("p", "a-deny-ingress", sel(&[("vm", "a")]), true, false);
    let b_ingress = policy("p", "b-deny-ingress", sel(&[("vm", "b")]), true, false);
    cluster(
        namespaces(&["p"]),
        vec![
            vm("p", "vm-a", &[("vm", "a")], &["10.66.20.70", "fd00:66::70"]).on(NODE),
            vm("p", "vm-b", &[("vm", "b")], &["10.66.20.71", "fd00:66::71"]).on(NODE),
            vm("p", "vm-c", &[("vm", "c")], &["10.66.20.72", "fd00:66::72"]).on(NODE),
        ],
        vec![a_egress, a_ingress, b_ingress],
    )
}

fn lab_with_table() -> (NodeLab, [String; 3]) {
    lab_with(&NodeOptions::default())
}

fn lab_with(options: &NodeOptions) -> (NodeLab, [String; 3]) {
    require_root();
    let mut lab = NodeLab::new();
    let a = lab.vm("a", "10.66.20.70", "fd00:66::70");
    let b = lab.vm("b", "10.66.20.71", "fd00:66::71");
    let c = lab.vm("c", "10.66.20.72", "fd00:66::72");
    let table = compile_for_node(
        &cluster_on_one_node(),
        EvalOptions::default(),
        NODE,
        options,
    );
    nft_in(lab.node(), &table.unwrap().text);
    (lab, [a, b, c])
}

/// The guest in `vm` takes `addr` as well and makes it the source of everything it sends.
fn take_source(vm: &str, addr: &str) {
    let (len, family, gateway) = if addr.contains(':') {
        ("128", "-6", "fe80::1")
    } else {
        ("32", "-4", "169.254.1.1")
    };
    ip_in(vm, &format!("addr add {addr}/{len} dev eth0 nodad"));
    ip_in(
        vm,
        &format!("{family} route replace default via {gateway} dev eth0 src {addr}"),
    );
}

#[test]
fn an_egress_isolated_vm_reaches_its_own_node_only_where_a_rule_allows_it() {
    let (lab, [a, _, c]) = lab_with_table();
    let allowed = "pol_p_a-to-kubelet";
    let before = counter_packets(lab.node(), "netpol", allowed);
    assert_eq!(connect(&a, NODE_IP, 10250), Outcome::Reached);
    assert!(counter_packets(lab.node(), "netpol", allowed) > before);

    let denied = counter_packets(lab.node(), "netpol", "denied_egress");
    assert_eq!(connect(&a, NODE_IP, 10255), Outcome::Dropped);
    // The gateway address on the VM's own veth is the node too.
    assert_eq!(connect(&a, "169.254.1.1", 10250), Outcome::Dropped);
    assert!(counter_packets(lab.node(), "netpol", "denied_egress") >= denied + 2);

    // A VM no policy isolates for egress reaches every port of its node.
    assert_eq!(connect(&c, NODE_IP, 10255), Outcome::Reached);
}

#[test]
fn an_ingress_isolated_vm_accepts_connections_from_its_own_node_and_no_one_else() {
    let (lab, [_, b, c]) = lab_with_table();
    assert_eq!(connect(lab.node(), "10.66.20.71", 8080), Outcome::Reached);
    let denied = counter_packets(lab.node(), "netpol", "denied_ingress");
    assert_eq!(connect(&c, "10.66.20.71", 8080), Outcome::Dropped);
    assert!(counter_packets(lab.node(), "netpol", "denied_ingress") > denied);
    // The node's answer to the isolated VM's own connection is a reply, never checked.
    assert_eq!(connect(&b, NODE_IP, 22), Outcome::Reached);
}

#[test]
fn a_vm_reaching_itself_through_its_own_service_is_not_dropped() {
    let (lab, [a, _, _]) = lab_with_table();
    // kube-proxy-like: the Service address DNATs to vm-a, hairpin traffic is masqueraded.
    nft_in(
        lab.node(),
        &format!(
            "table ip np_test_service {{
                chain pre {{
                    type nat hook prerouting priority dstnat; policy accept;
                    ip daddr {SERVICE_IP} tcp dport 80 dnat to 10.66.20.70:8080
                }}
                chain post {{
                    type nat hook postrouting priority srcnat; policy accept;
                    ip saddr 10.66.20.70 ip daddr 10.66.20.70 masquerade
                }}
            }}"
        ),
    );
    // vm-a accepts nothing and may send only to the kubelet, yet it reaches itself.
    assert_eq!(connect(&a, SERVICE_IP, 80), Outcome::Reached);
    // The same Service from another VM is ordinary ingress of vm-a: denied.
    let denied = counter_packets(lab.node(), "netpol", "denied_ingress");
    let c = lab.vms[2].name().to_string();
    assert_eq!(connect(&c, SERVICE_IP, 80), Outcome::Dropped);
    assert!(counter_packets(lab.node(), "netpol", "denied_ingress") > denied);
}

#[test]
fn a_guest_sending_from_an_address_it_does_not_own_is_dropped_counted_and_logged() {
    let (lab, [a, _, c]) = lab_with_table();
    // Routes and neighbour discovery work with the check on: the open vm-c reaches the node
    // over both families (the IPv6 path needs neighbour discovery of fe80::1 both ways).
    assert_eq!(connect(&c, NODE_IP, 22), Outcome::Reached);
    assert_eq!(connect(&c, NODE_IP6, 22), Outcome::Reached);
    let spoofed = counter_packets(lab.node(), "netpol", "denied_spoofed");
    // A second address of its own making, IPv4 and IPv6 (neither is in the manifests).
    take_source(&c, "10.66.20.99");
    assert_eq!(connect(&c, NODE_IP, 22), Outcome::Dropped);
    take_source(&c, "fd00:66::99");
    assert_eq!(connect(&c, NODE_IP6, 22), Outcome::Dropped);
    // A neighbour's address: vm-a would otherwise get vm-b's standing.
    take_source(&a, "10.66.20.71");
    assert_eq!(connect(&a, NODE_IP, 22), Outcome::Dropped);
    assert!(counter_packets(lab.node(), "netpol", "denied_spoofed") >= spoofed + 3);
    let text = nft_list(lab.node(), "chain inet netpol source_verify");
    assert!(
        text.contains(&format!("log prefix \"{SPOOFED_LOG_PREFIX}\"")),
        "{text}"
    );
}

#[test]
fn with_the_source_check_off_a_guest_may_take_any_address() {
    let off = NodeOptions {
        source_check: SourceCheck::Off,
        ..NodeOptions::default()
    };
    let (lab, [_, _, c]) = lab_with(&off);
    // A table of the test's own counts what the node receives from the made-up address (the
    // node has no route back to it, so no answer comes whatever happens).
    nft_in(
        lab.node(),
        "table inet np_test_seen {
            counter from_made_up { }
            chain input {
                type filter hook input priority 10; policy accept;
                ip saddr 10.66.20.99 counter name from_made_up
            }
        }",
    );
    take_source(&c, "10.66.20.99");
    let _ = connect(&c, NODE_IP, 22);
    assert!(counter_packets(lab.node(), "np_test_seen", "from_made_up") > 0);
    assert!(!nft_list(lab.node(), "table inet netpol").contains("source_check"));
}
