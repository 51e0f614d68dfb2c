//! The admin tiers on the real kernel: a node namespace routing for four VMs, the compiled table
//! loaded with `nft -f`, and TCP connection attempts between the VMs (and of a VM to itself
//! through a Service) whose outcome is held against the reference evaluator:
//! * an Admin Deny overrides a NetworkPolicy allow (and is counted as its rule, and logged to
//!   NFLOG with a prefix the ruleset reads back as that rule);
//! * an Admin Pass hands the flow to NetworkPolicy, past a lower-priority Admin Deny;
//! * a Baseline Deny holds for a workload no NetworkPolicy isolates, and a NetworkPolicy opens
//!   what it denies for the workloads it isolates;
//! * hairpin traffic through a Service is denied by an Admin Deny;
//! * an Admin egress Accept overrides the source's NetworkPolicy and still leaves the
//!   destination's ingress to decide;
//! * an incremental update (one admin policy changed) loads and takes effect.

// Helpers outside #[test] functions panic too: in a test a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::lab::*;
use common::*;
use netpol_core::*;
use netpol_nft::{compile, update_script, CounterReading, Ruleset};

const NODE: &str = "n1";
const SERVICE_IP: &str = "10.96.0.10";
const ADDRS: [&str; 4] = ["10.66.20.70", "10.66.20.71", "10.66.20.72", "10.66.20.73"];

fn pods(l: &[(&str, &str)]) -> AdminPeer {
    AdminPeer::Pods {
        namespace_selector: LabelSelector::default(),
        pod_selector: sel(l),
    }
}

fn tcp_port(n: u16) -> AdminPort {
    AdminPort::Protocol {
        protocol: Protocol::Tcp,
        ports: Some((n, n)),
    }
}

fn admin_rule(action: AdminAction, peers: Vec<AdminPeer>, ports: &[u16]) -> AdminRule {
    AdminRule {
        name: None,
        action,
        peers,
        ports: Some(ports.iter().map(|&p| tcp_port(p)).collect()),
        origin: None,
    }
}

fn cnp(name: &str, tier: AdminTier, priority: u32, subject: &[(&str, &str)]) -> AdminPolicy {
    AdminPolicy {
        api: AdminApi::ClusterNetworkPolicy,
        name: name.to_string(),
        tier,
        priority,
        subject: AdminSubject::Pods {
            namespace_selector: LabelSelector::default(),
            pod_selector: sel(subject),
        },
        ingress: Vec::new(),
        egress: Vec::new(),
        origin: None,
    }
}

/// vm-b is isolated for ingress by a NetworkPolicy allowing vm-c on 8080 and 8081 and vm-a on
/// 9000 and 7000. Admin tier: `pass-a-to-b` (priority 5) passes vm-a -> vm-b 9000 on,
/// `deny-c-to-b` (10) denies vm-c -> vm-b 8080, `deny-all-to-b` (20) denies everyone -> vm-b
/// 9000; `no-hairpin-a` (30) denies vm-a's egress to itself on 8080. Baseline tier:
/// `baseline-7000` denies ingress on 7000 from every workload to every workload. vm-d is
/// isolated by nothing.
fn tiered_cluster() -> Cluster {
    let mut allow_b = policy("p", "allow-b", sel(&[("vm", "b")]), true, false);
    allow_b.ingress = vec![
        rule(
            vec![pods_in_own_ns(&[("vm", "c")])],
            vec![tcp(8080), tcp(8081)],
        ),
        rule(
            vec![pods_in_own_ns(&[("vm", "a")])],
            vec![tcp(9000), tcp(7000)],
        ),
    ];
    let mut pass = cnp("pass-a-to-b", AdminTier::Admin, 5, &[("vm", "b")]);
    pass.ingress = vec![admin_rule(
        AdminAction::Pass,
        vec![pods(&[("vm", "a")])],
        &[9000],
    )];
    let mut deny_c = cnp("deny-c-to-b", AdminTier::Admin, 10, &[("vm", "b")]);
    deny_c.ingress = vec![admin_rule(
        AdminAction::Deny,
        vec![pods(&[("vm", "c")])],
        &[8080],
    )];
    let mut deny_all = cnp("deny-all-to-b", AdminTier::Admin, 20, &[("vm", "b")]);
    deny_all.ingress = vec![admin_rule(
        AdminAction::Deny,
        vec![AdminPeer::Namespaces(LabelSelector::default())],
        &[9000],
    )];
    let mut hairpin = cnp("no-hairpin-a", AdminTier::Admin, 30, &[("vm", "a")]);
    hairpin.egress = vec![admin_rule(
        AdminAction::Deny,
        vec![pods(&[("vm", "a")])],
        &[8080],
    )];
    let mut baseline = cnp("baseline-7000", AdminTier::Baseline, 0, &[]);
    baseline.ingress = vec![admin_rule(
        AdminAction::Deny,
        vec![AdminPeer::Namespaces(LabelSelector::default())],
        &[7000],
    )];
    let mut c = cluster(
        namespaces(&["p"]),
        ["a", "b", "c", "d"]
            .iter()
            .zip(ADDRS)
            .map(|(n, a)| vm("p", &format!("vm-{n}"), &[("vm", n)], &[a]).on(NODE))
            .collect(),
        vec![allow_b],
    );
    c.admin_policies = vec![pass, deny_c, deny_all, hairpin, baseline];
    c
}

