//! netpol-nft: compiles the model for one node into one nftables table (`inet netpol`). Pure: it
//! produces text and never touches the kernel.
//!
//! # What the table enforces
//!
//! For every workload whose `node` is the node being compiled ("local" workloads), the table
//! enforces the workload's ingress (on packets whose destination address is the workload's) and its
//! egress (on packets whose source address is the workload's), in one `forward` filter chain: the
//! node routes between its workloads' veths/taps and the rest of the network. A packet between two
//! local workloads is checked for the source's egress and then the destination's ingress in the
//! same pass. Workloads that no policy isolates are not listed anywhere, so their packets pass.
//!
//! The node itself (see [`render`]'s `node` module): an `input` chain sends packets from local
//! workloads to the node's own addresses through the same egress chains; packets the node sends
//! (kubelet probes) leave through `output`, which the table leaves alone, as the API wants; and
//! hairpin traffic (a workload reaching itself through its Service) is accepted by one lookup.
//!
//! # The packet path (fixed cost)
//!
//! The per-packet cost does not grow with the number of policies, rules, peers or workloads: a new
//! connection's first packet meets at most two hash lookups to find the local workloads' identities,
//! then per checked direction at most one hash lookup plus one interval lookup to classify the peer
//! address, and at most three grant lookups. Nothing is a rule per policy, per peer or per
//! workload. See [`render`] for the exact chains.
//!
//! The admin tiers add at most one jump and two verdict map lookups (one hash, one interval) per
//! tier and direction, plus the hairpin set lookup, whatever the number of admin policies (see
//! below).
//!
//! * **Identity**: local workloads whose rules (after resolving named ports) are identical share
//!   one identity and one chain `in_<h>` / `eg_<h>` (`h`: 8 hex digits hashed from the chain's and
//!   its maps' content, so unchanged identities keep their names across recompiles); the dispatch verdict maps
//!   (`in_dispatch4`, `eg_dispatch6`, ...) send a packet to its identity's chain with one hash
//!   lookup.
//! * **Peer class**: every address the rules care about is classified into a class: the set of
//!   distinct peers (`podSelector`/`namespaceSelector` or `ipBlock`) that match it, plus for egress
//!   what the relevant named ports resolve to on that workload. Workload addresses are classified
//!   by a hash map (`in_wl4`, ...); other addresses by one small interval map built from every
//!   ipBlock, split into disjoint ranges (`in_ext4`, ...). The class is carried in a range of
//!   bits of the conntrack mark of the connection being checked ([`CtMarkBits`], see below;
//!   class 0 = matches no peer; other marks are hashed from what the class matches, so they too
//!   stay put across recompiles).
//! * **Grants**: per identity, `<chain>_any` (`l4proto . dport` ranges open to every peer),
//!   `<chain>_all` (classes allowed every protocol and port), `<chain>_port`
//!   (`class . l4proto . dport` ranges). Each is an objref map whose value is the named counter of
//!   the first policy (sorted by `namespace/name`) granting the element, so one lookup both decides
//!   and credits `counter pol_<namespace>_<name>` (cut and suffixed with a hash of the key when
//!   longer than [`MAX_COUNTER_NAME`] bytes, so that every valid policy name fits and no two
//!   policies share a counter).
//!
//! # The admin tiers
//!
//! ClusterNetworkPolicy (both tiers), AdminNetworkPolicy and BaselineAdminNetworkPolicy are
//! compiled into the same identity chains, at a per-packet cost that does not grow with them
//! either: their priorities and rule order are resolved at compile time (see
//! [`render`]'s `tiers` module for the exact chains).
//!
//! * **Who walks the tiers**: a local workload an admin policy selects (with rules for the
//!   direction) is dispatched in that direction even when no NetworkPolicy isolates it. Its
//!   identity chain classifies the peer, then jumps to its Admin tier's lookup chain
//!   (`in_tl_<g>` / `eg_tl_<g>`), which looks `class . l4proto . dport` up in two verdict maps of
//!   disjoint elements, each decided by the first rule of the walk matching it: the single ports
//!   in a hash map (`in_tx_<g>`), the rest in an interval map (`in_t_<h>`). They are computed
//!   once per group of identities the same admin policies of the tier select and shared by the
//!   groups with the same elements ([`TierMap`]); the chain and the hash map are named from the
//!   group's least workload, the interval map from its elements, and identity chains are named
//!   without any of them, so editing an admin rule changes elements in place and renames no
//!   identity chain.
//!   Accept and Deny are final for the direction, Pass and no match go on.
//!   Then the NetworkPolicy grants, final when a NetworkPolicy isolates the workload in the
//!   direction; else the Baseline tier's map the same way, and the default,
//!   allow. Each direction decides on its own (egress on the source's node, ingress on the
//!   destination's), so a connection needs both. Identities no admin policy selects keep exactly
//!   the chains described above (a cluster without admin policies compiles to the same text).
//! * **Peers**: admin peers are atoms of the peer classes like NetworkPolicy's: `namespaces` and
//!   `pods` by identity, `networks` by address ranges that always match workload addresses too
//!   (whatever `ipblock_matches_workloads` says of ipBlocks), `nodes` by the addresses of the Node
//!   objects the selector matches (never a workload's). **`domainNames` are not enforced by the
//!   kernel**: such a peer matches nothing in the table (the analyzer matches the names the user
//!   resolved; an Accept rule with only domain names accepts nothing here, which fails closed).
//!   A rule with a peer of an unknown kind that fails closed (Deny or Pass) is Deny of every peer,
//!   port and protocol. Named ports resolve on the destination: the local workload for ingress,
//!   the peer's class for egress.
//! * **Protocols without ports**: a rule without `protocols` matches every protocol, so its
//!   elements also cover the protocol numbers around TCP, UDP and SCTP with every "port".
//! * **Hairpin**: a workload some admin policy selects is left out of `self4`/`self6`; its
//!   hairpin traffic walks both directions' tiers like any other flow, its own address as the
//!   peer, and NetworkPolicy allows it (the `hairpin4`/`hairpin6` sets) where it isolates.
//! * **Counted and logged per rule**: every admin rule a local identity can reach has a named
//!   counter (`adm_<api>_<name>_<in|eg><rule>`, cut and hashed like policy counters, see
//!   [`Ruleset::admin_rule_counters`], read back as [`CounterReading`]s) and a chain of its own
//!   (`in_r_<h>` / `eg_r_<h>`, named from its content) that the verdict map elements `goto`
//!   (Accept, Deny) or `jump` to (Pass, which counts and returns). A Deny rule's chain logs with the
//!   prefix `netpol:<direction>:cnp/NAME[N]` ([`admin_log_tail`]), which
//!   [`Ruleset::denied_chain`] reads back as the rule ([`ChainInfo::admin_rule`]).
//!
//! # Denied packets are counted and logged
//!
//! Every identity chain ends with two rules: one that sends the packet to the NFLOG group
//! [`DENIED_LOG_GROUP`] with the prefix [`denied_log_prefix`] (`netpol:ingress:in_<h>` or
//! `netpol:egress:eg_<h>`), and the drop that credits `denied_ingress` / `denied_egress`. Logging
//! is rate-limited node-wide by one named `limit` object (`denied_log`,
//! [`DENIED_LOG_RATE_PER_SECOND`] packets a second, bursts of [`DENIED_LOG_BURST`]); a packet over
//! the limit is still dropped and counted, only not logged. Only the first packet of a denied
//! connection attempt reaches these rules (replies of allowed flows are accepted by conntrack
//! first). With no listener on the group the kernel discards the log messages, so logging costs
//! next to nothing until something (the node agent) binds to the group and asks for packets.
//!
//! # Incremental updates
//!
//! Because names and marks depend on content and not on position, [`update_script`] can turn the
//! loaded table of one ruleset into another's in one transaction that adds and deletes only the
//! identity chains/maps, tier maps, admin rule chains and counters that changed, and the changed
//! elements of the shared maps and of the tiers' exact-port maps. An identity chain an admin
//! policy selects is named without its tier objects (from its NetworkPolicy rules and
//! workloads), and a group's lookup chain and exact-port map from the least workload it serves, so
//! a changed admin rule changes the elements it decides in the exact-port maps, replaces the
//! interval maps holding it (fresh maps, fast to load) and rewrites the lookup chains looking
//! them up; an added or deleted policy does the same, and only for groups it splits or joins
//! brings new lookup chains, rewriting the identity chains jumping to them. The chains of rules
//! whose action changed are swapped.
//!
//! # ICMP and other protocols
//!
//! Kubernetes ports name only TCP, UDP and SCTP, but a rule with no `ports` allows *all traffic*
//! from/to its peers. So for an isolated workload a new flow of any other protocol (ICMP echo,
//! ICMPv6 echo, GRE, ...) is allowed only by a rule without `ports` whose peers match (the
//! `<chain>_all` map, or an identity open to every peer), and dropped otherwise. ICMP errors about
//! an allowed connection (port unreachable, fragmentation needed, ...) are conntrack `related` and
//! pass through the first rule. Neighbour discovery never crosses `forward`, and `input` accepts
//! it before any egress chain, so isolation never cuts a workload off its link.
//!
//! # The packet mark is left alone; the conntrack mark only in its range
//!
//! The peer class travels in `ct mark` of the new connection being checked, never in the packet
//! mark: kube-proxy's masquerade and drop bits (0x4000, 0x8000, set in `prerouting` and read in
//! `postrouting`) and any CNI's packet marks pass through this table unchanged (a kernel test
//! checks it).
//!
//! Of the conntrack mark the table uses only the bits of one contiguous range, [`CtMarkBits`]:
//! `0xffff0000` (bits 16 to 31, 65,535 classes per direction) unless compiled with another
//! ([`compile_with_ct_mark`]; the agent's `--ct-mark-bits`, e.g. `0x0ff00000` or `20-27`; at
//! least 8 bits). Every write is `ct mark set ct mark and ~MASK ...` and every read
//! `ct mark and MASK`, so bits outside the range, set by another table before or after this one,
//! survive on every connection (a kernel test checks it), and nothing outside the range changes
//! what this table decides. An accepted connection keeps its last class in the range: a component
//! that uses those bits of forwarded connections' marks would conflict, so give the table a range
//! nobody else uses. A node needing more classes than the range holds is a compile error
//! ([`CompileError::TooManyClasses`]), never a wrong table.
//!
//! nft 1.0.6 cannot feed a map lookup into a concatenation, which is why the class needs a
//! register at all, nor `or` a lookup's result into one: the classification maps are verdict maps
//! whose elements `goto` one small chain per class (`in_m_<mark>`, `eg_m_<mark>`) that sets the
//! class bits with constants (class 0: `return`, the bits were cleared on entry); still one lookup
//! per classified address. Packets without conntrack (`notrack` by another table) cannot carry a
//! class: a checked one is dropped (fails closed).

