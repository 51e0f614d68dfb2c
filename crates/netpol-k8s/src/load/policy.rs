//! Namespaces and NetworkPolicies: decoding, validation, defaulting (policyTypes, protocols) and
//! conversion to the model.

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as K8sSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use netpol_core::{
    IpBlock, LabelSelector, Namespace, Peer, Policy, PolicyPort, PortSpec, Protocol, Rule,
    RuleLine, RuleLines, SelectorOperator, SelectorRequirement,
};

use super::{Loader, Obj};
use crate::de::{decode, FieldIssue, IssueKind};
use crate::validate::{self, FPath, NameRule};
use crate::yaml::{Kind, Node, Scalar};
use crate::Severity;

/// A warning about a policy field: its path, its message, and whether it points at the key
/// (rather than the value).
struct FieldWarning {
    path: FPath,
    message: String,
    at_key: bool,
}

/// The rules of a policy, converted, with the warnings found on the way.
struct Converted {
    affects_ingress: bool,
    affects_egress: bool,
    ingress: Vec<Rule>,
    egress: Vec<Rule>,
    lines: RuleLines,
    warnings: Vec<FieldWarning>,
}

/// Converts one rule's list, with what it needs to report warnings and lines.
struct RuleConversion<'a> {
    /// The object's root node, to find the line of a path in.
    root: &'a Node,
    /// Value warnings found on the way (ipBlock CIDRs), with their paths.
    warnings: Vec<(FPath, String)>,
}

impl Loader {
    pub(super) fn namespace(&mut self, obj: &Obj<'_>) -> Option<Namespace> {
        let (r, issues) = decode::<k8s_openapi::api::core::v1::Namespace>(obj.node, true);
        let ns = self.decoded(obj, r, issues)?;
        let mut problems = Vec::new();
        validate::object_meta(&ns.metadata, false, NameRule::Label, &mut problems);
        if !self.valid(obj, problems) {
            return None;
        }
        let name = ns.metadata.name.unwrap_or_default();
        Some(Namespace::new(
            name,
            ns.metadata.labels.unwrap_or_default(),
            false,
        ))
    }

    pub(super) fn network_policy(&mut self, obj: &Obj<'_>) -> Option<Policy> {
        let (r, mut issues) = decode::<NetworkPolicy>(obj.node, true);
        self.empty_status(obj, &mut issues);
        let np = self.decoded(obj, r, issues)?;
        if !self.valid(obj, validate::network_policy(&np)) {
            return None;
        }
        let namespace = self.namespace_of(&np.metadata);
        let name = np.metadata.name.clone().unwrap_or_default();
        let spec = np.spec.unwrap_or_default();
        let pod_selector = convert_selector(spec.pod_selector.as_ref());
        let c = convert_rules(spec, obj.node);
        for w in c.warnings {
            let pos = w.path.locate(obj.node, w.at_key);
            let d = obj.diag(Severity::Warning, pos, w.message);
            self.push(d.field(w.path.render()));
        }
        Some(Policy {
            namespace,
            name,
            pod_selector,
            affects_ingress: c.affects_ingress,
            affects_egress: c.affects_egress,
            ingress: c.ingress,
            egress: c.egress,
            origin: Self::origin(obj),
            rule_lines: c.lines,
        })
    }
}

impl Loader {
    /// `status: {}` (or `status: null`), which client-go 1.24 to 1.27 writes into every
    /// NetworkPolicy it serializes: loads in every mode, with a note. The API has no
    /// NetworkPolicy status since 1.28 (and no field of it was ever set by anything), so a
    /// non-empty status stays an unknown field, as a 1.28+ API server's strict validation has
    /// it (an error in strict mode, dropped with a warning in warn mode).
    fn empty_status(&mut self, obj: &Obj<'_>, issues: &mut Vec<FieldIssue>) {
        let empty = match obj.node.get("status").map(|n| &n.kind) {
            Some(Kind::Map(m)) => m.entries.is_empty(),
            Some(Kind::Scalar(Scalar::Null(_))) => true,
            _ => false,
        };
        let before = issues.len();
        issues.retain(|i| !(empty && i.kind == IssueKind::Unknown && i.path == "status"));
        if issues.len() < before {
            let pos = obj.node.get("status").map_or(obj.node.pos, |n| n.pos);
            let message = "ignored an empty status (client-go 1.24-1.27 writes it; NetworkPolicy has no status since Kubernetes 1.28)".to_string();
            let d = obj.diag(Severity::Note, pos, message);
            self.push(d.field("status"));
        }
    }
}

