//! Lint: findings about policies that probably do not do what their author meant. Pure: it reads
//! a [`Cluster`] and the [`EvalOptions`] and returns [`Finding`]s; loading problems that need the
//! decoder (a field under the wrong parent, NP009/NP010) are turned into findings by the caller
//! with the same types.
//!
//! Every check has a stable ID ([`Check::id`]), a default severity and a help text
//! ([`Check::help`], also the SARIF rule's help). The definitions, precisely:
//! * NP001 a policy whose `podSelector` selects no workload of its namespace;
//! * NP002 a `podSelector`/`namespaceSelector` peer that selects no workload (or no namespace);
//! * NP003 redundancy (see [`redundant`]): a rule whose allowed (peer, protocol, port) set is, for
//!   every workload its policy selects, a subset of the union of what the other rules of every
//!   policy isolating that workload in that direction allow; a policy is redundant when removing
//!   it changes nothing: every workload it selects is isolated by another policy in each direction
//!   it affects, and all its rules are covered by the other policies' rules;
//! * NP004 egress isolation without DNS (see [`dns`]);
//! * NP005 an ipBlock containing addresses of in-cluster workloads;
//! * NP006 a named port that no destination of its rule defines for that protocol;
//! * NP007 `Egress` in `policyTypes` with no egress rule;
//! * NP008 the AND/OR dash mistake (see [`selection::dash_mistakes`]);
//! * NP011 admin policies of one tier tied on priority that overlap, NP012 a NetworkPolicy rule
//!   an Admin-tier Deny shadows (see [`tiers`]).
//!
//! The checks that ask what selectors select (NP001, NP002, NP003, NP006, NP008) need workloads:
//! on an input with none (policies kept apart from what they select) they are skipped and
//! reported as skipped rather than flagging every policy.

mod addrs;
pub mod dns;
pub mod redundant;
pub mod selection;
pub mod tiers;

use std::fmt;

use serde::Serialize;

use crate::model::{Cluster, Direction, EvalOptions, Origin, Policy, RuleItem};

pub use addrs::AddrSet;

/// How bad a finding is; ordered `Info < Warning < Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LintSeverity {
    /// Worth knowing; probably intended.
    Info,
    /// Probably not what the author meant.
    Warning,
    /// The policy does something else than what is written.
    Error,
}

impl LintSeverity {
    /// `info`, `warning`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            LintSeverity::Info => "info",
            LintSeverity::Warning => "warning",
            LintSeverity::Error => "error",
        }
    }
}

impl fmt::Display for LintSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One lint check, with a stable ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// NP001: the policy selects no workload.
    SelectsNoWorkload,
    /// NP002: a peer selects nothing.
    PeerSelectsNothing,
    /// NP003: a rule or policy allows nothing the others do not.
    Redundant,
    /// NP004: egress isolation without DNS.
    EgressWithoutDns,
    /// NP005: an ipBlock covers in-cluster workload addresses.
    IpBlockCoversWorkloads,
    /// NP006: a named port no destination defines.
    UnknownNamedPort,
    /// NP007: `Egress` in `policyTypes` with no egress rules.
    EgressWithoutRules,
    /// NP008: `namespaceSelector` and `podSelector` as two list items.
    SplitPeer,
    /// NP009: an unknown field, most often one under the wrong parent (dropped in warn mode).
    UnknownField,
    /// NP010: a field given twice (the later value is used).
    DuplicateField,
    /// NP011: admin policies of one tier with equal priorities overlap.
    AdminPriorityTie,
    /// NP012: an Admin-tier Deny shadows a NetworkPolicy rule.
    ShadowedByAdminDeny,
}

impl Check {
    /// Every check, in ID order.
    pub const ALL: [Check; 12] = [
        Check::SelectsNoWorkload,
        Check::PeerSelectsNothing,
        Check::Redundant,
        Check::EgressWithoutDns,
        Check::IpBlockCoversWorkloads,
        Check::UnknownNamedPort,
        Check::EgressWithoutRules,
        Check::SplitPeer,
        Check::UnknownField,
        Check::DuplicateField,
        Check::AdminPriorityTie,
        Check::ShadowedByAdminDeny,
    ];