mod build;
mod ct_mark;
mod interval;
mod ir;
mod listing;
mod naming;
mod readback;
pub mod render;
mod tiers;
mod update;

use std::collections::BTreeMap;
use std::net::IpAddr;

use netpol_core::{Direction, Protocol};
use serde::Serialize;

pub use build::{compile, compile_for_node, compile_policy_set, compile_with_ct_mark};
pub use ct_mark::{CtMarkBits, CtMarkBitsError};
pub(crate) use ir::Packet;
pub use ir::{
    verdict, verdict_other_protocol, ClassPortSegment, DirectionIr, Dispatch, ExternalRange, Grant,
    Identity, IdentityRules, PeerClass, PortSegment, RulesetIr, TierMap, WorkloadClass,
};
pub use listing::{unchanged_objects_differ, update_touches};
pub use naming::MAX_COUNTER_NAME;
pub use readback::{ChainInfo, CounterReading, ReadbackError};
pub use render::TABLE;
pub use tiers::{admin_log_tail, AdminRuleRef, TierSegment};
pub use update::update_script;

/// The address family of [`TABLE`]: every script this crate renders creates `table inet netpol`,
/// and the kernel access layer is told to list, fingerprint or delete that same table.
pub const FAMILY: &str = "inet";

/// The NFLOG group denied packets are logged to (see [`render`]).
///
/// Chosen away from the small numbers others take by default: `iptables -j NFLOG` and nft's `log
/// group` without a number use group 0, ulogd's sample configuration listens on groups 0 to 3,
/// and Calico's flow logs use groups 1 and 2. 28272 is `0x6e70`, ASCII "np". A group has at most
/// one listener per network namespace, so a clash would steal or lose the log messages, never
/// change what is dropped.
pub const DENIED_LOG_GROUP: u16 = 28272;

