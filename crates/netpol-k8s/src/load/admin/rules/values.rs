//! The CRDs' OpenAPI checks in the API server's words (ranges, list and string lengths, property
//! counts, `listType=set`), and the peers' values: selectors, `networks`, `domainNames`.

use std::collections::HashSet;

use netpol_core::{AdminAction, AdminPeer};

use super::super::wire::PeerWire;
use super::{count, namespaced_pod, selector, Walk, Warning};
use crate::validate::admin::{is_cidr, is_domain_name, CIDR_MAX_LENGTH, DOMAIN_NAME_PATTERN};
use crate::validate::{self, FPath, Problem, Val};

/// The warning of every `domainNames` peer that loads.
pub(in crate::load) const DOMAIN_NAMES_WARNING: &str = "domainNames are not enforced by the kernel (netpol matches them only with --resolve); traffic falls to later rules and tiers";

/// Most items a `networks` or `domainNames` list has, in every API.
const MAX_ADDRESSES: usize = 25;

/// `minimum` / `maximum`.
pub(super) fn in_range(path: &FPath, v: i64, min: i64, max: i64, problems: &mut Vec<Problem>) {
    let p = path.render();
    if v < min {
        problems.push(validate::invalid(
            path.clone(),
            Val::N(v),
            &format!("{p} in body should be greater than or equal to {min}"),
        ));
    } else if v > max {
        problems.push(validate::invalid(
            path.clone(),
            Val::N(v),
            &format!("{p} in body should be less than or equal to {max}"),
        ));
    }
}

/// `maxItems`.
pub(super) fn max_items(path: &FPath, n: usize, max: usize, problems: &mut Vec<Problem>) {
    if n > max {
        problems.push(Problem {
            path: path.clone(),
            at: None,
            detail: format!("Too many: {n}: must have at most {max} items"),
        });
    }
}

/// `minItems`.
pub(super) fn min_items(path: &FPath, n: usize, min: usize, problems: &mut Vec<Problem>) {
    if n < min {
        problems.push(validate::invalid(
            path.clone(),
            count(n),
            &format!("{} in body should have at least {min} items", path.render()),
        ));
    }
}

/// `maxLength` (in characters, as OpenAPI counts).
pub(super) fn max_length(path: &FPath, s: &str, max: usize, problems: &mut Vec<Problem>) {
    if s.chars().count() > max {
        problems.push(Problem {
            path: path.clone(),
            at: None,
            detail: format!("Too long: may not be more than {max} bytes"),
        });
    }
}

