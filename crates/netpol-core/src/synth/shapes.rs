//! The policy shapes of the synthetic cluster, one function each: every feature of the API
//! appears in some shape (default deny, named ports, namespace and pod selectors alone and
//! ANDed, all four `matchExpressions` operators, ipBlocks with holes, port ranges, SCTP,
//! protocol-only ports, empty `from`, both directions in one policy).

use super::*;

pub(super) fn shape_0(p: &mut Policy, _c: &Picks, _rng: &mut Rng) -> &'static str {
    // Default deny ingress for the whole namespace (only in some namespaces).
    p.pod_selector = LabelSelector::everything();
    "default-deny-ingress"
}

pub(super) fn shape_1(p: &mut Policy, c: &Picks, _rng: &mut Rng) -> &'static str {
    p.pod_selector = selector(&[("app", c.app.0)]);
    p.affects_ingress = false;
    p.affects_egress = true;
    // DNS to ns-000 (the "kube-system" of the synthetic cluster), UDP and TCP.
    p.egress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(selector(&[(NAMESPACE_NAME_LABEL, "ns-000")])),
        }],
        ports: vec![port(Protocol::Udp, Some(PortSpec::Number(53))), tcp(53)],
    });
    // And to the other application of the namespace on its named http port.
    p.egress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: Some(selector(&[("app", c.other.0)])),
            namespace_selector: None,
        }],
        ports: vec![port(Protocol::Tcp, Some(PortSpec::Named("http".into())))],
    });
    "egress-dns-and-app"
}

pub(super) fn shape_2(p: &mut Policy, c: &Picks, _rng: &mut Rng) -> &'static str {
    p.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: Some(selector(&[("app", c.other.0)])),
            namespace_selector: None,
        }],
        ports: vec![port(Protocol::Tcp, Some(PortSpec::Named("http".into())))],
    });
    "allow-app-http"
}

pub(super) fn shape_3(p: &mut Policy, c: &Picks, _rng: &mut Rng) -> &'static str {
    p.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(selector(&[("team", c.team)])),
        }],
        ports: vec![tcp(c.app.2), tcp(80)],
    });
    "allow-team"
}

pub(super) fn shape_4(p: &mut Policy, c: &Picks, _rng: &mut Rng) -> &'static str {
    // namespaceSelector AND podSelector in one peer.
    p.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: Some(selector(&[("tier", "frontend")])),
            namespace_selector: Some(selector(&[("env", c.env)])),
        }],
        ports: vec![tcp(c.app.2)],
    });
    "allow-frontends-of-env"
}

pub(super) fn shape_5(p: &mut Policy, _c: &Picks, rng: &mut Rng) -> &'static str {
    // matchExpressions, all four operators.
    p.pod_selector = LabelSelector {
        match_labels: Labels::new(),
        match_expressions: vec![expr(
            "tier",
            SelectorOperator::In,
            &[*rng.pick(&TIERS), *rng.pick(&TIERS)],
        )],
    };
    p.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: Some(LabelSelector {
                match_labels: Labels::new(),
                match_expressions: vec![expr("legacy", SelectorOperator::DoesNotExist, &[])],
            }),
            namespace_selector: Some(LabelSelector {
                match_labels: Labels::new(),
                match_expressions: vec![expr("env", SelectorOperator::NotIn, &["dev"])],
            }),
        }],
        ports: vec![port(
            Protocol::Tcp,
            Some(PortSpec::Range {
                start: 8000,
                end: 8999,
            }),
        )],
    });
    p.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: Some(LabelSelector {
                match_labels: Labels::new(),
                match_expressions: vec![expr("legacy", SelectorOperator::Exists, &[])],
            }),
            namespace_selector: None,
        }],
        ports: vec![tcp(8080)],
    });
    "allow-by-expressions"
}

