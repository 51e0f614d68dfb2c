//! The one text rendering of core values: labels, peers and rules in words, a verdict's
//! explanation, the connectivity map as lines and port ranges (`80-90,443`). Every text output of
//! `check` and `matrix` that is not a table comes from here; tables are the CLI's.

use std::fmt::Write as _;

use crate::analysis::ConnectivityMap;
use crate::eval::{AdminRuleMatch, DirectionVerdict, TierOutcome, TierStep, Verdict};
use crate::model::{
    AdminAction, AdminPeer, AdminRule, AdminSubject, AdminTier, Direction, Labels, Peer, Policy,
    Protocol, Rule,
};

/// `a=b,c=d`, or `<none>`.
pub fn render_labels(labels: &Labels) -> String {
    if labels.is_empty() {
        return "<none>".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One peer in words, as seen from `policy`.
pub fn render_peer(policy: &Policy, peer: &Peer) -> String {
    match peer {
        Peer::IpBlock(b) => format!("ipBlock {b}"),
        Peer::Selector {
            pod_selector,
            namespace_selector,
        } => match (namespace_selector, pod_selector) {
            (None, Some(pod)) => format!("podSelector {pod} (namespace {})", policy.namespace),
            (None, None) => format!("every workload of namespace {}", policy.namespace),
            (Some(ns), None) => format!("namespaceSelector {ns}"),
            (Some(ns), Some(pod)) => format!("namespaceSelector {ns} and podSelector {pod}"),
        },
    }
}

/// A rule in words: `ingress[0] from podSelector vm=b (namespace x), ports TCP 80, UDP 53`.
pub fn render_rule(policy: &Policy, direction: Direction, index: usize, rule: &Rule) -> String {
    let mut s = format!("{direction}[{index}] ");
    let field = match direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    if rule.peers.is_empty() {
        let _ = write!(s, "{field} anywhere");
    } else {
        let peers: Vec<String> = rule.peers.iter().map(|p| render_peer(policy, p)).collect();
        let _ = write!(s, "{field} {}", peers.join(" or "));
    }
    if rule.ports.is_empty() {
        s.push_str(", all ports");
    } else {
        let ports: Vec<String> = rule.ports.iter().map(|p| p.to_string()).collect();
        let _ = write!(s, ", ports {}", ports.join(", "));
    }
    s
}

/// One admin peer in words: `namespaces team=a`, `pods <all> in namespaces team=a`,
/// `networks 192.0.2.0/24`, `nodes <all>`, `domainNames *.example.com`.
pub fn render_admin_peer(peer: &AdminPeer) -> String {
    match peer {
        AdminPeer::Namespaces(ns) => format!("namespaces {ns}"),
        AdminPeer::Pods {
            namespace_selector,
            pod_selector,
        } => format!("pods {pod_selector} in namespaces {namespace_selector}"),
        AdminPeer::Networks(nets) => {
            let nets: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            format!("networks {}", nets.join(", "))
        }
        AdminPeer::Nodes(sel) => format!("nodes {sel}"),
        AdminPeer::DomainNames(names) => format!("domainNames {}", names.join(", ")),
        AdminPeer::Unknown => "a peer of an unknown kind (fails closed)".to_string(),
    }
}

/// An admin policy's subject in words: `namespaces team=a` or `pods app=db in namespaces <all>`.
pub fn render_admin_subject(subject: &AdminSubject) -> String {
    match subject {
        AdminSubject::Namespaces(ns) => format!("namespaces {ns}"),
        AdminSubject::Pods {
            namespace_selector,
            pod_selector,
        } => format!("pods {pod_selector} in namespaces {namespace_selector}"),
    }
}

/// An admin rule in words: `egress[0] "dns" Accept to namespaces team=a, ports UDP 53`.
pub fn render_admin_rule(direction: Direction, index: usize, rule: &AdminRule) -> String {
    let mut s = format!("{direction}[{index}] ");
    if let Some(name) = &rule.name {
        let _ = write!(s, "{name:?} ");
    }
    let field = match direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    let peers: Vec<String> = rule.peers.iter().map(render_admin_peer).collect();
    let _ = write!(s, "{} {field} {}", rule.action, peers.join(" or "));
    match &rule.ports {
        None => s.push_str(", all ports"),
        Some(ports) => {
            let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
            let _ = write!(s, ", ports {}", ports.join(", "));
        }
    }
    s
}

impl Verdict {
    /// The verdict as multi-line text for a person.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let between = match &self.replicas_of {
            Some(w) => format!(", between two replicas of {w}"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{}  {} -> {}  {}/{}{between}",
            if self.allowed { "ALLOWED" } else { "DENIED" },
            self.src,
            self.dst,
            self.protocol,
            self.port
        );
        if let (Some(a), Some(b)) = (self.src_address, self.dst_address) {
            let _ = writeln!(out, "  addresses: {a} -> {b}");
        }
        let (from, to) = match self.replicas_of {
            Some(_) => ("one replica of ", "another replica of "),
            None => ("", ""),
        };
        let egress_title = format!("egress from {from}{}", self.src);
        explain_side(&mut out, &egress_title, Direction::Egress, &self.egress);
        let ingress_title = format!("ingress to {to}{}", self.dst);
        explain_side(&mut out, &ingress_title, Direction::Ingress, &self.ingress);
        out
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.explain())
    }
}