/// Denied packets logged per second on the whole node (one `limit` object shared by every
/// identity chain), so a flood of denied traffic cannot flood the log reader.
pub const DENIED_LOG_RATE_PER_SECOND: u32 = 50;

/// Denied packets that may be logged at once above the rate before the limit starts to bite.
pub const DENIED_LOG_BURST: u32 = 100;

/// The first part of every prefix of a denied-packet log message.
pub const DENIED_LOG_PREFIX: &str = "netpol:";

/// The NFLOG prefix of packets the source-address check drops (see [`SourceCheck`]); it names no
/// chain, so [`parse_denied_log_prefix`] returns `None` for it.
pub const SPOOFED_LOG_PREFIX: &str = "netpol:spoofed";

/// The NFLOG prefix of the log rule in identity chain `chain` of direction `direction`:
/// `netpol:ingress:<chain>` or `netpol:egress:<chain>` (at most 30 bytes for real chain names,
/// well below the kernel's 127).
pub fn denied_log_prefix(direction: Direction, chain: &str) -> String {
    let d = match direction {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    };
    format!("{DENIED_LOG_PREFIX}{d}:{chain}")
}

/// The direction and identity chain a prefix made by [`denied_log_prefix`] names; `None` for
/// anything else (another program logging to the same group, say).
pub fn parse_denied_log_prefix(prefix: &str) -> Option<(Direction, &str)> {
    let rest = prefix.strip_prefix(DENIED_LOG_PREFIX)?;
    let (d, chain) = rest.split_once(':')?;
    let direction = match d {
        "ingress" => Direction::Ingress,
        "egress" => Direction::Egress,
        _ => return None,
    };
    if chain.is_empty() {
        return None;
    }
    Some((direction, chain))
}

