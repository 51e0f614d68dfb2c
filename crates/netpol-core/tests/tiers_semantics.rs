//! The admin tiers' order and actions, one test per point of issue #10's "Semantics" list, each
//! written from the API text it cites. Line numbers are those of kubernetes-sigs/network-policy-api
//! at commit 0eec1b0 (as the lead's API-facts notes for issue #10 list them): "v1alpha2 L.." is
//! `apis/v1alpha2/clusternetworkpolicy_types.go`, "overview L.." is `site-src/api-overview.md`,
//! "facts #n" the notes' point n. Subjects, peers and ports are in `tiers_semantics_peers.rs`;
//! v1alpha1, self traffic, hairpin, the own node and the explanation in
//! `tiers_semantics_special.rs`.
//!
//! Every probe goes through the oracle (`netpol_core::evaluate`); the fast paths do not walk the
//! tiers yet.

mod tiers_common;

use netpol_core::eval::{DirectionVerdict, TierOutcome, TierStep};
use netpol_core::model::*;
use tiers_common::*;

// v1alpha2 L62-91: "Policy tiers are evaluated in the following order: * Admin tier
// * NetworkPolicy tier * Baseline tier"; "If Admin tier has made a final decision (Accept or
// Deny) on a connection, then no further evaluation is done"; Baseline "can be overridden by the
// v1.NetworkPolicy".
#[test]
fn the_admin_tier_decides_before_network_policy_and_network_policy_before_baseline() {
    let mut np = policy("a", "web-from-all", sel(&[("app", "web")]), true, false);
    np.ingress.push(from_anywhere_in_cluster());
    let c = with(
        vec![np],
        vec![
            admin_over(10, "no-b", "a").with_ingress(vec![deny(from_ns("b"))]),
            baseline_over(10, "no-c", "a").with_ingress(vec![deny(from_ns("c"))]),
        ],
    );
    // The Admin Deny wins over the NetworkPolicy that allows everything.
    assert!(!oracle_allows(&c, "b/client", "a/web", Tcp, 80));
    // The NetworkPolicy's allow wins over the Baseline Deny.
    assert!(oracle_allows(&c, "c/other", "a/web", Tcp, 80));
    // a/db is isolated by no NetworkPolicy: the Baseline Deny decides.
    assert!(!oracle_allows(&c, "c/other", "a/db", Tcp, 80));
    // The walk of that flow: no Admin rule matched, the NetworkPolicy tier decided.
    let v = oracle_verdict(&c, "c/other", "a/web", Tcp, 80);
    assert!(matches!(
        steps(&v.ingress),
        [
            TierStep::Admin {
                outcome: TierOutcome::NoMatch { .. }
            },
            TierStep::NetworkPolicy { .. }
        ]
    ));
}

// v1alpha2 L78-80 (api-overview): developers "CANNOT override these rules"; an Admin Accept is
// final for its direction (v1alpha2 L193-200: "No further ingress ClusterNetworkPolicy or
// NetworkPolicy rules will be processed").
#[test]
fn an_admin_accept_is_not_undone_by_a_network_policy_that_denies() {
    let deny_all = policy("a", "deny-all", LabelSelector::everything(), true, false);
    let c = with(
        vec![deny_all],
        vec![admin_over(10, "dns", "a").with_ingress(vec![accept(from_ns("b"))])],
    );
    assert!(oracle_allows(&c, "b/client", "a/web", Tcp, 80));
    // What the Admin tier does not accept is left to the isolating NetworkPolicy.
    assert!(!oracle_allows(&c, "c/other", "a/web", Tcp, 80));
}

// v1alpha2 L106-107 and L93-97: "Policies with lower priority values have higher precedence,
// and are checked before policies with higher priority values in the same tier."
#[test]
fn a_lower_priority_number_decides_first_whatever_the_load_order() {
    let accept_all = |p| admin_over(p, "accept-all", "a").with_ingress(vec![accept(everyone())]);
    let deny_b = |p| admin_over(p, "deny-b", "a").with_ingress(vec![deny(from_ns("b"))]);
    let c = with(vec![], vec![accept_all(20), deny_b(10)]);
    assert!(!oracle_allows(&c, "b/client", "a/web", Tcp, 80));
    assert!(oracle_allows(&c, "c/other", "a/web", Tcp, 80));
    let c = with(vec![], vec![accept_all(20), deny_b(30)]);
    assert!(oracle_allows(&c, "b/client", "a/web", Tcp, 80));
    // The same in the Baseline tier.
    let base_deny = |p| baseline_over(p, "deny-b", "a").with_ingress(vec![deny(from_ns("b"))]);
    let base_accept =
        |p| baseline_over(p, "accept-b", "a").with_ingress(vec![accept(from_ns("b"))]);
    let c = with(vec![], vec![base_accept(6), base_deny(5)]);
    assert!(!oracle_allows(&c, "b/client", "a/web", Tcp, 80));
    let c = with(vec![], vec![base_accept(4), base_deny(5)]);
    assert!(oracle_allows(&c, "b/client", "a/web", Tcp, 80));
}