/// An exactly-one-of object (`minProperties: 1`, `maxProperties: 1`): `present` is each field's
/// name and whether it is set, in the CRD's order. Reports no field or more than one as the API
/// server does, naming the fields; `None` when none is set (the caller has nothing to convert),
/// else the set fields' names.
pub(super) fn exactly_one_of(
    path: &FPath,
    present: &[(&'static str, bool)],
    problems: &mut Vec<Problem>,
) -> Option<Vec<&'static str>> {
    let names: Vec<&str> = present.iter().map(|(name, _)| *name).collect();
    exactly_one_of_named(path, present, &names.join(", "), problems)
}

/// [`exactly_one_of`] where the message names `fields` (those this API and direction allow)
/// rather than every field of the object.
pub(super) fn exactly_one_of_named(
    path: &FPath,
    present: &[(&'static str, bool)],
    fields: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<&'static str>> {
    let set: Vec<&'static str> = present
        .iter()
        .filter(|(_, is_set)| *is_set)
        .map(|(name, _)| *name)
        .collect();
    match set.len() {
        0 => {
            problems.push(at_least_one_property(path, fields));
            return None;
        }
        1 => {}
        n => problems.push(at_most_one_property(path, n, fields)),
    }
    Some(set)
}

/// `minProperties: 1` of an exactly-one-of object.
pub(super) fn at_least_one_property(path: &FPath, fields: &str) -> Problem {
    validate::invalid(
        path.clone(),
        Val::N(0),
        &format!(
            "{} in body should have at least 1 properties (set exactly one of {fields})",
            path.render()
        ),
    )
}

/// `maxProperties: 1` of an exactly-one-of object.
fn at_most_one_property(path: &FPath, n: usize, fields: &str) -> Problem {
    validate::invalid(
        path.clone(),
        count(n),
        &format!(
            "{} in body should have at most 1 properties (set exactly one of {fields})",
            path.render()
        ),
    )
}

/// `listType=set`: a value twice.
fn duplicates<'a>(path: &FPath, items: &'a [String], problems: &mut Vec<Problem>) {
    let mut seen: HashSet<&'a str> = HashSet::new();
    for (i, s) in items.iter().enumerate() {
        if !seen.insert(s.as_str()) {
            problems.push(Problem {
                path: path.i(i),
                at: None,
                detail: format!("Duplicate value: {s:?}"),
            });
        }
    }
}

/// The value of a peer's first set field (the property count is checked by the caller).
pub(super) fn peer_value(
    p: &PeerWire,
    path: &FPath,
    action: Option<AdminAction>,
    w: &mut Walk<'_, '_>,
) -> Option<AdminPeer> {
    if let Some(s) = &p.namespaces {
        return Some(AdminPeer::Namespaces(selector(
            s,
            &path.f("namespaces"),
            w.problems,
        )));
    }
    if let Some(pods) = &p.pods {
        let (namespace_selector, pod_selector) = namespaced_pod(pods, &path.f("pods"), w.problems);
        return Some(AdminPeer::Pods {
            namespace_selector,
            pod_selector,
        });
    }
    if let Some(s) = &p.nodes {
        return Some(AdminPeer::Nodes(selector(s, &path.f("nodes"), w.problems)));
    }
    if let Some(networks) = &p.networks {
        return Some(AdminPeer::Networks(self::networks(
            networks,
            &path.f("networks"),
            w,
        )));
    }
    let names = p.domain_names.as_ref()?;
    Some(AdminPeer::DomainNames(domain_names(
        names,
        &path.f("domainNames"),
        action,
        w,
    )))
}

fn networks(items: &[String], path: &FPath, w: &mut Walk<'_, '_>) -> Vec<ipnet::IpNet> {
    min_items(path, items.len(), 1, w.problems);
    max_items(path, items.len(), MAX_ADDRESSES, w.problems);
    duplicates(path, items, w.problems);
    let mut out = Vec::new();
    for (i, s) in items.iter().enumerate() {
        let ip = path.i(i);
        if s.len() > CIDR_MAX_LENGTH {
            max_length(&ip, s, CIDR_MAX_LENGTH, w.problems);
            continue;
        }
        match is_cidr(s) {
            None => w.problems.push(validate::invalid(
                ip,
                Val::S(s),
                "Invalid CIDR format provided",
            )),
            Some(c) => {
                if c.had_host_bits {
                    w.warnings.push(Warning {
                        path: ip,
                        message: format!(
                            "{s:?} has bits set past its prefix length: it is read as {}",
                            c.net
                        ),
                        hint: Some(format!("write {}", c.net)),
                    });
                }
                if !out.contains(&c.net) {
                    out.push(c.net);
                }
            }
        }
    }
    out
}

fn domain_names(
    items: &[String],
    path: &FPath,
    action: Option<AdminAction>,
    w: &mut Walk<'_, '_>,
) -> Vec<String> {
    min_items(path, items.len(), 1, w.problems);
    max_items(path, items.len(), MAX_ADDRESSES, w.problems);
    duplicates(path, items, w.problems);
    if action.is_some_and(|a| a != AdminAction::Accept) {
        w.problems.push(validate::forbidden(
            path.clone(),
            "domainNames peers are only supported in Accept (v1alpha1: Allow) rules",
        ));
    }
    for (i, s) in items.iter().enumerate() {
        if !is_domain_name(s) {
            w.problems.push(validate::invalid(
                path.i(i),
                Val::S(s),
                &format!(
                    "{} in body should match '{DOMAIN_NAME_PATTERN}'",
                    path.i(i).render()
                ),
            ));
        }
    }
    w.warnings.push(Warning {
        path: path.clone(),
        message: DOMAIN_NAMES_WARNING.to_string(),
        hint: None,
    });
    items.to_vec()
}
