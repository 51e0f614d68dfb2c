//! The upstream conformance tests of the Baseline tier (kubernetes-sigs/network-policy-api
//! `conformance/tests/baseline-admin-network-policy-*.go`, the ClusterNetworkPolicy
//! `tier: Baseline` ones, manifests under `conformance/base/baseline_tier/`) and the v1alpha1
//! versions of the suite still stored (AdminNetworkPolicy and BaselineAdminNetworkPolicy
//! objects: `core-anp-np-banp.yaml`, the ANP ingress UDP and SCTP tests, the BANP inline-CIDR
//! test), translated to the model as in `tiers_conformance.rs`.
//!
//! Go files not read, whose probes follow the shape their read siblings share: the Baseline
//! tier's EgressTCP/UDP/SCTP, IngressTCP/SCTP, PortRange and isolation tests (their manifests
//! were read; the probes are those of CNPBaselineTierIngressUDP and of the Admin tier's tests of
//! the same name), and the v1alpha1 integration test (its manifest was read; the probes are
//! those of CNPAdminTierIntegration). CNPBaselineTierPodSelector and CNPBaselineTierSamePriority
//! probe the same pairs as their Admin siblings (the same-priority one uses the `-1` replicas as
//! servers, which no rule tells apart from the `-0` ones).

mod conformance_base;

use conformance_base::*;
use netpol_core::model::*;

fn baseline(
    test: &'static str,
    direction: Direction,
    protocol: Protocol,
    houses: [usize; 4],
    ports: [(u16, u16); 3],
) -> ProtocolCase {
    protocol_case(
        (AdminTier::Baseline, ("default", 10), test),
        direction,
        protocol,
        houses,
        ports,
    )
}

const TCP_EGRESS: [(u16, u16); 3] = [(80, 8080), (8080, 80), (80, 8080)];
const TCP_INGRESS: [(u16, u16); 3] = [(80, 8080), (80, 8080), (80, 8080)];
const UDP: [(u16, u16); 3] = [(5353, 53), (53, 5353), (53, 5353)];
const SCTP: [(u16, u16); 3] = [(9003, 9005), (9003, 9005), (9003, 9005)];

/// `baseline-...-standard-egress-tcp-rules.go` CNPBaselineTierEgressTCP.
#[test]
fn cnp_baseline_tier_egress_tcp() {
    let houses = [GRYFFINDOR, RAVENCLAW, SLYTHERIN, HUFFLEPUFF];
    baseline(
        "CNPBaselineTierEgressTCP",
        Direction::Egress,
        Tcp,
        houses,
        TCP_EGRESS,
    )
    .run();
}

/// `baseline-...-standard-egress-udp-rules.go` CNPBaselineTierEgressUDP.
#[test]
fn cnp_baseline_tier_egress_udp() {
    let houses = [HUFFLEPUFF, RAVENCLAW, SLYTHERIN, GRYFFINDOR];
    baseline(
        "CNPBaselineTierEgressUDP",
        Direction::Egress,
        Udp,
        houses,
        UDP,
    )
    .run();
}

/// `baseline-...-standard-egress-sctp-rules.go` CNPBaselineTierEgressSCTP.
#[test]
fn cnp_baseline_tier_egress_sctp() {
    let houses = [RAVENCLAW, GRYFFINDOR, SLYTHERIN, HUFFLEPUFF];
    baseline(
        "CNPBaselineTierEgressSCTP",
        Direction::Egress,
        Sctp,
        houses,
        SCTP,
    )
    .run();
}

/// `baseline-...-standard-ingress-tcp-rules.go` CNPBaselineTierIngressTCP.
#[test]
fn cnp_baseline_tier_ingress_tcp() {
    let houses = [GRYFFINDOR, RAVENCLAW, SLYTHERIN, HUFFLEPUFF];
    baseline(
        "CNPBaselineTierIngressTCP",
        Direction::Ingress,
        Tcp,
        houses,
        TCP_INGRESS,
    )
    .run();
}

