//! The upstream conformance tests of the Admin tier (kubernetes-sigs/network-policy-api
//! `conformance/tests/admin-network-policy-*.go`, the ClusterNetworkPolicy `tier: Admin` ones,
//! with their manifests under `conformance/base/admin_tier/` and `base/api_integration/`),
//! translated to the model: each upstream test is one test here, named after its ShortName, whose
//! subtests run in the upstream order on the policies as the earlier subtests patched them, every
//! `PokeServer` a probe through the oracle with its `shouldConnect`. The Baseline tier and the
//! v1alpha1 objects are in `tiers_conformance_baseline.rs`.
//!
//! Left out, for what the model lacks or because it is no verdict:
//! - the Service objects themselves (`hairpin-rules.yaml`): the model has no Services; the
//!   hairpin probe is `evaluate_hairpin`, a pod reaching itself through one;
//! - timing, retries and the `PokeServer` mechanics (agnhost, kubectl exec).
//!
//! Stored versions read: the manifests in `v1beta1`/`v1alpha2` spelling, some with the older
//! `ports: [{portNumber}]` field (read as its `protocols` equivalent).

mod conformance_base;

use conformance_base::*;
use netpol_core::eval::TierStep;
use netpol_core::evaluate_hairpin;
use netpol_core::model::*;