    /// The stable ID, `NP001` ...
    pub fn id(self) -> &'static str {
        match self {
            Check::SelectsNoWorkload => "NP001",
            Check::PeerSelectsNothing => "NP002",
            Check::Redundant => "NP003",
            Check::EgressWithoutDns => "NP004",
            Check::IpBlockCoversWorkloads => "NP005",
            Check::UnknownNamedPort => "NP006",
            Check::EgressWithoutRules => "NP007",
            Check::SplitPeer => "NP008",
            Check::UnknownField => "NP009",
            Check::DuplicateField => "NP010",
            Check::AdminPriorityTie => "NP011",
            Check::ShadowedByAdminDeny => "NP012",
        }
    }

    /// A short kebab-case name (the SARIF rule's `name`).
    pub fn name(self) -> &'static str {
        match self {
            Check::SelectsNoWorkload => "policy-selects-nothing",
            Check::PeerSelectsNothing => "peer-selects-nothing",
            Check::Redundant => "redundant",
            Check::EgressWithoutDns => "egress-without-dns",
            Check::IpBlockCoversWorkloads => "ipblock-covers-workloads",
            Check::UnknownNamedPort => "unknown-named-port",
            Check::EgressWithoutRules => "egress-without-rules",
            Check::SplitPeer => "split-peer",
            Check::UnknownField => "unknown-field",
            Check::DuplicateField => "duplicate-field",
            Check::AdminPriorityTie => "admin-priority-tie",
            Check::ShadowedByAdminDeny => "shadowed-by-admin-deny",
        }
    }

    /// One line saying what the check finds.
    pub fn summary(self) -> &'static str {
        match self {
            Check::SelectsNoWorkload => "The policy's podSelector selects no workload of its namespace.",
            Check::PeerSelectsNothing => "A podSelector/namespaceSelector peer selects no workload.",
            Check::Redundant => "A rule or policy allows nothing that other rules do not already allow.",
            Check::EgressWithoutDns => "Egress-isolated workloads cannot reach the cluster DNS on UDP and TCP port 53.",
            Check::IpBlockCoversWorkloads => "An ipBlock contains in-cluster workload addresses.",
            Check::UnknownNamedPort => "A named port is defined by no destination of its rule.",
            Check::EgressWithoutRules => "Egress is in policyTypes but the policy has no egress rules: it denies all egress.",
            Check::SplitPeer => "namespaceSelector and podSelector are two peers where one was probably meant.",
            Check::UnknownField => "A field netpol does not know, most often one under the wrong parent; it was dropped.",
            Check::DuplicateField => "A field is given twice; the later value is used.",
            Check::AdminPriorityTie => "Two admin policies of one tier have the same priority and select a common workload: which decides first is undefined upstream.",
            Check::ShadowedByAdminDeny => "An Admin-tier Deny decides before a NetworkPolicy rule, which then never allows what it says.",
        }
    }

    /// What to do about it (the SARIF rule's help).
    pub fn help(self) -> &'static str {
        match self {
            Check::SelectsNoWorkload => "Check the podSelector labels against the workloads' labels (pod template labels for controllers, spec.template labels for VMs), or delete the policy.",
            Check::PeerSelectsNothing => "Check the selector's labels against the workloads and namespaces it should match; a peer without namespaceSelector only looks in the policy's own namespace.",
            Check::Redundant => "Remove the rule or policy, or narrow the rule that covers it; if several are mutually redundant, removing one of them is enough.",
            Check::EgressWithoutDns => "Add an egress rule to namespaceSelector kubernetes.io/metadata.name: kube-system with podSelector k8s-app: kube-dns on port 53 for both UDP and TCP.",
            Check::IpBlockCoversWorkloads => "Select workloads with podSelector/namespaceSelector instead: Cilium (which Deckhouse runs) never matches workload addresses with ipBlocks, upstream conformance does, so the policy means different things on different clusters. Add the workload ranges to except if they should not match.",
            Check::UnknownNamedPort => "Use the name of a container port the destination defines (ports[].name with the same protocol), or a port number.",
            Check::EgressWithoutRules => "Add the egress rules the workloads need, or remove Egress from policyTypes if only ingress was meant.",
            Check::SplitPeer => "To allow only the selected pods of the selected namespaces, make them one list item: remove the dash before podSelector so that it lines up with namespaceSelector.",
            Check::UnknownField => "Move the field to where it belongs (see the hint) or remove it; in strict mode the whole object is rejected.",
            Check::DuplicateField => "Remove one of the two.",
            Check::AdminPriorityTie => "Give the policies distinct priorities (lower decides first), so every implementation orders them the same way.",
            Check::ShadowedByAdminDeny => "If the connection should be possible, ask the cluster administrator to Pass it in the Admin tier (or narrow the Deny); otherwise remove the NetworkPolicy rule.",
        }
    }

    /// The severity findings of this check have unless the check says otherwise.
    pub fn default_severity(self) -> LintSeverity {
        match self {
            Check::UnknownField => LintSeverity::Error,
            Check::EgressWithoutRules => LintSeverity::Info,
            _ => LintSeverity::Warning,
        }
    }
}

