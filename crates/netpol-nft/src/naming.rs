//! The naming pass: after the IR of a node is built with dense class ids and unnamed identities,
//! this pass gives every peer class its mark and every identity its chain name, both derived from
//! content rather than position. That is what lets an update touch only what changed: a class or
//! identity that does not change keeps its mark or name when others come and go.
//!
//! Marks hash a class's rendered peers and named ports; chain names hash the identity's chain and
//! maps as the renderer writes them (under a placeholder name, see [`crate::render`]), so the
//! objects rendered for naming are handed back for the final rendering instead of being rendered
//! twice. The rare hash collision is resolved by probing in content order, which keeps the result
//! deterministic.

use crate::render::{identity_names, Prerendered};
use crate::{DirectionIr, RulesetIr};

/// Names the classes and identities of both directions; returns the identities' objects as
/// rendered for naming.
pub(crate) fn name(ir: &mut RulesetIr) -> Prerendered {
    assign_marks(&mut ir.ingress);
    assign_marks(&mut ir.egress);
    let view: &RulesetIr = ir;
    let ((in_names, in_objects), (eg_names, eg_objects)) = std::thread::scope(|scope| {
        let egress = scope.spawn(|| identity_names(view, &view.egress));
        let ingress = identity_names(view, &view.ingress);
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
    Prerendered {
        ingress: in_objects,
        egress: eg_objects,
    }
}

/// From dense class indices to content-derived mark values (class 0, matching nothing, stays 0).
fn assign_marks(d: &mut DirectionIr) {
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
    let mut marks = match (hashes.get(1..), contents.get(1..)) {
        (Some(h), Some(c)) => assign_unique(h, c, |h| h != 0),
        _ => Vec::new(),
    };
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
}

/// FNV-1a, folded to 32 bits: stable across platforms and Rust versions (unlike `std`'s hasher).
pub(crate) fn hash32(bytes: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Truncation intended: fold both halves in.
    ((h >> 32) ^ h) as u32
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
