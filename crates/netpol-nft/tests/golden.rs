//! Golden tests: the full text for small clusters, plus the decisions those texts encode.

mod common;

use common::*;
use netpol_core::*;
use netpol_nft::{compile, verdict_other_protocol};

#[test]
fn the_users_page_compiles_to_the_expected_table_on_the_node_of_vm_a() {
    let r = compile(&users_page(), EvalOptions::default(), "virtlab-2").unwrap();
    insta::assert_snapshot!("users_page_virtlab_2", r.text);
}

#[test]
fn a_node_without_isolated_workloads_gets_the_empty_skeleton() {
    let r = compile(&users_page(), EvalOptions::default(), "virtlab-1").unwrap();
    insta::assert_snapshot!("users_page_virtlab_1", r.text);
    assert_eq!(r.summary.total_elements, 0);
    assert_eq!(r.summary.local_workloads.len(), 2);
    assert!(r
        .summary
        .local_workloads
        .iter()
        .all(|w| w.ingress_identity.is_none() && w.egress_identity.is_none()));
}

#[test]
fn the_users_page_table_decides_like_the_page_says() {
    let c = users_page();
    let r = compile(&c, EvalOptions::default(), "virtlab-2").unwrap();
    let (a, b, vmc) = (ip("10.66.20.70"), ip("10.66.20.71"), ip("10.66.20.72"));
    let dns = ip("192.0.2.53");
    let other = ip("192.0.2.54");
    // Ingress of vm-a: from vm-b and from another-project on every port, nothing else.
    assert!(r.verdict(b, a, Protocol::Tcp, 22));
    assert!(r.verdict(vmc, a, Protocol::Udp, 9999));
    assert!(!r.verdict(dns, a, Protocol::Tcp, 22));
    // Egress of vm-a: only 192.0.2.53 TCP 53 and TCP 32000-32768.
    assert!(r.verdict(a, dns, Protocol::Tcp, 53));
    assert!(r.verdict(a, dns, Protocol::Tcp, 32768));
    assert!(!r.verdict(a, dns, Protocol::Tcp, 32769));
    assert!(!r.verdict(a, dns, Protocol::Udp, 53));
    assert!(!r.verdict(a, other, Protocol::Tcp, 53));
    assert!(!r.verdict(a, b, Protocol::Tcp, 22));
    // Traffic not touching vm-a is not this node's business.
    assert!(r.verdict(b, vmc, Protocol::Tcp, 1));
    // ICMP: vm-b's rule has no ports, so it allows every protocol; the DNS rule has ports.
    assert!(verdict_other_protocol(r.ir(), b, a));
    assert!(!verdict_other_protocol(r.ir(), dns, a));
    assert!(!verdict_other_protocol(r.ir(), a, dns));
    // Every decision above agrees with the reference evaluator.
    let idx = |name: &str| c.workloads.iter().position(|w| w.name == name).unwrap();
    for (s, d, p, port) in [
        (
            Endpoint::Workload(idx("vm-b")),
            Endpoint::Workload(idx("vm-a")),
            Protocol::Tcp,
            22,
        ),
        (
            Endpoint::External(dns),
            Endpoint::Workload(idx("vm-a")),
            Protocol::Tcp,
            22,
        ),
        (
            Endpoint::Workload(idx("vm-a")),
            Endpoint::External(dns),
            Protocol::Tcp,
            53,
        ),
        (
            Endpoint::Workload(idx("vm-a")),
            Endpoint::External(dns),
            Protocol::Udp,
            53,
        ),
    ] {
        let addr = |e: &Endpoint| match e {
            Endpoint::Workload(i) => c.workloads[*i].addresses[0],
            Endpoint::External(a) => *a,
        };
        let expected = evaluate(&c, EvalOptions::default(), &s, &d, p, port).allowed;
        assert_eq!(
            r.verdict(addr(&s), addr(&d), p, port),
            expected,
            "{s:?} -> {d:?} {p} {port}"
        );
    }
}

/// Dual stack, named ports, ipBlock holes, and the Cilium ipBlock mode.
fn mixed() -> Cluster {
    let web = pod(
        "shop",
        "web",
        &[("app", "web")],
        &["10.1.0.10", "fd00::10"],
        &[
            ("http", Protocol::Tcp, 8080),
            ("metrics", Protocol::Tcp, 9100),
        ],
    )
    .on("n1");
    let db = pod(
        "shop",
        "db",
        &[("app", "db")],
        &["10.1.0.20"],
        &[("pg", Protocol::Tcp, 5432)],
    )
    .on("n2");
    let mon = pod(
        "ops",
        "prom",
        &[("app", "prom")],
        &["10.1.0.30", "fd00::30"],
        &[],
    )
    .on("n2");
    let mut web_in = policy("shop", "web-in", sel(&[("app", "web")]), true, false);
    web_in.ingress = vec![
        Rule {
            peers: vec![],
            ports: vec![port(Protocol::Tcp, Some(PortSpec::Named("http".into())))],
        },
        Rule {
            peers: vec![namespace_named("ops")],
            ports: vec![port(Protocol::Tcp, Some(PortSpec::Named("metrics".into())))],
        },
        Rule {
            peers: vec![
                block("10.0.0.0/8", &["10.1.0.0/24"]),
                block("2001:db8::/32", &[]),
            ],
            ports: vec![
                port(Protocol::Udp, None),
                port(
                    Protocol::Sctp,
                    Some(PortSpec::Range {
                        start: 5000,
                        end: 5010,
                    }),
                ),
            ],
        },
    ];
    let mut web_out = policy("shop", "web-out", sel(&[("app", "web")]), false, true);
    web_out.egress = vec![
        Rule {
            peers: vec![pods_in_own_ns(&[("app", "db")])],
            ports: vec![port(Protocol::Tcp, Some(PortSpec::Named("pg".into())))],
        },
        Rule {
            peers: vec![block("10.1.0.0/16", &[])],
            ports: vec![port(Protocol::Udp, Some(PortSpec::Number(53)))],
        },
    ];
    cluster(
        namespaces(&["shop", "ops"]),
        vec![web, db, mon],
        vec![web_in, web_out],
    )
}