/// The node, vm-a to vm-d wired to it, the Service DNATing to vm-a:8080 (with kube-proxy's
/// hairpin masquerade) and `ruleset` loaded.
fn lab(ruleset: &Ruleset) -> (NodeLab, Vec<String>) {
    require_root();
    let mut lab = NodeLab::new();
    let vms: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .zip(ADDRS)
        .enumerate()
        .map(|(i, (tag, a))| lab.vm(tag, a, &format!("fd00:66::{}", 70 + i)))
        .collect();
    nft_in(lab.node(), &ruleset.text);
    nft_in(
        lab.node(),
        &format!(
            "table ip np_test_service {{
                chain pre {{
                    type nat hook prerouting priority dstnat; policy accept;
                    ip daddr {SERVICE_IP} tcp dport 80 dnat to {a}:8080
                }}
                chain post {{
                    type nat hook postrouting priority srcnat; policy accept;
                    ip saddr {a} ip daddr {a} masquerade
                }}
            }}",
            a = ADDRS[0]
        ),
    );
    (lab, vms)
}

/// Connects VM `src` to VM `dst` on `port`, asserts the outcome is what the evaluator says and
/// returns it.
fn check(c: &Cluster, vms: &[String], src: usize, dst: usize, port: u16) -> Outcome {
    let got = connect(&vms[src], ADDRS[dst], port);
    let v = evaluate(
        c,
        EvalOptions::default(),
        &Endpoint::Workload(src),
        &Endpoint::Workload(dst),
        Protocol::Tcp,
        port,
    );
    let expected = if v.allowed {
        Outcome::Reached
    } else {
        Outcome::Dropped
    };
    assert_eq!(got, expected, "{} -> {} TCP {port}", ADDRS[src], ADDRS[dst]);
    got
}

fn counter(lab: &NodeLab, name: &str) -> u64 {
    counter_packets(lab.node(), "netpol", name)
}

fn admin_counter(r: &Ruleset, policy: &str) -> String {
    r.admin_rule_counters()
        .iter()
        .find(|a| a.policy == policy)
        .map(|a| a.counter.clone())
        .expect("the rule has a counter")
}

#[test]
fn an_admin_deny_overrides_a_network_policy_allow_and_is_counted_and_logged_as_its_rule() {
    let c = tiered_cluster();
    let r = compile(&c, EvalOptions::default(), NODE).unwrap();
    let (lab, vms) = lab(&r);
    let deny = admin_counter(&r, "cnp/deny-c-to-b");
    let before = counter(&lab, &deny);
    assert_eq!(check(&c, &vms, 2, 1, 8080), Outcome::Dropped);
    assert!(counter(&lab, &deny) > before);
    // The NetworkPolicy's other port is not the Admin rule's: allowed.
    assert_eq!(check(&c, &vms, 2, 1, 8081), Outcome::Reached);
    let listing = nft_list(lab.node(), "table inet netpol");
    assert!(
        listing.contains("log prefix \"netpol:ingress:cnp/deny-c-to-b[0]\""),
        "{listing}"
    );
}