/// `baseline-...-standard-ingress-udp-rules.go` CNPBaselineTierIngressUDP.
#[test]
fn cnp_baseline_tier_ingress_udp() {
    let houses = [HUFFLEPUFF, RAVENCLAW, SLYTHERIN, GRYFFINDOR];
    baseline(
        "CNPBaselineTierIngressUDP",
        Direction::Ingress,
        Udp,
        houses,
        UDP,
    )
    .run();
}

/// `baseline-...-standard-ingress-sctp-rules.go` CNPBaselineTierIngressSCTP.
#[test]
fn cnp_baseline_tier_ingress_sctp() {
    let houses = [RAVENCLAW, GRYFFINDOR, SLYTHERIN, HUFFLEPUFF];
    baseline(
        "CNPBaselineTierIngressSCTP",
        Direction::Ingress,
        Sctp,
        houses,
        SCTP,
    )
    .run();
}

/// `baseline-...-standard-gress-rules.go` CNPBaselineTierGress.
#[test]
fn cnp_baseline_tier_gress() {
    run_gress(AdminTier::Baseline, "CNPBaselineTierGress");
}

/// `baseline-...-experimental-egress-rules.go` CNPBaselineTierEgressNamedPort: the egress-udp
/// `default` policy's rule 3 (Accept gryffindor on UDP 53) rewritten to the named port `dns`.
#[test]
fn cnp_baseline_tier_egress_named_port() {
    let houses = [HUFFLEPUFF, RAVENCLAW, SLYTHERIN, GRYFFINDOR];
    let mut p = baseline(
        "CNPBaselineTierEgressNamedPort",
        Direction::Egress,
        Udp,
        houses,
        UDP,
    )
    .policy();
    p.egress[3].ports = Some(vec![named_port("dns")]);
    check(
        &cluster_of(&p),
        "CNPBaselineTierEgressNamedPort",
        &[
            ok("cedric-diggory-0", "harry-potter-1", Udp, 53),
            no("cedric-diggory-1", "harry-potter-1", Udp, 5353),
        ],
    );
}

/// `baseline-...-experimental-ingress-rules.go` CNPBaselineTierIngressNamedPort: the ingress-tcp
/// `default` policy's rule 3 (Accept hufflepuff on TCP 80) rewritten to the named port `web`.
#[test]
fn cnp_baseline_tier_ingress_named_port() {
    let houses = [GRYFFINDOR, RAVENCLAW, SLYTHERIN, HUFFLEPUFF];
    let mut p = baseline(
        "CNPBaselineTierIngressNamedPort",
        Direction::Ingress,
        Tcp,
        houses,
        TCP_INGRESS,
    )
    .policy();
    p.ingress[3].ports = Some(vec![named_port("web")]);
    check(
        &cluster_of(&p),
        "CNPBaselineTierIngressNamedPort",
        &[
            ok("cedric-diggory-0", "harry-potter-1", Tcp, 80),
            no("cedric-diggory-1", "harry-potter-1", Tcp, 8080),
        ],
    );
}

/// `baseline-...-experimental-egress-rules.go` CNPBaselineTierEgressNodePeers
/// (`baseline_tier/experimental-egress-selector-rules.yaml`).
#[test]
fn cnp_baseline_tier_egress_node_peers() {
    let linux = || peer_nodes(sel(&[("kubernetes.io/os", "linux")]));
    let p = cnp(
        AdminTier::Baseline,
        10,
        "default",
        subject_namespaces(ns_of("gryffindor")),
    )
    .with_egress(vec![
        accept(vec![linux()]).on(vec![proto_range(Tcp, HOST_PORTS[0], HOST_PORTS[1])]),
        deny(vec![linux(), peer_networks(&["0.0.0.0/0", "::/0"])]),
    ]);
    let c = cluster_of(&p);
    check(
        &c,
        "allow-egress to a node peer",
        &[
            ok("harry-potter-0", CENTAUR_1, Tcp, 36363),
            ok("harry-potter-1", CENTAUR_1, Tcp, 36364),
        ],
    );
    check(
        &c,
        "deny-egress to a node peer",
        &[
            no("harry-potter-1", CENTAUR_1, Udp, 34346),
            no("harry-potter-1", CENTAUR_1, Sctp, 9003),
        ],
    );
}