pub(super) fn shape_6(p: &mut Policy, _c: &Picks, _rng: &mut Rng) -> &'static str {
    // External clients from the documentation ranges, with a hole, refilled below.
    p.ingress.push(Rule {
        peers: vec![
            block("192.0.2.0/24", &["192.0.2.128/25"]),
            block("198.51.100.0/24", &[]),
        ],
        ports: vec![tcp(443), tcp(80)],
    });
    p.ingress.push(Rule {
        peers: vec![block("192.0.2.128/26", &[])],
        ports: vec![tcp(443)],
    });
    "allow-external-web"
}

pub(super) fn shape_7(p: &mut Policy, _c: &Picks, _rng: &mut Rng) -> &'static str {
    // In-cluster ranges by ipBlock (matters when ipBlocks match workloads).
    p.ingress.push(Rule {
        peers: vec![
            block("10.0.0.0/16", &["10.0.1.0/24"]),
            block("fd00::/112", &[]),
        ],
        ports: vec![port(Protocol::Tcp, Some(PortSpec::Named("metrics".into())))],
    });
    "allow-cluster-range-metrics"
}

pub(super) fn shape_8(p: &mut Policy, _c: &Picks, _rng: &mut Rng) -> &'static str {
    p.affects_ingress = false;
    p.affects_egress = true;
    p.egress.push(Rule {
        peers: vec![block("203.0.113.0/24", &["203.0.113.0/28"])],
        ports: vec![
            port(
                Protocol::Tcp,
                Some(PortSpec::Range {
                    start: 1024,
                    end: 65535,
                }),
            ),
            port(Protocol::Udp, None),
        ],
    });
    p.egress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: None,
            namespace_selector: Some(LabelSelector::everything()),
        }],
        ports: vec![],
    });
    "egress-external-high-ports"
}

pub(super) fn shape_9(p: &mut Policy, c: &Picks, _rng: &mut Rng) -> &'static str {
    // SCTP and protocol-only ports.
    p.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: Some(selector(&[("tier", "backend")])),
            namespace_selector: Some(selector(&[("team", c.team)])),
        }],
        ports: vec![
            port(Protocol::Sctp, Some(PortSpec::Number(3868))),
            port(Protocol::Udp, None),
        ],
    });
    "allow-sctp-and-udp"
}

pub(super) fn shape_10(p: &mut Policy, _c: &Picks, _rng: &mut Rng) -> &'static str {
    // Empty from: anyone, on one port.
    p.ingress.push(Rule {
        peers: vec![],
        ports: vec![tcp(443)],
    });
    "allow-anyone-https"
}

pub(super) fn shape_11(p: &mut Policy, _c: &Picks, _rng: &mut Rng) -> &'static str {
    // Default deny egress for one application.
    p.affects_ingress = false;
    p.affects_egress = true;
    "deny-egress"
}

pub(super) fn shape_12(p: &mut Policy, c: &Picks, _rng: &mut Rng) -> &'static str {
    // Several peers ORed, DNS named port.
    p.pod_selector = selector(&[("app", c.app.0), ("version", "v1")]);
    p.ingress.push(Rule {
        peers: vec![
            Peer::Selector {
                pod_selector: Some(selector(&[("app", c.other.0)])),
                namespace_selector: None,
            },
            Peer::Selector {
                pod_selector: None,
                namespace_selector: Some(selector(&[("compliance", "pci")])),
            },
        ],
        ports: vec![
            port(Protocol::Udp, Some(PortSpec::Named("dns".into()))),
            tcp(c.app.2),
        ],
    });
    "allow-app-or-pci"
}

pub(super) fn shape_rest(p: &mut Policy, c: &Picks, _rng: &mut Rng) -> &'static str {
    // Both directions in one policy, empty ports (all ports).
    p.affects_egress = true;
    p.ingress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: Some(LabelSelector::everything()),
            namespace_selector: None,
        }],
        ports: vec![],
    });
    p.egress.push(Rule {
        peers: vec![Peer::Selector {
            pod_selector: Some(selector(&[("tier", "data")])),
            namespace_selector: Some(selector(&[("env", c.env)])),
        }],
        ports: vec![],
    });
    "same-namespace-and-data"
}