#[test]
fn a_packet_an_admin_deny_drops_is_logged_with_a_prefix_naming_the_rule() {
    let c = tiered_cluster();
    let r = compile(&c, EvalOptions::default(), NODE).unwrap();
    let (lab, vms) = lab(&r);
    let mut socket =
        netpol_dataplane::NflogSocket::open(Some(lab.node()), netpol_nft::DENIED_LOG_GROUP)
            .expect("listener");
    assert_eq!(check(&c, &vms, 2, 1, 8080), Outcome::Dropped);
    let mut prefixes = Vec::new();
    while let Some(rec) = socket
        .recv_timeout(Some(std::time::Duration::from_millis(500)))
        .expect("receive")
    {
        prefixes.push(rec.prefix);
    }
    let prefix = prefixes
        .iter()
        .find(|p| p.contains("cnp/"))
        .unwrap_or_else(|| panic!("no admin rule's prefix in {prefixes:?}"));
    let (direction, tail) = netpol_nft::parse_denied_log_prefix(prefix).unwrap();
    let rule = r
        .denied_chain(direction, tail)
        .and_then(|i| i.admin_rule)
        .expect("the ruleset names the rule");
    assert_eq!(rule.label(), "cnp/deny-c-to-b ingress[0]");
}

#[test]
fn an_admin_pass_hands_the_flow_to_network_policy_past_a_later_admin_deny() {
    let c = tiered_cluster();
    let r = compile(&c, EvalOptions::default(), NODE).unwrap();
    let (lab, vms) = lab(&r);
    let pass = admin_counter(&r, "cnp/pass-a-to-b");
    let before = counter(&lab, &pass);
    assert_eq!(check(&c, &vms, 0, 1, 9000), Outcome::Reached);
    assert!(counter(&lab, &pass) > before, "Pass is counted too");
    // Not passed: the priority-20 Deny decides.
    assert_eq!(check(&c, &vms, 3, 1, 9000), Outcome::Dropped);
}

#[test]
fn a_baseline_deny_holds_where_no_network_policy_isolates_and_a_network_policy_opens_it() {
    let c = tiered_cluster();
    let r = compile(&c, EvalOptions::default(), NODE).unwrap();
    let (_lab, vms) = lab(&r);
    // vm-d: no NetworkPolicy, so the Baseline tier decides.
    assert_eq!(check(&c, &vms, 0, 3, 7000), Outcome::Dropped);
    assert_eq!(check(&c, &vms, 0, 3, 7001), Outcome::Reached);
    // vm-b: its NetworkPolicy decides, and allows vm-a on 7000.
    assert_eq!(check(&c, &vms, 0, 1, 7000), Outcome::Reached);
    assert_eq!(check(&c, &vms, 2, 1, 7000), Outcome::Dropped);
}

#[test]
fn hairpin_through_a_service_is_denied_by_an_admin_deny() {
    let c = tiered_cluster();
    let r = compile(&c, EvalOptions::default(), NODE).unwrap();
    let (lab, vms) = lab(&r);
    let expected = evaluate_hairpin(&c, EvalOptions::default(), 0, Protocol::Tcp, 8080);
    assert!(!expected.allowed);
    let deny = admin_counter(&r, "cnp/no-hairpin-a");
    let before = counter(&lab, &deny);
    assert_eq!(connect(&vms[0], SERVICE_IP, 80), Outcome::Dropped);
    assert!(counter(&lab, &deny) > before);
    // Without the Admin policy the same hairpin flow is accepted.
    let mut open = c.clone();
    open.admin_policies.retain(|p| p.name != "no-hairpin-a");
    assert!(evaluate_hairpin(&open, EvalOptions::default(), 0, Protocol::Tcp, 8080).allowed);
    let r2 = compile(&open, EvalOptions::default(), NODE).unwrap();
    nft_in(lab.node(), &r2.text);
    assert_eq!(connect(&vms[0], SERVICE_IP, 80), Outcome::Reached);
}

/// `tiered_cluster` with vm-a's egress isolated by a NetworkPolicy allowing nothing, and an
/// Admin policy accepting vm-a's egress to vm-b and vm-d on TCP 5000.
fn egress_accept_cluster() -> Cluster {
    let mut c = tiered_cluster();
    c.policies
        .push(policy("p", "a-no-egress", sel(&[("vm", "a")]), false, true));
    let mut accept = cnp("accept-a-out", AdminTier::Admin, 1, &[("vm", "a")]);
    accept.egress = vec![admin_rule(
        AdminAction::Accept,
        vec![pods(&[("vm", "b")]), pods(&[("vm", "d")])],
        &[5000],
    )];
    c.admin_policies.push(accept);
    c
}

