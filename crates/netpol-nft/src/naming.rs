//! The naming pass: after the IR of a node is built with dense class ids and unnamed identities,
//! this pass gives every peer class its mark and every identity its chain name, both derived from
//! content rather than position. That is what lets an update touch only what changed: a class or
//! identity that does not change keeps its mark or name when others come and go.
//!
//! The tiers' lookup chains and exact-port maps are named from the tier and the least workload
//! their group serves, their range maps from their elements; an identity chain that
//! jumps to a tier's lookup chain is hashed without it (a placeholder stands in) and with its
//! whole list of workloads, so an edited, added or deleted admin policy leaves the identity
//! chains' names alone: an update changes exact-port elements in place, replaces range maps and
//! rewrites the rules of the chains jumping to renamed ones (see [`crate::TierMap`]).
//!
//! Marks hash a class's rendered peers and named ports; chain names hash the identity's chain and
//! maps as the renderer writes them (under a placeholder name, see [`crate::render`]), so the
//! objects rendered for naming are handed back for the final rendering instead of being rendered
//! twice. The rare hash collision is resolved by probing in content order, which keeps the result
//! deterministic.
//!
//! Policy counters are named here too ([`counter_names`]): `pol_<namespace>_<name>` while that fits
//! in [`MAX_COUNTER_NAME`] bytes, otherwise a readable cut of it followed by a hash of the whole
//! key, so that every valid Kubernetes name (namespace 63, name 253 bytes) gives a name nft takes
//! everywhere it is quoted, distinct from every other counter of the table.

use std::collections::BTreeSet;

use crate::ct_mark::{ClassOverflow, CtMarkBits};
use crate::render::{identity_names, Prerendered};
use crate::{DirectionIr, PolicyCounter, RulesetIr};

/// The longest counter name this crate writes. nft takes object names up to 255 bytes; 128 is the
/// most the renderer's quoting passes uncut (nft's comment limit, which it applies to every quoted
/// text), and a counter's name is quoted in every grant element that credits it: a name cut there
/// but not in its declaration names no object, and the whole transaction fails.
pub const MAX_COUNTER_NAME: usize = 128;

/// Names the policy counters, the classes and the identities of both directions; returns the
/// identities' objects as rendered for naming.
pub(crate) fn name(ir: &mut RulesetIr) -> Result<Prerendered, ClassOverflow> {
    let keys: Vec<String> = ir.policies.iter().map(|p| p.key.clone()).collect();
    ir.policies = counter_names(&keys);
    admin_rule_names(&mut ir.admin_rules);
    let bits = ir.node_options.ct_mark_bits;
    assign_marks(&mut ir.ingress, bits)?;
    assign_marks(&mut ir.egress, bits)?;
    let view: &RulesetIr = ir;
    let ((in_names, in_objects), (eg_names, eg_objects)) = std::thread::scope(|scope| {
        let egress = scope.spawn(|| identity_names(view, &view.egress, bits));
        let ingress = identity_names(view, &view.ingress, bits);
        let egress = egress
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (ingress, egress)
    });
    for (ident, name) in ir.ingress.identities.iter_mut().zip(in_names) {
        ident.chain = name;
    }
    for (ident, name) in ir.egress.identities.iter_mut().zip(eg_names) {
        ident.chain = name;
    }
    tier_map_names(&mut ir.ingress, &ir.admin_rules);
    tier_map_names(&mut ir.egress, &ir.admin_rules);
    Ok(Prerendered {
        ingress: in_objects,
        egress: eg_objects,
    })
}

/// The counter object of every policy key (`namespace/name`), in the same order: `pol_<namespace>_<name>`
/// (characters nft identifiers cannot hold replaced by `_`) when it fits in [`MAX_COUNTER_NAME`]
/// bytes, otherwise the first bytes of it, `_` and 16 hex digits hashed from the whole key.
///
/// Distinct keys always get distinct names: a name already taken (two keys that clean up to the
/// same text, or the astronomically rare clash of two hashes) is replaced by the hashed form of
/// the key with an attempt number, keys being served in the order given (key order), so the
/// result is deterministic.
pub(crate) fn counter_names(keys: &[String]) -> Vec<PolicyCounter> {
    let mut used: BTreeSet<String> = BTreeSet::new();
    keys.iter()
        .map(|key| PolicyCounter {
            key: key.clone(),
            counter: unique_counter_name(
                &format!("pol_{}", key.replacen('/', "_", 1)),
                key,
                &mut used,
            ),
        })
        .collect()
}

