#![allow(dead_code)]

pub mod admin;

use netpol_k8s::{load_str, Diagnostic, LoadOptions, Loaded, Severity, ValidationMode};

pub fn load(text: &str) -> Loaded {
    load_str("t.yaml", text, &LoadOptions::default())
}

pub fn load_mode(text: &str, validation: ValidationMode) -> Loaded {
    load_str("t.yaml", text, &LoadOptions { validation })
}

pub fn with(l: &Loaded, severity: Severity) -> Vec<&Diagnostic> {
    l.diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .collect()
}

pub fn errors(l: &Loaded) -> Vec<&Diagnostic> {
    with(l, Severity::Error)
}

/// A NetworkPolicy in namespace `ns` with the given spec body (indented by two spaces).
pub fn policy(spec: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: ns\nspec:\n{spec}"
    )
}
