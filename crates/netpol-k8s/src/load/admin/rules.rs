//! The spec of an admin policy, validated as the CRDs do (OpenAPI limits and enums, the CEL
//! rules) and converted into the model in the same walk. Every problem is collected; the
//! converted policy is only used when there were none.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;
use netpol_core::{AdminAction, AdminApi, AdminPeer, AdminRule, AdminSubject, AdminTier};
use netpol_core::{LabelSelector, Origin};

use super::super::policy::convert_selector;
use super::super::Obj;
use super::wire::{
    AnpEgressRule, AnpIngressRule, AnpPortWire, AnpSpec, BanpSpec, CnpEgressRule, CnpIngressRule,
    CnpSpec, NamespacedPodWire, PeerWire, ProtocolWire, SubjectWire,
};
use super::UnknownPeer;
use crate::validate::{self, FPath, Problem, Val};

mod ports;
mod values;

use values::{exactly_one_of, exactly_one_of_named, max_items, max_length, min_items};

/// The spec of any of the three kinds, in one shape.
pub(in crate::load) struct SpecIn {
    tier: Option<String>,
    priority: Option<i64>,
    subject: Option<SubjectWire>,
    ingress: Option<Vec<RuleIn>>,
    egress: Option<Vec<RuleIn>>,
}

/// A rule of any of the three kinds.
struct RuleIn {
    name: Option<String>,
    action: Option<String>,
    peers: Option<Vec<PeerWire>>,
    ports: PortsIn,
}

/// v1alpha2 `protocols` or v1alpha1 `ports`.
enum PortsIn {
    Protocols(Option<Vec<ProtocolWire>>),
    Ports(Option<Vec<AnpPortWire>>),
}

impl From<CnpSpec> for SpecIn {
    fn from(s: CnpSpec) -> Self {
        let rule = |name, action, peers, protocols| RuleIn {
            name,
            action,
            peers,
            ports: PortsIn::Protocols(protocols),
        };
        SpecIn {
            tier: s.tier,
            priority: s.priority,
            subject: s.subject,
            ingress: s.ingress.map(|rs| {
                rs.into_iter()
                    .map(|r: CnpIngressRule| rule(r.name, r.action, r.from, r.protocols))
                    .collect()
            }),
            egress: s.egress.map(|rs| {
                rs.into_iter()
                    .map(|r: CnpEgressRule| rule(r.name, r.action, r.to, r.protocols))
                    .collect()
            }),
        }
    }
}

fn v1alpha1_rules(
    ingress: Option<Vec<AnpIngressRule>>,
    egress: Option<Vec<AnpEgressRule>>,
) -> (Option<Vec<RuleIn>>, Option<Vec<RuleIn>>) {
    let rule = |name, action, peers, ports| RuleIn {
        name,
        action,
        peers,
        ports: PortsIn::Ports(ports),
    };
    (
        ingress.map(|rs| {
            rs.into_iter()
                .map(|r| rule(r.name, r.action, r.from, r.ports))
                .collect()
        }),
        egress.map(|rs| {
            rs.into_iter()
                .map(|r| rule(r.name, r.action, r.to, r.ports))
                .collect()
        }),
    )
}

impl From<AnpSpec> for SpecIn {
    fn from(s: AnpSpec) -> Self {
        let (ingress, egress) = v1alpha1_rules(s.ingress, s.egress);
        SpecIn {
            tier: None,
            priority: s.priority,
            subject: s.subject,
            ingress,
            egress,
        }
    }
}

impl From<BanpSpec> for SpecIn {
    fn from(s: BanpSpec) -> Self {
        let (ingress, egress) = v1alpha1_rules(s.ingress, s.egress);
        SpecIn {
            tier: None,
            priority: None,
            subject: s.subject,
            ingress,
            egress,
        }
    }
}

/// A warning about a field of a policy that loads.
pub(super) struct Warning {
    pub path: FPath,
    pub message: String,
    pub hint: Option<String>,
}

/// The parts of [`netpol_core::AdminPolicy`] the spec gives.
pub(super) struct Converted {
    pub tier: AdminTier,
    pub priority: u32,
    pub subject: AdminSubject,
    pub ingress: Vec<AdminRule>,
    pub egress: Vec<AdminRule>,
}

/// What one API allows, where the APIs differ.
struct ApiRules {
    api: AdminApi,
    /// Rules per direction, peers per rule, port entries per rule (25 in v1alpha2, 100 in
    /// v1alpha1); `networks` and `domainNames` have 25 in both.
    max_items: usize,
    /// The action enum, in the CRD's order, and what each means.
    actions: &'static [(&'static str, AdminAction)],
}

