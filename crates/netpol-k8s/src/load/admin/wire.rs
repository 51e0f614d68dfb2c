//! The wire types of ClusterNetworkPolicy (v1alpha2), AdminNetworkPolicy and
//! BaselineAdminNetworkPolicy (v1alpha1), as the CRDs define them. Every field is optional here
//! so that a missing required field is a validation error with its path, not a decoding error;
//! serde's field lists are what the strict decoder checks unknown fields against.
//!
//! One peer type serves every peer of every API (ingress and egress): a field that exists in
//! some peer but not in this one (`networks` in an ingress peer, `domainNames` in a BANP) is a
//! validation error naming where it is allowed, not an unknown field, and a peer made only of
//! fields no API version netpol knows has is the fail-closed case.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::de::IgnoredAny;
use serde::Deserialize;

/// The fields of a peer any API netpol reads knows (see the module's note).
pub(super) const PEER_FIELDS: &[&str] = &["namespaces", "pods", "nodes", "networks", "domainNames"];

/// A whole object of one of the three kinds; `S` is its spec.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ObjectWire<S> {
    // Read by the loader before decoding; named here so they are not unknown fields.
    #[serde(default, rename = "apiVersion")]
    _api_version: Option<IgnoredAny>,
    #[serde(default, rename = "kind")]
    _kind: Option<IgnoredAny>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default = "Option::default")]
    pub spec: Option<S>,
    /// Written by implementations (conditions); netpol does not read it.
    #[serde(default, rename = "status")]
    _status: Option<IgnoredAny>,
}

/// `ClusterNetworkPolicySpec`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CnpSpec {
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub subject: Option<SubjectWire>,
    #[serde(default)]
    pub ingress: Option<Vec<CnpIngressRule>>,
    #[serde(default)]
    pub egress: Option<Vec<CnpEgressRule>>,
}

/// `AdminNetworkPolicySpec` and `BaselineAdminNetworkPolicySpec` (which has no priority: a
/// `priority` there is an unknown field, see [`BanpSpec`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnpSpec {
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub subject: Option<SubjectWire>,
    #[serde(default)]
    pub ingress: Option<Vec<AnpIngressRule>>,
    #[serde(default)]
    pub egress: Option<Vec<AnpEgressRule>>,
}

/// `BaselineAdminNetworkPolicySpec`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BanpSpec {
    #[serde(default)]
    pub subject: Option<SubjectWire>,
    #[serde(default)]
    pub ingress: Option<Vec<AnpIngressRule>>,
    #[serde(default)]
    pub egress: Option<Vec<AnpEgressRule>>,
}

/// `ClusterNetworkPolicySubject` / `AdminNetworkPolicySubject`: exactly one field.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SubjectWire {
    #[serde(default)]
    pub namespaces: Option<LabelSelector>,
    #[serde(default)]
    pub pods: Option<NamespacedPodWire>,
}

/// `NamespacedPod`: `podSelector` is required, `namespaceSelector` defaults to everything.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NamespacedPodWire {
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub pod_selector: Option<LabelSelector>,
}

/// `ClusterNetworkPolicyIngressRule`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CnpIngressRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub from: Option<Vec<PeerWire>>,
    #[serde(default)]
    pub protocols: Option<Vec<ProtocolWire>>,
}

/// `ClusterNetworkPolicyEgressRule`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CnpEgressRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub to: Option<Vec<PeerWire>>,
    #[serde(default)]
    pub protocols: Option<Vec<ProtocolWire>>,
}

/// `AdminNetworkPolicyIngressRule` / `BaselineAdminNetworkPolicyIngressRule`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnpIngressRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub from: Option<Vec<PeerWire>>,
    #[serde(default)]
    pub ports: Option<Vec<AnpPortWire>>,
}

/// `AdminNetworkPolicyEgressRule` / `BaselineAdminNetworkPolicyEgressRule`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnpEgressRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub to: Option<Vec<PeerWire>>,
    #[serde(default)]
    pub ports: Option<Vec<AnpPortWire>>,
}

/// Every peer field of every API (see the module's note and [`PEER_FIELDS`]).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct PeerWire {
    #[serde(default)]
    pub namespaces: Option<LabelSelector>,
    #[serde(default)]
    pub pods: Option<NamespacedPodWire>,
    #[serde(default)]
    pub nodes: Option<LabelSelector>,
    #[serde(default)]
    pub networks: Option<Vec<String>>,
    #[serde(default)]
    pub domain_names: Option<Vec<String>>,
}

/// `ClusterNetworkPolicyProtocol`: exactly one field.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProtocolWire {
    #[serde(default)]
    pub tcp: Option<ProtocolPortWire>,
    #[serde(default)]
    pub udp: Option<ProtocolPortWire>,
    #[serde(default)]
    pub sctp: Option<ProtocolPortWire>,
    #[serde(default)]
    pub destination_named_port: Option<String>,
}

/// `ClusterNetworkPolicyProtocolTCP` (and UDP, SCTP): MinProperties=1.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProtocolPortWire {
    #[serde(default)]
    pub destination_port: Option<PortWire>,
}

/// v1alpha2 `Port`: exactly one of `number` and `range`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PortWire {
    #[serde(default)]
    pub number: Option<i64>,
    #[serde(default)]
    pub range: Option<RangeWire>,
}

/// v1alpha2 `PortRange`: `start < end`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RangeWire {
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub end: Option<i64>,
}

/// v1alpha1 `AdminNetworkPolicyPort`: exactly one field.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnpPortWire {
    #[serde(default)]
    pub port_number: Option<AnpPortNumber>,
    #[serde(default)]
    pub port_range: Option<AnpPortRange>,
    #[serde(default)]
    pub named_port: Option<String>,
}

/// v1alpha1 `Port`: protocol (default TCP) and port.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnpPortNumber {
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port: Option<i64>,
}

/// v1alpha1 `PortRange`: protocol (default TCP), start and end.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnpPortRange {
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub end: Option<i64>,
}
