//! Explaining a packet the kernel dropped: which workloads it was between and what the reference
//! evaluator (`netpol_core::evaluate`) says about its flow, against the cluster state the
//! ruleset in force was compiled from. The denied-flow log ([`crate::denied`]) writes one event
//! per explanation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use netpol_core::{
    evaluate, Cluster, Direction, DirectionVerdict, Endpoint, EvalOptions, Protocol, TierOutcome,
    TierStep,
};
use netpol_dataplane::NflogRecord;

/// Longest `reason` text in an event.
const MAX_REASON: usize = 400;

/// How the evaluator's answer compares with the kernel's drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agreement {
    /// The evaluator denies it too, on the same side.
    Denied,
    /// The evaluator allows it on the side the kernel denied it.
    Allowed,
    /// The evaluator cannot say (no state yet, the local address is not a workload of it).
    Unknown,
}

/// A denied packet explained against a cluster state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// `namespace/name`, or `external`.
    pub src_workload: String,
    /// Like `src_workload`, for the destination.
    pub dst_workload: String,
    /// The policies isolating the denying side's workload in that direction.
    pub policies: Vec<String>,
    /// Why, in a sentence (cut to 400 bytes).
    pub reason: String,
    /// Whether the evaluator agrees with the drop.
    pub agreement: Agreement,
}

/// What a logged packet is evaluated at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Evaluated {
    /// TCP, UDP or SCTP at its destination port.
    Port(Protocol, u16),
    /// A protocol without ports (ICMP, ...), identified by its number.
    Portless(u8),
    /// TCP, UDP or SCTP without a port in the logged bytes: nothing to evaluate.
    NoPortLogged,
}

impl Evaluated {
    fn of(record: &NflogRecord) -> Evaluated {
        match (record.protocol, record.dst_port) {
            (6, Some(p)) => Evaluated::Port(Protocol::Tcp, p),
            (17, Some(p)) => Evaluated::Port(Protocol::Udp, p),
            (132, Some(p)) => Evaluated::Port(Protocol::Sctp, p),
            (6 | 17 | 132, None) => Evaluated::NoPortLogged,
            (n, _) => Evaluated::Portless(n),
        }
    }
}

/// Finds workloads by address in one cluster state.
pub struct Explainer {
    cluster: Arc<Cluster>,
    by_address: HashMap<IpAddr, usize>,
}

impl Explainer {
    /// Indexes `cluster`'s workloads by address (the first workload listing an address wins).
    pub fn new(cluster: Arc<Cluster>) -> Self {
        let mut by_address = HashMap::new();
        for (i, w) in cluster.workloads.iter().enumerate() {
            for a in &w.addresses {
                by_address.entry(*a).or_insert(i);
            }
        }
        Explainer {
            cluster,
            by_address,
        }
    }

    /// The cluster state explanations are made against.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    fn endpoint(&self, address: IpAddr) -> Endpoint {
        match self.by_address.get(&address) {
            Some(i) => Endpoint::Workload(*i),
            None => Endpoint::External(address),
        }
    }

    fn describe(&self, e: &Endpoint) -> String {
        match e {
            Endpoint::Workload(_) => e.describe(&self.cluster),
            Endpoint::External(_) => "external".to_string(),
        }
    }

    /// Why the evaluator denies (or not) the flow of a packet the `direction` side dropped.
    ///
    /// TCP, UDP and SCTP are evaluated at their destination port. Any other protocol (ICMP, ...)
    /// is allowed by NetworkPolicy only through rules without `ports`, so it is evaluated as TCP
    /// and then counted as allowed only when an allowing rule has no ports.
    pub fn explain(
        &self,
        opts: EvalOptions,
        direction: Direction,
        record: &NflogRecord,
    ) -> Explanation {
        let src = self.endpoint(record.src);
        let dst = self.endpoint(record.dst);
        let mut out = Explanation {
            src_workload: self.describe(&src),
            dst_workload: self.describe(&dst),
            policies: Vec::new(),
            reason: String::new(),
            agreement: Agreement::Unknown,
        };
        let local = match direction {
            Direction::Ingress => &dst,
            Direction::Egress => &src,
        };
        if let Endpoint::External(a) = local {
            out.reason = format!(
                "{a} is not a workload of the enforced state, yet the {direction} chain dropped it"
            );
            return out;
        }
        let evaluated = Evaluated::of(record);
        let (protocol, port) = match evaluated {
            Evaluated::Port(protocol, port) => (protocol, port),
            Evaluated::Portless(_) => (Protocol::Tcp, 0),
            Evaluated::NoPortLogged => {
                out.reason = "no port in the logged bytes (a later fragment)".to_string();
                return out;
            }
        };
        let verdict = evaluate(&self.cluster, opts, &src, &dst, protocol, port);
        let (side, whose) = match direction {
            Direction::Ingress => (verdict.ingress, out.dst_workload.clone()),
            Direction::Egress => (verdict.egress, out.src_workload.clone()),
        };
        judge(&mut out, side, evaluated, &whose, direction);
        truncate_reason(&mut out.reason);
        out
    }
}

