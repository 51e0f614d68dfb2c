//! The hints of unknown-field diagnostics: what the field most likely meant (a typo, a field of
//! a parent or child object written at the wrong level) and what dropping it changes.

use super::{render_segs, FieldIssue, IssueKind, Path, Seg, StructFrame};
use crate::yaml::Kind;

/// How a message names the object a schema struct stands for.
fn role(struct_name: &str) -> Option<&'static str> {
    Some(match struct_name {
        "NetworkPolicyEgressRule" | "NetworkPolicyIngressRule" => "the rule",
        "NetworkPolicyPeer" => "the peer",
        "NetworkPolicyPort" => "the port entry",
        "IPBlock" => "the ipBlock",
        "LabelSelector" => "the selector",
        "LabelSelectorRequirement" => "the expression",
        "NetworkPolicySpec" => "the spec",
        "ObjectMeta" => "metadata",
        "Container" => "the container",
        "ContainerPort" => "the container port",
        "PodSpec" => "the pod spec",
        "CnpIngressRule" | "CnpEgressRule" | "AnpIngressRule" | "AnpEgressRule" => "the rule",
        "PeerWire" => "the peer",
        "ProtocolWire" => "the protocols entry",
        "ProtocolPortWire" => "the protocol's ports",
        "PortWire" => "the destinationPort",
        "AnpPortWire" => "the ports entry",
        "CnpSpec" | "AnpSpec" | "BanpSpec" => "the spec",
        "SubjectWire" => "the subject",
        "NamespacedPodWire" => "the pods selector",
        _ => return None,
    })
}