/// `baseline-...-standard-egress-inline-cidr-rules.go` CNPBaselineTierEgressInlineCIDRPeers.
#[test]
fn cnp_baseline_tier_egress_inline_cidr_peers() {
    let mut p = cnp(
        AdminTier::Baseline,
        10,
        "default",
        subject_namespaces(ns_of("gryffindor")),
    );
    p.egress = vec![
        accept(vec![peer_pods(house("slytherin"), house("slytherin"))]),
        deny(vec![peer_networks(&["0.0.0.0/0", "::/0"])]),
    ];
    inline_cidr_probes(&mut p);
}

/// `baseline-...-standard-ingress-egress-isolation.go` CNPBaselineTierIngressRulesEgressUnaffected
/// and CNPBaselineTierEgressRulesIngressUnaffected.
#[test]
fn cnp_baseline_tier_rules_of_one_direction_leave_the_other_unaffected() {
    isolation_probes(AdminTier::Baseline, 20);
}

/// `baseline-...-standard-pod-selector-rules.go` CNPBaselineTierPodSelector.
#[test]
fn cnp_baseline_tier_pod_selector() {
    pod_selector_probes(AdminTier::Baseline, (10, 10));
}

/// `baseline-...-standard-port-range-rules.go` CNPBaselineTierPortRange.
#[test]
fn cnp_baseline_tier_port_range() {
    port_range_probes(AdminTier::Baseline, 10);
}

/// `baseline-...-standard-same-priority.go` CNPBaselineTierSamePriority.
#[test]
fn cnp_baseline_tier_same_priority() {
    let c = with_policies(
        same_priority_policies(AdminTier::Baseline, 10, "baseline-"),
        vec![],
    );
    same_priority_probes(&c);
}

/// `admin-network-policy-core-integration.go` (v1alpha1, `core-anp-np-banp.yaml`): the same
/// walk with an AdminNetworkPolicy and the BaselineAdminNetworkPolicy.
#[test]
fn admin_network_policy_core_integration_v1alpha1() {
    run_integration(true);
}

/// `admin-network-policy-standard-ingress-udp-rules.go` AdminNetworkPolicyIngressUDP (v1alpha1,
/// the stored version of the Admin tier's ingress UDP test).
#[test]
fn admin_network_policy_ingress_udp_v1alpha1() {
    let houses = [HUFFLEPUFF, RAVENCLAW, SLYTHERIN, GRYFFINDOR];
    let mut case = protocol_case(
        (
            AdminTier::Admin,
            ("ingress-udp", 4),
            "AdminNetworkPolicyIngressUDP",
        ),
        Direction::Ingress,
        Udp,
        houses,
        UDP,
    );
    case.v1alpha1 = true;
    case.run();
}

/// `admin-network-policy-standard-ingress-sctp-rules.go` AdminNetworkPolicyIngressSCTP (v1alpha1).
#[test]
fn admin_network_policy_ingress_sctp_v1alpha1() {
    let houses = [RAVENCLAW, GRYFFINDOR, SLYTHERIN, HUFFLEPUFF];
    let mut case = protocol_case(
        (
            AdminTier::Admin,
            ("ingress-sctp", 5),
            "AdminNetworkPolicyIngressSCTP",
        ),
        Direction::Ingress,
        Sctp,
        houses,
        SCTP,
    );
    case.v1alpha1 = true;
    case.run();
}

/// `baseline-...-standard-egress-inline-cidr-rules.go` BaselineAdminNetworkPolicyEgressInlineCIDRPeers
/// (v1alpha1: the BANP `default`, whose `Allow` is Accept).
#[test]
fn baseline_admin_network_policy_egress_inline_cidr_peers_v1alpha1() {
    let mut p = banp(subject_namespaces(ns_of("gryffindor")));
    p.egress = vec![
        accept(vec![peer_pods(house("slytherin"), house("slytherin"))]),
        deny(vec![peer_networks(&["0.0.0.0/0", "::/0"])]),
    ];
    inline_cidr_probes(&mut p);
}