/// Fills in the policies, agreement and reason of `out` from the evaluator's verdict on the
/// dropping side (`whose` is that side's workload).
fn judge(
    out: &mut Explanation,
    side: DirectionVerdict,
    evaluated: Evaluated,
    whose: &str,
    direction: Direction,
) {
    let portless = match evaluated {
        Evaluated::Portless(n) => Some(n),
        _ => None,
    };
    match side {
        DirectionVerdict::Denied {
            isolated_by,
            denials,
        } => {
            out.policies = isolated_by;
            out.agreement = Agreement::Denied;
            out.reason = if let Some(n) = portless {
                format!(
                    "{}: no rule without ports admits this peer, and only such rules allow it",
                    protocol_name(n)
                )
            } else if denials.is_empty() {
                "no rule of the isolating policies allows it".to_string()
            } else {
                denials
                    .iter()
                    .map(|d| format!("{}: {}", d.policy, d.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
        }
        DirectionVerdict::Allowed {
            isolated_by,
            allowed_by,
        } => match portless {
            Some(n) if allowed_by.iter().all(|m| m.port.is_some()) => {
                out.policies = isolated_by;
                out.agreement = Agreement::Denied;
                out.reason = format!(
                    "{}: only rules with ports admit this peer, and ports name TCP/UDP/SCTP only",
                    protocol_name(n)
                );
            }
            _ => {
                out.policies = isolated_by;
                out.agreement = Agreement::Allowed;
                out.reason = match allowed_by.first() {
                    Some(m) => format!("allowed by {}: {}", m.policy, m.rule_text),
                    None => "allowed".to_string(),
                };
            }
        },
        DirectionVerdict::Open => {
            out.agreement = Agreement::Allowed;
            out.reason = format!("no policy isolates {whose} for {direction}");
        }
        DirectionVerdict::SelfTraffic => {
            out.agreement = Agreement::Allowed;
            out.reason = "traffic of a workload to itself is always allowed".to_string();
        }
        DirectionVerdict::OwnNode { node } => {
            out.agreement = Agreement::Allowed;
            out.reason = format!("traffic from its own node {node} is always allowed");
        }
        DirectionVerdict::NotApplicable
        | DirectionVerdict::Node { .. }
        | DirectionVerdict::UnknownWorkload { .. } => {
            out.reason = format!("{whose} is not a workload of the enforced state");
        }
        DirectionVerdict::Tiered { allowed, steps } => {
            judge_tiered(out, allowed, steps, evaluated, whose, direction)
        }
    }
}

/// The step of the walk that decided names the policy: an admin or baseline rule, the
/// NetworkPolicy tier's own verdict, or the default.
fn judge_tiered(
    out: &mut Explanation,
    allowed: bool,
    mut steps: Vec<TierStep>,
    evaluated: Evaluated,
    whose: &str,
    direction: Direction,
) {
    out.agreement = if allowed {
        Agreement::Allowed
    } else {
        Agreement::Denied
    };
    match steps.pop() {
        Some(TierStep::Admin {
            outcome: TierOutcome::Matched(m),
        })
        | Some(TierStep::Baseline {
            outcome: TierOutcome::Matched(m),
        }) => {
            out.reason = format!("{} by {}: {}", m.action, m.policy, m.rule_text);
            out.policies = vec![m.policy];
        }
        Some(TierStep::NetworkPolicy { verdict }) => {
            judge(out, *verdict, evaluated, whose, direction)
        }
        _ => out.reason = "no tier decided: the default allows it".to_string(),
    }
}

/// Cuts `reason` to [`MAX_REASON`] bytes (on a character boundary), ending it with `...`.
fn truncate_reason(reason: &mut String) {
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON - 3;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push_str("...");
    }
}

/// `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6`, or the protocol number.
pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        6 => "TCP".into(),
        17 => "UDP".into(),
        132 => "SCTP".into(),
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        n => n.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const STATE: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.80.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, image: i}]}
status: {phase: Running, podIP: 10.80.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-80, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: 80}]
"#;

    /// Two pods of `shop` on n1; `web` admits `client` on TCP 80 only.
    pub(crate) fn cluster() -> Arc<Cluster> {
        let loaded = netpol_k8s::load_str("state.yaml", STATE, &Default::default());
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        Arc::new(loaded.cluster)
    }

    /// A record of the ingress chain `in_00000000` (not a chain of any real ruleset).
    pub(crate) fn record(src: &str, dst: &str, protocol: u8, dst_port: Option<u16>) -> NflogRecord {
        NflogRecord {
            prefix: netpol_nft::denied_log_prefix(Direction::Ingress, "in_00000000"),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol,
            src_port: dst_port.map(|_| 40000),
            dst_port,
            icmp_type: if dst_port.is_none() { Some(8) } else { None },
            icmp_code: None,
        }
    }

    #[test]
    fn a_denied_port_names_the_isolating_policy_and_what_it_admits() {
        let e = Explainer::new(cluster()).explain(
            EvalOptions::default(),
            Direction::Ingress,
            &record("10.80.0.1", "10.80.0.2", 6, Some(81)),
        );
        assert_eq!(e.agreement, Agreement::Denied);
        assert_eq!(e.src_workload, "shop/client");
        assert_eq!(e.dst_workload, "shop/web");
        assert_eq!(e.policies, vec!["shop/web-80".to_string()]);
        assert!(
            e.reason.contains("shop/web-80") && e.reason.contains("81"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn an_allowed_port_dropped_by_the_kernel_is_a_disagreement() {
        let e = Explainer::new(cluster()).explain(
            EvalOptions::default(),
            Direction::Ingress,
            &record("10.80.0.1", "10.80.0.2", 6, Some(80)),
        );
        assert_eq!(e.agreement, Agreement::Allowed);
        assert!(
            e.reason.starts_with("allowed by shop/web-80"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn icmp_is_denied_by_a_rule_with_ports_and_external_peers_are_named_external() {
        let x = Explainer::new(cluster());
        let e = x.explain(
            EvalOptions::default(),
            Direction::Ingress,
            &record("10.80.0.1", "10.80.0.2", 1, None),
        );
        assert_eq!(e.agreement, Agreement::Denied, "{}", e.reason);
        assert!(e.reason.starts_with("ICMP"), "{}", e.reason);
        let e = x.explain(
            EvalOptions::default(),
            Direction::Ingress,
            &record("192.0.2.9", "10.80.0.2", 17, Some(53)),
        );
        assert_eq!(
            (e.src_workload.as_str(), e.agreement),
            ("external", Agreement::Denied)
        );
        // The egress side of client is not isolated: a drop there is not explained by policy.
        let e = x.explain(
            EvalOptions::default(),
            Direction::Egress,
            &record("10.80.0.1", "192.0.2.9", 6, Some(443)),
        );
        assert_eq!(e.agreement, Agreement::Allowed);
        assert!(
            e.reason.contains("no policy isolates shop/client"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn a_tcp_fragment_without_a_port_is_not_judged_and_long_reasons_are_cut() {
        let e = Explainer::new(cluster()).explain(
            EvalOptions::default(),
            Direction::Ingress,
            &NflogRecord {
                icmp_type: None,
                ..record("10.80.0.1", "10.80.0.2", 6, None)
            },
        );
        assert_eq!(e.agreement, Agreement::Unknown);
        assert_eq!(e.reason, "no port in the logged bytes (a later fragment)");
        let mut reason = "é".repeat(MAX_REASON);
        truncate_reason(&mut reason);
        assert!(
            reason.len() <= MAX_REASON && reason.ends_with("..."),
            "{reason}"
        );
    }
}