// v1alpha2 L98-105: with equal priorities "the implementation can apply any of the matching
// policies"; netpol's documented choice (model/admin.rs): v1alpha2 before v1alpha1, then by name.
#[test]
fn equal_priorities_are_broken_by_api_then_by_name_as_the_model_documents() {
    let accept_b = |name: &str| admin_over(5, name, "a").with_ingress(vec![accept(from_ns("b"))]);
    let deny_b = |name: &str| admin_over(5, name, "a").with_ingress(vec![deny(from_ns("b"))]);
    let c = with(vec![], vec![accept_b("b"), deny_b("a")]);
    let v = oracle_verdict(&c, "b/client", "a/web", Tcp, 80);
    assert!(!v.allowed);
    assert_eq!(decided_by(&v.ingress).0, "cnp/a");
    let c = with(vec![], vec![accept_b("b"), deny_b("c")]);
    let v = oracle_verdict(&c, "b/client", "a/web", Tcp, 80);
    assert!(v.allowed);
    assert_eq!(decided_by(&v.ingress).0, "cnp/b");
    // A v1alpha2 policy goes before a v1alpha1 one of the same priority, whatever the names.
    let old = anp(5, "a", subject_namespaces(ns_name("a"))).with_ingress(vec![deny(from_ns("b"))]);
    let c = with(vec![], vec![old, accept_b("z")]);
    let v = oracle_verdict(&c, "b/client", "a/web", Tcp, 80);
    assert!(v.allowed);
    assert_eq!(decided_by(&v.ingress).0, "cnp/z");
}

// v1alpha2 L117-121 / L132-136: "a rule that appears at the top of the egress rules would take
// the highest precedence."
#[test]
fn the_first_matching_rule_in_written_order_decides_and_rules_that_do_not_match_are_skipped() {
    let rules = vec![
        deny(from_ns("b")).on(vec![proto_port(Tcp, 80)]),
        accept(from_ns("b")),
        deny(everyone()),
    ];
    let c = with(
        vec![],
        vec![admin_over(1, "order", "a").with_egress(rules.clone())],
    );
    let v = oracle_verdict(&c, "a/web", "b/client", Tcp, 80);
    assert!(!v.allowed);
    assert_eq!(
        decided_by(&v.egress),
        ("cnp/order".into(), 0, AdminAction::Deny)
    );
    let v = oracle_verdict(&c, "a/web", "b/client", Tcp, 443);
    assert!(v.allowed);
    assert_eq!(
        decided_by(&v.egress),
        ("cnp/order".into(), 1, AdminAction::Accept)
    );
    let v = oracle_verdict(&c, "a/web", "c/other", Tcp, 80);
    assert_eq!(
        decided_by(&v.egress),
        ("cnp/order".into(), 2, AdminAction::Deny)
    );
    // Written the other way round, the Accept comes first.
    let mut swapped = rules;
    swapped.swap(0, 1);
    let c = with(
        vec![],
        vec![admin_over(1, "order", "a").with_egress(swapped)],
    );
    assert!(oracle_allows(&c, "a/web", "b/client", Tcp, 80));
}

// v1alpha2 L250-253: an egress Accept: "No further egress ClusterNetworkPolicy or NetworkPolicy
// rules will be processed but any ingress rules at the destination do apply."
#[test]
fn an_egress_accept_still_leaves_the_destinations_ingress_to_decide() {
    let admin = admin_over(1, "a-to-b", "a").with_egress(vec![accept(from_ns("b"))]);
    // The destination isolated by a NetworkPolicy that allows nothing.
    let deny_b = policy("b", "deny-all", LabelSelector::everything(), true, false);
    let c = with(vec![deny_b], vec![admin.clone()]);
    let v = oracle_verdict(&c, "a/web", "b/client", Tcp, 80);
    assert!(v.egress.allows());
    assert!(!v.ingress.allows());
    assert!(!v.allowed);
    // The destination's own Admin Deny.
    let guard = admin_over(2, "b-guard", "b").with_ingress(vec![deny(from_ns("a"))]);
    let c = with(vec![], vec![admin.clone(), guard]);
    let v = oracle_verdict(&c, "a/web", "b/client", Tcp, 80);
    assert!(v.egress.allows() && !v.allowed);
    // And the other way: an ingress Accept does not lift the source's egress isolation.
    let egress_deny = policy("a", "no-egress", LabelSelector::everything(), false, true);
    let open_b = admin_over(1, "b-open", "b").with_ingress(vec![accept(from_ns("a"))]);
    let c = with(vec![egress_deny], vec![open_b]);
    let v = oracle_verdict(&c, "a/web", "b/client", Tcp, 80);
    assert!(v.ingress.allows() && !v.egress.allows() && !v.allowed);
}