/// The policy's directions and rules, defaulted as the API server does.
fn convert_rules(spec: NetworkPolicySpec, root: &Node) -> Converted {
    let sp = FPath::root().f("spec");
    let mut conv = RuleConversion {
        root,
        warnings: Vec::new(),
    };
    let mut lines = RuleLines::default();
    let ingress_rules = spec.ingress.unwrap_or_default();
    let egress_rules = spec.egress.unwrap_or_default();
    // SetDefaults_NetworkPolicy: no policyTypes means Ingress, plus Egress when egress rules
    // exist.
    let types = match spec.policy_types {
        Some(t) if !t.is_empty() => t,
        _ => {
            let mut t = vec!["Ingress".to_string()];
            if !egress_rules.is_empty() {
                t.push("Egress".to_string());
            }
            t
        }
    };
    let affects_ingress = types.iter().any(|t| t == "Ingress");
    let affects_egress = types.iter().any(|t| t == "Egress");
    let mut ingress = Vec::new();
    for (i, rule) in ingress_rules.into_iter().enumerate() {
        let rp = sp.f("ingress").i(i);
        let (r, l) = conv.rule(rule.from, rule.ports, &rp, "from");
        ingress.push(r);
        lines.ingress.push(l);
    }
    let mut egress = Vec::new();
    for (i, rule) in egress_rules.into_iter().enumerate() {
        let rp = sp.f("egress").i(i);
        let (r, l) = conv.rule(rule.to, rule.ports, &rp, "to");
        egress.push(r);
        lines.egress.push(l);
    }
    let mut warnings: Vec<FieldWarning> = conv
        .warnings
        .into_iter()
        .map(|(path, message)| FieldWarning {
            path,
            message,
            at_key: false,
        })
        .collect();
    // The API server stores such rules, but no implementation enforces them: a policy only
    // acts on the directions its policyTypes name.
    for (dir, cap, rules, rule_lines, affects) in [
        (
            "ingress",
            "Ingress",
            &mut ingress,
            &mut lines.ingress,
            affects_ingress,
        ),
        (
            "egress",
            "Egress",
            &mut egress,
            &mut lines.egress,
            affects_egress,
        ),
    ] {
        if !affects && !rules.is_empty() {
            warnings.push(FieldWarning {
                path: sp.f(dir),
                message: format!(
                    "{} {dir} rule(s) are ignored because spec.policyTypes does not include {cap}",
                    rules.len()
                ),
                at_key: true,
            });
            rules.clear();
            rule_lines.clear();
        }
    }
    Converted {
        affects_ingress,
        affects_egress,
        ingress,
        egress,
        lines,
        warnings,
    }
}

pub(super) fn convert_selector(sel: Option<&K8sSelector>) -> LabelSelector {
    let Some(sel) = sel else {
        return LabelSelector::everything();
    };
    LabelSelector {
        match_labels: sel.match_labels.clone().unwrap_or_default(),
        match_expressions: sel
            .match_expressions
            .iter()
            .flatten()
            .filter_map(|r| {
                let operator = match r.operator.as_str() {
                    "In" => SelectorOperator::In,
                    "NotIn" => SelectorOperator::NotIn,
                    "Exists" => SelectorOperator::Exists,
                    "DoesNotExist" => SelectorOperator::DoesNotExist,
                    // Unreachable after validation.
                    _ => return None,
                };
                Some(SelectorRequirement {
                    key: r.key.clone(),
                    operator,
                    values: r.values.clone().unwrap_or_default(),
                })
            })
            .collect(),
    }
}

impl RuleConversion<'_> {
    /// One rule and the lines of it, its peers and its ports.
    fn rule(
        &mut self,
        peers: Option<Vec<NetworkPolicyPeer>>,
        ports: Option<Vec<NetworkPolicyPort>>,
        rp: &FPath,
        peers_field: &'static str,
    ) -> (Rule, RuleLine) {
        let mut rule = Rule::default();
        let mut lines = RuleLine {
            line: self.line(rp),
            ..RuleLine::default()
        };
        for (j, p) in peers.unwrap_or_default().into_iter().enumerate() {
            let pp = rp.f(peers_field).i(j);
            if let Some(peer) = self.peer(p, &pp) {
                rule.peers.push(peer);
                lines.peers.push(self.line(&pp));
            }
        }
        for (k, p) in ports.unwrap_or_default().into_iter().enumerate() {
            rule.ports.push(convert_port(p));
            lines.ports.push(self.line(&rp.f("ports").i(k)));
        }
        (rule, lines)
    }

    /// One `from`/`to` item; `None` only for a CIDR validation has already rejected.
    fn peer(&mut self, p: NetworkPolicyPeer, pp: &FPath) -> Option<Peer> {
        let Some(b) = p.ip_block else {
            return Some(Peer::Selector {
                pod_selector: p.pod_selector.as_ref().map(|s| convert_selector(Some(s))),
                namespace_selector: p
                    .namespace_selector
                    .as_ref()
                    .map(|s| convert_selector(Some(s))),
            });
        };
        let bp = pp.f("ipBlock");
        let cidr = validate::parse_cidr(&b.cidr)?;
        if let Some(w) = cidr.warning {
            self.warnings.push((bp.f("cidr"), w));
        }
        let mut except = Vec::new();
        for (k, e) in b.except.unwrap_or_default().iter().enumerate() {
            if let Some(x) = validate::parse_cidr(e) {
                if let Some(w) = x.warning {
                    self.warnings.push((bp.f("except").i(k), w));
                }
                except.push(x.net);
            }
        }
        Some(Peer::IpBlock(IpBlock {
            cidr: cidr.net,
            except,
        }))
    }

    fn line(&self, path: &FPath) -> usize {
        path.locate(self.root, false).line
    }
}

fn convert_port(p: NetworkPolicyPort) -> PolicyPort {
    let protocol = match p.protocol.as_deref() {
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        // Defaulting: TCP (other values were rejected by validation).
        _ => Protocol::Tcp,
    };
    let port = match p.port {
        None => None,
        Some(IntOrString::Int(n)) => {
            let start = u16::try_from(n).unwrap_or(0);
            match p.end_port {
                Some(end) => Some(PortSpec::Range {
                    start,
                    end: u16::try_from(end).unwrap_or(start),
                }),
                None => Some(PortSpec::Number(start)),
            }
        }
        Some(IntOrString::String(name)) => Some(PortSpec::Named(name)),
    };
    PolicyPort { protocol, port }
}
