//! Decoding the admin policy kinds: unknown fields with positions, paths and hints, cluster scope,
//! duplicates, peers that fail closed, removed and unread versions.

mod common;

use common::*;
use netpol_core::{AdminPeer, LabelSelector};
use netpol_k8s::{DiagnosticKind, Severity, ValidationMode};

#[test]
fn an_unknown_field_is_rejected_with_its_position_and_path_and_other_objects_keep_loading() {
    let text = "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: typo
spec:
  tier: Admin
  priority: 1
  subject:
    namespaces: {}
  egress:
  - action: Accept
    to:
    - namespaces: {}
    protocol:
    - tcp: {destinationPort: {number: 80}}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata:
  name: fine
spec:
  priority: 1
  subject:
    namespaces: {}
";
    let l = load(text);
    let errs = errors(&l);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let d = errs[0];
    assert_eq!(d.kind, DiagnosticKind::UnknownField);
    assert_eq!((d.line, d.column), (14, 5));
    assert_eq!(d.field_path.as_deref(), Some("spec.egress[0].protocol"));
    assert_eq!(d.object.as_deref(), Some("ClusterNetworkPolicy typo"));
    let keys: Vec<String> = l.cluster.admin_policies.iter().map(|p| p.key()).collect();
    assert_eq!(keys, ["anp/fine"]);
    // Warn mode drops the field (and with it the rule's ports), with a warning.
    let l = load_mode(text, ValidationMode::Warn);
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    assert_eq!(l.cluster.admin_policies.len(), 2);
}

#[test]
fn a_namespace_on_a_cluster_scoped_policy_is_ignored_with_a_warning() {
    let l = load(
        "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: p
  namespace: test-project
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
",
    );
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    let w = with(&l, Severity::Warning);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].line, 5);
    assert_eq!(w[0].field_path.as_deref(), Some("metadata.namespace"));
    assert!(w[0].message.contains("cluster-scoped"), "{}", w[0].message);
    assert_eq!(l.cluster.admin_policies[0].name, "p");
    assert!(
        l.cluster
            .namespaces
            .iter()
            .all(|n| n.name != "test-project"),
        "no implicit namespace"
    );
}

#[test]
fn a_second_policy_of_the_same_kind_and_name_is_an_error_on_the_later_one() {
    let cnp = "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: same}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}}
";
    let anp = "apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: same}
spec: {priority: 1, subject: {namespaces: {}}}
";
    let l = load(&format!("{cnp}---\n{anp}---\n{cnp}"));
    let errs = errors(&l);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, 11);
    assert!(
        errs[0]
            .message
            .starts_with("duplicate object: already defined at t.yaml:1"),
        "{}",
        errs[0].message
    );
    let keys: Vec<String> = l.cluster.admin_policies.iter().map(|p| p.key()).collect();
    assert_eq!(
        keys,
        ["cnp/same", "anp/same"],
        "another kind of the same name is another object"
    );
}

const NEWER_PEER: &str = "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata:
  name: newer
spec:
  tier: Admin
  priority: 1
  subject:
    namespaces: {}
  ingress:
  - action: Accept
    from:
    - serviceAccounts:
        name: x
    - namespaces: {}
  egress:
  - action: Deny
    to:
    - externalNetworks: {matchLabels: {a: b}}
";

#[test]
fn a_peer_of_only_unknown_fields_fails_closed_in_every_mode_with_a_warning() {
    for mode in [
        ValidationMode::Strict,
        ValidationMode::Warn,
        ValidationMode::Ignore,
    ] {
        let l = load_mode(NEWER_PEER, mode);
        assert!(!l.has_errors(), "{mode:?}: {:#?}", l.diagnostics);
        let p = &l.cluster.admin_policies[0];
        assert_eq!(
            p.ingress[0].peers,
            [
                AdminPeer::Unknown,
                AdminPeer::Namespaces(LabelSelector::everything())
            ]
        );
        assert_eq!(p.egress[0].peers, [AdminPeer::Unknown]);
        let w = with(&l, Severity::Warning);
        assert_eq!(w.len(), 2, "{w:#?}");
        assert_eq!(w[0].field_path.as_deref(), Some("spec.ingress[0].from[0]"));
        assert_eq!(w[0].line, 13);
        assert!(w[0].message.contains("serviceAccounts"), "{}", w[0].message);
        assert!(w[0].message.contains("matches nothing"), "{}", w[0].message);
        assert_eq!(w[1].field_path.as_deref(), Some("spec.egress[0].to[0]"));
        assert!(
            w[1].message.contains("denies everything"),
            "{}",
            w[1].message
        );
    }
}

