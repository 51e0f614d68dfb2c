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

use common::lab::*;
use common::*;
use netpol_core::{Cluster, EvalOptions};
use netpol_nft::{compile_for_node, NodeOptions, SourceCheck, SPOOFED_LOG_PREFIX};

const NODE: &str = "n1";
const SERVICE_IP: &str = "10.96.0.10";

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