impl Serialize for Check {
    /// As its ID.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which check found it (serialized as its ID).
    #[serde(rename = "id")]
    pub check: Check,
    /// How bad it is.
    pub severity: LintSeverity,
    /// The object it is about, `NetworkPolicy ns/name`.
    pub object: String,
    /// Where the object was written, when known; for a finding about a rule, a peer or a port,
    /// that item's line, and for NP009/NP010 the field's.
    pub origin: Option<Origin>,
    /// What is wrong, e.g. `ingress[0] from[1] selects no workload`.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Finding {
    /// A finding about `policy` with the check's default severity and help as the hint.
    pub fn about(check: Check, policy: &Policy, message: String) -> Self {
        Finding {
            check,
            severity: check.default_severity(),
            object: policy_object(policy),
            origin: policy.origin.clone(),
            message,
            hint: check.help().to_string(),
        }
    }

    /// A finding about an item of one of `policy`'s rules (the rule, a peer, a port), located at
    /// that item's line when the loader recorded it.
    pub fn about_item(
        check: Check,
        policy: &Policy,
        at: (Direction, usize, RuleItem),
        message: String,
    ) -> Self {
        let (direction, rule, item) = at;
        Finding {
            origin: policy.item_origin(direction, rule, item),
            ..Finding::about(check, policy, message)
        }
    }

    /// The same finding with another severity.
    pub fn with_severity(mut self, severity: LintSeverity) -> Self {
        self.severity = severity;
        self
    }

    /// The same finding with another hint.
    pub fn with_hint(mut self, hint: String) -> Self {
        self.hint = hint;
        self
    }
}

/// `NetworkPolicy ns/name`, how findings name a policy.
pub fn policy_object(policy: &Policy) -> String {
    format!("NetworkPolicy {}", policy.key())
}

/// Every finding of the pure checks, and the checks skipped for want of input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LintReport {
    /// Sorted by file, line, ID, object and message.
    pub findings: Vec<Finding>,
    /// Checks that need workloads and were skipped because the input has none.
    pub skipped: Vec<Check>,
}

impl LintReport {
    /// Adds findings (from the decoder, say) and keeps the order.
    pub fn extend(&mut self, more: impl IntoIterator<Item = Finding>) {
        self.findings.extend(more);
        sort_findings(&mut self.findings);
    }

    /// The worst severity of any finding.
    pub fn worst(&self) -> Option<LintSeverity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Runs every pure check.
pub fn lint(cluster: &Cluster, opts: EvalOptions) -> LintReport {
    let mut findings = Vec::new();
    let mut skipped = Vec::new();
    if cluster.workloads.is_empty() {
        skipped = vec![
            Check::SelectsNoWorkload,
            Check::PeerSelectsNothing,
            Check::Redundant,
            Check::UnknownNamedPort,
            Check::SplitPeer,
        ];
    } else {
        let index = selection::Index::new(cluster);
        findings.extend(selection::policies_selecting_nothing(cluster, &index));
        findings.extend(selection::peers_selecting_nothing(cluster, &index));
        findings.extend(selection::unknown_named_ports(cluster, &index));
        findings.extend(selection::dash_mistakes(cluster, &index));
        findings.extend(redundant::redundant(cluster, opts));
        findings.extend(tiers::shadowed_by_admin_deny(cluster, opts, &index));
    }
    findings.extend(tiers::priority_ties(cluster));
    findings.extend(dns::egress_without_dns(cluster));
    findings.extend(selection::ip_blocks_covering_workloads(cluster, opts));
    findings.extend(selection::egress_without_rules(cluster));
    sort_findings(&mut findings);
    LintReport { findings, skipped }
}

fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let file = |f: &Finding| f.origin.as_ref().map(|o| (o.file.clone(), o.line));
        file(a)
            .cmp(&file(b))
            .then(a.check.cmp(&b.check))
            .then(a.object.cmp(&b.object))
            .then(a.message.cmp(&b.message))
    });
}