/// `plain` made an nft identifier (other characters replaced by `_`), cut and hashed from `key`
/// when longer than [`MAX_COUNTER_NAME`] or already in `used`.
fn unique_counter_name(plain: &str, key: &str, used: &mut BTreeSet<String>) -> String {
    let plain: String = plain
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = if plain.len() <= MAX_COUNTER_NAME {
        plain.clone()
    } else {
        hashed_counter_name(&plain, key, 0)
    };
    let mut attempt = 1u32;
    while !used.insert(name.clone()) {
        name = hashed_counter_name(&plain, key, attempt);
        attempt += 1;
    }
    name
}

/// The counter (`adm_cnp_<name>_in<rule>`, cut and hashed like the policy counters when long),
/// the denied-log tail ([`crate::admin_log_tail`]) and the chain (`in_r_<h>` / `eg_r_<h>`, 8 hex
/// digits hashed from what the chain does) of every admin rule.
fn admin_rule_names(rules: &mut [crate::AdminRuleRef]) {
    let mut used = BTreeSet::new();
    for r in rules.iter_mut() {
        let d = match r.direction {
            netpol_core::Direction::Ingress => "in",
            netpol_core::Direction::Egress => "eg",
        };
        let plain = format!("adm_{}_{d}{}", r.policy.replacen('/', "_", 1), r.rule);
        r.counter = unique_counter_name(&plain, &r.label(), &mut used);
        r.log = crate::admin_log_tail(&r.policy, r.rule);
    }
    for d in [
        netpol_core::Direction::Ingress,
        netpol_core::Direction::Egress,
    ] {
        let of_d: Vec<usize> = (0..rules.len())
            .filter(|&i| rules[i].direction == d)
            .collect();
        let contents: Vec<String> = of_d
            .iter()
            .map(|&i| crate::render::admin_rule_chain_rules(&rules[i]).join("\n"))
            .collect();
        let hashes: Vec<u32> = contents.iter().map(|c| hash32(c.as_bytes())).collect();
        let prefix = match d {
            netpol_core::Direction::Ingress => "in_r",
            netpol_core::Direction::Egress => "eg_r",
        };
        for (&i, h) in of_d.iter().zip(assign_unique(&hashes, &contents, |_| true)) {
            rules[i].chain = format!("{prefix}_{h:08x}");
        }
    }
}

/// `<start of plain>_<16 hex digits>`, exactly [`MAX_COUNTER_NAME`] bytes or fewer. `plain` is
/// ASCII (see [`counter_names`]), so any cut is a character boundary.
fn hashed_counter_name(plain: &str, key: &str, attempt: u32) -> String {
    let hash = hash64(format!("{key}\n{attempt}").as_bytes());
    let keep = MAX_COUNTER_NAME - 17;
    let start = plain.get(..keep.min(plain.len())).unwrap_or(plain);
    format!("{start}_{hash:016x}")
}

/// From dense class indices to content-derived mark values inside `bits` (class 0, matching
/// nothing, stays 0); an error when the classes do not fit.
fn assign_marks(d: &mut DirectionIr, bits: CtMarkBits) -> Result<(), ClassOverflow> {
    let contents: Vec<(&Vec<String>, &Vec<String>)> = d
        .classes
        .iter()
        .map(|c| (&c.peers, &c.named_ports))
        .collect();
    let hashes: Vec<u32> = contents
        .iter()
        .map(|(peers, ports)| {
            let text = format!("{}\n{}", peers.join("\n"), ports.join("\n"));
            hash32(text.as_bytes())
        })
        .collect();
    let capacity = bits.capacity();
    let needed = contents.len().saturating_sub(1);
    if needed > capacity as usize {
        return Err(ClassOverflow {
            direction: d.direction,
            classes: needed,
            capacity,
        });
    }
    let mut marks = match (hashes.get(1..), contents.get(1..)) {
        (Some(h), Some(c)) => assign_slots(h, c, capacity),
        _ => Vec::new(),
    };
    for m in &mut marks {
        *m = bits.value(*m);
    }
    marks.insert(0, 0);
    let m = |c: u32| marks.get(c as usize).copied().unwrap_or(0);
    for c in &mut d.classes {
        c.id = m(c.id);
    }
    d.classes.sort_by_key(|c| c.id);
    for w in d.workload_classes.values_mut() {
        w.class = m(w.class);
    }
    for r in &mut d.external {
        r.class = m(r.class);
    }
    for ident in &mut d.identities {
        let r = &mut ident.rules;
        r.class_all = std::mem::take(&mut r.class_all)
            .into_iter()
            .map(|(c, g)| (m(c), g))
            .collect();
        for s in &mut r.class_ports {
            s.class = m(s.class);
        }
        r.class_ports.sort();
    }
    for t in &mut d.tiers {
        for s in &mut t.segments {
            s.class = m(s.class);
        }
        t.segments.sort();
    }
    Ok(())
}

