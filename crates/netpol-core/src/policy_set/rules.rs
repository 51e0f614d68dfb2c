//! Compiled rules and policies: what each rule does (tier, priority, action), to whom (the
//! policy's subjects), with whom (distinct peers) and on what (a distinct port set), and where it
//! was written (provenance).

use crate::model::{Direction, Origin};
use crate::policy_set::peers::PeerId;
use crate::policy_set::ports::PortSetId;

/// The tiers in the order a direction walks them: Admin policies first (by priority), then
/// NetworkPolicy v1, then Baseline policies (by priority), then the default (allow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// AdminNetworkPolicy / ClusterNetworkPolicy `Admin`: decides before NetworkPolicy.
    Admin,
    /// `networking.k8s.io/v1` NetworkPolicy.
    NetworkPolicy,
    /// BaselineAdminNetworkPolicy / ClusterNetworkPolicy `Baseline`: decides after NetworkPolicy.
    Baseline,
}

/// What a matching rule does to the direction it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Allows (NetworkPolicy's only action; `Accept`/`Allow` of the admin tiers).
    Allow,
    /// Denies; final for the direction.
    Deny,
    /// Skips the rest of the tier.
    Pass,
}

/// The index of a policy: its index in `Cluster::policies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(pub u32);

impl PolicyId {
    /// The index into `Cluster::policies`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The index of a rule in [`crate::PolicySet::rules`] (which is in evaluation order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

impl RuleId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// The peers of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RulePeers {
    /// No `from`/`to`: every peer, in the cluster or outside it.
    Any,
    /// The distinct peers listed (a match of any one is a match).
    Listed(Vec<PeerId>),
}

/// Where a rule comes from: which policy, which direction, which rule of that direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// `namespace/name` of the policy.
    pub policy: String,
    /// Which direction's rule list it is in.
    pub direction: Direction,
    /// The rule's index in the policy's `ingress` or `egress` list.
    pub rule: usize,
    /// The file and line the policy was read from.
    pub origin: Option<Origin>,
}

/// One rule, compiled against the policy set's peers and port sets.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    /// The tier that orders this rule against others (NetworkPolicy for now).
    pub tier: Tier,
    /// Lower decides first within a tier (0 for NetworkPolicy, which has no priorities).
    pub priority: i32,
    /// What a match does: allow, deny or pass to the next tier.
    pub action: Action,
    /// Whether the rule admits traffic to (ingress) or from (egress) its subjects.
    pub direction: Direction,
    /// The policy the rule belongs to.
    pub policy: PolicyId,
    /// The rule's index in the policy's list for `direction`.
    pub index: usize,
    /// The peers the rule matches.
    pub peers: RulePeers,
    /// The ports the rule matches.
    pub ports: PortSetId,
}

/// One policy: whom it applies to and which of its rules decide for them.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    /// The policy's index in `Cluster::policies`.
    pub id: PolicyId,
    /// `namespace/name`.
    pub key: String,
    /// The tier the policy's rules are in.
    pub tier: Tier,
    /// The policy's priority within its tier (0 for NetworkPolicy).
    pub priority: i32,
    /// The distinct selector standing for the workloads the policy applies to.
    pub subjects: PeerId,
    /// Per direction (`[ingress, egress]`): whether the policy isolates its subjects in it.
    pub isolates: [bool; 2],
    /// Per direction (`[ingress, egress]`): its rules, in written order.
    pub rules: [Vec<RuleId>; 2],
}

impl CompiledPolicy {
    /// Whether the policy isolates its subjects in `direction`.
    pub fn isolates(&self, direction: Direction) -> bool {
        self.isolates[direction_index(direction)]
    }

    /// The policy's rules for `direction` in written order (none when it does not isolate).
    pub fn rules(&self, direction: Direction) -> &[RuleId] {
        &self.rules[direction_index(direction)]
    }
}

/// 0 for ingress, 1 for egress: the index of per-direction arrays.
pub(crate) fn direction_index(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

/// The index of an admin policy: its index in `Cluster::admin_policies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdminPolicyId(pub u32);

impl AdminPolicyId {
    /// The index into `Cluster::admin_policies`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The index of an admin rule in [`crate::PolicySet::admin_rules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdminRuleId(pub u32);

impl AdminRuleId {
    /// The index into [`crate::PolicySet::admin_rules`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One rule of an admin policy, compiled. Unlike a NetworkPolicy rule (any match allows), the
/// first matching admin rule of a direction decides, so the walk order matters: see
/// [`crate::PolicySet::admin_walk`].
#[derive(Clone, Debug)]
pub struct CompiledAdminRule {
    /// What a match does. A Deny or Pass rule with a peer of an unknown kind fails closed: it is
    /// compiled as Deny of every peer on every port (`fail_closed`).
    pub action: Action,
    /// The direction it decides.
    pub direction: Direction,
    /// The policy it belongs to.
    pub policy: AdminPolicyId,
    /// The rule's index in the policy's list for `direction`.
    pub index: usize,
    /// The peers it matches (never [`RulePeers::Any`] unless it fails closed: admin rules always
    /// list peers). An Accept rule with a peer of an unknown kind lists none and matches
    /// nothing.
    pub peers: RulePeers,
    /// The ports it matches (every port when the rule has no `protocols`, or fails closed).
    pub ports: PortSetId,
    /// True when a peer of an unknown kind turned a Deny or Pass rule into Deny all.
    pub fail_closed: bool,
}

/// One admin policy, compiled.
#[derive(Clone, Debug)]
pub struct CompiledAdminPolicy {
    /// Its index in `Cluster::admin_policies`.
    pub id: AdminPolicyId,
    /// `cnp/NAME`, `anp/NAME` or `banp/NAME`.
    pub key: String,
    /// The tier it decides in ([`Tier::Admin`] or [`Tier::Baseline`]).
    pub tier: Tier,
    /// Its priority within the tier.
    pub priority: u32,
    /// The distinct selector standing for the workloads it applies to.
    pub subjects: PeerId,
    /// Per direction (`[ingress, egress]`): its rules in written order (empty: the policy does
    /// not touch the direction; there is no implicit isolation).
    pub rules: [Vec<AdminRuleId>; 2],
}

impl CompiledAdminPolicy {
    /// The policy's rules for `direction`, in written order.
    pub fn rules(&self, direction: Direction) -> &[AdminRuleId] {
        &self.rules[direction_index(direction)]
    }
}
