//! Incremental updates: one `nft -f` transaction that turns the loaded table of one ruleset into
//! the table of another by touching only what differs.
//!
//! This works because nothing in the table is named by position: identity chains and their grant
//! maps are named by a hash of their content (see [`crate::render::identity_names`]), admin rule
//! chains by a hash of theirs, and peer classes (mark values) by a hash of what they match. So a
//! chain or grant map with a given name always has the same content; an update adds the ones that
//! are new, deletes the ones that are gone, and changes elements only in the maps whose names
//! say what they are for rather than what they hold: the shared maps (dispatch, workload and
//! external classification, whose keys are addresses, and the hairpin sets).
//!
//! The admin tiers' objects are named so that an admin policy change touches elements rather
//! than names (see [`crate::TierMap`]): a group's lookup chain and exact-port hash map are named
//! from the least workload the group serves, so a changed rule becomes element changes of the
//! exact maps (the kernel changes a loaded hash map's elements in about 0.2 ms each); the
//! interval maps of port ranges are named from their elements and replaced whole (changing a
//! loaded interval map of concatenations costs about 3.4 ms per element with kernel 6.18, and
//! large in-place batches of deletions fail outright), their lookup chains rewritten in place.
//! The identity chains are named from their NetworkPolicy rules and workloads only; they are
//! rewritten in place only when a group is split or joined and so jumps to another lookup chain.
//!
//! Order inside the transaction, so every reference is valid at every step:
//! 1. the new counters, limits, maps and chains, in the full script's declaration order (every
//!    object after what it refers to: grant maps after the counters they credit, tier maps after
//!    the admin rule chains they jump to, identity chains after the maps they look up);
//! 2. `delete element` of every removed or changed element of the changed maps, then
//!    `add element` of every added or changed one (dispatch elements may jump to new chains),
//!    then every chain that keeps its name but not its rules (an identity chain whose tier maps
//!    were replaced) flushed and filled again, now looking up the new maps;
//! 3. `flush chain` of every chain that is gone (their rules no longer refer to maps or chains),
//!    then the maps that are gone (their elements no longer jump to chains), then the chains,
//!    then the counters and limits nothing refers to any more.
//!
//! The table's one `limit` object (the rate of denied-packet logging) is declared the same in
//! every ruleset, so an update leaves it, and its token bucket, alone; a ruleset with a different
//! rate makes the update impossible (`None`, like any redeclared object), so it is then replaced
//! in full.
//!
//! The kernel checks the whole transaction and applies all of it or none of it, so an update
//! applied to a table that is not the expected old one fails cleanly (e.g. deleting an element
//! that is not there); callers then fall back to the full script.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::render::{Object, TABLE};
use crate::Ruleset;
use crate::FAMILY;

/// A script for `nft -f` that changes the loaded table of `old` into the table of `new`, in one
/// transaction, touching only the counters, maps, chains and elements that differ. Counters that
/// both keep their values.
///
/// `None` when the change cannot be expressed that way (an object of the same name whose
/// declaration differs, which only happens on a rare hash-collision renaming): apply `new.text`
/// then. The script assumes the loaded table is exactly `old`'s; if it is not, applying it fails
/// as a whole and changes nothing.
pub fn update_script(old: &Ruleset, new: &Ruleset) -> Option<String> {
    let diff = Diff::of(&old.objects, &new.objects)?;
    Some(diff.script(&new.ir.node))
}

/// The elements of one shared map that an update deletes (by key) and adds (whole).
pub(crate) struct MapChange<'a> {
    pub(crate) map: &'a str,
    delete: Vec<&'a str>,
    add: Vec<&'a str>,
}

/// What differs between two tables' objects.
pub(crate) struct Diff<'a> {
    pub(crate) added: Vec<&'a Object>,
    pub(crate) changed: Vec<MapChange<'a>>,
    /// Chains that keep their name and comment but not their rules (identity chains looking up
    /// new tier maps): flushed and filled again.
    pub(crate) rewritten: Vec<&'a Object>,
    pub(crate) removed: Vec<&'a Object>,
}

impl<'a> Diff<'a> {
    /// `None` when an object keeps its name but changes its declaration (not a map's elements).
    pub(crate) fn of(before: &'a [Object], after: &'a [Object]) -> Option<Self> {
        let old_by_name: BTreeMap<&str, &Object> = before.iter().map(|o| (o.name(), o)).collect();
        let new_by_name: BTreeMap<&str, &Object> = after.iter().map(|o| (o.name(), o)).collect();
        let mut diff = Diff {
            added: Vec::new(),
            changed: Vec::new(),
            rewritten: Vec::new(),
            removed: before
                .iter()
                .filter(|o| !new_by_name.contains_key(o.name()))
                .collect(),
        };
        for o in after {
            match old_by_name.get(o.name()) {
                None => diff.added.push(o),
                Some(prev) if *prev == o => {}
                Some(Object::Chain { comment, .. }) => match o {
                    Object::Chain { comment: c, .. } if c == comment => diff.rewritten.push(o),
                    _ => return None,
                },
                Some(prev) => diff.changed.push(map_change(prev, o)?),
            }
        }
        Some(diff)
    }

