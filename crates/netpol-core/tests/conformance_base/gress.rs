//! The gress tests of both tiers (`standard-gress-rules-combined.yaml`): one policy over
//! gryffindor with ingress and egress rules across the three protocols, and the probes of each
//! subtest.

use netpol_core::model::*;

use super::*;

/// The `gress-rules` policy of `standard-gress-rules-combined.yaml` (the Admin tier's) or the
/// `default` one of the Baseline tier's file (the same rules without the Pass rules).
pub fn gress_policy(tier: AdminTier) -> AdminPolicy {
    let three = |t, u, s| vec![proto_port(Tcp, t), proto_port(Udp, u), proto_port(Sctp, s)];
    let rules = |huff_tcp| {
        let mut r = vec![
            accept(to_house("ravenclaw")),
            deny(to_house("ravenclaw")),
            pass(to_house("ravenclaw")),
            deny(to_house("slytherin")).on(three(80, 53, 9003)),
            pass(to_house("slytherin")).on(three(80, 53, 9003)),
            accept(to_house("hufflepuff")).on(three(huff_tcp, 5353, 9003)),
            deny(to_house("hufflepuff")),
        ];
        if tier == AdminTier::Baseline {
            r.remove(4);
            r.remove(2);
        }
        r
    };
    let (name, priority) = match tier {
        AdminTier::Admin => ("gress-rules", 15),
        AdminTier::Baseline => ("default", 10),
    };
    cnp(
        tier,
        priority,
        name,
        subject_namespaces(ns_of("gryffindor")),
    )
    .with_egress(rules(8080))
    .with_ingress(rules(80))
}

/// The probes of the gress tests' subtests, 0 to 5 (the Baseline tier's file has the first four).
pub fn gress_probes(subtest: usize) -> Vec<Probe> {
    let (h0, h1) = ("harry-potter-0", "harry-potter-1");
    match subtest {
        // allow-gress across protocols
        0 => vec![
            ok(h0, "luna-lovegood-0", Tcp, 80),
            ok(h1, "luna-lovegood-0", Udp, 53),
            ok(h0, "luna-lovegood-0", Sctp, 9003),
            ok("luna-lovegood-0", h0, Tcp, 80),
            ok("luna-lovegood-1", h0, Udp, 53),
            ok("luna-lovegood-1", h0, Sctp, 9003),
        ],
        // allow-gress at the specified ports
        1 => vec![
            ok(h0, "cedric-diggory-1", Tcp, 8080),
            no(h1, "cedric-diggory-1", Tcp, 80),
            ok(h0, "cedric-diggory-1", Udp, 5353),
            no(h1, "cedric-diggory-1", Udp, 53),
            ok(h0, "cedric-diggory-1", Sctp, 9003),
            no(h1, "cedric-diggory-1", Sctp, 9005),
            ok("cedric-diggory-0", h1, Tcp, 80),
            no("cedric-diggory-1", h1, Tcp, 8080),
            ok("cedric-diggory-0", h1, Udp, 5353),
            no("cedric-diggory-1", h1, Udp, 53),
            ok("cedric-diggory-0", h1, Sctp, 9003),
            no("cedric-diggory-1", h1, Sctp, 9005),
        ],
        // deny-gress across protocols (rules 0 and 1 swapped)
        2 => vec![
            no(h0, "luna-lovegood-1", Tcp, 80),
            no(h1, "luna-lovegood-1", Udp, 53),
            no(h0, "luna-lovegood-1", Sctp, 9003),
            no("luna-lovegood-0", h1, Tcp, 80),
            no("luna-lovegood-1", h1, Udp, 53),
            no("luna-lovegood-1", h1, Sctp, 9003),
        ],
        // deny-gress at the specified ports
        3 => vec![
            no(h0, "draco-malfoy-0", Tcp, 80),
            ok(h1, "draco-malfoy-0", Tcp, 8080),
            no(h0, "draco-malfoy-0", Udp, 53),
            ok(h1, "draco-malfoy-0", Udp, 5353),
            no(h0, "draco-malfoy-0", Sctp, 9003),
            ok(h1, "draco-malfoy-0", Sctp, 9005),
            no("draco-malfoy-0", h0, Tcp, 80),
            ok("draco-malfoy-1", h0, Tcp, 8080),
            no("draco-malfoy-0", h0, Udp, 53),
            ok("draco-malfoy-1", h0, Udp, 5353),
            no("draco-malfoy-0", h0, Sctp, 9003),
            ok("draco-malfoy-1", h0, Sctp, 9005),
        ],
        // pass-gress across protocols (rules 0 and 2 swapped)
        4 => vec![
            ok(h0, "luna-lovegood-0", Tcp, 80),
            ok(h0, "luna-lovegood-0", Udp, 5353),
            ok(h0, "luna-lovegood-0", Sctp, 9003),
            ok("luna-lovegood-0", h0, Tcp, 80),
            ok("luna-lovegood-1", h0, Udp, 53),
            ok("luna-lovegood-1", h0, Sctp, 9003),
        ],
        // pass-gress at the specified ports (rules 3 and 4 swapped)
        _ => vec![
            ok(h0, "draco-malfoy-0", Tcp, 80),
            ok(h1, "draco-malfoy-0", Tcp, 8080),
            ok(h0, "draco-malfoy-0", Udp, 53),
            ok(h1, "draco-malfoy-0", Udp, 5353),
            ok(h0, "draco-malfoy-0", Sctp, 9003),
            ok(h1, "draco-malfoy-0", Sctp, 9005),
            ok("draco-malfoy-0", h0, Tcp, 80),
            ok("draco-malfoy-1", h0, Tcp, 8080),
            ok("draco-malfoy-0", h0, Udp, 53),
            ok("draco-malfoy-1", h0, Udp, 5353),
            ok("draco-malfoy-0", h0, Sctp, 9003),
            ok("draco-malfoy-1", h0, Sctp, 9005),
        ],
    }
}

/// Runs a gress test: subtests in order, the rules of both directions swapped as upstream
/// patches them.
pub fn run_gress(tier: AdminTier, test: &str) {
    let mut p = gress_policy(tier);
    let swaps: [Option<(usize, usize)>; 6] =
        [None, None, Some((0, 1)), None, Some((0, 2)), Some((3, 4))];
    let subtests = if tier == AdminTier::Admin { 6 } else { 4 };
    for (i, swap) in swaps.iter().enumerate().take(subtests) {
        if let Some((a, b)) = swap {
            p.egress.swap(*a, *b);
            p.ingress.swap(*a, *b);
        }
        check(
            &cluster_of(&p),
            &format!("{test} subtest {i}"),
            &gress_probes(i),
        );
    }
}
