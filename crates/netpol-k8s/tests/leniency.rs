//! Where kubectl is lenient, netpol is too: `status: {}` on a NetworkPolicy and tabs that
//! go-yaml accepts load (with a note or a warning), even in strict mode; what a 1.28+ API server
//! or go-yaml refuses stays refused.

mod common;

use common::*;
use netpol_k8s::{Severity, ValidationMode};

const POLICY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\nspec: {podSelector: {}}\n";

#[test]
fn an_empty_status_on_a_network_policy_loads_in_strict_mode_with_a_note() {
    for status in ["status: {}\n", "status:\n", "status: null\n"] {
        let l = load(&format!("{POLICY}{status}"));
        assert!(!l.has_errors(), "{status}: {:?}", l.diagnostics);
        assert_eq!(l.cluster.policies.len(), 1, "{status}");
        let note = with(&l, Severity::Note)
            .into_iter()
            .find(|d| d.message.contains("empty status"))
            .unwrap_or_else(|| panic!("{status}: a note {:?}", l.diagnostics));
        assert_eq!((note.line, note.field_path.as_deref()), (5, Some("status")));
        assert_eq!(
            note.object.as_deref(),
            Some("NetworkPolicy a/p"),
            "{status}"
        );
    }
}

#[test]
fn a_non_empty_status_on_a_network_policy_stays_an_unknown_field() {
    let text = format!("{POLICY}status:\n  conditions: []\n");
    let l = load(&text);
    let errs = errors(&l);
    assert_eq!(errs.len(), 1, "{:?}", l.diagnostics);
    assert!(errs[0].message.contains("unknown field \"status\""));
    assert!(l.cluster.policies.is_empty());
    // Warn mode drops it, as for any unknown field.
    let l = load_mode(&text, ValidationMode::Warn);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(l.cluster.policies.len(), 1);
}

#[test]
fn a_tab_after_a_colon_loads_in_strict_mode_with_a_warning_at_the_tab() {
    let text = "apiVersion:\tv1\nkind: Namespace\nmetadata:\n  name:\t\tweb\n  labels: {team: a}\n";
    let l = load(text);
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    assert_eq!(l.cluster.namespaces[0].name, "web");
    let warnings: Vec<(usize, usize)> = with(&l, Severity::Warning)
        .iter()
        .filter(|d| d.message.contains("a tab after ':'"))
        .map(|d| (d.line, d.column))
        .collect();
    assert_eq!(warnings, [(1, 12), (4, 8)]);
}

#[test]
fn tabs_go_yaml_refuses_stay_parse_errors_and_tabs_in_quotes_stay_in_the_value() {
    let l = load("apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: a\n");
    let errs = errors(&l);
    assert_eq!(errs.len(), 1, "{:?}", l.diagnostics);
    assert!(errs[0].message.contains("cannot parse YAML"), "{errs:?}");
    assert_eq!(errs[0].line, 4);
    let l =
        load("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels: {x: \"a:\tb\"}\n");
    assert!(
        errors(&l)[0].message.contains("\"a:\\tb\""),
        "the tab is part of the quoted label value: {:?}",
        l.diagnostics
    );
}
