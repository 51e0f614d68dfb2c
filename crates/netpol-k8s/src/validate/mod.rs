//! Validation as the API server does it (`ValidateObjectMeta`, `ValidateNetworkPolicy`,
//! `ValidateLabelSelector`), with the API server's wording (`field: Invalid value: x: detail`);
//! for the admin policy CRDs, the OpenAPI and CEL checks that are more than a range or an enum
//! ([`admin`]; the rest is in `load/admin/`). Every problem of an object is collected, not only
//! the first.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::yaml::{Kind, Node, Pos};

pub(crate) mod admin;
mod policy;

pub(crate) use policy::{network_policy, parse_cidr, PROTOCOLS};

/// One segment of a validation field path.
#[derive(Clone, Debug)]
pub(crate) enum PSeg {
    Field(&'static str),
    Key(String),
    Index(usize),
}

/// A field path built by validation code (`spec.ingress[0].ports[1].port`).
#[derive(Clone, Debug, Default)]
pub(crate) struct FPath(Vec<PSeg>);

impl FPath {
    pub fn root() -> FPath {
        FPath(Vec::new())
    }

    pub fn f(&self, name: &'static str) -> FPath {
        let mut v = self.0.clone();
        v.push(PSeg::Field(name));
        FPath(v)
    }

    pub fn i(&self, index: usize) -> FPath {
        let mut v = self.0.clone();
        v.push(PSeg::Index(index));
        FPath(v)
    }

    pub fn k(&self, key: &str) -> FPath {
        let mut v = self.0.clone();
        v.push(PSeg::Key(key.to_string()));
        FPath(v)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for seg in &self.0 {
            match seg {
                PSeg::Field(n) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(n);
                }
                PSeg::Key(k) => {
                    s.push('[');
                    s.push_str(k);
                    s.push(']');
                }
                PSeg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    /// The position of this path in `root`: the value when it exists (its key when `at_key`),
    /// else the deepest ancestor that exists.
    pub fn locate(&self, root: &Node, at_key: bool) -> Pos {
        let mut node = root;
        let mut pos = root.pos;
        let last = self.0.len().saturating_sub(1);
        for (n, seg) in self.0.iter().enumerate() {
            let next = match (seg, &node.kind) {
                (PSeg::Field(name), Kind::Map(m)) => m
                    .entries
                    .iter()
                    .find(|(k, _)| k.name == *name)
                    .map(|(k, v)| (k.pos, v)),
                (PSeg::Key(name), Kind::Map(m)) => m
                    .entries
                    .iter()
                    .find(|(k, _)| &k.name == name)
                    .map(|(k, v)| (k.pos, v)),
                (PSeg::Index(i), Kind::Seq(items)) => items.get(*i).map(|v| (v.pos, v)),
                _ => None,
            };
            let Some((key_pos, child)) = next else {
                return pos;
            };
            node = child;
            pos = if n == last && at_key {
                key_pos
            } else {
                child.pos
            };
        }
        pos
    }
}

/// A validation error of one field.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    pub path: FPath,
    /// Where to point in the source when not at `path` itself (a label's key).
    pub at: Option<(FPath, bool)>,
    /// The API server's text, without the leading field path.
    pub detail: String,
}

impl Problem {
    pub fn message(&self) -> String {
        let p = self.path.render();
        if p.is_empty() {
            self.detail.clone()
        } else {
            format!("{p}: {}", self.detail)
        }
    }

    pub fn pos(&self, root: &Node) -> Pos {
        match &self.at {
            Some((path, at_key)) => path.locate(root, *at_key),
            None => self.path.locate(root, false),
        }
    }
}

/// How `field.Invalid` prints a value: strings quoted, numbers bare.
pub(crate) enum Val<'a> {
    S(&'a str),
    N(i64),
}

impl std::fmt::Display for Val<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::S(s) => write!(f, "{s:?}"),
            Val::N(n) => write!(f, "{n}"),
        }
    }
}

pub(crate) fn invalid(path: FPath, value: Val<'_>, detail: &str) -> Problem {
    Problem {
        path,
        at: None,
        detail: format!("Invalid value: {value}: {detail}"),
    }
}

pub(crate) fn required(path: FPath, detail: &str) -> Problem {
    Problem {
        path,
        at: None,
        detail: if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        },
    }
}

pub(crate) fn forbidden(path: FPath, detail: &str) -> Problem {
    Problem {
        path,
        at: None,
        detail: format!("Forbidden: {detail}"),
    }
}

pub(crate) fn not_supported(path: FPath, value: &str, supported: &[&str]) -> Problem {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Problem {
        path,
        at: None,
        detail: format!(
            "Unsupported value: {value:?}: supported values: {}",
            list.join(", ")
        ),
    }
}