/// Names the tier objects of every group of a direction (see [`crate::TierMap`]):
///
/// * the lookup chain `<p>_tl_<h>` and the exact-port map `<p>_tx_<h>`, `h` hashed from the
///   tier and the least key (`namespace/name`) of the workloads the group serves (groups with
///   equal segments share them, and count as one), so that an edited admin rule, mostly also a
///   deleted or added admin policy, and a NetworkPolicy edit (which renames identity chains but
///   moves no workload) change the exact map's elements in place and rename nothing;
/// * the range map `<p>_t_<h>`, `h` hashed from its elements, replaced whole when they change.
///
/// A hash already taken by other content (not a practical concern at 64 bits) is probed onward,
/// items being served in (hash, content) order so names stay deterministic.
fn tier_map_names(d: &mut DirectionIr, rules: &[crate::AdminRuleRef]) {
    let prefix = match d.direction {
        netpol_core::Direction::Ingress => "in",
        netpol_core::Direction::Egress => "eg",
    };
    let contents: Vec<&[crate::TierSegment]> =
        d.tiers.iter().map(|t| t.segments.as_slice()).collect();
    // The least workload served (or, for a group no identity uses, the group's own key) per
    // content.
    let mut served: Vec<Option<&str>> = vec![None; d.tiers.len()];
    for ident in &d.identities {
        for i in [ident.rules.admin, ident.rules.baseline]
            .into_iter()
            .flatten()
        {
            let Some(least) = served.get_mut(i) else {
                continue;
            };
            for w in &ident.workloads {
                *least = Some(least.map_or(w.as_str(), |l| l.min(w.as_str())));
            }
        }
    }
    let keys: Vec<String> = d
        .tiers
        .iter()
        .zip(&served)
        .map(|(t, least)| match least {
            Some(workload) => format!("{}/{workload}", t.tier),
            None => format!("{}/{}", t.tier, t.policies.join(",")),
        })
        .collect();
    let mut least: std::collections::HashMap<&[crate::TierSegment], &str> = Default::default();
    for (key, segments) in keys.iter().zip(&contents) {
        least
            .entry(segments)
            .and_modify(|l| *l = (*l).min(key.as_str()))
            .or_insert(key.as_str());
    }
    let hashes: Vec<u64> = contents
        .iter()
        .map(|c| {
            let mut h = Fnv64::new();
            h.write(least[c].as_bytes());
            h.0
        })
        .collect();
    let group_names = probed(&hashes, &contents);
    let ranges: Vec<Vec<crate::TierSegment>> = contents
        .iter()
        .map(|segments| segments.iter().filter(|s| !s.exact()).copied().collect())
        .collect();
    let range_hashes: Vec<u64> = ranges
        .iter()
        .map(|segments| tier_content_hash(segments, rules))
        .collect();
    let range_names = probed(&range_hashes, &ranges);
    for ((t, h), r) in d.tiers.iter_mut().zip(group_names).zip(range_names) {
        t.name = format!("{prefix}_tl_{h:016x}");
        t.exact_map = format!("{prefix}_tx_{h:016x}");
        t.range_map = format!("{prefix}_t_{r:016x}");
    }
}

/// FNV-1a over what a tier map's elements are rendered from, without rendering them.
fn tier_content_hash(segments: &[crate::TierSegment], rules: &[crate::AdminRuleRef]) -> u64 {
    let mut h = Fnv64::new();
    for s in segments {
        h.write(&s.class.to_le_bytes());
        h.write(&[match s.protocol {
            Some(netpol_core::Protocol::Tcp) => 1,
            Some(netpol_core::Protocol::Udp) => 2,
            Some(netpol_core::Protocol::Sctp) => 3,
            None => 0,
        }]);
        h.write(&s.first.to_le_bytes());
        h.write(&s.last.to_le_bytes());
        if let Some(r) = rules.get(s.rule) {
            h.write(r.policy.as_bytes());
            h.write(&[0]);
            h.write(&u64::try_from(r.rule).unwrap_or(u64::MAX).to_le_bytes());
            h.write(r.direction.to_string().as_bytes());
            h.write(&[0]);
            h.write(r.chain.as_bytes());
            h.write(&[0]);
        }
    }
    h.0
}