#[test]
fn an_unknown_field_next_to_a_known_one_in_a_peer_is_an_ordinary_unknown_field() {
    let l = load(&NEWER_PEER.replace(
        "    - serviceAccounts:\n        name: x\n    - namespaces: {}\n",
        "    - namespaces: {}\n      serviceAccounts: {}\n",
    ));
    let errs = errors(&l);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].kind, DiagnosticKind::UnknownField);
    assert_eq!(
        errs[0].field_path.as_deref(),
        Some("spec.ingress[0].from[0].serviceAccounts")
    );
}

#[test]
fn a_peer_that_looks_like_a_typo_still_fails_closed_but_the_warning_says_how_to_fix_it() {
    let l = load(&NEWER_PEER.replace(
        "    - serviceAccounts:\n        name: x\n",
        "    - namespace: {}\n",
    ));
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    assert_eq!(
        l.cluster.admin_policies[0].ingress[0].peers[0],
        AdminPeer::Unknown
    );
    let w = with(&l, Severity::Warning);
    assert_eq!(
        w[0].hint.as_deref(),
        Some("if \"namespace\" is a misspelling of \"namespaces\", fix it: as written, the peer fails closed")
    );
    let l = load(&NEWER_PEER.replace(
        "    - externalNetworks: {matchLabels: {a: b}}\n",
        "    - protocols: [{tcp: {destinationPort: {number: 1}}}]\n",
    ));
    let w = with(&l, Severity::Warning);
    assert!(
        w[1].hint
            .as_deref()
            .unwrap_or("")
            .starts_with("\"protocols\" belongs to the rule"),
        "{w:#?}"
    );
    // A newer CRD's peer gets no such hint.
    let l = load(NEWER_PEER);
    assert!(with(&l, Severity::Warning).iter().all(|d| d.hint.is_none()));
}

#[test]
fn protocols_under_a_peer_get_the_hint_to_move_them_to_the_rule() {
    let l = load(
        "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress:
  - action: Deny
    to:
    - namespaces: {}
      protocols:
      - tcp: {destinationPort: {number: 25}}
",
    );
    let errs = errors(&l);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].to_string(),
        "t.yaml:12:7: error: ClusterNetworkPolicy p: unknown field \"protocols\" at spec.egress[0].to[0].protocols\n  hint: \"protocols\" belongs to the rule (spec.egress[0]), not to the peer (spec.egress[0].to[0]): move it to spec.egress[0].protocols, indented to line up with \"to\""
    );
}

#[test]
fn an_admin_policy_of_a_version_netpol_does_not_read_is_an_error_naming_the_one_it_reads() {
    let l = load(
        "apiVersion: policy.networking.k8s.io/v1beta1
kind: ClusterNetworkPolicy
metadata: {name: newer}
spec: {tier: Admin, priority: 1, subject: {namespaces: {}}}
",
    );
    // Skipping it would silently leave open what it denies.
    assert!(l.cluster.admin_policies.is_empty());
    let e = with(&l, Severity::Error);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(
        e[0].to_string(),
        "t.yaml:1:1: error: ClusterNetworkPolicy newer: netpol does not read ClusterNetworkPolicy of version \"policy.networking.k8s.io/v1beta1\": what it decides cannot be analysed or enforced at apiVersion\n  hint: netpol reads policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy"
    );
}

#[test]
fn the_v0_1_shape_of_a_namespaces_peer_gets_a_hint_to_the_current_one() {
    let l = load(
        "apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: old}
spec:
  priority: 1
  subject: {namespaces: {}}
  ingress:
  - action: Deny
    from:
    - namespaces:
        namespaceSelector: {matchLabels: {a: b}}
",
    );
    let errs = errors(&l);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].hint.as_deref(),
        Some("this is the v0.1.x shape of a namespaces peer: spec.ingress[0].from[0].namespaces is now the namespace selector itself, so write its matchLabels / matchExpressions directly under it")
    );
}

#[test]
fn dropping_a_misplaced_port_field_in_warn_mode_says_the_rule_now_matches_every_port() {
    let text = "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: p}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  egress:
  - action: Accept
    to:
    - namespaces: {}
      protocols:
      - tcp: {destinationPort: {number: 25}}
";
    let l = load_mode(text, ValidationMode::Warn);
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    let w = with(&l, Severity::Warning);
    assert_eq!(
        w[0].message,
        "unknown field \"protocols\" at spec.egress[0].to[0].protocols was dropped: rule spec.egress[0] now matches every port and protocol of its peers (an Accept rule accepts them all)"
    );
    assert_eq!(l.cluster.admin_policies[0].egress[0].ports, None);
}
