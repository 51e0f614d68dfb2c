//! The admin tiers' special cases, one test per point of issue #10's "Semantics" list, each
//! written from the API text it cites (line numbers as in `tiers_semantics.rs`): v1alpha1
//! policies in the walk, a workload's own address, hairpin through a Service, the own node, and
//! the explanation of a walk.

mod tiers_common;

use netpol_core::eval::{DirectionVerdict, TierOutcome, TierStep};
use netpol_core::model::*;
use netpol_core::{evaluate, evaluate_hairpin, Endpoint, Verdict};
use tiers_common::*;

// Blog L27-38 / NPEP-285: the BANP becomes the Baseline tier; issue #10: "BANP (the single
// `default` object) = Baseline tier after all v1alpha2 Baseline policies". BANP rules apply "if
// they are not matched by any AdminNetworkPolicy or NetworkPolicy rules" (BANP types L63).
#[test]
fn the_banp_comes_after_every_baseline_cluster_network_policy_whatever_its_priority() {
    let old = banp(subject_namespaces(ns_name("a"))).with_ingress(vec![deny(everyone())]);
    let late = baseline_over(1000, "late", "a").with_ingress(vec![accept(from_ns("b"))]);
    let c = with(vec![], vec![old.clone(), late]);
    let v = oracle_verdict(&c, "b/client", "a/web", Tcp, 80);
    assert!(v.allowed);
    assert_eq!(decided_by(&v.ingress).0, "cnp/late");
    let v = oracle_verdict(&c, "c/other", "a/web", Tcp, 80);
    assert!(!v.allowed);
    assert_eq!(decided_by(&v.ingress).0, "banp/default");
    // A NetworkPolicy isolating the workload overrides the BANP as it does any Baseline policy.
    let mut np = policy("a", "from-c", LabelSelector::everything(), true, false);
    np.ingress.push(rule(vec![namespace_named("c")], vec![]));
    let c = with(vec![np], vec![old]);
    assert!(oracle_allows(&c, "c/other", "a/web", Tcp, 80));
}

// ANP types L63-68 and v1alpha2 L106-107: an AdminNetworkPolicy is an Admin tier policy of the
// same priority range; the two APIs share one order by priority.
#[test]
fn an_anp_takes_its_place_among_admin_cluster_network_policies_by_priority() {
    let old =
        |p| anp(p, "old", subject_namespaces(ns_name("a"))).with_ingress(vec![deny(from_ns("b"))]);
    let new = admin_over(4, "new", "a").with_ingress(vec![accept(from_ns("b"))]);
    let c = with(vec![], vec![new.clone(), old(3)]);
    let v = oracle_verdict(&c, "b/client", "a/web", Tcp, 80);
    assert!(!v.allowed);
    assert_eq!(decided_by(&v.ingress).0, "anp/old");
    let c = with(vec![], vec![new, old(5)]);
    assert!(oracle_allows(&c, "b/client", "a/web", Tcp, 80));
    // An ANP Pass goes to NetworkPolicy, then to the BANP (ANP types L119-124).
    let pass_b =
        anp(1, "pass", subject_namespaces(ns_name("a"))).with_ingress(vec![pass(from_ns("b"))]);
    let base = banp(subject_namespaces(ns_name("a"))).with_ingress(vec![deny(from_ns("b"))]);
    let c = with(vec![], vec![pass_b, base]);
    let v = oracle_verdict(&c, "b/client", "a/web", Tcp, 80);
    assert!(!v.allowed);
    assert_eq!(decided_by(&v.ingress).0, "banp/default");
}

/// Admin policies denying every peer of a/web in both directions, networks included.
fn walled_web() -> Vec<AdminPolicy> {
    let web = subject_pods(ns_name("a"), sel(&[("app", "web")]));
    let all = vec![
        peer_namespaces(LabelSelector::everything()),
        peer_networks(&["0.0.0.0/0", "::/0"]),
    ];
    vec![cnp(AdminTier::Admin, 1, "wall", web)
        .with_ingress(vec![deny(everyone())])
        .with_egress(vec![deny(all)])]
}

fn web_index(c: &Cluster) -> usize {
    match end_named(c, "a/web") {
        Endpoint::Workload(i) => i,
        Endpoint::External(a) => panic!("a/web is {a}"),
    }
}

// overview L52-64: "A pod connecting to its own pod IP is not subject to CNP".
#[test]
fn a_workload_reaching_its_own_address_is_exempt_from_every_tier() {
    let c = with(vec![], walled_web());
    assert!(!oracle_allows(&c, "a/web", "a/db", Tcp, 80));
    let v = oracle_verdict(&c, "a/web", "a/web", Tcp, 80);
    assert!(v.allowed);
    assert_eq!(v.egress, DirectionVerdict::SelfTraffic);
    assert_eq!(v.ingress, DirectionVerdict::SelfTraffic);
}

fn hairpin(c: &Cluster) -> Verdict {
    evaluate_hairpin(c, EvalOptions::default(), web_index(c), Tcp, 80)
}

// overview L52-64: through "a Service IP that load-balances back to itself, it is subject to
// CNP" (conformance CNPAdminTierHairpin: an Admin Deny from its own namespace denies it).
#[test]
fn hairpin_through_a_service_is_subject_to_the_admin_and_baseline_tiers() {
    let own_ns = admin_over(15, "hairpin-ingress-deny", "a").with_ingress(vec![deny(from_ns("a"))]);
    assert!(!hairpin(&with(vec![], vec![own_ns])).allowed);
    assert!(hairpin(&with(vec![], vec![])).allowed);
    let base = baseline_over(1, "no-self", "a").with_egress(vec![deny(from_ns("a"))]);
    let v = hairpin(&with(vec![], vec![base]));
    assert!(!v.allowed);
    assert!(!v.egress.allows() && v.ingress.allows());
}