fn describe_at(struct_name: &str, path: &str) -> String {
    let path = if path.is_empty() {
        "the top level"
    } else {
        path
    };
    match role(struct_name) {
        Some(r) if r != path => format!("{r} ({path})"),
        _ => path.to_string(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

pub(super) fn unknown_field(
    frames: &[StructFrame<'_>],
    path: &Path<'_>,
    key: &crate::yaml::Key,
) -> FieldIssue {
    let segs = path.segs();
    let name = key.name.as_str();
    let cur_path = render_segs(&segs);
    let mut full = segs.clone();
    full.push(Seg::Field(name));
    let field_path = render_segs(&full);
    let (hint, consequence) = match frames.split_last() {
        Some((cur, ancestors)) => (
            hint_for(cur, ancestors, &segs, &cur_path, name),
            consequence_of_dropping(cur, ancestors, &segs, name),
        ),
        None => (None, None),
    };
    FieldIssue {
        kind: IssueKind::Unknown,
        name: name.to_string(),
        path: field_path,
        pos: key.pos,
        hint,
        consequence,
    }
}

fn hint_for(
    cur: &StructFrame<'_>,
    ancestors: &[StructFrame<'_>],
    segs: &[Seg<'_>],
    cur_path: &str,
    name: &str,
) -> Option<String> {
    // 1. A field of an enclosing object, written one level too deep (the classic: `ports` under
    //    a peer instead of under the rule).
    for anc in ancestors.iter().rev() {
        if anc.fields.contains(&name) {
            let anc_path = render_segs(&segs[..anc.depth.min(segs.len())]);
            let line_up = match segs.get(anc.depth) {
                Some(Seg::Field(f)) => format!(", indented to line up with \"{f}\""),
                _ => String::new(),
            };
            return Some(format!(
                "\"{name}\" belongs to {}, not to {}: move it to {}{line_up}",
                describe_at(anc.name, &anc_path),
                describe_at(cur.name, cur_path),
                join(&anc_path, name)
            ));
        }
    }
    // 2. A field of a nested object, written one level too high.
    if let Some(h) = nested_hint(cur.name, cur_path, name) {
        return Some(h);
    }
    // 3. A misspelling.
    if let Some(best) = closest(name, cur.fields) {
        return Some(format!("did you mean \"{best}\"?"));
    }
    if !cur.fields.is_empty() && cur.fields.len() <= 12 {
        let known: Vec<String> = cur.fields.iter().map(|f| format!("\"{f}\"")).collect();
        return Some(format!(
            "{} has the fields {}",
            describe_at(cur.name, cur_path),
            known.join(", ")
        ));
    }
    None
}

fn nested_hint(struct_name: &str, cur: &str, name: &str) -> Option<String> {
    let direction_list = |s: &str| {
        if s == "NetworkPolicyIngressRule" {
            "from"
        } else {
            "to"
        }
    };
    match (struct_name, name) {
        ("NetworkPolicyPeer", "cidr" | "except") => Some(format!(
            "\"{name}\" is a field of ipBlock: write it as {}",
            join(cur, &format!("ipBlock.{name}"))
        )),
        ("NetworkPolicyPeer", "matchLabels" | "matchExpressions") => Some(format!(
            "\"{name}\" is a field of a selector: write it as {} (or under namespaceSelector)",
            join(cur, &format!("podSelector.{name}"))
        )),
        (
            "NetworkPolicyEgressRule" | "NetworkPolicyIngressRule",
            "podSelector" | "namespaceSelector" | "ipBlock",
        ) => {
            let list = direction_list(struct_name);
            Some(format!(
                "peers are entries of the list \"{list}\": write it as {}",
                join(cur, &format!("{list}[0].{name}"))
            ))
        }
        (
            "NetworkPolicyEgressRule" | "NetworkPolicyIngressRule",
            "port" | "protocol" | "endPort",
        ) => Some(format!(
            "\"{name}\" is a field of a ports entry: write it as {}",
            join(cur, &format!("ports[0].{name}"))
        )),
        ("NetworkPolicySpec", "from" | "ports" | "to") => {
            let rule = if name == "from" {
                "ingress"
            } else if name == "to" {
                "egress"
            } else {
                "ingress[0] or spec.egress"
            };
            Some(format!(
                "\"{name}\" is a field of a rule: write it as spec.{rule}[0].{name}"
            ))
        }
        ("NetworkPolicySpec", "matchLabels" | "matchExpressions") => Some(format!(
            "\"{name}\" is a field of a selector: write it as spec.podSelector.{name}"
        )),
        // network-policy-api v0.1.x wrote `namespaces: {namespaceSelector: ...}`; since v0.1.5
        // (and in ClusterNetworkPolicy) `namespaces` is the selector itself.
        ("LabelSelector", "namespaceSelector") if cur.ends_with("namespaces") => Some(format!(
            "this is the v0.1.x shape of a namespaces peer: {cur} is now the namespace selector itself, so write its matchLabels / matchExpressions directly under it"
        )),
        ("LabelSelector", _) if closest(name, &["matchLabels", "matchExpressions"]).is_none() => {
            Some(format!(
                "labels go under matchLabels: write it as {}",
                join(cur, &format!("matchLabels.{name}"))
            ))
        }
        ("NetworkPolicy", "podSelector" | "ingress" | "egress" | "policyTypes") => Some(format!(
            "\"{name}\" is a field of the spec: write it as spec.{name}"
        )),
        _ => None,
    }
}

fn consequence_of_dropping(
    cur: &StructFrame<'_>,
    ancestors: &[StructFrame<'_>],
    segs: &[Seg<'_>],
    name: &str,
) -> Option<String> {
    if let Some(c) = admin_consequence(cur, ancestors, segs, name) {
        return Some(c);
    }
    if cur.name != "NetworkPolicyPeer" || name != "ports" {
        return None;
    }
    let rule = ancestors.last()?;
    if !rule.name.ends_with("Rule") {
        return None;
    }
    let rule_path = render_segs(&segs[..rule.depth.min(segs.len())]);
    let has_ports = match rule.node.get("ports").map(|n| &n.kind) {
        Some(Kind::Seq(items)) => !items.is_empty(),
        _ => false,
    };
    if has_ports {
        return Some(format!(
            "rule {rule_path} keeps its own ports ({rule_path}.ports)"
        ));
    }
    let peers = rule
        .node
        .get(if rule.name == "NetworkPolicyIngressRule" {
            "from"
        } else {
            "to"
        })
        .map(|n| match &n.kind {
            Kind::Seq(items) => items.len(),
            _ => 0,
        })
        .unwrap_or(0);
    let whom = if rule.name == "NetworkPolicyIngressRule" {
        if peers > 1 {
            "from its peers"
        } else {
            "from that peer"
        }
    } else if peers > 1 {
        "to its peers"
    } else {
        "to that peer"
    };
    Some(format!(
        "rule {rule_path} now allows every port (and protocol) {whom}"
    ))
}

/// What dropping a port-like field of an admin policy rule (or of one of its peers) does: the
/// rule, without ports of its own, matches every port and protocol, so an Accept rule accepts
/// more than written (a Deny or Pass rule decides more).
fn admin_consequence(
    cur: &StructFrame<'_>,
    ancestors: &[StructFrame<'_>],
    segs: &[Seg<'_>],
    name: &str,
) -> Option<String> {
    const RULES: &[&str] = &[
        "CnpIngressRule",
        "CnpEgressRule",
        "AnpIngressRule",
        "AnpEgressRule",
    ];
    if !matches!(name, "protocols" | "protocol" | "ports" | "port") {
        return None;
    }
    let rule = if RULES.contains(&cur.name) {
        cur
    } else if cur.name == "PeerWire" {
        ancestors.last().filter(|a| RULES.contains(&a.name))?
    } else {
        return None;
    };
    let own = if rule.name.starts_with("Cnp") {
        "protocols"
    } else {
        "ports"
    };
    let rule_path = render_segs(&segs[..rule.depth.min(segs.len())]);
    if rule.node.get(own).is_some_and(|n| !n.is_null()) {
        return Some(format!(
            "rule {rule_path} keeps its own {own} ({rule_path}.{own})"
        ));
    }
    Some(format!(
        "rule {rule_path} now matches every port and protocol of its peers (an Accept rule accepts them all)"
    ))
}

/// The known field closest to `name` (case-insensitive equality or a small edit distance).
pub(crate) fn closest<'f>(name: &str, fields: &[&'f str]) -> Option<&'f str> {
    let lower = name.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for f in fields {
        let d = if f.to_ascii_lowercase() == lower {
            0
        } else {
            levenshtein(&lower, &f.to_ascii_lowercase())
        };
        let limit = (f.len().max(name.len()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, f));
        }
    }
    best.map(|(_, f)| f)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}
