//! What the kernel reports back about a loaded table, in this crate's terms: the named counters
//! of an `nft -j list table` listing ([`CounterReading`]) and what the identity chain a
//! denied-packet log message names stands for ([`ChainInfo`], from [`crate::Ruleset::denied_chain`]).
//!
//! The layout of nft's JSON and of the IR stays in this crate: a caller (the node agent) hands
//! over the listing's text as the kernel access layer returned it and gets plain values back.

use netpol_core::Direction;

/// Why a table listing cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadbackError {
    /// The text is not JSON at all (a truncated or foreign listing).
    #[error("unexpected nft output: nft -j output is not JSON: {0}")]
    NotJson(String),
}

/// One named `counter` object of the table and its values when the table was listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterReading {
    /// The object's name, e.g. `pol_test-project_allow-b` or `denied_ingress`.
    pub name: String,
    /// Packets counted since the object was created.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
}

impl CounterReading {
    /// The named counter objects of `nft -j list table ...` output, in listing order.
    ///
    /// Anonymous counters inside rules have no name and are skipped, as is any entry missing a
    /// name or a value; JSON without an `nftables` array holds no counters.
    pub fn parse_listing(json: &str) -> Result<Vec<CounterReading>, ReadbackError> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| ReadbackError::NotJson(e.to_string()))?;
        let Some(items) = value.get("nftables").and_then(|v| v.as_array()) else {
            return Ok(Vec::new());
        };
        Ok(items.iter().filter_map(counter_object).collect())
    }
}

/// `{"counter": {"name": ..., "packets": ..., "bytes": ...}}`, the shape of a named counter
/// object in nft's JSON (a rule's anonymous counter sits inside `expr` and has no name).
fn counter_object(item: &serde_json::Value) -> Option<CounterReading> {
    let c = item.get("counter")?;
    Some(CounterReading {
        name: c.get("name")?.as_str()?.to_string(),
        packets: c.get("packets")?.as_u64()?,
        bytes: c.get("bytes")?.as_u64()?,
    })
}

/// What one identity chain of a ruleset stands for: the chain a denied packet was dropped in
/// (as its log prefix names it, see [`crate::parse_denied_log_prefix`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainInfo<'a> {
    /// The direction the chain checks (for the local workloads in [`ChainInfo::workloads`]).
    pub direction: Direction,
    /// `in_<h>` or `eg_<h>`.
    pub chain: &'a str,
    /// Keys (`namespace/name`) of the local workloads whose packets this chain checks.
    pub workloads: &'a [String],
    /// Keys of the policies isolating those workloads in this direction (for an admin rule's
    /// chain: its policy).
    pub policies: &'a [String],
    /// For the chain of a Deny rule of an admin tier (`chain` is then the prefix's
    /// `cnp/NAME[N]`, see [`crate::admin_log_tail`]): the rule that dropped the packet.
    pub admin_rule: Option<&'a crate::AdminRuleRef>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use netpol_core::{
        Cluster, EvalOptions, LabelSelector, Namespace, Policy, Workload, WorkloadKind,
    };

    /// `shop/web` on node n1, isolated for ingress by `shop/deny-in` (which allows nothing), and
    /// `shop/client` on n1, isolated by nothing.
    fn cluster() -> Cluster {
        let workload = |name: &str, address: &str| Workload {
            kind: WorkloadKind::Pod,
            namespace: "shop".into(),
            name: name.into(),
            labels: [("app".to_string(), name.to_string())]
                .into_iter()
                .collect(),
            addresses: vec![address.parse().unwrap()],
            node: Some("n1".into()),
            phase: Some("Running".into()),
            named_ports: vec![],
            origin: None,
            instances: Default::default(),
        };
        Cluster {
            namespaces: vec![Namespace::new("shop", Default::default(), false)],
            workloads: vec![workload("client", "10.9.0.1"), workload("web", "10.9.0.2")],
            policies: vec![Policy {
                namespace: "shop".into(),
                name: "deny-in".into(),
                pod_selector: LabelSelector {
                    match_labels: [("app".to_string(), "web".to_string())]
                        .into_iter()
                        .collect(),
                    match_expressions: vec![],
                },
                affects_ingress: true,
                affects_egress: false,
                ingress: vec![],
                egress: vec![],
                origin: None,
                rule_lines: Default::default(),
            }],
            ..Cluster::default()
        }
    }

    #[test]
    fn a_denied_chain_names_the_workloads_and_policies_it_stands_for() {
        let ruleset = crate::compile(&cluster(), EvalOptions::default(), "n1").unwrap();
        let chains: Vec<ChainInfo> = ruleset.denied_chains().collect();
        assert_eq!(chains.len(), 1, "{chains:?}");
        let chain = chains[0];
        assert_eq!(chain.direction, Direction::Ingress);
        assert!(chain.chain.starts_with("in_"), "{}", chain.chain);
        assert_eq!(chain.workloads, ["shop/web".to_string()]);
        assert_eq!(chain.policies, ["shop/deny-in".to_string()]);
        assert_eq!(
            ruleset.denied_chain(Direction::Ingress, chain.chain),
            Some(chain)
        );
        // Another direction's chain, or a chain an earlier ruleset had, is not this ruleset's.
        assert_eq!(ruleset.denied_chain(Direction::Egress, chain.chain), None);
        assert_eq!(
            ruleset.denied_chain(Direction::Ingress, "in_00000000"),
            None
        );
        let counters: Vec<(&str, &str)> = ruleset
            .policy_counters()
            .iter()
            .map(|c| (c.key.as_str(), c.counter.as_str()))
            .collect();
        assert_eq!(counters, [("shop/deny-in", "pol_shop_deny-in")]);
    }

    #[test]
    fn counters_are_read_from_nft_json_and_anonymous_rule_counters_ignored() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"counter": {"family": "inet", "name": "pol_a_b", "table": "netpol", "handle": 2, "packets": 3, "bytes": 180}},
            {"rule": {"expr": [{"counter": {"packets": 9, "bytes": 9}}]}}]}"#;
        assert_eq!(
            CounterReading::parse_listing(json).unwrap(),
            vec![CounterReading {
                name: "pol_a_b".into(),
                packets: 3,
                bytes: 180
            }]
        );
    }

    #[test]
    fn a_listing_without_an_nftables_array_holds_no_counters_and_broken_text_is_an_error() {
        assert_eq!(CounterReading::parse_listing("{}").unwrap(), vec![]);
        assert_eq!(
            CounterReading::parse_listing(r#"{"nftables": {"counter": {}}}"#).unwrap(),
            vec![]
        );
        assert!(matches!(
            CounterReading::parse_listing(r#"{"nftables": ["#),
            Err(ReadbackError::NotJson(_))
        ));
    }
}