fn admin(
    policy: (&'static str, u32),
    test: &'static str,
) -> (AdminTier, (&'static str, u32), &'static str) {
    (AdminTier::Admin, policy, test)
}

/// `standard-egress-tcp-rules.go` CNPAdminTierEgressTCP.
#[test]
fn cnp_admin_tier_egress_tcp() {
    let houses = [GRYFFINDOR, RAVENCLAW, SLYTHERIN, HUFFLEPUFF];
    let ports = [(80, 8080), (8080, 80), (80, 8080)];
    protocol_case(
        admin(("egress-tcp", 6), "CNPAdminTierEgressTCP"),
        Direction::Egress,
        Tcp,
        houses,
        ports,
    )
    .run();
}

/// `standard-egress-udp-rules.go` CNPAdminTierEgressUDP.
#[test]
fn cnp_admin_tier_egress_udp() {
    let houses = [HUFFLEPUFF, RAVENCLAW, SLYTHERIN, GRYFFINDOR];
    let ports = [(5353, 53), (53, 5353), (53, 5353)];
    protocol_case(
        admin(("egress-udp", 7), "CNPAdminTierEgressUDP"),
        Direction::Egress,
        Udp,
        houses,
        ports,
    )
    .run();
}

/// `standard-egress-sctp-rules.go` CNPAdminTierEgressSCTP.
#[test]
fn cnp_admin_tier_egress_sctp() {
    let houses = [RAVENCLAW, GRYFFINDOR, SLYTHERIN, HUFFLEPUFF];
    let ports = [(9003, 9005), (9003, 9005), (9003, 9005)];
    protocol_case(
        admin(("egress-sctp", 8), "CNPAdminTierEgressSCTP"),
        Direction::Egress,
        Sctp,
        houses,
        ports,
    )
    .run();
}

/// `standard-ingress-tcp-rules.go` CNPAdminTierIngressTCP.
#[test]
fn cnp_admin_tier_ingress_tcp() {
    let houses = [GRYFFINDOR, RAVENCLAW, SLYTHERIN, HUFFLEPUFF];
    let ports = [(80, 8080), (80, 8080), (80, 8080)];
    let case = protocol_case(
        admin(("ingress-tcp", 3), "CNPAdminTierIngressTCP"),
        Direction::Ingress,
        Tcp,
        houses,
        ports,
    );
    case.run();
    // Its third subtest, on the policy as declared: no egress rules, egress untouched.
    check(
        &cluster_of(&case.policy()),
        "CNPAdminTierIngressTCP: egress unaffected by ingress-only rules",
        &[
            ok("harry-potter-0", "luna-lovegood-0", Tcp, 80),
            ok("harry-potter-1", "draco-malfoy-0", Tcp, 80),
        ],
    );
}

/// `standard-ingress-udp-rules.go` CNPAdminTierIngressUDP.
#[test]
fn cnp_admin_tier_ingress_udp() {
    let houses = [HUFFLEPUFF, RAVENCLAW, SLYTHERIN, GRYFFINDOR];
    let ports = [(5353, 53), (53, 5353), (53, 5353)];
    protocol_case(
        admin(("ingress-udp", 4), "CNPAdminTierIngressUDP"),
        Direction::Ingress,
        Udp,
        houses,
        ports,
    )
    .run();
}

/// `standard-ingress-sctp-rules.go` CNPAdminTierIngressSCTP.
#[test]
fn cnp_admin_tier_ingress_sctp() {
    let houses = [RAVENCLAW, GRYFFINDOR, SLYTHERIN, HUFFLEPUFF];
    let ports = [(9003, 9005), (9003, 9005), (9003, 9005)];
    protocol_case(
        admin(("ingress-sctp", 5), "CNPAdminTierIngressSCTP"),
        Direction::Ingress,
        Sctp,
        houses,
        ports,
    )
    .run();
}

/// `standard-gress-rules.go` CNPAdminTierGress.
#[test]
fn cnp_admin_tier_gress() {
    run_gress(AdminTier::Admin, "CNPAdminTierGress");
}

/// `experimental-egress-rules.go` CNPAdminTierEgressNamedPort: `egress-tcp`'s rule 5 (Accept
/// hufflepuff on TCP 8080) rewritten to `destinationNamedPort: web` (TCP 80 in the pod spec).
#[test]
fn cnp_admin_tier_egress_named_port() {
    let case = protocol_case(
        admin(("egress-tcp", 6), "CNPAdminTierEgressNamedPort"),
        Direction::Egress,
        Tcp,
        [GRYFFINDOR, RAVENCLAW, SLYTHERIN, HUFFLEPUFF],
        [(80, 8080), (8080, 80), (80, 8080)],
    );
    let mut p = case.policy();
    p.egress[5].ports = Some(vec![named_port("web")]);
    check(
        &cluster_of(&p),
        "CNPAdminTierEgressNamedPort",
        &[
            ok("harry-potter-0", "cedric-diggory-1", Tcp, 80),
            no("harry-potter-1", "cedric-diggory-1", Tcp, 8080),
        ],
    );
}

/// `experimental-ingress-rules.go` CNPAdminTierIngressNamedPort: `ingress-udp`'s rule 5 (Accept
/// gryffindor on UDP 53) rewritten to `destinationNamedPort: dns` (UDP 53 in the pod spec).
#[test]
fn cnp_admin_tier_ingress_named_port() {
    let case = protocol_case(
        admin(("ingress-udp", 4), "CNPAdminTierIngressNamedPort"),
        Direction::Ingress,
        Udp,
        [HUFFLEPUFF, RAVENCLAW, SLYTHERIN, GRYFFINDOR],
        [(5353, 53), (53, 5353), (53, 5353)],
    );
    let mut p = case.policy();
    p.ingress[5].ports = Some(vec![named_port("dns")]);
    check(
        &cluster_of(&p),
        "CNPAdminTierIngressNamedPort",
        &[
            ok("harry-potter-0", "cedric-diggory-1", Udp, 53),
            no("harry-potter-1", "cedric-diggory-1", Udp, 5353),
        ],
    );
}

/// `experimental-egress-rules.go` CNPAdminTierEgressNodePeers (`experimental-egress-selector-rules.yaml`).
#[test]
fn cnp_admin_tier_egress_node_peers() {
    let linux = || vec![peer_nodes(sel(&[("kubernetes.io/os", "linux")]))];
    let gryffindor_pods = subject_pods(house("gryffindor"), house("gryffindor"));
    let p = cnp(
        AdminTier::Admin,
        75,
        "node-and-cidr-as-peers-example",
        gryffindor_pods,
    )
    .with_egress(vec![
        accept(linux()).on(vec![proto_port(Tcp, HOST_PORTS[0])]),
        pass(linux()).on(vec![proto_port(Udp, HOST_PORTS[2])]),
        deny(vec![
            peer_pods(house("slytherin"), house("slytherin")),
            linux()[0].clone(),
            peer_networks(&["0.0.0.0/0", "::/0"]),
        ]),
    ]);
    let c = cluster_of(&p);
    let h1 = "harry-potter-1";
    check(
        &c,
        "allow-egress to a node peer",
        &[ok(h1, CENTAUR_1, Tcp, HOST_PORTS[0])],
    );
    check(
        &c,
        "pass-egress to a node peer",
        &[ok(h1, CENTAUR_1, Udp, HOST_PORTS[2])],
    );
    check(
        &c,
        "deny-egress to a node peer",
        &[
            no(h1, CENTAUR_1, Tcp, HOST_PORTS[1]),
            no(h1, CENTAUR_1, Udp, HOST_PORTS[4]),
            no(h1, CENTAUR_1, Sctp, HOST_PORTS[6]),
        ],
    );
}

/// `standard-integration.go` CNPAdminTierIntegration.
#[test]
fn cnp_admin_tier_integration() {
    run_integration(false);
}

/// `standard-priority.go` CNPAdminTierPriorityField (`standard-priority-field.yaml`).
#[test]
fn cnp_admin_tier_priority_field() {
    let gryffindor = || subject_pods(house("gryffindor"), house("gryffindor"));
    let slytherin = || vec![peer_pods(house("slytherin"), house("slytherin"))];
    let deny_50 = cnp(AdminTier::Admin, 50, "priority-50-example", gryffindor())
        .with_ingress(vec![deny(slytherin())])
        .with_egress(vec![deny(slytherin())]);
    let pass = |priority| {
        cnp(
            AdminTier::Admin,
            priority,
            "old-priority-60-new-priority-40-example",
            gryffindor(),
        )
        .with_ingress(vec![pass(slytherin())])
        .with_egress(vec![pass(slytherin())])
    };
    let default = cnp(AdminTier::Baseline, 10, "default", gryffindor())
        .with_ingress(vec![accept(slytherin())])
        .with_egress(vec![accept(slytherin())]);
    let c = with_policies(vec![deny_50.clone(), pass(60), default.clone()], vec![]);
    check(
        &c,
        "Deny from slytherin respecting the admin CNP",
        &integration_probes(true, false),
    );
    check(
        &c,
        "Deny to slytherin respecting the admin CNP",
        &integration_probes(false, false),
    );
    let c = with_policies(vec![deny_50, pass(40), default], vec![]);
    let mut both = integration_probes(true, true);
    both.extend(integration_probes(false, true));
    check(
        &c,
        "priority 40 passes both directions to the baseline CNP",
        &both,
    );
}

/// `standard-same-priority.go` CNPAdminTierSamePriority.
#[test]
fn cnp_admin_tier_same_priority() {
    let c = with_policies(same_priority_policies(AdminTier::Admin, 15, ""), vec![]);
    same_priority_probes(&c);
}

/// `standard-egress-inline-cidr-rules.go` CNPAdminTierEgressInlineCIDRPeers.
#[test]
fn cnp_admin_tier_egress_inline_cidr_peers() {
    let gryffindor = subject_pods(house("gryffindor"), house("gryffindor"));
    let mut p = cnp(
        AdminTier::Admin,
        85,
        "inline-cidr-as-peers-example",
        gryffindor,
    )
    .with_egress(vec![
        accept(vec![peer_pods(house("slytherin"), house("slytherin"))]),
        deny(vec![peer_networks(&["0.0.0.0/0", "::/0"])]),
    ]);
    inline_cidr_probes(&mut p);
}

/// `standard-ingress-egress-isolation.go` CNPAdminTierIngressRulesEgressUnaffected and
/// CNPAdminTierEgressRulesIngressUnaffected.
#[test]
fn cnp_admin_tier_rules_of_one_direction_leave_the_other_unaffected() {
    isolation_probes(AdminTier::Admin, 20);
}

/// `standard-pod-selector-rules.go` CNPAdminTierPodSelector.
#[test]
fn cnp_admin_tier_pod_selector() {
    pod_selector_probes(AdminTier::Admin, (20, 21));
}

/// `standard-port-range-rules.go` CNPAdminTierPortRange.
#[test]
fn cnp_admin_tier_port_range() {
    port_range_probes(AdminTier::Admin, 9);
}

/// `admin-network-policy-hairpin-rules.go` CNPAdminTierHairpin (`hairpin-rules.yaml`): harry-potter-0
/// reaches the Service `harry-potter-hairpin-service` (port 80), which load-balances to the
/// gryffindor pods, itself among them. The probe is the hairpin case: the Service could as well
/// pick harry-potter-1, which the same Deny denies (a plain pod-to-pod probe below).
#[test]
fn cnp_admin_tier_hairpin() {
    let p = cnp(
        AdminTier::Admin,
        15,
        "hairpin-ingress-deny",
        subject_namespaces(ns_of("gryffindor")),
    )
    .with_ingress(vec![deny(to_house("gryffindor"))]);
    let c = cluster_of(&p);
    let harry = match end_named(&c, &key("harry-potter-0")) {
        netpol_core::Endpoint::Workload(i) => i,
        netpol_core::Endpoint::External(a) => panic!("harry-potter-0 is {a}"),
    };
    let v = evaluate_hairpin(&c, EvalOptions::default(), harry, Tcp, 80);
    assert!(!v.allowed, "{}", v.explain());
    assert!(matches!(
        steps_of(&v.ingress).first(),
        Some(TierStep::Admin { .. })
    ));
    check(
        &c,
        "the other backend",
        &[no("harry-potter-0", "harry-potter-1", Tcp, 80)],
    );
}

fn steps_of(side: &netpol_core::DirectionVerdict) -> &[TierStep] {
    match side {
        netpol_core::DirectionVerdict::Tiered { steps, .. } => steps,
        other => panic!("expected a walk through the tiers, got {other:?}"),
    }
}
