//! The drift checks of a listing against the real kernel's listings: a loaded ruleset and a
//! ruleset reached by an incremental update are the whole ruleset, in terse and full listings; a
//! flushed table is not, neither right away nor after an update applied on top of the flush.
//! Needs root (fails otherwise).

// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use netpol_core::*;
use netpol_dataplane::{nft, Listing, Netns};
use netpol_nft::{compile, unchanged_objects_differ, update_script, update_touches};

fn list(ns: &Netns, listing: Listing) -> String {
    nft::list_table_with(Some(ns.name()), "inet", "netpol", listing)
        .unwrap()
        .expect("the table is there")
}

/// The users' page on virtlab-2, and the same with one policy removed (an update that adds,
/// changes and removes objects).
fn rulesets() -> (netpol_nft::Ruleset, netpol_nft::Ruleset) {
    let old_c = users_page();
    let mut new_c = old_c.clone();
    new_c
        .policies
        .retain(|p| p.name != "allow-ingress-from-vm-b-to-vm-a");
    let opts = EvalOptions::default();
    (
        compile(&old_c, opts, "virtlab-2").unwrap(),
        compile(&new_c, opts, "virtlab-2").unwrap(),
    )
}

#[test]
fn loaded_and_updated_tables_read_as_the_whole_ruleset_in_both_listings() {
    require_root();
    let (old, new) = rulesets();
    let ns = Netns::create("nftlist").unwrap();
    nft::apply(Some(ns.name()), &old.text).unwrap();
    for listing in [Listing::Terse, Listing::Full] {
        assert_eq!(
            old.listing_mismatch(&list(&ns, listing)),
            None,
            "{listing:?}"
        );
        assert!(new.listing_mismatch(&list(&ns, listing)).is_some());
    }
    let before = [list(&ns, Listing::Terse), list(&ns, Listing::Full)];
    nft::apply(Some(ns.name()), &update_script(&old, &new).unwrap()).unwrap();
    let touched = update_touches(&old, &new).unwrap();
    assert!(!touched.is_empty());
    for (listing, before) in [Listing::Terse, Listing::Full].into_iter().zip(&before) {
        let after = list(&ns, listing);
        assert_eq!(new.listing_mismatch(&after), None, "{listing:?}");
        assert_eq!(
            unchanged_objects_differ(before, &after, &touched),
            Vec::<String>::new(),
            "{listing:?}"
        );
    }
}

#[test]
fn a_flushed_table_is_not_the_whole_ruleset_even_after_an_update_applies_on_top_of_it() {
    require_root();
    let (old, new) = rulesets();
    let ns = Netns::create("nftlist").unwrap();
    nft::apply(Some(ns.name()), &old.text).unwrap();
    let before = list(&ns, Listing::Terse);
    nft::apply(Some(ns.name()), "flush table inet netpol\n").unwrap();
    let flushed = list(&ns, Listing::Terse);
    let why = old
        .listing_mismatch(&flushed)
        .expect("a flushed table is drift");
    assert!(why.contains("has 0 rules instead of"), "{why}");
    // The update applies cleanly to the emptied chains...
    nft::apply(Some(ns.name()), &update_script(&old, &new).unwrap()).unwrap();
    let after = list(&ns, Listing::Terse);
    // ...and both checks see what it left.
    assert!(new.listing_mismatch(&after).is_some(), "{after}");
    let touched = update_touches(&old, &new).unwrap();
    let differ = unchanged_objects_differ(&before, &after, &touched);
    assert!(differ.contains(&"forward".to_string()), "{differ:?}");
}
