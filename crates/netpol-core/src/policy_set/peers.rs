//! Distinct peers: every `podSelector`/`namespaceSelector` combination and every `ipBlock` of the
//! cluster once, whatever policy or rule names it, and what each matches.
//!
//! A selector peer matches a set of identities (a bitset, evaluated on first use and kept: the
//! analyzer asks for every peer, a node's compiler only for the peers of the policies isolating
//! its workloads). An ipBlock peer matches addresses: its [`IpBlock`] is the answer for outside
//! addresses, and (when ipBlocks can match workloads) the identities whose flow address of each
//! family lies in it.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use crate::bits::Bits;
use crate::hash::FxBuildHasher;
use ipnet::IpNet;

use crate::model::{AdminPeer, AdminSubject, IpBlock, LabelSelector, Peer, Policy};
use crate::policy_set::identities::{Identities, Namespaces};

/// Which namespaces a selector peer covers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NamespaceScope {
    /// No namespaceSelector: the policy's own namespace.
    Own(String),
    /// The namespaces whose labels match.
    Selector(LabelSelector),
}

/// A distinct peer, whatever policy or rule it appears in. The order (selectors before blocks,
/// own namespaces before selectors) is the order compiled outputs list peers in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerKey {
    /// Workloads of some namespaces, optionally narrowed by a pod selector.
    Selector {
        /// Which namespaces the peer's workloads are in.
        namespaces: NamespaceScope,
        /// Narrows them by their labels; `None` keeps every workload of those namespaces.
        pods: Option<LabelSelector>,
    },
    /// Addresses in a CIDR minus its holes (a NetworkPolicy `ipBlock`: whether it matches
    /// workload addresses is [`crate::EvalOptions::ipblock_matches_workloads`]).
    Block(IpBlock),
    /// An admin rule's `networks` CIDR: every address in it, workload addresses always included.
    Network(IpNet),
    /// An admin rule's `nodes`: the addresses of the Node objects the selector matches.
    Nodes(LabelSelector),
    /// An admin rule's `domainNames`: the analyzer matches the addresses the user resolved
    /// (`Cluster::resolved_names`); the kernel matches nothing.
    DomainNames(Vec<String>),
}

impl PeerKey {
    /// The distinct peer a rule's peer of `policy` stands for.
    pub fn of(policy: &Policy, peer: &Peer) -> PeerKey {
        match peer {
            Peer::Selector {
                pod_selector,
                namespace_selector,
            } => PeerKey::Selector {
                namespaces: match namespace_selector {
                    None => NamespaceScope::Own(policy.namespace.clone()),
                    Some(s) => NamespaceScope::Selector(s.clone()),
                },
                pods: pod_selector.clone(),
            },
            Peer::IpBlock(b) => PeerKey::Block(b.clone()),
        }
    }

    /// The workloads a policy selects as its subjects: its pod selector in its own namespace.
    pub fn subjects_of(policy: &Policy) -> PeerKey {
        PeerKey::Selector {
            namespaces: NamespaceScope::Own(policy.namespace.clone()),
            pods: Some(policy.pod_selector.clone()),
        }
    }

    /// The ipBlock, for a block peer.
    pub fn block(&self) -> Option<&IpBlock> {
        match self {
            PeerKey::Block(b) => Some(b),
            _ => None,
        }
    }

    /// The CIDR, for an admin `networks` peer.
    pub fn network(&self) -> Option<&IpNet> {
        match self {
            PeerKey::Network(n) => Some(n),
            _ => None,
        }
    }

    /// The distinct peers an admin peer stands for (one per CIDR of `networks`); none for a
    /// peer of an unknown kind (its rule fails closed instead).
    pub fn of_admin(peer: &AdminPeer) -> Vec<PeerKey> {
        match peer {
            AdminPeer::Namespaces(ns) => vec![PeerKey::Selector {
                namespaces: NamespaceScope::Selector(ns.clone()),
                pods: None,
            }],
            AdminPeer::Pods {
                namespace_selector,
                pod_selector,
            } => vec![PeerKey::Selector {
                namespaces: NamespaceScope::Selector(namespace_selector.clone()),
                pods: Some(pod_selector.clone()),
            }],
            AdminPeer::Networks(nets) => nets.iter().map(|n| PeerKey::Network(*n)).collect(),
            AdminPeer::Nodes(sel) => vec![PeerKey::Nodes(sel.clone())],
            AdminPeer::DomainNames(names) => vec![PeerKey::DomainNames(names.clone())],
            AdminPeer::Unknown => Vec::new(),
        }
    }

    /// The workloads an admin policy applies to.
    pub fn subjects_of_admin(subject: &AdminSubject) -> PeerKey {
        match subject {
            AdminSubject::Namespaces(ns) => PeerKey::Selector {
                namespaces: NamespaceScope::Selector(ns.clone()),
                pods: None,
            },
            AdminSubject::Pods {
                namespace_selector,
                pod_selector,
            } => PeerKey::Selector {
                namespaces: NamespaceScope::Selector(namespace_selector.clone()),
                pods: Some(pod_selector.clone()),
            },
        }
    }
}

