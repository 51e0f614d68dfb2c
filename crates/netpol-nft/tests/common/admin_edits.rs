//! Admin rule edits the update tests and the `admin_update` bench make: where a rule is, the
//! first rule that decides some port segment of a node's tier maps, and the edits (a port moved,
//! the action flipped).

use netpol_core::{AdminAction, AdminPort, AdminRule, Cluster, Direction};
use netpol_nft::Ruleset;

/// Where an admin rule is: policy index in the cluster, direction, rule index.
#[derive(Clone, Copy, Debug)]
pub struct RuleAt {
    pub policy: usize,
    pub direction: Direction,
    pub rule: usize,
}

impl RuleAt {
    pub fn get_mut(self, c: &mut Cluster) -> &mut AdminRule {
        let p = &mut c.admin_policies[self.policy];
        let rules = match self.direction {
            Direction::Ingress => &mut p.ingress,
            Direction::Egress => &mut p.egress,
        };
        &mut rules[self.rule]
    }

    /// `cnp/NAME ingress[0]`: how comments and counters label the rule.
    pub fn label(self, c: &Cluster) -> String {
        format!(
            "{} {}[{}]",
            c.admin_policies[self.policy].key(),
            self.direction,
            self.rule
        )
    }
}

/// The first admin rule of `r` that `fits` and decides some port segment of its tier maps.
pub fn deciding_rule(c: &Cluster, r: &Ruleset, fits: impl Fn(&AdminRule) -> bool) -> RuleAt {
    let ir = r.ir();
    let decides = |i: usize| {
        [&ir.ingress, &ir.egress]
            .iter()
            .flat_map(|d| d.tiers.iter())
            .any(|t| {
                t.segments
                    .iter()
                    .any(|s| s.rule == i && s.protocol.is_some())
            })
    };
    r.admin_rule_counters()
        .iter()
        .enumerate()
        .filter(|(i, _)| decides(*i))
        .find_map(|(_, a)| {
            let policy = c.admin_policies.iter().position(|p| p.key() == a.policy)?;
            let at = RuleAt {
                policy,
                direction: a.direction,
                rule: a.rule,
            };
            fits(c.admin_policies[policy].rules(a.direction).get(a.rule)?).then_some(at)
        })
        .expect("an admin rule deciding some segment")
}

pub fn has_numeric_port(rule: &AdminRule) -> bool {
    rule.ports
        .iter()
        .flatten()
        .any(|p| matches!(p, AdminPort::Protocol { ports: Some(_), .. }))
}

/// The first numeric port range of the rule moves up by one port.
pub fn move_first_port(rule: &mut AdminRule) {
    for p in rule.ports.iter_mut().flatten() {
        if let AdminPort::Protocol {
            ports: Some((lo, hi)),
            ..
        } = p
        {
            *lo = lo.saturating_add(1);
            *hi = (*hi).max(*lo);
            return;
        }
    }
}

/// Deny <-> Accept, Pass -> Deny (valid in both tiers).
pub fn flip_action(rule: &mut AdminRule) {
    rule.action = match rule.action {
        AdminAction::Deny => AdminAction::Accept,
        AdminAction::Accept | AdminAction::Pass => AdminAction::Deny,
    };
}
