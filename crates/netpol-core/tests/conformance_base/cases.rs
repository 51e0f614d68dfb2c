//! The upstream tests' shapes both tiers share: the single-protocol tests, the
//! integration of the three tiers, and the same-priority, inline-CIDR, isolation, pod-selector
//! and port-range tests, each with the probes of its Go file.

use netpol_core::model::*;

use super::*;

/// The single-protocol tests (`standard-{egress,ingress}-{tcp,udp,sctp}-rules.yaml` of both
/// tiers): a policy over the `subject` house whose rules, in order, are Accept, Deny and Pass for
/// house `x` on every port; Deny and Pass for house `y` on port `p`; Accept for house `z` on port
/// `q` and Deny for `z` on everything else. The Baseline tier's files have the same rules without
/// the two Pass rules.
pub struct ProtocolCase {
    /// The upstream test's ShortName and file.
    pub test: &'static str,
    /// The tier of the policy.
    pub tier: AdminTier,
    /// The policy's name and priority.
    pub policy: (&'static str, u32),
    /// The direction of its rules.
    pub direction: Direction,
    /// The protocol of the rules and probes.
    pub protocol: Protocol,
    /// The subject house and the houses `x`, `y`, `z` (indexes into [`HOUSES`]).
    pub houses: [usize; 4],
    /// The port of `y`'s rules and another port of the protocol.
    pub p: (u16, u16),
    /// The port of `z`'s Accept and another port of the protocol.
    pub q: (u16, u16),
    /// The two ports the rule-ordering subtests probe.
    pub a: (u16, u16),
    /// Read from the v1alpha1 objects instead (an AdminNetworkPolicy, or the
    /// BaselineAdminNetworkPolicy, which is always named `default`).
    pub v1alpha1: bool,
}

impl ProtocolCase {
    fn house(&self, role: usize) -> (&'static str, &'static str) {
        HOUSES[self.houses[role]]
    }

    /// The policy as the upstream manifest writes it.
    pub fn policy(&self) -> AdminPolicy {
        let (subject, _) = self.house(0);
        let ((x, _), (y, _), (z, _)) = (self.house(1), self.house(2), self.house(3));
        let port = |n| vec![proto_port(self.protocol, n)];
        let mut rules = vec![
            accept(to_house(x)),
            deny(to_house(x)),
            pass(to_house(x)),
            deny(to_house(y)).on(port(self.p.0)),
            pass(to_house(y)).on(port(self.p.0)),
            accept(to_house(z)).on(port(self.q.0)),
            deny(to_house(z)),
        ];
        if self.tier == AdminTier::Baseline {
            rules.remove(4);
            rules.remove(2);
        }
        let (name, priority) = self.policy;
        let subject = subject_namespaces(ns_of(subject));
        let mut p = match (self.v1alpha1, self.tier) {
            (false, tier) => cnp(tier, priority, name, subject),
            (true, AdminTier::Admin) => anp(priority, name, subject),
            (true, AdminTier::Baseline) => banp(subject),
        };
        *rules_mut(&mut p, self.direction) = rules;
        p
    }

    /// The two probes of a subtest: the client side's replicas 0 and 1 to replica `server` of the
    /// server side (the subject is the client for egress, the server for ingress), on the two
    /// `(port, connects)`.
    pub fn two(
        &self,
        peer: usize,
        server: usize,
        first: (u16, bool),
        second: (u16, bool),
    ) -> Vec<Probe> {
        let (_, subject) = self.house(0);
        let (_, peer) = self.house(peer);
        [(0, first), (1, second)]
            .into_iter()
            .map(|(client, (port, connects))| {
                let (from, to) = match self.direction {
                    Direction::Egress => {
                        (format!("{subject}-{client}"), format!("{peer}-{server}"))
                    }
                    Direction::Ingress => {
                        (format!("{peer}-{client}"), format!("{subject}-{server}"))
                    }
                };
                Probe {
                    from,
                    to,
                    protocol: self.protocol,
                    port,
                    connects,
                }
            })
            .collect()
    }

