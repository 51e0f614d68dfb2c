//! Reading a text listing of the table (`nft [-t] -s list table inet netpol`) against a ruleset,
//! for drift detection: does the kernel hold the *whole* ruleset, not just whatever the last
//! incremental update left?
//!
//! An incremental update applies cleanly to a table that someone emptied (`nft flush table`
//! removes every rule and keeps the chains and maps an update refers to), so a listing taken after
//! an update is no proof by itself. Two checks make it one:
//! - [`Ruleset::listing_mismatch`]: the listing declares exactly the ruleset's objects, and every
//!   chain holds as many rules as the ruleset gives it (a flushed chain holds none);
//! - [`unchanged_objects_differ`]: every object an update did not touch ([`update_touches`]) is
//!   listed exactly as before the update, so a table verified before an update is verified after
//!   it too.

use std::collections::{BTreeMap, BTreeSet};

use crate::render::Object;
use crate::update::Diff;
use crate::Ruleset;

/// One top-level object of a listing: its kind (`chain`, `map`, `counter`, ...), its lines, and
/// for a chain the number of rules.
#[derive(Debug, PartialEq, Eq)]
struct Block<'a> {
    kind: &'a str,
    lines: Vec<&'a str>,
    rules: usize,
}

/// The objects of a listing by name. Lines are the listing's own (compare listings of one kind,
/// terse or full); blank lines are ignored.
fn blocks(listing: &str) -> BTreeMap<&str, Block<'_>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(&str, Block)> = None;
    for line in listing.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        let depth = line.len() - line.trim_start_matches('\t').len();
        let text = line.trim_start_matches('\t');
        match (depth, &mut current) {
            (1, None) => {
                let mut words = text.split_whitespace();
                if let (Some(kind), Some(name)) = (words.next(), words.next()) {
                    let block = Block {
                        kind,
                        lines: vec![line],
                        rules: 0,
                    };
                    current = Some((name, block));
                }
            }
            (1, Some(_)) if text == "}" => {
                if let Some((name, mut block)) = current.take() {
                    block.lines.push(line);
                    out.insert(name, block);
                }
            }
            (_, Some((_, block))) => {
                block.lines.push(line);
                // A chain's rules are its lines one level in, except its comment.
                if block.kind == "chain" && depth == 2 && !text.starts_with("comment ") {
                    block.rules += 1;
                }
            }
            _ => {}
        }
    }
    out
}

impl Ruleset {
    /// Why `listing` (of this crate's table) is not this whole ruleset, as far as a listing's
    /// structure tells: an object missing or unexpected, or a chain with another number of rules.
    /// `None` when it matches. Rule and element texts are not compared (nft prints them its own
    /// way); [`unchanged_objects_differ`] covers those against an earlier listing.
    pub fn listing_mismatch(&self, listing: &str) -> Option<String> {
        let listed = blocks(listing);
        let expected: BTreeMap<&str, &Object> =
            self.objects.iter().map(|o| (o.name(), o)).collect();
        let mut problems = Vec::new();
        for (name, o) in &expected {
            match (listed.get(name), o) {
                (None, _) => problems.push(format!("{name} is missing")),
                (Some(b), Object::Chain { rules, .. }) if b.rules != rules.len() => {
                    problems.push(format!(
                        "chain {name} has {} rules instead of {}",
                        b.rules,
                        rules.len()
                    ))
                }
                _ => {}
            }
        }
        for name in listed.keys().filter(|n| !expected.contains_key(*n)) {
            problems.push(format!("{name} is not part of the ruleset"));
        }
        if problems.is_empty() {
            return None;
        }
        let n = problems.len();
        problems.truncate(3);
        Some(format!(
            "the table is not the whole ruleset ({n} differences): {}",
            problems.join("; ")
        ))
    }
}

/// The names of the objects [`crate::update_script`]`(old, new)` adds, changes or removes;
/// `None` when there is no such script.
pub fn update_touches(old: &Ruleset, new: &Ruleset) -> Option<BTreeSet<String>> {
    let diff = Diff::of(&old.objects, &new.objects)?;
    let mut names: BTreeSet<String> = BTreeSet::new();
    names.extend(diff.added.iter().map(|o| o.name().to_string()));
    names.extend(diff.removed.iter().map(|o| o.name().to_string()));
    names.extend(diff.changed.iter().map(|c| c.map.to_string()));
    names.extend(diff.rewritten.iter().map(|o| o.name().to_string()));
    Some(names)
}

/// The objects outside `touched` whose listing differs between `before` and `after` (two
/// listings of the same kind): each is drift that happened before or during an update that did
/// not touch it. Empty when there is none.
pub fn unchanged_objects_differ(
    before: &str,
    after: &str,
    touched: &BTreeSet<String>,
) -> Vec<String> {
    let (before, after) = (blocks(before), blocks(after));
    before
        .iter()
        .filter(|(name, _)| !touched.contains(**name))
        .filter(|(name, block)| after.get(*name) != Some(block))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "table inet netpol {\n\
        \tcounter denied_ingress {\n\t}\n\n\
        \tmap in_wl4 {\n\t\ttype ipv4_addr : verdict\n\t\telements = { 10.0.0.1 : return,\n\t\t\t     10.0.0.2 : return }\n\t}\n\n\
        \tchain in_00000001 {\n\t\tcomment \"a/web\"\n\t\tjump in_classify\n\t\tcounter name \"denied_ingress\" drop\n\t}\n\
        }\n";

    #[test]
    fn a_listing_is_read_as_objects_with_their_rule_counts() {
        let b = blocks(LISTING);
        assert_eq!(
            b.keys().copied().collect::<Vec<_>>(),
            ["denied_ingress", "in_00000001", "in_wl4"]
        );
        assert_eq!(b["in_00000001"].rules, 2, "the comment is not a rule");
        assert_eq!(b["in_wl4"].rules, 0);
        assert_eq!(b["in_wl4"].lines.len(), 5);
    }

    #[test]
    fn objects_an_update_did_not_touch_must_be_listed_as_before() {
        let flushed = LISTING.replace(
            "\t\tjump in_classify\n\t\tcounter name \"denied_ingress\" drop\n",
            "",
        );
        let none = BTreeSet::new();
        assert_eq!(
            unchanged_objects_differ(LISTING, LISTING, &none),
            Vec::<String>::new()
        );
        assert_eq!(
            unchanged_objects_differ(LISTING, &flushed, &none),
            ["in_00000001"]
        );
        let touched: BTreeSet<String> = ["in_00000001".to_string()].into();
        assert!(unchanged_objects_differ(LISTING, &flushed, &touched).is_empty());
        let gone = LISTING.replace("\tcounter denied_ingress {\n\t}\n", "");
        assert_eq!(
            unchanged_objects_differ(LISTING, &gone, &none),
            ["denied_ingress"]
        );
    }
}