const CNP_ACTIONS: &[(&str, AdminAction)] = &[
    ("Accept", AdminAction::Accept),
    ("Deny", AdminAction::Deny),
    ("Pass", AdminAction::Pass),
];
const ANP_ACTIONS: &[(&str, AdminAction)] = &[
    ("Allow", AdminAction::Accept),
    ("Deny", AdminAction::Deny),
    ("Pass", AdminAction::Pass),
];
const BANP_ACTIONS: &[(&str, AdminAction)] =
    &[("Allow", AdminAction::Accept), ("Deny", AdminAction::Deny)];

impl ApiRules {
    fn of(api: AdminApi) -> ApiRules {
        let (max_items, actions) = match api {
            AdminApi::ClusterNetworkPolicy => (25, CNP_ACTIONS),
            AdminApi::AdminNetworkPolicy => (100, ANP_ACTIONS),
            AdminApi::BaselineAdminNetworkPolicy => (100, BANP_ACTIONS),
        };
        ApiRules {
            api,
            max_items,
            actions,
        }
    }

    /// The peer fields a rule of this direction may use.
    fn peer_fields(&self, egress: bool) -> &'static [&'static str] {
        match (egress, self.api) {
            (false, _) => &["namespaces", "pods"],
            (true, AdminApi::BaselineAdminNetworkPolicy) => {
                &["namespaces", "pods", "nodes", "networks"]
            }
            (true, _) => &["namespaces", "pods", "nodes", "networks", "domainNames"],
        }
    }
}

/// Where the problems and warnings of a walk go, and what the walk needs to know.
pub(super) struct Walk<'a, 'o> {
    pub obj: &'a Obj<'o>,
    pub problems: &'a mut Vec<Problem>,
    pub warnings: &'a mut Vec<Warning>,
}

/// Validates and converts the spec; `None` when it is missing or so broken nothing converts
/// (the problems say why).
pub(super) fn convert(
    api: AdminApi,
    spec: Option<SpecIn>,
    unknown: &[UnknownPeer],
    obj: &Obj<'_>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Warning>,
) -> Option<Converted> {
    let sp = FPath::root().f("spec");
    let Some(spec) = spec else {
        problems.push(validate::required(sp, ""));
        return None;
    };
    let mut w = Walk {
        obj,
        problems,
        warnings,
    };
    let tier = tier(api, spec.tier.as_deref(), &sp, w.problems);
    let priority = priority(api, spec.priority, &sp, w.problems);
    let subject = subject(spec.subject.as_ref(), &sp.f("subject"), w.problems);
    let rules = ApiRules::of(api);
    let ingress = direction(&rules, false, spec.ingress, unknown, &mut w);
    let egress = direction(&rules, true, spec.egress, unknown, &mut w);
    Some(Converted {
        tier,
        priority,
        subject: subject?,
        ingress,
        egress,
    })
}

fn tier(api: AdminApi, tier: Option<&str>, sp: &FPath, problems: &mut Vec<Problem>) -> AdminTier {
    match api {
        AdminApi::AdminNetworkPolicy => AdminTier::Admin,
        AdminApi::BaselineAdminNetworkPolicy => AdminTier::Baseline,
        AdminApi::ClusterNetworkPolicy => match tier {
            Some("Admin") => AdminTier::Admin,
            Some("Baseline") => AdminTier::Baseline,
            None => {
                problems.push(validate::required(sp.f("tier"), ""));
                AdminTier::Admin
            }
            Some(other) => {
                problems.push(validate::not_supported(
                    sp.f("tier"),
                    other,
                    &["Admin", "Baseline"],
                ));
                AdminTier::Admin
            }
        },
    }
}

/// `priority`: required, 0-1000 (a BANP has none: it comes after every Baseline CNP).
fn priority(api: AdminApi, p: Option<i64>, sp: &FPath, problems: &mut Vec<Problem>) -> u32 {
    if api == AdminApi::BaselineAdminNetworkPolicy {
        return 0;
    }
    let path = sp.f("priority");
    let Some(p) = p else {
        problems.push(validate::required(path, ""));
        return 0;
    };
    values::in_range(&path, p, 0, 1000, problems);
    u32::try_from(p.clamp(0, 1000)).unwrap_or(0)
}