// Issue #10: "the NetworkPolicy tier keeps allowing self-traffic" (NetworkPolicy never isolates
// a pod from itself), and its decision is final for the pods it isolates (v1alpha2 L76-81).
#[test]
fn network_policy_keeps_allowing_hairpin_for_the_workloads_it_isolates() {
    let isolate = policy("a", "deny-all", LabelSelector::everything(), true, true);
    assert!(hairpin(&with(vec![isolate.clone()], vec![])).allowed);
    let pass_own = admin_over(1, "pass", "a")
        .with_ingress(vec![pass(from_ns("a"))])
        .with_egress(vec![pass(from_ns("a"))]);
    let base = baseline_over(1, "no-self", "a")
        .with_ingress(vec![deny(from_ns("a"))])
        .with_egress(vec![deny(from_ns("a"))]);
    // Passed to NetworkPolicy, which isolates a/web: allowed there, Baseline not reached.
    let v = hairpin(&with(vec![isolate], vec![pass_own.clone(), base.clone()]));
    assert!(v.allowed, "{}", v.explain());
    assert!(matches!(
        steps(&v.ingress),
        [TierStep::Admin { .. }, TierStep::NetworkPolicy { verdict }]
            if **verdict == DirectionVerdict::SelfTraffic
    ));
    // Without a NetworkPolicy the Baseline Deny decides.
    assert!(!hairpin(&with(vec![], vec![pass_own, base])).allowed);
}

// netpol's choice, as for NetworkPolicy (eval/mod.rs `side_verdict`: "an ingress-isolated pod
// still accepts connections from its own node"): kubelet probes keep working under an Admin
// deny-all; other nodes are external addresses like any other.
#[test]
fn ingress_from_the_workloads_own_node_stays_allowed_under_an_admin_deny_all() {
    let deny_all =
        admin_over(1, "deny-all", "a").with_ingress(vec![deny(vec![AdminPeer::Unknown])]);
    let mut c = with(vec![], vec![deny_all]);
    c.nodes = vec![
        node("n1", &[], &["198.51.100.1"]),
        node("n2", &[], &["198.51.100.2"]),
    ];
    let web = web_index(&c);
    c.workloads[web].node = Some("n1".into());
    let v = oracle_verdict(&c, "198.51.100.1", "a/web", Tcp, 8080);
    assert!(v.allowed);
    assert!(matches!(v.ingress, DirectionVerdict::OwnNode { .. }));
    assert!(!oracle_allows(&c, "198.51.100.2", "a/web", Tcp, 8080));
    assert!(!oracle_allows(&c, "b/client", "a/web", Tcp, 8080));
}

// Issue #10: "`check` explains the walk: for each direction, each tier in turn, which policy and
// rule matched (name, priority, action, file:line) or that none did, and where Pass sent it."
#[test]
fn the_explanation_names_the_deciding_policy_priority_action_rule_and_where_pass_sent_it() {
    let mut guard =
        admin_over(10, "guard", "a").with_egress(vec![pass(from_ns("b")).named("to-b")]);
    guard.origin = Some(Origin {
        file: "tiers.yaml".into(),
        line: 3,
    });
    let base = baseline_over(20, "base", "a").with_egress(vec![
        accept(from_ns("c")).named("to-c"),
        deny(from_ns("b"))
            .named("no-b")
            .on(vec![proto_port(Tcp, 80)]),
    ]);
    let c = with(vec![], vec![guard, base]);
    let v = oracle_verdict(&c, "a/db", "b/client", Tcp, 80);
    assert!(!v.allowed);
    let text = v.explain();
    for line in [
        "egress from a/db: denied",
        "Admin tier: passed to the NetworkPolicy tier by cnp/guard (priority 10) (tiers.yaml:3)",
        "rule egress[0] \"to-b\" Pass to namespaces kubernetes.io/metadata.name=b, all ports",
        "on to the Baseline tier",
        "Baseline tier: denied by cnp/base (priority 20)",
        "rule egress[1] \"no-b\" Deny to namespaces kubernetes.io/metadata.name=b, ports TCP 80",
        "ingress to b/client: open",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // A Baseline Pass names the default, and a tier none of whose rules match says so.
    let c = with(
        vec![],
        vec![baseline_over(20, "base", "a").with_egress(vec![pass(from_ns("b"))])],
    );
    let text = oracle_verdict(&c, "a/db", "b/client", Tcp, 80).explain();
    assert!(
        text.contains("Baseline tier: passed to the default (allow) by cnp/base (priority 20)"),
        "{text}"
    );
    assert!(
        text.contains("default: allowed (no tier decided)"),
        "{text}"
    );
    let text = oracle_verdict(&c, "a/db", "c/other", Tcp, 80).explain();
    assert!(
        text.contains("Baseline tier: no rule matches (selected by cnp/base)"),
        "{text}"
    );
    let v = evaluate(
        &c,
        EvalOptions::default(),
        &end_named(&c, "a/db"),
        &end_named(&c, "c/other"),
        Tcp,
        80,
    );
    assert!(matches!(
        steps(&v.egress)[0],
        TierStep::Admin {
            outcome: TierOutcome::NoPolicy
        }
    ));
}
