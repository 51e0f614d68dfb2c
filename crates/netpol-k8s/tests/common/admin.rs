//! Builders of admin policy manifests and assertions on their validation, for the admin tests.

use super::*;

/// A ClusterNetworkPolicy named `p` with the given spec body (indented by two spaces).
pub fn cnp(spec: &str) -> String {
    format!("apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata:\n  name: p\nspec:\n{spec}")
}

/// An AdminNetworkPolicy named `p`.
pub fn anp(spec: &str) -> String {
    format!("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata:\n  name: p\nspec:\n{spec}")
}

/// A BaselineAdminNetworkPolicy named `name`.
pub fn banp(name: &str, spec: &str) -> String {
    format!("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

pub const HEAD: &str = "  tier: Admin\n  priority: 1\n  subject:\n    namespaces: {}\n";
pub const ANP_HEAD: &str = "  priority: 1\n  subject:\n    namespaces: {}\n";
pub const BANP_HEAD: &str = "  subject:\n    namespaces: {}\n";

/// The messages of the errors of a one-policy manifest; an object with errors must not load.
pub fn error_messages(text: &str) -> Vec<String> {
    let l = load(text);
    let errs: Vec<String> = errors(&l).iter().map(|d| d.message.clone()).collect();
    assert_eq!(
        l.cluster.admin_policies.is_empty(),
        !errs.is_empty(),
        "{errs:?}"
    );
    errs
}

pub fn assert_rejected(text: &str, expected: &str) {
    let errs = error_messages(text);
    assert!(
        errs.iter().any(|e| e == expected),
        "expected {expected:?} among {errs:#?}"
    );
}

pub fn assert_valid(text: &str) {
    let errs = error_messages(text);
    assert!(errs.is_empty(), "unexpected errors {errs:#?}");
}

/// An egress rule of `action` to the given peers (YAML flow list items) and extra rule lines.
pub fn egress(action: &str, peers: &[&str], extra: &str) -> String {
    let mut s = format!("  egress:\n  - action: {action}\n    to:\n");
    for p in peers {
        s.push_str(&format!("    - {p}\n"));
    }
    s.push_str(extra);
    s
}

pub fn ingress(action: &str, peers: &[&str], extra: &str) -> String {
    egress(action, peers, extra)
        .replace("  egress:", "  ingress:")
        .replace("    to:", "    from:")
}

/// `n` copies of `item` as YAML list lines at `indent`.
pub fn items(indent: &str, item: &str, n: usize) -> String {
    (0..n).map(|_| format!("{indent}- {item}\n")).collect()
}

pub fn networks(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| format!("10.0.{i}.0/24")).collect();
    format!("networks: [{}]", list.join(", "))
}

pub fn domains(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| format!("h{i}.example.com")).collect();
    format!("domainNames: [{}]", list.join(", "))
}

pub fn with_protocols(entries: &[&str]) -> String {
    let mut s = format!(
        "{HEAD}{}",
        egress("Deny", &["namespaces: {}"], "    protocols:\n")
    );
    for e in entries {
        s.push_str(&format!("    - {e}\n"));
    }
    cnp(&s)
}

pub fn with_ports(entries: &[&str]) -> String {
    let mut s = format!(
        "{ANP_HEAD}{}",
        egress("Deny", &["namespaces: {}"], "    ports:\n")
    );
    for e in entries {
        s.push_str(&format!("    - {e}\n"));
    }
    anp(&s)
}