#[test]
fn dual_stack_named_ports_and_holes_compile_to_the_expected_table() {
    let r = compile(&mixed(), EvalOptions::default(), "n1").unwrap();
    insta::assert_snapshot!("mixed_n1_upstream_ipblock", r.text);
}

#[test]
fn in_cilium_mode_workload_addresses_are_shadowed_from_ipblocks() {
    let c = mixed();
    let opts = EvalOptions {
        ipblock_matches_workloads: false,
    };
    let r = compile(&c, opts, "n1").unwrap();
    insta::assert_snapshot!("mixed_n1_cilium_ipblock", r.text);
    let (web, db, prom) = (ip("10.1.0.10"), ip("10.1.0.20"), ip("10.1.0.30"));
    // web -> db UDP 53 is allowed by the ipBlock 10.1.0.0/16 only in upstream mode.
    assert!(!r.verdict(web, db, Protocol::Udp, 53));
    assert!(r.verdict(web, ip("10.1.0.99"), Protocol::Udp, 53));
    let up = compile(&c, EvalOptions::default(), "n1").unwrap();
    assert!(up.verdict(web, db, Protocol::Udp, 53));
    // The named port pg resolves on db (5432), the egress destination.
    assert!(r.verdict(web, db, Protocol::Tcp, 5432));
    assert!(!r.verdict(web, prom, Protocol::Tcp, 5432));
    // Ingress named ports resolve on web itself; metrics only from ops.
    assert!(r.verdict(db, web, Protocol::Tcp, 8080));
    assert!(r.verdict(prom, web, Protocol::Tcp, 9100));
    assert!(!r.verdict(db, web, Protocol::Tcp, 9100));
    // IPv6: prom's v6 address is in namespace ops; 2001:db8::/32 is an ipBlock.
    assert!(r.verdict(ip("fd00::30"), ip("fd00::10"), Protocol::Tcp, 9100));
    assert!(r.verdict(ip("2001:db8::1"), ip("fd00::10"), Protocol::Sctp, 5010));
    assert!(!r.verdict(ip("2001:db8::1"), ip("fd00::10"), Protocol::Sctp, 5011));
    // The hole 10.1.0.0/24 of 10.0.0.0/8.
    assert!(r.verdict(ip("10.2.0.1"), web, Protocol::Udp, 1));
    assert!(!r.verdict(ip("10.1.0.99"), web, Protocol::Udp, 1));
}

#[test]
fn the_summary_counts_elements_identities_and_classes() {
    let r = compile(&mixed(), EvalOptions::default(), "n1").unwrap();
    let s = &r.summary;
    assert_eq!(s.ingress_identities, 1);
    assert_eq!(s.egress_identities, 1);
    // web has two addresses, both dispatched in both directions.
    assert_eq!(s.elements["in_dispatch4"], 1);
    assert_eq!(s.elements["in_dispatch6"], 1);
    assert_eq!(s.elements["eg_dispatch4"], 1);
    assert_eq!(s.total_elements, s.elements.values().sum::<usize>());
    let json = serde_json::to_value(s).unwrap();
    assert_eq!(json["node"], "n1");
    assert_eq!(json["policies"][0]["counter"], "pol_shop_web-in");
}

#[test]
fn two_workloads_sharing_an_address_are_refused() {
    let mut c = users_page();
    c.workloads[1].addresses = c.workloads[0].addresses.clone();
    let err = compile(&c, EvalOptions::default(), "virtlab-2").unwrap_err();
    assert!(err.to_string().contains("10.66.20.70"), "{err}");
}

#[test]
fn compiling_twice_gives_identical_text() {
    let c = mixed();
    let a = compile(&c, EvalOptions::default(), "n1").unwrap();
    let mut shuffled = c.clone();
    shuffled.policies.reverse();
    shuffled.workloads.reverse();
    let b = compile(&shuffled, EvalOptions::default(), "n1").unwrap();
    assert_eq!(a.text, b.text);
}

#[test]
fn every_golden_text_passes_nft_check() {
    // `nft -c` validates without applying; CI installs nftables, so a missing nft is a failure.
    assert!(
        nft_available(),
        "nft -c is not usable here: install nftables (apt-get install -y nftables) and run as root"
    );
    let opts_false = EvalOptions {
        ipblock_matches_workloads: false,
    };
    for (c, opts, node) in [
        (users_page(), EvalOptions::default(), "virtlab-1"),
        (users_page(), EvalOptions::default(), "virtlab-2"),
        (mixed(), EvalOptions::default(), "n1"),
        (mixed(), opts_false, "n1"),
        (mixed(), opts_false, "n2"),
    ] {
        let r = compile(&c, opts, node).unwrap();
        if let Err(e) = nft_check(&r.text) {
            panic!("nft rejected the table for {node}:\n{e}\n{}", r.text);
        }
    }
}