/// Why a node's ruleset cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// Two workloads claim one address: address-based enforcement cannot tell them apart.
    #[error("address {address} belongs to both {first} and {second}")]
    DuplicateAddress {
        /// The address both claim.
        address: IpAddr,
        /// The key of the first workload found with it.
        first: String,
        /// The key of the other workload claiming it.
        second: String,
    },
    /// The node name is empty.
    #[error("the node name is empty")]
    EmptyNodeName,
    /// One direction of the node needs more peer classes than the conntrack mark range holds.
    #[error(
        "{direction} needs {classes} peer classes but conntrack mark bits {bits} hold {capacity}: \
         give a wider range (--ct-mark-bits)"
    )]
    TooManyClasses {
        /// The direction whose classes do not fit.
        direction: Direction,
        /// Peer classes (other than class 0) the direction needs.
        classes: usize,
        /// The range in use.
        bits: CtMarkBits,
        /// Classes the range holds.
        capacity: u32,
    },
}

/// What a node's table does beyond the policies: settings of the node and its CNI, not of the
/// cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeOptions {
    /// How packets a local workload sends from an address it does not own are treated.
    pub source_check: SourceCheck,
    /// The bits of the conntrack mark the peer class may use.
    pub ct_mark_bits: CtMarkBits,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            ct_mark_bits: CtMarkBits::DEFAULT,
            source_check: SourceCheck::Interfaces(
                DEFAULT_WORKLOAD_INTERFACES
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
            ),
        }
    }
}

/// The host-side interface names of workloads that CNIs and hypervisors commonly use: Cilium
/// (`lxc*`), Calico (`cali*`), KubeVirt and libvirt taps (`tap*`, `vnet*`), and the `veth*` of the
/// bridge and ptp plugins.
pub const DEFAULT_WORKLOAD_INTERFACES: &[&str] = &["lxc*", "cali*", "tap*", "vnet*", "veth*"];

/// Whether `name` can name workload interfaces for [`SourceCheck::Interfaces`]: 1 to 15 bytes
/// (the kernel's limit) of letters, digits and `-_.@:`, with at most a trailing `*`.
pub fn check_interface_pattern(name: &str) -> Result<(), String> {
    let body = name.strip_suffix('*').unwrap_or(name);
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.@:".contains(c);
    if name.is_empty() || name.len() > 15 || !body.chars().all(allowed) {
        return Err(format!(
            "{name:?} is not an interface name: 1 to 15 letters, digits or -_.@:, with at most a \
             trailing * (e.g. lxc*)"
        ));
    }
    Ok(())
}

/// The source-address check (see the `node` module of [`render`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceCheck {
    /// A packet arriving through an interface matching one of these names (`*` at the end is a
    /// wildcard, as in `iifname`) must come from an address the node routes back through that
    /// interface; any other is dropped, counted (`denied_spoofed`) and logged.
    Interfaces(Vec<String>),
    /// No check: the CNI already does it.
    Off,
}