    /// The upstream subtests in order, each on the policy as the earlier ones left it.
    pub fn run(&self) {
        let mut p = self.policy();
        let (a, b) = self.a;
        let case = |n: &str| format!("{}: {n}", self.test);
        check(
            &cluster_of(&p),
            &case("allow, rule ordering"),
            &self.two(1, 0, (a, true), (b, true)),
        );
        let q = self.two(3, 1, (self.q.0, true), (self.q.1, false));
        check(&cluster_of(&p), &case("allow at the specified port"), &q);
        rules_mut(&mut p, self.direction).swap(0, 1);
        check(
            &cluster_of(&p),
            &case("deny, rule ordering"),
            &self.two(1, 1, (a, false), (b, false)),
        );
        let y = self.two(2, 0, (self.p.0, false), (self.p.1, true));
        check(&cluster_of(&p), &case("deny at the specified port"), &y);
        if self.tier == AdminTier::Baseline {
            return;
        }
        rules_mut(&mut p, self.direction).swap(0, 2);
        check(
            &cluster_of(&p),
            &case("pass, rule ordering"),
            &self.two(1, 1, (a, true), (b, true)),
        );
        rules_mut(&mut p, self.direction).swap(3, 4);
        let y = self.two(2, 0, (self.p.0, true), (self.p.1, true));
        check(&cluster_of(&p), &case("pass at the specified port"), &y);
    }
}

// Indexes into HOUSES.
pub const GRYFFINDOR: usize = 0;
pub const SLYTHERIN: usize = 1;
pub const HUFFLEPUFF: usize = 2;
pub const RAVENCLAW: usize = 3;

pub fn protocol_case(
    (tier, policy, test): (AdminTier, (&'static str, u32), &'static str),
    direction: Direction,
    protocol: Protocol,
    houses: [usize; 4],
    ports: [(u16, u16); 3],
) -> ProtocolCase {
    ProtocolCase {
        test,
        tier,
        policy,
        direction,
        protocol,
        houses,
        p: ports[0],
        q: ports[1],
        a: ports[2],
        v1alpha1: false,
    }
}

/// The `pass-example` Admin policy, the NetworkPolicy and the `default` Baseline policy of
/// `api_integration/standard-anp-np-banp.yaml` (ClusterNetworkPolicies), or of
/// `core-anp-np-banp.yaml` (`v1alpha1`: an AdminNetworkPolicy and the BaselineAdminNetworkPolicy),
/// with the Admin policy's two rules' actions as the subtests patch them.
pub fn integration(v1alpha1: bool, actions: (AdminAction, AdminAction), with_np: bool) -> Cluster {
    let slytherin = || vec![peer_namespaces(house("slytherin"))];
    let rule = |action| admin_rule(action, slytherin());
    let gryffindor = || subject_namespaces(house("gryffindor"));
    let (pass_example, default) = if v1alpha1 {
        (anp(10, "pass-example", gryffindor()), banp(gryffindor()))
    } else {
        (
            cnp(AdminTier::Admin, 10, "pass-example", gryffindor()),
            cnp(AdminTier::Baseline, 10, "default", gryffindor()),
        )
    };
    let pass_example = pass_example
        .with_ingress(vec![rule(actions.0)])
        .with_egress(vec![rule(actions.1)]);
    let default = default
        .with_ingress(vec![deny(slytherin())])
        .with_egress(vec![deny(slytherin())]);
    let mut np = policy(
        &house_ns("gryffindor"),
        "allow-gress-from-to-slytherin-to-gryffindor",
        LabelSelector::everything(),
        true,
        true,
    );
    let from_slytherin = Peer::Selector {
        pod_selector: None,
        namespace_selector: Some(house("slytherin")),
    };
    np.ingress.push(rule_of(from_slytherin.clone()));
    np.egress.push(rule_of(from_slytherin));
    let policies = if with_np { vec![np] } else { vec![] };
    with_policies(vec![pass_example, default], policies)
}

/// The subtests of the integration tests, in order: Deny from and to slytherin; the ingress rule
/// patched to Pass (the NetworkPolicy allows); the egress rule too; the NetworkPolicy deleted (the
/// Baseline policy denies both).
pub fn run_integration(v1alpha1: bool) {
    use AdminAction::{Deny, Pass};
    let c = integration(v1alpha1, (Deny, Deny), true);
    check(
        &c,
        "Deny from slytherin respecting the admin policy",
        &integration_probes(true, false),
    );
    check(
        &c,
        "Deny to slytherin respecting the admin policy",
        &integration_probes(false, false),
    );
    let c = integration(v1alpha1, (Pass, Deny), true);
    check(
        &c,
        "pass-ingress, the NetworkPolicy allows",
        &integration_probes(true, true),
    );
    let c = integration(v1alpha1, (Pass, Pass), true);
    check(
        &c,
        "pass-egress, the NetworkPolicy allows",
        &integration_probes(false, true),
    );
    let c = integration(v1alpha1, (Pass, Pass), false);
    check(
        &c,
        "pass-ingress, the baseline policy denies",
        &integration_probes(true, false),
    );
    check(
        &c,
        "pass-egress, the baseline policy denies",
        &integration_probes(false, false),
    );
}

pub fn rule_of(peer: Peer) -> Rule {
    Rule {
        peers: vec![peer],
        ports: vec![],
    }
}

/// The probes of the integration tests: ingress to harry-potter-0 from slytherin, then egress
/// from gryffindor to draco-malfoy-0.
pub fn integration_probes(ingress: bool, connects: bool) -> Vec<Probe> {
    let probe = if connects { ok } else { no };
    if ingress {
        vec![
            probe("draco-malfoy-0", "harry-potter-0", Tcp, 80),
            probe("draco-malfoy-1", "harry-potter-0", Tcp, 8080),
        ]
    } else {
        vec![
            probe("harry-potter-0", "draco-malfoy-0", Tcp, 80),
            probe("harry-potter-1", "draco-malfoy-0", Tcp, 8080),
        ]
    }
}

/// The probes of both tiers' same-priority tests.
pub fn same_priority_probes(c: &Cluster) {
    let (harry, draco, cedric) = ("harry-potter-0", "draco-malfoy-0", "cedric-diggory-0");
    check(
        c,
        "deny in both directions for each same-priority policy",
        &[
            no(draco, harry, Tcp, 80),
            no("harry-potter-0", draco, Tcp, 80),
            no(cedric, harry, Tcp, 80),
            no("harry-potter-1", cedric, Tcp, 80),
            no("draco-malfoy-1", cedric, Tcp, 8080),
            no("cedric-diggory-1", draco, Tcp, 8080),
        ],
    );
    check(
        c,
        "one policy's rules do not apply to another's subject",
        &[
            ok(draco, harry, Tcp, 8080),
            ok("harry-potter-0", draco, Tcp, 8080),
            ok("draco-malfoy-1", cedric, Tcp, 80),
            ok("cedric-diggory-0", draco, Tcp, 80),
        ],
    );
    check(
        c,
        "traffic matching no same-priority policy",
        &[
            ok("luna-lovegood-0", harry, Tcp, 80),
            ok("harry-potter-1", "luna-lovegood-0", Tcp, 80),
        ],
    );
}

/// Both tiers' inline-CIDR subtests: denied to every pod but slytherin's, then Accept inserted
/// at index 0 for luna-lovegood-0's and cedric-diggory-0's addresses (/32).
pub fn inline_cidr_probes(p: &mut AdminPolicy) {
    let three = |to: &'static str, connects: bool| {
        let probe = if connects { ok } else { no };
        let h1 = "harry-potter-1";
        vec![
            probe(h1, to, Tcp, 80),
            probe(h1, to, Udp, 53),
            probe(h1, to, Sctp, 9003),
        ]
    };
    let mut first = three("luna-lovegood-0", false);
    first.extend(three("cedric-diggory-0", false));
    first.extend(three("draco-malfoy-0", true));
    check(
        &cluster_of(p),
        "deny-egress rule for egress-cidr-peer",
        &first,
    );
    let pods = [
        address("luna-lovegood-0") + "/32",
        address("cedric-diggory-0") + "/32",
    ];
    let pods: Vec<&str> = pods.iter().map(String::as_str).collect();
    p.egress.insert(
        0,
        accept(vec![peer_networks(&pods)]).named("allow-egress-to-specific-podIPs"),
    );
    let mut second = three("luna-lovegood-0", true);
    second.extend(three("cedric-diggory-0", true));
    second.extend(three("luna-lovegood-1", false));
    second.extend(three("cedric-diggory-1", false));
    check(
        &cluster_of(p),
        "allow-egress rule for egress-cidr-peer",
        &second,
    );
}

/// Both tiers' isolation tests (`standard-{ingress,egress}-isolation.yaml`).
pub fn isolation_probes(tier: AdminTier, priority: u32) {
    let subject = || subject_namespaces(ns_of("gryffindor"));
    let name = |d| format!("{}-{d}-isolation", tier.as_str().to_lowercase());
    let ingress_only = cnp(tier, priority, &name("ingress"), subject())
        .with_ingress(vec![deny(to_house("slytherin"))]);
    check(
        &cluster_of(&ingress_only),
        "an ingress-only policy does not affect egress",
        &[
            no("draco-malfoy-0", "harry-potter-0", Tcp, 80),
            ok("harry-potter-0", "luna-lovegood-0", Tcp, 80),
            ok("harry-potter-0", "cedric-diggory-0", Tcp, 80),
        ],
    );
    let egress_only = cnp(tier, priority, &name("egress"), subject())
        .with_egress(vec![deny(to_house("slytherin"))]);
    check(
        &cluster_of(&egress_only),
        "an egress-only policy does not affect ingress",
        &[
            no("harry-potter-0", "draco-malfoy-0", Tcp, 80),
            ok("luna-lovegood-0", "harry-potter-0", Tcp, 80),
            ok("cedric-diggory-0", "harry-potter-0", Tcp, 80),
        ],
    );
}

/// Both tiers' pod-selector tests (`standard-pod-selector-rules.yaml`).
pub fn pod_selector_probes(tier: AdminTier, priorities: (u32, u32)) {
    let everywhere = LabelSelector::everything;
    let cedric_0 = || peer_pods(house("hufflepuff"), pod_named("cedric-diggory-0"));
    let rules = cnp(
        tier,
        priorities.0,
        "pod-selector-rules",
        subject_pods(everywhere(), house("gryffindor")),
    )
    .with_egress(vec![
        deny(vec![peer_pods(everywhere(), house("ravenclaw"))]),
        deny(vec![cedric_0()]),
    ])
    .with_ingress(vec![
        deny(vec![peer_pods(everywhere(), house("slytherin"))]),
        deny(vec![cedric_0()]),
    ]);
    let luna_0 = subject_pods(house("ravenclaw"), pod_named("luna-lovegood-0"));
    let by_name = cnp(tier, priorities.1, "pod-name-subject-rules", luna_0)
        .with_egress(vec![deny(to_house("slytherin"))]);
    let c = with_policies(vec![rules, by_name], vec![]);
    let h0 = "harry-potter-0";
    check(
        &c,
        "pod selectors in egress peers",
        &[
            no(h0, "luna-lovegood-0", Tcp, 80),
            no(h0, "cedric-diggory-0", Tcp, 80),
            ok(h0, "cedric-diggory-1", Tcp, 80),
        ],
    );
    check(
        &c,
        "pod selectors in ingress peers",
        &[
            no("draco-malfoy-0", h0, Tcp, 80),
            no("cedric-diggory-0", h0, Tcp, 80),
            ok("cedric-diggory-1", h0, Tcp, 80),
        ],
    );
    check(
        &c,
        "pod selectors in the subject",
        &[
            ok("draco-malfoy-0", "cedric-diggory-0", Tcp, 80),
            no("luna-lovegood-0", "draco-malfoy-0", Tcp, 80),
            ok("luna-lovegood-1", "draco-malfoy-0", Tcp, 80),
        ],
    );
}

/// Both tiers' port-range tests (`standard-port-range-rules-combined.yaml`).
pub fn port_range_probes(tier: AdminTier, priority: u32) {
    let houses = LabelSelector {
        match_labels: Default::default(),
        match_expressions: vec![SelectorRequirement {
            key: "conformance-house".into(),
            operator: SelectorOperator::Exists,
            values: vec![],
        }],
    };
    let rules = vec![
        accept(to_house("ravenclaw")).on(vec![proto_range(Tcp, 80, 8080)]),
        accept(to_house("hufflepuff")).on(vec![proto_range(Udp, 53, 5353)]),
        accept(to_house("slytherin")).on(vec![proto_range(Sctp, 9003, 9005)]),
        deny(vec![peer_namespaces(houses)]),
    ];
    let p = cnp(
        tier,
        priority,
        "port-range-rules",
        subject_namespaces(ns_of("gryffindor")),
    )
    .with_egress(rules.clone())
    .with_ingress(rules);
    let c = cluster_of(&p);
    let (h0, h1) = ("harry-potter-0", "harry-potter-1");
    check(
        &c,
        "egress port ranges across protocols",
        &[
            ok(h0, "luna-lovegood-0", Tcp, 80),
            ok(h0, "luna-lovegood-0", Tcp, 8080),
            no(h1, "luna-lovegood-0", Udp, 53),
            ok(h0, "cedric-diggory-0", Udp, 53),
            ok(h0, "cedric-diggory-0", Udp, 5353),
            no(h1, "cedric-diggory-0", Tcp, 80),
            ok(h0, "draco-malfoy-0", Sctp, 9003),
            ok(h0, "draco-malfoy-0", Sctp, 9005),
            no(h1, "draco-malfoy-0", Tcp, 80),
        ],
    );
    check(
        &c,
        "ingress port ranges across protocols",
        &[
            ok("luna-lovegood-0", h0, Tcp, 80),
            ok("luna-lovegood-0", h0, Tcp, 8080),
            no("luna-lovegood-1", h0, Udp, 53),
            ok("cedric-diggory-0", h0, Udp, 53),
            ok("cedric-diggory-0", h0, Udp, 5353),
            no("cedric-diggory-1", h0, Tcp, 80),
            ok("draco-malfoy-0", h0, Sctp, 9003),
            ok("draco-malfoy-0", h0, Sctp, 9005),
            no("draco-malfoy-1", h0, Tcp, 80),
        ],
    );
}

/// The three policies of both tiers' `standard-same-priority.yaml`, all at `priority`, named
/// `<prefix>same-priority-<subject>-<peer>`.
pub fn same_priority_policies(tier: AdminTier, priority: u32, prefix: &str) -> Vec<AdminPolicy> {
    let one = |subject: &str, peer: &str, port| {
        let rules = vec![deny(to_house(peer)).on(vec![proto_port(Tcp, port)])];
        let name = format!("{prefix}same-priority-{subject}-{peer}");
        cnp(tier, priority, &name, subject_namespaces(ns_of(subject)))
            .with_ingress(rules.clone())
            .with_egress(rules)
    };
    vec![
        one("gryffindor", "slytherin", 80),
        one("gryffindor", "hufflepuff", 80),
        one("hufflepuff", "slytherin", 8080),
    ]
}