// v1alpha2 L202-204: Deny "Drops the selected traffic. No further ClusterNetworkPolicy or
// NetworkPolicy rules will be processed."
#[test]
fn a_deny_is_final_against_later_accepts_network_policy_and_baseline() {
    let mut np = policy("a", "all", LabelSelector::everything(), true, false);
    np.ingress.push(from_anywhere_in_cluster());
    let c = with(
        vec![np],
        vec![
            admin_over(10, "deny", "a").with_ingress(vec![deny(from_ns("b"))]),
            admin_over(20, "accept", "a").with_ingress(vec![accept(from_ns("b"))]),
            baseline_over(1, "accept", "a").with_ingress(vec![accept(from_ns("b"))]),
        ],
    );
    let v = oracle_verdict(&c, "b/client", "a/web", Tcp, 80);
    assert!(!v.allowed);
    // Nothing after the Admin tier was consulted.
    assert_eq!(steps(&v.ingress).len(), 1);
    assert_eq!(decided_by(&v.ingress).0, "cnp/deny");
}

// v1alpha2 L206-208: Pass "Skips all further ClusterNetworkPolicy rules in the current tier";
// facts #12: "skip any lower precedence `Admin` tier rules", i.e. later policies of the tier too.
#[test]
fn a_pass_skips_the_rest_of_its_tier_including_later_policies() {
    let c = with(
        vec![],
        vec![
            admin_over(10, "pass", "a").with_ingress(vec![pass(from_ns("b")), deny(from_ns("b"))]),
            admin_over(20, "deny-all", "a").with_ingress(vec![deny(everyone())]),
        ],
    );
    let v = oracle_verdict(&c, "b/client", "a/web", Tcp, 80);
    assert!(v.allowed, "{}", v.explain());
    assert!(matches!(
        steps(&v.ingress),
        [
            TierStep::Admin { outcome: TierOutcome::Matched(m) },
            TierStep::NetworkPolicy { .. },
            TierStep::Baseline { outcome: TierOutcome::NoPolicy },
            TierStep::Default,
        ] if m.action == AdminAction::Pass && m.policy == "cnp/pass"
    ));
    // What the Pass does not match still meets the later policy.
    assert!(!oracle_allows(&c, "c/other", "a/web", Tcp, 80));
}

// overview L119-125: "When the `Pass` action is matched at the `Admin` tier, `NetworkPolicy` will
// apply next or if there is no `NetworkPolicy` match, `Baseline` policies will be evaluated".
#[test]
fn an_admin_pass_goes_to_network_policy_and_without_an_isolating_one_on_to_baseline() {
    let mut web_from_b = policy("a", "web-from-b", sel(&[("app", "web")]), true, false);
    web_from_b
        .ingress
        .push(rule(vec![namespace_named("b")], vec![]));
    let mut web_from_c = policy("a", "web-from-c", sel(&[("app", "web")]), true, false);
    web_from_c
        .ingress
        .push(rule(vec![namespace_named("c")], vec![]));
    let admin = admin_over(1, "pass", "a").with_ingress(vec![pass(from_ns("b"))]);
    let base = baseline_over(1, "deny-b", "a").with_ingress(vec![deny(from_ns("b"))]);
    let c = with(vec![web_from_b], vec![admin.clone(), base.clone()]);
    // a/web: the NetworkPolicy isolating it allows b; final.
    assert!(oracle_allows(&c, "b/client", "a/web", Tcp, 80));
    // a/db: no NetworkPolicy isolates it; Baseline denies.
    let v = oracle_verdict(&c, "b/client", "a/db", Tcp, 80);
    assert!(!v.allowed);
    assert_eq!(decided_by(&v.ingress).0, "cnp/deny-b");
    // The NetworkPolicy isolates a/web and does not allow b: denied there, Baseline never asked.
    let accept_b = baseline_over(1, "accept-b", "a").with_ingress(vec![accept(from_ns("b"))]);
    let c = with(vec![web_from_c], vec![admin, accept_b]);
    let v = oracle_verdict(&c, "b/client", "a/web", Tcp, 80);
    assert!(!v.allowed);
    assert!(!steps(&v.ingress)
        .iter()
        .any(|s| matches!(s, TierStep::Baseline { .. })));
    assert!(oracle_allows(&c, "b/client", "a/db", Tcp, 80));
}