    /// The transaction, in the order the module documentation gives.
    fn script(&self, node: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# netpol: incremental update for node {node} ({} objects added, {} maps changed, {} chains rewritten, {} objects removed)",
            self.added.len(),
            self.changed.len(),
            self.rewritten.len(),
            self.removed.len()
        );
        if !self.added.is_empty() {
            let _ = writeln!(out, "table {FAMILY} {TABLE} {{");
            for o in &self.added {
                o.write(&mut out);
            }
            out.push_str("}\n");
        }
        for c in &self.changed {
            write_elements(&mut out, "delete", c.map, &c.delete);
        }
        for c in &self.changed {
            write_elements(&mut out, "add", c.map, &c.add);
        }
        for o in &self.rewritten {
            if let Object::Chain { name, rules, .. } = o {
                let _ = writeln!(out, "flush chain {FAMILY} {TABLE} {name}");
                for r in rules {
                    let _ = writeln!(out, "add rule {FAMILY} {TABLE} {name} {r}");
                }
            }
        }
        self.write_removals(&mut out);
        out
    }

    /// The rules of every removed chain first (so no removed rule refers to a map or chain any
    /// more), then the maps (so no removed verdict map element jumps to a chain any more), then
    /// the chains, counters and limits.
    fn write_removals(&self, out: &mut String) {
        for o in &self.removed {
            if let Object::Chain { name, .. } = o {
                let _ = writeln!(out, "flush chain {FAMILY} {TABLE} {name}");
            }
        }
        for o in &self.removed {
            if let (Object::Map { name, .. }, Some(kind)) = (o, o.set_kind()) {
                let _ = writeln!(out, "delete {kind} {FAMILY} {TABLE} {name}");
            }
        }
        for kind in ["chain", "counter", "limit"] {
            for o in &self.removed {
                let name = match (kind, o) {
                    ("chain", Object::Chain { name, .. })
                    | ("counter", Object::Counter { name, .. })
                    | ("limit", Object::Limit { name, .. }) => name,
                    _ => continue,
                };
                let _ = writeln!(out, "delete {kind} {FAMILY} {TABLE} {name}");
            }
        }
    }
}

/// The element changes of a map whose header stayed; `None` for any other changed object.
fn map_change<'a>(prev: &'a Object, next: &'a Object) -> Option<MapChange<'a>> {
    let (
        Object::Map {
            header: h0,
            elements: e0,
            ..
        },
        Object::Map {
            name,
            header: h1,
            elements: e1,
        },
    ) = (prev, next)
    else {
        return None;
    };
    if h0 != h1 {
        return None;
    }
    let old_elems: BTreeMap<&str, &str> =
        e0.iter().map(|(k, e)| (k.as_str(), e.as_str())).collect();
    let new_elems: BTreeMap<&str, &str> =
        e1.iter().map(|(k, e)| (k.as_str(), e.as_str())).collect();
    let delete = old_elems
        .iter()
        .filter(|(k, e)| new_elems.get(*k) != Some(*e))
        .map(|(k, _)| *k)
        .collect();
    let add = new_elems
        .iter()
        .filter(|(k, e)| old_elems.get(*k) != Some(*e))
        .map(|(_, e)| *e)
        .collect();
    Some(MapChange {
        map: name,
        delete,
        add,
    })
}

/// `delete element ...` / `add element ...` of one map; nothing when `items` is empty.
fn write_elements(out: &mut String, verb: &str, map: &str, items: &[&str]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{verb} element {FAMILY} {TABLE} {map} {{");
    let n = items.len();
    for (i, e) in items.iter().enumerate() {
        let sep = if i + 1 < n { "," } else { "" };
        let _ = writeln!(out, "\t{e}{sep}");
    }
    out.push_str("}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_between_equal_rulesets_changes_nothing() {
        let c = netpol_core::synth::generate(&netpol_core::synth::SynthParams {
            workloads: 200,
            namespaces: 10,
            policies: 40,
            nodes: 4,
            seed: 3,
        });
        let r = crate::compile(&c, netpol_core::EvalOptions::default(), "node-00").unwrap();
        let s = update_script(&r, &r).unwrap();
        assert_eq!(s.lines().count(), 1, "{s}");
        assert!(s.starts_with('#'));
    }

    #[test]
    fn the_log_limit_is_declared_by_a_full_script_and_left_alone_by_updates() {
        let params = |policies| netpol_core::synth::SynthParams {
            workloads: 60,
            namespaces: 4,
            policies,
            nodes: 2,
            seed: 5,
        };
        let opts = netpol_core::EvalOptions::default();
        let old =
            crate::compile(&netpol_core::synth::generate(&params(4)), opts, "node-00").unwrap();
        let new =
            crate::compile(&netpol_core::synth::generate(&params(12)), opts, "node-00").unwrap();
        let decl = format!(
            "limit {} {{ rate {}/second burst {} packets }}",
            crate::render::DENIED_LOG_LIMIT,
            crate::DENIED_LOG_RATE_PER_SECOND,
            crate::DENIED_LOG_BURST
        );
        assert!(new.text.contains(&decl), "{}", new.text);
        let s = update_script(&old, &new).unwrap();
        assert!(s.lines().count() > 1, "the rulesets differ: {s}");
        assert!(!s.contains("limit denied_log"), "{s}");
        assert!(!s.contains("delete limit"), "{s}");
    }
}
