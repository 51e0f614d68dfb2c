//! A flow between two replicas of one workload is an ordinary pair (issue #11): the evaluator
//! decides it like a flow between two workloads with the same labels, namespace and named ports
//! (`evaluate_replicas`), and the analyzer's diagonal cell of a workload with replicas is that
//! pair, per family too; a single instance keeps reaching its own address on every port. NP003
//! (redundancy) stays sound for replica pairs: removing what it reports changes none of them.

use netpol_core::analysis::Analyzer;
use netpol_core::eval::{
    evaluate, evaluate_ends, evaluate_hairpin, evaluate_replicas, evaluate_replicas_at, Endpoint,
    FlowEnd,
};
use netpol_core::model::*;
use netpol_test_support::arb::{self, ClusterShape};
use netpol_test_support::lint::without_redundancies;
use netpol_test_support::{ip, namespaces, pod, policy, rule, sel};
use proptest::prelude::*;

use Protocol::Tcp;

/// `shop/api`, a Deployment of `instances` with the Pods' addresses given (folded), named port
/// `http` = 8080.
fn api(addresses: &[&str], instances: Instances) -> Workload {
    let mut w = pod(
        "shop",
        "api",
        &[("app", "api")],
        addresses,
        &[("http", Tcp, 8080)],
    );
    w.kind = WorkloadKind::Deployment;
    w.instances = instances;
    w
}

fn tcp(port: PortSpec) -> PolicyPort {
    PolicyPort {
        protocol: Tcp,
        port: Some(port),
    }
}

/// `shop/api-in`: api's ingress from `peers` on `ports`.
fn ingress(peers: Vec<Peer>, ports: Vec<PolicyPort>) -> Policy {
    let mut p = policy("shop", "api-in", sel(&[("app", "api")]), true, false);
    p.ingress.push(rule(peers, ports));
    p
}

fn cluster(workloads: Vec<Workload>, policies: Vec<Policy>) -> Cluster {
    let mut c = Cluster {
        namespaces: namespaces(&["shop"]),
        workloads,
        policies,
        ..Default::default()
    };
    c.add_missing_namespaces();
    c
}

fn block(cidr: &str) -> Peer {
    Peer::IpBlock(IpBlock {
        cidr: cidr.parse().unwrap_or_else(|e| panic!("{cidr}: {e}")),
        except: vec![],
    })
}

fn in_ranges(r: &[(u16, u16)], port: u16) -> bool {
    r.iter().any(|(lo, hi)| *lo <= port && port <= *hi)
}

#[test]
fn a_named_port_of_a_replica_pair_resolves_on_the_workload_and_nothing_else_is_open() {
    let c = cluster(
        vec![api(&["10.0.0.1", "10.0.0.2"], Instances::Count(2))],
        vec![ingress(
            vec![Peer::Selector {
                pod_selector: Some(sel(&[("app", "api")])),
                namespace_selector: None,
            }],
            vec![tcp(PortSpec::Named("http".into()))],
        )],
    );
    let opts = EvalOptions::default();
    let allowed = evaluate_replicas(&c, opts, 0, Tcp, 8080);
    assert!(allowed.allowed, "{}", allowed.explain());
    assert_eq!(allowed.replicas_of.as_deref(), Some("deployment/shop/api"));
    assert!(!evaluate_replicas(&c, opts, 0, Tcp, 80).allowed);
    // The analyzer's diagonal is that pair: TCP 8080 alone.
    let analyzer = Analyzer::new(&c, opts);
    assert!(analyzer.truth_table(Tcp, 8080).allowed(0, 0));
    assert!(!analyzer.truth_table(Tcp, 80).allowed(0, 0));
    let map = analyzer.connectivity_map();
    assert_eq!(map.ports(0, 0, Tcp), [(8080, 8080)]);
    assert!(map.ports(0, 0, Protocol::Udp).is_empty());
    assert!(!map.is_own_address(0, 0));
    // Reaching its own address is still allowed, and a Service back to it is hairpin as before.
    let own = evaluate(
        &c,
        opts,
        &Endpoint::Workload(0),
        &Endpoint::Workload(0),
        Tcp,
        80,
    );
    assert!(
        own.allowed && own.replicas_of.is_none(),
        "{}",
        own.explain()
    );
    assert!(evaluate_hairpin(&c, opts, 0, Tcp, 80).allowed);
}