/// The compiled table of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ruleset {
    /// A complete script for `nft -f`: it creates, deletes and recreates `table inet netpol` in one
    /// transaction, so it replaces the table atomically whether or not it existed.
    pub text: String,
    /// Counts and names for humans and JSON output.
    pub summary: Summary,
    /// What the text encodes, for [`verdict`] and for later incremental updates. Private so that
    /// users of a compiled ruleset ask it questions ([`Ruleset::denied_chain`], ...) instead of
    /// walking the IR; [`Ruleset::ir`] reads it for interpreters and tests.
    ir: RulesetIr,
    /// The table's objects as rendered into `text`, kept so [`update_script`] compares them
    /// without rendering again. Derived from `ir`, so equality is unaffected.
    #[serde(skip)]
    objects: Vec<render::Object>,
}

impl Ruleset {
    /// See [`verdict`].
    pub fn verdict(&self, src: IpAddr, dst: IpAddr, protocol: Protocol, port: u16) -> bool {
        verdict(&self.ir, src, dst, protocol, port)
    }

    /// What the text encodes (for [`verdict`], [`verdict_other_protocol`] and tests that inspect
    /// the compiled structure).
    pub fn ir(&self) -> &RulesetIr {
        &self.ir
    }

    /// [`Ruleset::text`] with every named counter that `readings` lists declared with the
    /// values read (`counter NAME { packets N bytes M ... }`), so that a full replacement of the
    /// table carries the counts on instead of restarting them at zero. Counters the readings do
    /// not name (new policies) start at zero; readings of counters this ruleset lacks are ignored.
    pub fn text_carrying_counters(&self, readings: &[CounterReading]) -> String {
        let values: BTreeMap<&str, &CounterReading> =
            readings.iter().map(|r| (r.name.as_str(), r)).collect();
        render::script(&self.ir, &self.objects, &values)
    }

    /// The policies with a counter object in the table (those isolating a local workload),
    /// sorted by key.
    pub fn policy_counters(&self) -> &[PolicyCounter] {
        &self.summary.policies
    }

    /// What identity chain `chain` of `direction` stands for, or `None` when this ruleset has no
    /// such chain (e.g. a denied-packet log message from a ruleset applied before this one).
    pub fn denied_chain(&self, direction: Direction, chain: &str) -> Option<ChainInfo<'_>> {
        self.denied_chains()
            .find(|c| c.direction == direction && c.chain == chain)
    }

    /// Every chain of the table that logs denied packets, ingress first: the identity chains
    /// (each ends with the log-and-drop rules), then the chains of the admin tiers' Deny rules,
    /// named by their log tail (`cnp/NAME[N]`).
    pub fn denied_chains(&self) -> impl Iterator<Item = ChainInfo<'_>> {
        let identities = [
            (Direction::Ingress, &self.ir.ingress),
            (Direction::Egress, &self.ir.egress),
        ]
        .into_iter()
        .flat_map(|(direction, d)| {
            d.identities.iter().map(move |i| ChainInfo {
                direction,
                chain: &i.chain,
                workloads: &i.workloads,
                policies: &i.policies,
                admin_rule: None,
            })
        });
        let rules = self
            .ir
            .admin_rules
            .iter()
            .filter(|r| r.action == netpol_core::AdminAction::Deny)
            .map(|r| ChainInfo {
                direction: r.direction,
                chain: &r.log,
                workloads: &[],
                policies: std::slice::from_ref(&r.policy),
                admin_rule: Some(r),
            });
        identities.chain(rules)
    }

    /// The admin rules with a counter in the table (`adm_...`, read back as [`CounterReading`]s),
    /// in walk order.
    pub fn admin_rule_counters(&self) -> &[AdminRuleRef] {
        &self.ir.admin_rules
    }
}

/// The JSON-able summary of a ruleset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The node the ruleset was compiled for.
    pub node: String,
    /// The option it was compiled with: whether ipBlock peers also match cluster workloads.
    pub ipblock_matches_workloads: bool,
    /// Local workloads (sorted by key) and the identity each direction dispatches to (`None`:
    /// neither isolated nor selected by an admin policy in that direction, or no address).
    pub local_workloads: Vec<LocalWorkload>,
    /// Policies that isolate at least one local workload, with their counter.
    pub policies: Vec<PolicyCounter>,
    /// Number of identity chains of the ingress direction.
    pub ingress_identities: usize,
    /// Number of identity chains of the egress direction.
    pub egress_identities: usize,
    /// Number of peer classes of the ingress direction, including class 0.
    pub ingress_classes: usize,
    /// Number of peer classes of the egress direction, including class 0.
    pub egress_classes: usize,
    /// Element count of every set and map in the table, by name.
    pub elements: BTreeMap<String, usize>,
    /// Sum of `elements`: every element the table holds.
    pub total_elements: usize,
    /// How protocols other than TCP, UDP and SCTP are treated (see the crate documentation).
    pub non_port_protocols: String,
}