// v1alpha2 L76-81: "v1.NetworkPolicy always makes a final decision for selected pods. Further
// evaluation only happens for Pods not selected by a v1.NetworkPolicy." Read per direction
// (facts #3), as NetworkPolicy isolation is per direction.
#[test]
fn a_network_policy_is_final_only_for_the_direction_it_isolates() {
    let mut web_in = policy("a", "web-in", sel(&[("app", "web")]), true, false);
    web_in.ingress.push(from_anywhere_in_cluster());
    let db_out = policy("a", "db-out", sel(&[("app", "db")]), false, true);
    let base = baseline_over(1, "base", "a")
        .with_ingress(vec![deny(from_ns("b"))])
        .with_egress(vec![accept(from_ns("c")), deny(from_ns("b"))]);
    let c = with(vec![web_in, db_out], vec![base]);
    // Ingress of a/web is decided by its NetworkPolicy, over the Baseline Deny.
    assert!(oracle_allows(&c, "b/client", "a/web", Tcp, 80));
    // Its egress is not isolated: the Baseline tier decides it.
    let v = oracle_verdict(&c, "a/web", "b/client", Tcp, 80);
    assert!(!v.allowed);
    assert_eq!(decided_by(&v.egress).0, "cnp/base");
    assert!(oracle_allows(&c, "a/web", "c/other", Tcp, 80));
    // a/db's egress is isolated (no rules: deny all): final, the Baseline Accept does not apply.
    assert!(!oracle_allows(&c, "a/db", "c/other", Tcp, 80));
    // a/db's ingress is not isolated: Baseline.
    assert!(!oracle_allows(&c, "b/client", "a/db", Tcp, 80));
    assert!(oracle_allows(&c, "c/other", "a/db", Tcp, 80));
}

// v1alpha2 L122 / L137: "CNPs with no ingress rules do not affect ingress traffic" (and egress);
// overview L39-42: "there will not be any implicit isolation effects".
#[test]
fn a_policy_without_rules_for_a_direction_leaves_that_direction_alone() {
    let c = with(
        vec![],
        vec![admin_over(1, "in-only", "a").with_ingress(vec![deny(from_ns("b"))])],
    );
    let v = oracle_verdict(&c, "a/web", "b/client", Tcp, 80);
    assert!(v.allowed);
    assert_eq!(v.egress, DirectionVerdict::Open);
    assert!(!oracle_allows(&c, "b/client", "a/web", Tcp, 80));
    // Selecting a workload isolates nothing: a flow no rule matches is allowed by default.
    let v = oracle_verdict(&c, "c/other", "a/web", Tcp, 80);
    assert!(v.allowed);
    assert!(matches!(steps(&v.ingress).last(), Some(TierStep::Default)));
    // The same in the Baseline tier, for egress.
    let c = with(
        vec![],
        vec![baseline_over(1, "out-only", "a").with_egress(vec![deny(from_ns("b"))])],
    );
    assert_eq!(
        oracle_verdict(&c, "b/client", "a/web", Tcp, 80).ingress,
        DirectionVerdict::Open
    );
    assert!(!oracle_allows(&c, "a/web", "b/client", Tcp, 80));
}

// Facts #12: "From the Baseline tier (new in v1alpha2), the next tier is the default, so the
// traffic is allowed." v1alpha2 L88-90: "the default kubernetes policy is applied, which says
// that all pods can communicate with each other".
#[test]
fn a_baseline_pass_skips_the_rest_of_the_baseline_tier_to_the_default_allow() {
    let c = with(
        vec![],
        vec![
            baseline_over(1, "pass-b", "a").with_ingress(vec![pass(from_ns("b"))]),
            baseline_over(2, "deny-all", "a").with_ingress(vec![deny(everyone())]),
        ],
    );
    let v = oracle_verdict(&c, "b/client", "a/web", Tcp, 80);
    assert!(v.allowed);
    assert!(matches!(steps(&v.ingress).last(), Some(TierStep::Default)));
    assert!(!oracle_allows(&c, "c/other", "a/web", Tcp, 80));
}
