//! ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`), AdminNetworkPolicy and
//! BaselineAdminNetworkPolicy (v1alpha1): strict decoding, the CRDs' OpenAPI and CEL validation,
//! and conversion into the model's one admin policy shape ([`AdminPolicy`]).
//!
//! Two things are not like NetworkPolicy's decoding:
//! - a peer made only of fields netpol does not know (a newer CRD's peer kind) is not an unknown
//!   field: dropping the object (or the peer) would open traffic, so it loads in every mode as
//!   [`netpol_core::AdminPeer::Unknown`], which fails closed, with a warning saying how;
//! - `sameLabels` / `notSameLabels` (network-policy-api v0.1.x) are errors in every mode: they
//!   were removed upstream, and no selector netpol has means the same.

mod rules;
mod wire;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netpol_core::{AdminApi, AdminPolicy};
use serde::de::DeserializeOwned;

use self::rules::{SpecIn, Warning};
use self::wire::{AnpSpec, BanpSpec, CnpSpec, ObjectWire, PEER_FIELDS};
use super::{Loader, Obj};
use crate::de::{decode, FieldIssue, IssueKind};
use crate::validate::{self, FPath, NameRule, Val};
use crate::yaml::{Kind, Node};
use crate::Severity;

/// A peer of the source whose fields are all unknown: `spec.<dir>[rule].<from|to>[peer]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct UnknownPeer {
    egress: bool,
    rule: usize,
    peer: usize,
    /// Its field names, for the warning.
    fields: Vec<String>,
}

impl UnknownPeer {
    fn path(&self) -> FPath {
        let (dir, peers) = if self.egress {
            ("egress", "to")
        } else {
            ("ingress", "from")
        };
        FPath::root()
            .f("spec")
            .f(dir)
            .i(self.rule)
            .f(peers)
            .i(self.peer)
    }
}

impl Loader {
    /// An object of one of the three admin policy kinds.
    pub(super) fn admin_policy(&mut self, obj: &Obj<'_>, api: AdminApi) -> Option<AdminPolicy> {
        let unknown = unknown_peers(obj.node);
        let (meta, spec, removed) = match api {
            AdminApi::ClusterNetworkPolicy => self.decode_admin::<CnpSpec>(obj, &unknown)?,
            AdminApi::AdminNetworkPolicy => self.decode_admin::<AnpSpec>(obj, &unknown)?,
            AdminApi::BaselineAdminNetworkPolicy => self.decode_admin::<BanpSpec>(obj, &unknown)?,
        };
        let mut problems = Vec::new();
        validate::object_meta(&meta, false, NameRule::Subdomain, &mut problems);
        let name = meta.name.clone().unwrap_or_default();
        if api == AdminApi::BaselineAdminNetworkPolicy && !name.is_empty() && name != "default" {
            problems.push(validate::invalid(
                FPath::root().f("metadata").f("name"),
                Val::S(&name),
                "Only one baseline admin network policy with metadata.name=\"default\" can be created in the cluster",
            ));
        }
        let mut warnings = Vec::new();
        let converted = rules::convert(api, spec, &unknown, obj, &mut problems, &mut warnings);
        if !self.valid(obj, problems) || removed {
            return None;
        }
        let converted = converted?;
        if let Some(ns) = meta.namespace.as_deref().filter(|n| !n.is_empty()) {
            warnings.insert(
                0,
                Warning {
                    path: FPath::root().f("metadata").f("namespace"),
                    message: format!(
                        "metadata.namespace {ns:?} is ignored: {} is cluster-scoped",
                        api.kind()
                    ),
                    hint: None,
                },
            );
        }
        for w in warnings {
            let pos = w.path.locate(obj.node, false);
            let d = obj.diag(Severity::Warning, pos, w.message);
            self.push(d.field(w.path.render()).hint_opt(w.hint));
        }
        Some(AdminPolicy {
            api,
            name,
            tier: converted.tier,
            priority: converted.priority,
            subject: converted.subject,
            ingress: converted.ingress,
            egress: converted.egress,
            origin: Self::origin(obj),
        })
    }

    /// Decodes the object with spec type `S`: its metadata, its spec in the common shape, and
    /// whether it has a field that is an error in every mode (`sameLabels`, reported here).
    fn decode_admin<S>(
        &mut self,
        obj: &Obj<'_>,
        unknown: &[UnknownPeer],
    ) -> Option<(ObjectMeta, Option<SpecIn>, bool)>
    where
        S: DeserializeOwned + Into<SpecIn>,
    {
        let (r, issues) = decode::<ObjectWire<S>>(obj.node, true);
        let (issues, removed) = sort_issues(issues, unknown);
        for issue in &removed {
            let d = obj.diag(Severity::Error, issue.pos, removed_field(&issue.name));
            self.push(d.field(issue.path.clone()).hint(REMOVED_HINT));
        }
        let object = self.decoded(obj, r, issues)?;
        Some((
            object.metadata,
            object.spec.map(Into::into),
            !removed.is_empty(),
        ))
    }
}

/// Drops the unknown-field issues inside fail-closed peers (they are what makes the peer
/// unknown), and takes out `sameLabels` / `notSameLabels` (errors in every mode).
fn sort_issues(
    issues: Vec<FieldIssue>,
    unknown: &[UnknownPeer],
) -> (Vec<FieldIssue>, Vec<FieldIssue>) {
    let prefixes: Vec<String> = unknown
        .iter()
        .map(|u| format!("{}.", u.path().render()))
        .collect();
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for issue in issues {
        if issue.kind != IssueKind::Unknown {
            kept.push(issue);
        } else if prefixes.iter().any(|p| issue.path.starts_with(p.as_str())) {
            continue;
        } else if matches!(issue.name.as_str(), "sameLabels" | "notSameLabels") {
            removed.push(issue);
        } else {
            kept.push(issue);
        }
    }
    (kept, removed)
}

/// The error for `sameLabels` / `notSameLabels`.
fn removed_field(name: &str) -> String {
    format!(
        "{name} was removed from the AdminNetworkPolicy API (network-policy-api commit 4d5dd78, March 2024; not in v0.1.5 or later, nor in ClusterNetworkPolicy): netpol does not read it, and dropping it would change what the peer selects"
    )
}

const REMOVED_HINT: &str = "select the namespaces with a label selector instead (namespaces: {matchLabels: ...}), one rule per group of namespaces that share the label";

/// The peers of the source that have fields but none netpol knows (see [`PEER_FIELDS`]).
fn unknown_peers(root: &Node) -> Vec<UnknownPeer> {
    let mut out = Vec::new();
    let Some(spec) = root.get("spec") else {
        return out;
    };
    for (egress, dir, peers_field) in [(false, "ingress", "from"), (true, "egress", "to")] {
        let Some(Kind::Seq(rules)) = spec.get(dir).map(|n| &n.kind) else {
            continue;
        };
        for (rule, r) in rules.iter().enumerate() {
            let Some(Kind::Seq(peers)) = r.get(peers_field).map(|n| &n.kind) else {
                continue;
            };
            for (peer, p) in peers.iter().enumerate() {
                let Some(m) = p.as_map() else {
                    continue;
                };
                let fields: Vec<String> = m.entries.iter().map(|(k, _)| k.name.clone()).collect();
                if !fields.is_empty() && !fields.iter().any(|f| PEER_FIELDS.contains(&f.as_str())) {
                    out.push(UnknownPeer {
                        egress,
                        rule,
                        peer,
                        fields,
                    });
                }
            }
        }
    }
    out
}