/// One local workload in the summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalWorkload {
    /// `namespace/name`.
    pub key: String,
    /// Its addresses, each dispatched in the `*_dispatch4/6` maps.
    pub addresses: Vec<IpAddr>,
    /// The ingress identity it is dispatched to; `None` when no NetworkPolicy isolates it for
    /// ingress and no admin policy selects it for ingress.
    pub ingress_identity: Option<usize>,
    /// The egress identity it is dispatched to; `None` when no NetworkPolicy isolates it for
    /// egress and no admin policy selects it for egress.
    pub egress_identity: Option<usize>,
}

/// A policy and the name of its counter object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyCounter {
    /// `namespace/name`.
    pub key: String,
    /// Name of the `counter` object in the table, e.g. `pol_test-project_allow-b`.
    pub counter: String,
}

/// The policy for protocols without ports, as stated in the summary.
pub const NON_PORT_PROTOCOLS: &str = "protocols other than TCP/UDP/SCTP (ICMP, ICMPv6 echo, ...) \
to an isolated workload are allowed only by rules without ports whose peers match; otherwise \
dropped. ICMP errors about allowed connections pass as conntrack related.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_log_prefix_reads_back_as_its_direction_and_chain() {
        for (d, chain) in [
            (Direction::Ingress, "in_0a1b2c3d"),
            (Direction::Egress, "eg_ffffffff"),
        ] {
            let p = denied_log_prefix(d, chain);
            assert!(p.len() <= 127, "the kernel cuts prefixes at 127 bytes");
            assert_eq!(parse_denied_log_prefix(&p), Some((d, chain)));
        }
    }

    #[test]
    fn a_full_script_can_carry_the_counter_values_read_from_the_kernel() {
        let c = netpol_core::synth::generate(&netpol_core::synth::SynthParams {
            workloads: 60,
            namespaces: 4,
            policies: 8,
            nodes: 2,
            seed: 5,
        });
        let r = compile(&c, netpol_core::EvalOptions::default(), "node-00").unwrap();
        assert_eq!(r.text_carrying_counters(&[]), r.text);
        let policy = &r.policy_counters()[0].counter;
        let readings = [
            CounterReading {
                name: policy.clone(),
                packets: 7,
                bytes: 420,
            },
            CounterReading {
                name: "denied_ingress".into(),
                packets: 3,
                bytes: 180,
            },
            CounterReading {
                name: "pol_gone_policy".into(),
                packets: 1,
                bytes: 1,
            },
        ];
        let text = r.text_carrying_counters(&readings);
        assert!(
            text.contains(&format!(
                "\tcounter {policy} {{ packets 7 bytes 420 comment "
            )),
            "{text}"
        );
        assert!(text.contains("\tcounter denied_ingress { packets 3 bytes 180 }\n"));
        assert!(!text.contains("pol_gone_policy"));
        assert_eq!(text.lines().count(), r.text.lines().count());
    }

    #[test]
    fn an_admin_rules_log_prefix_reads_back_as_its_direction_and_rule() {
        for (d, policy, rule) in [
            (Direction::Ingress, "cnp/deny-db", 0),
            (Direction::Egress, "banp/default", 24),
        ] {
            let tail = admin_log_tail(policy, rule);
            let p = denied_log_prefix(d, &tail);
            assert_eq!(p, format!("netpol:{d}:{policy}[{rule}]"));
            assert_eq!(parse_denied_log_prefix(&p), Some((d, tail.as_str())));
        }
    }

    #[test]
    fn prefixes_of_other_programs_are_not_read_as_denials() {
        assert_eq!(parse_denied_log_prefix(""), None);
        assert_eq!(parse_denied_log_prefix("ulogd: "), None);
        assert_eq!(parse_denied_log_prefix("netpol:sideways:in_1"), None);
        assert_eq!(parse_denied_log_prefix("netpol:ingress:"), None);
        assert_eq!(parse_denied_log_prefix("netpol:ingress"), None);
    }
}