/// `namespace p podSelector app=x`, `namespaceSelector team=a`, `ipBlock 10.0.0.0/8 except ...`.
impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerKey::Selector { namespaces, pods } => {
                match namespaces {
                    NamespaceScope::Own(n) => write!(f, "namespace {n}")?,
                    NamespaceScope::Selector(s) => write!(f, "namespaceSelector {s}")?,
                }
                match pods {
                    Some(p) => write!(f, " podSelector {p}"),
                    None => Ok(()),
                }
            }
            PeerKey::Block(b) => write!(f, "ipBlock {b}"),
            PeerKey::Network(n) => write!(f, "network {n}"),
            PeerKey::Nodes(s) => write!(f, "nodes {s}"),
            PeerKey::DomainNames(d) => write!(f, "domainNames {}", d.join(",")),
        }
    }
}

/// The index of a distinct peer in the policy set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

impl PeerId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// The index of a distinct ipBlock that can match workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BlockId(pub(crate) u32);

/// Every distinct peer (and every policy's subjects, which are evaluated the same way).
pub(crate) struct Peers {
    pub(crate) keys: Vec<PeerKey>,
    /// Key hash -> the first peer with that hash; `collisions` chains the others. Keys are
    /// stored once, in `keys` (a selector key is several maps: cloning each into an index
    /// cost more than the lookups).
    index: HashMap<u64, PeerId, FxBuildHasher>,
    /// Peer -> the next peer whose key has the same hash.
    collisions: Vec<Option<PeerId>>,
    /// Selector peers: the identities matched, on first use.
    members: Vec<OnceLock<Bits>>,
    /// Block peers that can match workloads, and network peers: their block.
    pub(crate) block_of: Vec<Option<BlockId>>,
}

impl Peers {
    pub(crate) fn new() -> Self {
        Peers {
            keys: Vec::new(),
            index: HashMap::default(),
            collisions: Vec::new(),
            members: Vec::new(),
            block_of: Vec::new(),
        }
    }

    pub(crate) fn intern(&mut self, key: PeerKey) -> PeerId {
        let hash = FxBuildHasher::default().hash_one(&key);
        let id = PeerId(u32::try_from(self.keys.len()).unwrap_or(u32::MAX));
        let mut next = self.index.get(&hash).copied();
        while let Some(candidate) = next {
            if self.keys[candidate.index()] == key {
                return candidate;
            }
            next = self.collisions[candidate.index()];
        }
        // Chained in front: the new peer points at the previous head of its hash.
        self.collisions.push(self.index.insert(hash, id));
        self.keys.push(key);
        self.members.push(OnceLock::new());
        self.block_of.push(None);
        id
    }

    /// The identities a selector peer matches, if already evaluated.
    pub(crate) fn evaluated(&self, id: PeerId) -> Option<&Bits> {
        self.members[id.index()].get()
    }

    /// The identities a selector peer matches (none for a block peer).
    pub(crate) fn members(&self, id: PeerId, ctx: &MatchContext<'_>) -> &Bits {
        self.members[id.index()].get_or_init(|| ctx.evaluate(&self.keys[id.index()]))
    }
}

/// What evaluating a selector needs.
pub(crate) struct MatchContext<'a> {
    pub(crate) namespaces: &'a Namespaces,
    pub(crate) identities: &'a Identities,
}

impl MatchContext<'_> {
    fn evaluate(&self, key: &PeerKey) -> Bits {
        let ids = self.identities;
        let PeerKey::Selector { namespaces, pods } = key else {
            return Bits::new(ids.len());
        };
        let mut scope = match namespaces {
            NamespaceScope::Own(name) => self.namespace_identities(self.namespaces.get(name)),
            NamespaceScope::Selector(s) => {
                let mut b = Bits::new(ids.len());
                for (ni, labels) in self.namespaces.labels.iter().enumerate() {
                    if s.matches(labels) {
                        b.or_assign(&self.namespace_identities(ni));
                    }
                }
                b
            }
        };
        let Some(pods) = pods else {
            return scope;
        };
        // Only the identities in scope are matched: most peers name one namespace.
        let mut out = Bits::new(ids.len());
        for id in scope.ones() {
            if pods.matches(&ids.list[id].labels) {
                out.set(id);
            }
        }
        scope.clear();
        out
    }

    fn namespace_identities(&self, namespace: usize) -> Bits {
        self.identities
            .by_namespace
            .get(namespace)
            .cloned()
            .unwrap_or_else(|| Bits::new(self.identities.len()))
    }
}

/// The distinct ipBlocks that can match workloads, and per family the identities whose flow
/// address each contains.
pub(crate) struct Blocks {
    pub(crate) list: Vec<IpBlock>,
    /// `[block][family]`.
    pub(crate) members: Vec<[Bits; 2]>,
}

impl Blocks {
    pub(crate) fn new(list: Vec<IpBlock>) -> Self {
        Blocks {
            list,
            members: Vec::new(),
        }
    }

    /// Fills `members` from the identities' block membership.
    pub(crate) fn index_members(&mut self, identities: &Identities) {
        let ic = identities.len();
        self.members = (0..self.list.len())
            .map(|bi| {
                let mut per_family = [Bits::new(ic), Bits::new(ic)];
                for (id, fam) in identities.blocks.iter().enumerate() {
                    for (f, bits) in per_family.iter_mut().enumerate() {
                        if fam[f].get(bi).copied().unwrap_or(false) {
                            bits.set(id);
                        }
                    }
                }
                per_family
            })
            .collect();
    }
}