/// The verdict as multi-line text (same as [`Verdict::explain`]); the cluster is not needed
/// because the verdict already carries names, origins and rule texts.
pub fn explain(verdict: &Verdict) -> String {
    verdict.explain()
}

fn with_origin(policy: &str, origin: &Option<String>) -> String {
    match origin {
        Some(o) => format!("{policy} ({o})"),
        None => policy.to_string(),
    }
}

fn isolated_line(out: &mut String, isolated_by: &[String]) {
    let _ = writeln!(
        out,
        "    isolated by {} {}: {}",
        isolated_by.len(),
        if isolated_by.len() == 1 {
            "policy"
        } else {
            "policies"
        },
        isolated_by.join(", ")
    );
}

fn explain_side(out: &mut String, title: &str, direction: Direction, side: &DirectionVerdict) {
    match side {
        DirectionVerdict::NotApplicable => {
            let _ = writeln!(
                out,
                "  {title}: not applicable (an external address; policies apply only to workloads)"
            );
        }
        DirectionVerdict::SelfTraffic => {
            let _ = writeln!(
                out,
                "  {title}: allowed (traffic from a workload to itself is always allowed)"
            );
        }
        DirectionVerdict::OwnNode { node } => {
            let _ = writeln!(
                out,
                "  {title}: allowed: from its own node (node/{node}; a workload always accepts its node's traffic, e.g. kubelet probes)"
            );
        }
        DirectionVerdict::Node { node } => {
            let _ = writeln!(
                out,
                "  {title}: not applicable (node/{node} is a node; no policy applies to a node)"
            );
        }
        DirectionVerdict::Open => {
            let _ = writeln!(
                out,
                "  {title}: open (no policy selects it for {direction})"
            );
        }
        DirectionVerdict::UnknownWorkload { index } => {
            let _ = writeln!(out, "  {title}: denied (no workload with index {index})");
        }
        DirectionVerdict::Allowed {
            isolated_by,
            allowed_by,
        } => {
            let _ = writeln!(out, "  {title}: allowed");
            isolated_line(out, isolated_by);
            for (i, m) in allowed_by.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    {} by {}: {}",
                    if i == 0 { "allowed" } else { "also allowed" },
                    with_origin(&m.policy, &m.origin),
                    m.rule_text
                );
            }
        }
        DirectionVerdict::Denied {
            isolated_by,
            denials,
        } => {
            let _ = writeln!(out, "  {title}: denied");
            isolated_line(out, isolated_by);
            for d in denials {
                let who = with_origin(&d.policy, &d.origin);
                match &d.rule_text {
                    None => {
                        let _ = writeln!(out, "    {who}: {}", d.reason);
                    }
                    Some(rule) => {
                        let _ = writeln!(out, "    {who}: nearest rule {rule}");
                        let _ = writeln!(out, "      does not match: {}", d.reason);
                    }
                }
            }
        }
        DirectionVerdict::Tiered { allowed, steps } => {
            let word = if *allowed { "allowed" } else { "denied" };
            let _ = writeln!(out, "  {title}: {word}");
            for step in steps {
                explain_step(out, direction, step);
            }
        }
    }
}