#[test]
fn an_admin_egress_accept_overrides_network_policy_and_leaves_the_destinations_ingress_to_decide() {
    let c = egress_accept_cluster();
    let r = compile(&c, EvalOptions::default(), NODE).unwrap();
    let (lab, vms) = lab(&r);
    let accept = admin_counter(&r, "cnp/accept-a-out");
    let before = counter(&lab, &accept);
    // vm-d isolates nothing: the egress Accept is the whole answer.
    assert_eq!(check(&c, &vms, 0, 3, 5000), Outcome::Reached);
    assert!(counter(&lab, &accept) > before);
    // Another port: vm-a's NetworkPolicy denies its egress.
    assert_eq!(check(&c, &vms, 0, 3, 5001), Outcome::Dropped);
    // vm-b's ingress NetworkPolicy allows vm-a on 9000 and 7000 only: the egress Accept does
    // not open vm-b's ingress.
    assert_eq!(check(&c, &vms, 0, 1, 5000), Outcome::Dropped);
}

#[test]
fn admin_denies_of_every_protocol_and_of_every_tcp_port_drop_what_the_evaluator_says() {
    let mut c = tiered_cluster();
    let mut all = cnp("deny-c-to-d-all", AdminTier::Admin, 40, &[("vm", "d")]);
    let mut rule = admin_rule(AdminAction::Deny, vec![pods(&[("vm", "c")])], &[]);
    rule.ports = None;
    all.ingress = vec![rule];
    let mut tcp_only = cnp("deny-b-to-d-tcp", AdminTier::Admin, 41, &[("vm", "d")]);
    let mut rule = admin_rule(AdminAction::Deny, vec![pods(&[("vm", "b")])], &[]);
    rule.ports = Some(vec![AdminPort::Protocol {
        protocol: Protocol::Tcp,
        ports: None,
    }]);
    tcp_only.ingress = vec![rule];
    c.admin_policies.extend([all, tcp_only]);
    let r = compile(&c, EvalOptions::default(), NODE).unwrap();
    // Every protocol of vm-c's class is one element; every TCP port of vm-b's another.
    assert!(
        r.text
            .contains(". 0-255 . 0-65535 comment \"cnp/deny-c-to-d-all ingress[0]\""),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains(". tcp . 0-65535 comment \"cnp/deny-b-to-d-tcp ingress[0]\""),
        "{}",
        r.text
    );
    let (_lab, vms) = lab(&r);
    for port in [1234, 8080] {
        assert_eq!(check(&c, &vms, 2, 3, port), Outcome::Dropped);
        assert_eq!(check(&c, &vms, 1, 3, port), Outcome::Dropped);
        assert_eq!(check(&c, &vms, 0, 3, port), Outcome::Reached);
    }
}

#[test]
fn an_incremental_update_changing_one_admin_policy_loads_and_takes_effect() {
    let c = tiered_cluster();
    let old = compile(&c, EvalOptions::default(), NODE).unwrap();
    let (lab, vms) = lab(&old);
    assert_eq!(check(&c, &vms, 2, 1, 8080), Outcome::Dropped);
    // deny-c-to-b now denies 8081 instead of 8080.
    let mut changed = c.clone();
    for p in &mut changed.admin_policies {
        if p.name == "deny-c-to-b" {
            p.ingress[0].ports = Some(vec![tcp_port(8081)]);
        }
    }
    let new = compile(&changed, EvalOptions::default(), NODE).unwrap();
    let deny = admin_counter(&new, "cnp/deny-c-to-b");
    let before = counter(&lab, &deny);
    let script = update_script(&old, &new).expect("an incremental update");
    assert!(!script.contains("delete table"), "{script}");
    nft_in(lab.node(), &script);
    assert_eq!(check(&changed, &vms, 2, 1, 8080), Outcome::Reached);
    assert_eq!(check(&changed, &vms, 2, 1, 8081), Outcome::Dropped);
    // The rule's counter is the same object: it kept counting across the update.
    assert!(counter(&lab, &deny) > before);
    let readings = CounterReading::parse_listing(&nft_json(lab.node())).unwrap();
    assert!(readings.iter().any(|c| c.name == deny && c.packets > 0));
}

fn nft_json(ns: &str) -> String {
    let out = std::process::Command::new("ip")
        .args([
            "netns", "exec", ns, "nft", "-j", "list", "table", "inet", "netpol",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