// ---- apimachinery/pkg/util/validation --------------------------------------------------------

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{e}', "));
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_dns_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub(crate) fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !is_dns_label_shape(s) {
        errs.push(regex_error(
            DNS1123_LABEL_MSG,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

pub(crate) fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !s.split('.').all(is_dns_label_shape) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn is_qualified_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `IsQualifiedName`: label keys and selector keys.
pub(crate) fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            )]
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_shape(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

pub(crate) fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !s.is_empty() && !is_qualified_shape(s) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsValidPortName` (an IANA_SVC_NAME).
pub(crate) fn port_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push(max_len_error(15));
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

pub(crate) fn port_num(n: i64) -> Vec<String> {
    if (1..=65535).contains(&n) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// Which name rule `metadata.name` follows for a kind.
#[derive(Clone, Copy)]
pub(crate) enum NameRule {
    Label,
    Subdomain,
}

/// `ValidateObjectMeta`: name, namespace, labels.
pub(crate) fn object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
    out: &mut Vec<Problem>,
) {
    let path = FPath::root().f("metadata");
    match meta.name.as_deref() {
        None | Some("") => {
            if meta.generate_name.as_deref().unwrap_or("").is_empty() {
                out.push(required(path.f("name"), "name or generateName is required"));
            } else {
                out.push(required(
                    path.f("name"),
                    "netpol needs the name the API server would generate; set metadata.name",
                ));
            }
        }
        Some(name) => {
            let errs = match rule {
                NameRule::Label => dns1123_label(name),
                NameRule::Subdomain => dns1123_subdomain(name),
            };
            for m in errs {
                out.push(invalid(path.f("name"), Val::S(name), &m));
            }
        }
    }
    if namespaced {
        if let Some(ns) = meta.namespace.as_deref() {
            if !ns.is_empty() {
                for m in dns1123_label(ns) {
                    out.push(invalid(path.f("namespace"), Val::S(ns), &m));
                }
            }
        }
    }
    if let Some(labels) = &meta.labels {
        labels_problems(labels, &path.f("labels"), out);
    }
}

/// `ValidateLabels`: the API server reports at the map's path; we point at the key.
pub(crate) fn labels_problems(
    labels: &std::collections::BTreeMap<String, String>,
    path: &FPath,
    out: &mut Vec<Problem>,
) {
    for (k, v) in labels {
        for m in qualified_name(k) {
            let mut p = invalid(path.clone(), Val::S(k), &m);
            p.at = Some((path.k(k), true));
            out.push(p);
        }
        for m in label_value(v) {
            let mut p = invalid(path.clone(), Val::S(v), &m);
            p.at = Some((path.k(k), false));
            out.push(p);
        }
    }
}

/// `ValidateLabelSelector`.
pub(crate) fn label_selector(sel: &LabelSelector, path: &FPath, out: &mut Vec<Problem>) {
    if let Some(labels) = &sel.match_labels {
        labels_problems(labels, &path.f("matchLabels"), out);
    }
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let rp = path.f("matchExpressions").i(i);
        let values = req.values.as_deref().unwrap_or(&[]);
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    out.push(required(
                        rp.f("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    out.push(forbidden(
                        rp.f("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => out.push(invalid(
                rp.f("operator"),
                Val::S(op),
                "not a valid selector operator",
            )),
        }
        for m in qualified_name(&req.key) {
            out.push(invalid(rp.f("key"), Val::S(&req.key), &m));
        }
        for (vi, v) in values.iter().enumerate() {
            for m in label_value(v) {
                out.push(invalid(rp.f("values").i(vi), Val::S(v), &m));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_follow_rfc_1123() {
        assert!(dns1123_subdomain("allow-x.v1").is_empty());
        assert!(!dns1123_subdomain("Allow").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert!(!dns1123_subdomain("-a").is_empty());
        assert!(dns1123_label("test-project").is_empty());
        assert!(!dns1123_label("a.b").is_empty());
        assert!(!dns1123_label(&"a".repeat(64)).is_empty());
    }

    #[test]
    fn qualified_names_allow_a_dns_prefix() {
        assert!(qualified_name("app").is_empty());
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(qualified_name("My_Key.1").is_empty());
        assert!(!qualified_name("/name").is_empty());
        assert!(!qualified_name("a/b/c").is_empty());
        assert!(!qualified_name("Bad_Prefix/name").is_empty());
        assert!(!qualified_name("name-").is_empty());
        assert!(!qualified_name(&"k".repeat(64)).is_empty());
    }

    #[test]
    fn label_values_may_be_empty_but_not_long_or_odd() {
        assert!(label_value("").is_empty());
        assert!(label_value("a_b.c-d").is_empty());
        assert!(!label_value("a b").is_empty());
        assert!(!label_value("_a").is_empty());
        assert_eq!(label_value(&"v".repeat(64)), vec![max_len_error(63)]);
    }

    #[test]
    fn port_names_are_iana_service_names() {
        assert!(port_name("http").is_empty());
        assert!(port_name("dns-tcp").is_empty());
        assert!(port_name("h2c").is_empty());
        assert!(!port_name("80").is_empty());
        assert!(!port_name("HTTP").is_empty());
        assert!(!port_name("a--b").is_empty());
        assert!(!port_name("-a").is_empty());
        assert!(!port_name("abcdefghijklmnop").is_empty());
    }

    #[test]
    fn cidrs_with_host_bits_are_accepted_as_their_network_with_a_warning() {
        let c = parse_cidr("10.0.0.1/24").unwrap();
        assert_eq!(c.net.to_string(), "10.0.0.0/24");
        assert!(c.warning.unwrap().contains("\"10.0.0.0/24\""));
        let c = parse_cidr("010.000.0.0/8").unwrap();
        assert_eq!(c.net.to_string(), "10.0.0.0/8");
        assert!(c.warning.is_some());
        assert!(parse_cidr("10.0.0.0/8").unwrap().warning.is_none());
        assert!(parse_cidr("2001:db8::/64").is_some());
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("10.0.0.0").is_none());
        assert!(parse_cidr("10.0.0.0/").is_none());
        assert!(parse_cidr("banana/8").is_none());
    }
}