/// `subject`: required, exactly one of `namespaces` and `pods`.
fn subject(
    s: Option<&SubjectWire>,
    path: &FPath,
    problems: &mut Vec<Problem>,
) -> Option<AdminSubject> {
    let Some(s) = s else {
        problems.push(validate::required(path.clone(), ""));
        return None;
    };
    let present = [
        ("namespaces", s.namespaces.is_some()),
        ("pods", s.pods.is_some()),
    ];
    exactly_one_of(path, &present, problems)?;
    if let Some(ns) = &s.namespaces {
        return Some(AdminSubject::Namespaces(selector(
            ns,
            &path.f("namespaces"),
            problems,
        )));
    }
    let (namespace_selector, pod_selector) =
        namespaced_pod(s.pods.as_ref()?, &path.f("pods"), problems);
    Some(AdminSubject::Pods {
        namespace_selector,
        pod_selector,
    })
}

/// `NamespacedPod`: `podSelector` required; an absent `namespaceSelector` selects every
/// namespace (Go's zero value, the empty selector).
fn namespaced_pod(
    p: &NamespacedPodWire,
    path: &FPath,
    problems: &mut Vec<Problem>,
) -> (LabelSelector, LabelSelector) {
    let ns = match &p.namespace_selector {
        Some(s) => selector(s, &path.f("namespaceSelector"), problems),
        None => LabelSelector::everything(),
    };
    let pods = match &p.pod_selector {
        Some(s) => selector(s, &path.f("podSelector"), problems),
        None => {
            problems.push(validate::required(path.f("podSelector"), ""));
            LabelSelector::everything()
        }
    };
    (ns, pods)
}

/// A label selector, validated as `ValidateLabelSelector` does (a selector netpol cannot
/// evaluate would be an error anyway) and converted.
fn selector(s: &K8sSelector, path: &FPath, problems: &mut Vec<Problem>) -> LabelSelector {
    validate::label_selector(s, path, problems);
    convert_selector(Some(s))
}

/// The rules of one direction.
fn direction(
    api: &ApiRules,
    egress: bool,
    rules: Option<Vec<RuleIn>>,
    unknown: &[UnknownPeer],
    w: &mut Walk<'_, '_>,
) -> Vec<AdminRule> {
    let path = FPath::root()
        .f("spec")
        .f(if egress { "egress" } else { "ingress" });
    let rules = rules.unwrap_or_default();
    max_items(&path, rules.len(), api.max_items, w.problems);
    rules
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let here: Vec<&UnknownPeer> = unknown
                .iter()
                .filter(|u| u.egress == egress && u.rule == i)
                .collect();
            rule(api, egress, r, &path.i(i), &here, w)
        })
        .collect()
}

/// One rule.
fn rule(
    api: &ApiRules,
    egress: bool,
    r: RuleIn,
    path: &FPath,
    unknown: &[&UnknownPeer],
    w: &mut Walk<'_, '_>,
) -> Option<AdminRule> {
    if let Some(name) = &r.name {
        max_length(&path.f("name"), name, 100, w.problems);
    }
    let action = action(api, r.action.as_deref(), &path.f("action"), w.problems);
    let peers_field = if egress { "to" } else { "from" };
    let peers_path = path.f(peers_field);
    let peers = match r.peers {
        None => {
            w.problems.push(validate::required(peers_path.clone(), ""));
            Vec::new()
        }
        Some(p) => p,
    };
    min_items(&peers_path, peers.len(), 1, w.problems);
    max_items(&peers_path, peers.len(), api.max_items, w.problems);
    let mut out = Vec::new();
    for (j, p) in peers.iter().enumerate() {
        let pp = peers_path.i(j);
        if let Some(u) = unknown.iter().find(|u| u.peer == j) {
            w.warnings
                .push(unknown_peer_warning(pp, u, r.action.as_deref(), action));
            out.push(AdminPeer::Unknown);
            continue;
        }
        if let Some(peer) = peer(api, egress, p, &pp, action, w) {
            out.push(peer);
        }
    }
    let ports = ports::convert(api, &r.ports, path, w.problems);
    ports::named_ports_need_workload_peers(api, egress, &peers, &r.ports, path, w.problems);
    let line = path.locate(w.obj.node, false).line;
    Some(AdminRule {
        name: r.name.filter(|n| !n.is_empty()),
        action: action?,
        peers: out,
        ports,
        origin: Some(Origin {
            file: w.obj.file.to_string(),
            line,
        }),
    })
}