#[test]
fn a_single_instance_reaches_its_own_address_on_every_port_whatever_isolates_it() {
    for instances in [Instances::Count(1), Instances::Count(0)] {
        let c = cluster(
            vec![api(&["10.0.0.1"], instances)],
            vec![ingress(vec![], vec![])],
        );
        let mut deny = c.clone();
        deny.policies[0].ingress.clear();
        let analyzer = Analyzer::new(&deny, EvalOptions::default());
        assert!(analyzer.truth_table(Tcp, 80).allowed(0, 0), "{instances:?}");
        let map = analyzer.connectivity_map();
        assert_eq!(map.ports(0, 0, Tcp), [(1, 65535)]);
        assert!(map.is_own_address(0, 0));
        assert!(!map.to_text().contains("shop/api -> shop/api"));
        let fv = evaluate_ends(
            &deny,
            EvalOptions::default(),
            &FlowEnd::Workload {
                index: 0,
                address: None,
            },
            &FlowEnd::Workload {
                index: 0,
                address: None,
            },
            Tcp,
            80,
        );
        assert!(fv.allowed(), "{}", fv.explain());
    }
}

#[test]
fn a_dual_stack_deployments_replicas_differ_by_family_where_an_ipblock_admits_one() {
    let c = cluster(
        vec![api(&["10.0.0.1", "fd00::1"], Instances::PerNode)],
        vec![ingress(vec![block("10.0.0.0/8")], vec![])],
    );
    let opts = EvalOptions {
        ipblock_matches_workloads: true,
    };
    let end = FlowEnd::Workload {
        index: 0,
        address: None,
    };
    let fv = evaluate_ends(&c, opts, &end, &end, Tcp, 80);
    let per_family: Vec<(Option<IpFamily>, bool)> =
        fv.verdicts.iter().map(|(f, v)| (*f, v.allowed)).collect();
    assert_eq!(
        per_family,
        [(Some(IpFamily::V4), true), (Some(IpFamily::V6), false)],
        "{}",
        fv.explain()
    );
    assert!(
        !evaluate_replicas_at(&c, opts, 0, Some(ip("fd00::1")), None, Tcp, 80).allowed,
        "an IPv6 replica pair"
    );
    let analyzer = Analyzer::new(&c, opts);
    let table = analyzer.truth_table(Tcp, 80);
    assert_eq!(table.by_family(0, 0), Some([true, false]));
    let map = analyzer.connectivity_map();
    assert!(map.differs(0, 0));
    assert!(in_ranges(map.ports_in(0, 0, Tcp, IpFamily::V4), 80));
    assert!(map.ports_in(0, 0, Tcp, IpFamily::V6).is_empty());
    let text = map.to_text();
    assert_eq!(
        text,
        "shop/api -> shop/api  IPv4: TCP 1-65535, UDP 1-65535, SCTP 1-65535; IPv6: none\n"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn removing_what_np003_reports_changes_no_replica_pair(
        c in arb::cluster(&ClusterShape::for_the_analyzer_with_nodes()),
    ) {
        for opts in [EvalOptions { ipblock_matches_workloads: true }, EvalOptions::default()] {
            let reduced = without_redundancies(&c, opts);
            let ports = netpol_test_support::interesting_ports([&c], &[]);
            for w in (0..c.workloads.len()).filter(|&w| c.workloads[w].has_replicas()) {
                for protocol in Protocol::ALL {
                    for &port in &ports {
                        let before = evaluate_replicas(&c, opts, w, protocol, port);
                        let after = evaluate_replicas(&reduced, opts, w, protocol, port);
                        prop_assert_eq!(before.allowed, after.allowed, "{}", before.explain());
                    }
                }
            }
        }
    }
}