/// One step of a walk through the tiers, indented under its side.
fn explain_step(out: &mut String, direction: Direction, step: &TierStep) {
    match step {
        TierStep::Admin { outcome } => explain_tier(out, AdminTier::Admin, outcome),
        TierStep::Baseline { outcome } => explain_tier(out, AdminTier::Baseline, outcome),
        TierStep::NetworkPolicy { verdict } => {
            let mut inner = String::new();
            explain_side(&mut inner, "NetworkPolicy tier", direction, verdict);
            for line in inner.lines() {
                let _ = writeln!(out, "  {line}");
            }
            if **verdict == DirectionVerdict::Open {
                let _ = writeln!(out, "      on to the Baseline tier");
            }
        }
        TierStep::Default => {
            let _ = writeln!(out, "    default: allowed (no tier decided)");
        }
    }
}

fn explain_tier(out: &mut String, tier: AdminTier, outcome: &TierOutcome) {
    match outcome {
        TierOutcome::NoPolicy => {
            let _ = writeln!(out, "    {tier} tier: no policy selects it");
        }
        TierOutcome::NoMatch { policies } => {
            let _ = writeln!(
                out,
                "    {tier} tier: no rule matches (selected by {})",
                policies.join(", ")
            );
        }
        TierOutcome::Matched(m) => {
            let _ = writeln!(
                out,
                "    {tier} tier: {} by {}",
                action_words(tier, m),
                who(m)
            );
            let _ = writeln!(out, "      rule {}", m.rule_text);
            if m.fail_closed {
                let _ = writeln!(
                    out,
                    "      a peer of an unknown kind (a newer CRD?) makes a Deny or Pass rule deny everything (fail closed)"
                );
            }
        }
    }
}

fn action_words(tier: AdminTier, m: &AdminRuleMatch) -> &'static str {
    match (m.action, tier) {
        (AdminAction::Accept, _) => "accepted",
        (AdminAction::Deny, _) => "denied",
        (AdminAction::Pass, AdminTier::Admin) => "passed to the NetworkPolicy tier",
        (AdminAction::Pass, AdminTier::Baseline) => "passed to the default (allow)",
    }
}

fn who(m: &AdminRuleMatch) -> String {
    let policy = format!("{} (priority {})", m.policy, m.priority);
    with_origin(&policy, &m.origin)
}

impl ConnectivityMap {
    /// One line per ordered pair of endpoints with anything allowed, in output order:
    /// `p/b -> p/a  TCP 80-90, UDP 53`; a pair whose ports differ between the families gets
    /// `p/b -> p/a  IPv4: TCP 80; IPv6: none`. A workload with replicas has a line to itself
    /// for the flow between two of them (`p/api -> p/api  TCP 8080`); any other workload's own
    /// pair is left out: it always reaches its own address on every port, and a line per
    /// workload saying so would bury the real answers.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for &f in &self.order {
            for &t in self.order.iter().filter(|&&t| !self.is_own_address(f, t)) {
                let line = match &self.by_family {
                    Some(maps) if self.differs(f, t) => {
                        let per: Vec<String> = [0, 1]
                            .iter()
                            .map(|&i| {
                                let p = pair_ports(&maps[i], f, t);
                                let fam = if i == 0 { "IPv4" } else { "IPv6" };
                                if p.is_empty() {
                                    format!("{fam}: none")
                                } else {
                                    format!("{fam}: {p}")
                                }
                            })
                            .collect();
                        per.join("; ")
                    }
                    _ => pair_ports(self, f, t),
                };
                if !line.is_empty() {
                    let _ = writeln!(out, "{} -> {}  {line}", self.keys[f], self.keys[t]);
                }
            }
        }
        out
    }
}

/// `TCP 80-90, UDP 53` for one pair, empty when nothing is allowed.
/// The allowed ports of one pair of the map as its text lines write them (`TCP 80,443, UDP 53`;
/// empty when nothing is allowed).
pub fn pair_ports(map: &ConnectivityMap, f: usize, t: usize) -> String {
    let parts: Vec<String> = Protocol::ALL
        .iter()
        .filter_map(|p| {
            let r = map.ports(f, t, *p);
            (!r.is_empty()).then(|| format!("{p} {}", render_ranges(r)))
        })
        .collect();
    parts.join(", ")
}

/// `80-90,443` style: single ports as `53`, ranges as `lo-hi`, joined by `,`.
pub fn render_ranges(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_render_single_ports_without_a_dash() {
        assert_eq!(render_ranges(&[(53, 53), (80, 90)]), "53,80-90");
    }
}