fn action(
    api: &ApiRules,
    action: Option<&str>,
    path: &FPath,
    problems: &mut Vec<Problem>,
) -> Option<AdminAction> {
    let Some(a) = action else {
        problems.push(validate::required(path.clone(), ""));
        return None;
    };
    match api.actions.iter().find(|(name, _)| *name == a) {
        Some((_, action)) => Some(*action),
        None => {
            let names: Vec<&str> = api.actions.iter().map(|(n, _)| *n).collect();
            let mut p = validate::not_supported(path.clone(), a, &names);
            if let Some(hint) = other_api_action(api.api, a) {
                p.detail.push_str(&format!(" ({hint})"));
            }
            problems.push(p);
            None
        }
    }
}

/// Why an action of another API is not this one's (`Accept` in an ANP, `Allow` in a CNP).
fn other_api_action(api: AdminApi, action: &str) -> Option<&'static str> {
    match (api, action) {
        (AdminApi::ClusterNetworkPolicy, "Allow") => {
            Some("Allow is the v1alpha1 spelling; ClusterNetworkPolicy says Accept")
        }
        (AdminApi::AdminNetworkPolicy | AdminApi::BaselineAdminNetworkPolicy, "Accept") => {
            Some("Accept is the v1alpha2 ClusterNetworkPolicy spelling; v1alpha1 says Allow")
        }
        (AdminApi::BaselineAdminNetworkPolicy, "Pass") => Some(
            "a BaselineAdminNetworkPolicy has no Pass; a v1alpha2 ClusterNetworkPolicy of tier Baseline has",
        ),
        _ => None,
    }
}

fn unknown_peer_warning(
    path: FPath,
    u: &UnknownPeer,
    written: Option<&str>,
    action: Option<AdminAction>,
) -> Warning {
    let fields = u.fields.join(", ");
    let how = match action {
        Some(AdminAction::Accept) => format!(
            "in this {} rule it matches nothing (the rule still matches through its other peers)",
            written.unwrap_or("Accept")
        ),
        _ => format!(
            "in this {} rule it denies everything: the rule matches all traffic of its direction, whatever its other peers and ports, and denies it",
            written.unwrap_or("Deny")
        ),
    };
    Warning {
        path,
        message: format!(
            "peer with no field netpol knows ({fields}; a newer CRD's peer?): it fails closed as the API asks: {how}"
        ),
        hint: mistake_hint(&u.fields),
    }
}

/// What an unknown peer more likely is than a newer CRD's peer: a misspelt peer field, or a
/// field of the rule indented one level too deep.
fn mistake_hint(fields: &[String]) -> Option<String> {
    const RULE_FIELDS: &[&str] = &["name", "action", "protocols", "ports", "from", "to"];
    for f in fields {
        if let Some(known) = crate::de::closest(f, super::wire::PEER_FIELDS) {
            return Some(format!(
                "if \"{f}\" is a misspelling of \"{known}\", fix it: as written, the peer fails closed"
            ));
        }
        if RULE_FIELDS.contains(&f.as_str()) {
            return Some(format!(
                "\"{f}\" belongs to the rule, not to the peer: indent it to line up with the peer list's key (\"to\" or \"from\"); as written, the peer fails closed"
            ));
        }
    }
    None
}

/// One peer: exactly one field, and one this direction and API allow.
fn peer(
    api: &ApiRules,
    egress: bool,
    p: &PeerWire,
    path: &FPath,
    action: Option<AdminAction>,
    w: &mut Walk<'_, '_>,
) -> Option<AdminPeer> {
    let present = [
        ("namespaces", p.namespaces.is_some()),
        ("pods", p.pods.is_some()),
        ("nodes", p.nodes.is_some()),
        ("networks", p.networks.is_some()),
        ("domainNames", p.domain_names.is_some()),
    ];
    let allowed = api.peer_fields(egress);
    let set = exactly_one_of_named(path, &present, &allowed.join(", "), w.problems)?;
    for f in &set {
        if !allowed.contains(f) {
            w.problems.push(not_allowed_peer(api.api, egress, path, f));
        }
    }
    values::peer_value(p, path, action, w)
}

fn not_allowed_peer(api: AdminApi, egress: bool, path: &FPath, field: &'static str) -> Problem {
    let detail = if egress {
        format!("{} egress peers have no {field}", api.kind())
    } else {
        format!("{field} peers are only allowed in egress rules (ingress peers: namespaces, pods)")
    };
    validate::forbidden(path.f(field), &detail)
}

/// `Val` for counts in messages.
pub(super) fn count(n: usize) -> Val<'static> {
    Val::N(i64::try_from(n).unwrap_or(i64::MAX))
}