/// Every item its 64-bit hash, equal items the same; an item whose hash another item took gets
/// the next free value, items being served in (hash, content) order.
fn probed<T: Ord>(hashes: &[u64], contents: &[T]) -> Vec<u64> {
    let mut order: Vec<usize> = (0..hashes.len()).collect();
    order.sort_by(|&a, &b| (hashes[a], &contents[a]).cmp(&(hashes[b], &contents[b])));
    let mut owner: std::collections::BTreeMap<u64, usize> = Default::default();
    let mut out = vec![0u64; hashes.len()];
    for i in order {
        let mut h = hashes[i];
        loop {
            match owner.get(&h) {
                None => {
                    owner.insert(h, i);
                    break;
                }
                Some(&j) if contents[j] == contents[i] => break,
                Some(_) => h = h.wrapping_add(1),
            }
        }
        out[i] = h;
    }
    out
}

/// FNV-1a, 64 bits, fed piecewise.
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// FNV-1a, folded to 32 bits: stable across platforms and Rust versions (unlike `std`'s hasher).
pub(crate) fn hash32(bytes: &[u8]) -> u32 {
    let h = hash64(bytes);
    // Truncation intended: fold both halves in.
    ((h >> 32) ^ h) as u32
}

/// FNV-1a, 64 bits.
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Gives every item a slot from 1 to `capacity` (at least as many as items) derived from its
/// hash; an item whose slot is taken gets the next free one (wrapping to 1), items being served
/// in (hash, content) order so the outcome depends only on the set of items.
fn assign_slots<T: Ord>(hashes: &[u32], contents: &[T], capacity: u32) -> Vec<u32> {
    let mut order: Vec<usize> = (0..hashes.len()).collect();
    order.sort_by(|&a, &b| (hashes[a], &contents[a]).cmp(&(hashes[b], &contents[b])));
    let mut used = std::collections::BTreeSet::new();
    let mut out = vec![0u32; hashes.len()];
    for i in order {
        let mut slot = hashes[i] % capacity + 1;
        while !used.insert(slot) {
            slot = if slot >= capacity { 1 } else { slot + 1 };
        }
        out[i] = slot;
    }
    out
}

/// Gives every item its hash, except that items whose hash is taken (or not `allowed`) get the
/// next free value, items being served in (hash, content) order so the outcome depends only on
/// the set of items.
pub(crate) fn assign_unique<T: Ord>(
    hashes: &[u32],
    contents: &[T],
    allowed: impl Fn(u32) -> bool,
) -> Vec<u32> {
    let mut order: Vec<usize> = (0..hashes.len()).collect();
    order.sort_by(|&a, &b| (hashes[a], &contents[a]).cmp(&(hashes[b], &contents[b])));
    let mut used = std::collections::BTreeSet::new();
    let mut out = vec![0u32; hashes.len()];
    for i in order {
        let mut h = hashes[i];
        while !allowed(h) || !used.insert(h) {
            h = h.wrapping_add(1);
        }
        out[i] = h;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(keys: &[&str]) -> Vec<String> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        counter_names(&keys)
            .into_iter()
            .map(|c| c.counter)
            .collect()
    }

    #[test]
    fn short_policy_keys_keep_their_readable_counter_names() {
        assert_eq!(
            names(&["shop/deny-in", "test-project/allow.b"]),
            ["pol_shop_deny-in", "pol_test-project_allow.b"]
        );
    }

    #[test]
    fn keys_at_the_api_maximum_get_distinct_hashed_names_within_the_limit() {
        let ns = "n".repeat(63);
        let long = "p".repeat(253);
        // Same first 252 bytes: only a hash of the whole key tells them apart.
        let other = format!("{}q", "p".repeat(252));
        let keys = [format!("{ns}/{long}"), format!("{ns}/{other}")];
        let got = names(&[&keys[0], &keys[1]]);
        for n in &got {
            assert!(n.len() <= MAX_COUNTER_NAME, "{n} is {} bytes", n.len());
            assert!(n.starts_with("pol_nnn"), "{n}");
            assert!(n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)));
        }
        assert_ne!(got[0], got[1]);
        // Deterministic, and independent of the other keys of the node.
        assert_eq!(names(&[&keys[0]])[0], got[0]);
    }

    #[test]
    fn keys_that_clean_up_to_the_same_name_get_distinct_names() {
        let got = names(&["a/b c", "a/b_c", "a/b?c"]);
        assert_eq!(got[0], "pol_a_b_c");
        assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 3, "{got:?}");
        assert!(got.iter().all(|n| n.len() <= MAX_COUNTER_NAME));
    }
}
