//! What the table does about the node itself: egress of local workloads to the node's own
//! addresses (the `input` hook), hairpin traffic (a local workload reaching itself through a
//! Service), and, by leaving the `output` hook alone, ingress from the node.
//!
//! ```text
//! map self4 {                              # every local isolated address, paired with itself
//!     type ipv4_addr . ipv4_addr : verdict
//!     elements = { 10.66.20.70 . 10.66.20.70 comment "test-project/vm-a" : accept }
//! }
//! chain input {                            # packets to the node's own addresses
//!     type filter hook input priority filter; policy accept;
//!     ct state established,related accept
//!     icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept
//!     ip saddr vmap @eg_dispatch4          # the same egress chains as forwarded traffic
//!     ip6 saddr vmap @eg_dispatch6
//! }
//! chain forward {
//!     ...
//!     ct state established,related accept
//!     ip saddr . ip daddr vmap @self4      # hairpin: source = destination after the DNAT
//!     ip6 saddr . ip6 daddr vmap @self6
//!     ...
//! }
//! ```
//!
//! * **Egress to the node.** A packet from a local workload to any address of the node (its
//!   InternalIP, a gateway address on the workload's veth, node-local DNS, a hostNetwork pod's
//!   port) is delivered locally and never crosses `forward`. The API makes no exception for the
//!   node: an egress-isolated workload reaches it only where a rule allows it (an ipBlock holding
//!   the address), so `input` sends it through the workload's egress identity chain, with the
//!   same counters and denied-flow log. An allowed packet `return`s from that chain and meets the
//!   `input` policy, accept: the node has no ingress policy. Neighbour discovery (a workload asks
//!   for its gateway's link-layer address, often from its global address) is accepted first, so
//!   that isolation never cuts a workload off its link; the router and neighbour messages the
//!   node sends back leave through `output`. Everything else, DHCP renewals included, is policy
//!   traffic.
//! * **Ingress from the node.** The API says an ingress-isolated pod still accepts connections
//!   from its own node (kubelet probes). Packets the node sends leave through `output`, which this
//!   table does not hook, so no ingress chain sees them; their replies are `established`.
//!   Packets from other nodes are forwarded like any external address and meet the ingress chain.
//! * **Hairpin.** A workload reaching itself through its own Service is DNATed back to itself in
//!   `prerouting` and masqueraded in `postrouting`, so `forward` sees source = destination = the
//!   workload. NetworkPolicy never blocks a workload's traffic to itself, so the pair is
//!   accepted by one hash lookup, before either direction's chain. The admin tiers do apply to
//!   hairpin: the addresses of workloads an admin policy selects are left out of `self4`/`self6`
//!   and walk their identity chains, which accept hairpin after the Admin tier where a
//!   NetworkPolicy isolates them (`hairpin4`/`hairpin6`, see the `tiers` module).
//! * **Sources a workload does not own** (a guest is root and can add any address). With
//!   [`SourceCheck::Interfaces`], a packet arriving through a workload interface (by name:
//!   `lxc*`, `cali*`, ... see [`crate::DEFAULT_WORKLOAD_INTERFACES`]) must have a source the node
//!   routes back through that same interface (a strict reverse-path check, `fib saddr . iif`),
//!   in `prerouting` before conntrack, NAT and every other chain of this table. A routed CNI gives
//!   each workload a /32 or /128 route through its interface, so a guest that adds a second
//!   address or takes a neighbour's is dropped, counted in `denied_spoofed` and logged with the
//!   prefix [`crate::SPOOFED_LOG_PREFIX`]; an address missing from the manifests is not routed
//!   there either, so it is dropped rather than left unenforced. Exempt: the unspecified source
//!   (DHCP discovery, duplicate address detection: nobody can be impersonated by it) and neighbour
//!   discovery (a workload on a point-to-point veth can only confuse its own link). Where
//!   workloads share a bridge, the check tells the bridge's subnet from elsewhere, not one
//!   workload from another. Interfaces are matched by name because nothing else tells a
//!   workload's interface from an uplink, where asymmetric routing is legitimate.
//!   [`SourceCheck::Off`] leaves the job to a CNI that already does it (Calico, Cilium).
//!
//! ```text
//! chain source_check {
//!     type filter hook prerouting priority raw; policy accept;
//!     iifname { "lxc*", "cali*", ... } jump source_verify
//! }
//! chain source_verify {
//!     ip saddr 0.0.0.0 return
//!     ip6 saddr :: return
//!     icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } return
//!     fib saddr . iif oif exists return
//!     limit name "denied_log" log prefix "netpol:spoofed" group 28272
//!     counter name "denied_spoofed" drop
//! }
//! ```

use super::table::Renderer;
use super::{keyed, push_addr, push_quoted, quoted, DENIED_LOG_LIMIT, DENIED_SPOOFED};
use crate::SourceCheck;

/// The `input` base chain's rules.
pub(super) fn input_rules() -> Vec<String> {
    [
        "type filter hook input priority filter; policy accept;",
        "counter name \"table_packets\"",
        "ct state established,related accept",
        "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept",
        "ip saddr vmap @eg_dispatch4",
        "ip6 saddr vmap @eg_dispatch6",
    ]
    .iter()
    .map(|r| r.to_string())
    .collect()
}

/// The `forward` rules accepting hairpin traffic of workloads no admin policy selects (after the
/// conntrack shortcut).
pub(super) fn hairpin_rules() -> [&'static str; 2] {
    [
        "ip saddr . ip daddr vmap @self4",
        "ip6 saddr . ip6 daddr vmap @self6",
    ]
}

impl Renderer<'_> {
    /// `self4` / `self6`: every local isolated address (either direction) paired with itself.
    pub(super) fn hairpin_maps(&mut self) {
        let mut local: std::collections::BTreeMap<std::net::IpAddr, &str> = Default::default();
        for d in [&self.ir.ingress, &self.ir.egress] {
            // Addresses whose hairpin traffic walks the tiers are left to the identity chains.
            for (a, x) in d
                .dispatch
                .iter()
                .filter(|(a, _)| !self.ir.hairpin.contains(a))
            {
                local.entry(*a).or_insert(x.workload.as_str());
            }
        }
        for (v6, name, ty) in [
            (false, "self4", "ipv4_addr . ipv4_addr"),
            (true, "self6", "ipv6_addr . ipv6_addr"),
        ] {
            let elements = local
                .iter()
                .filter(|(a, _)| a.is_ipv6() == v6)
                .map(|(a, workload)| {
                    let mut e = String::with_capacity(80);
                    push_addr(&mut e, *a);
                    e.push_str(" . ");
                    push_addr(&mut e, *a);
                    let k = e.len();
                    e.push_str(" comment ");
                    push_quoted(&mut e, workload);
                    e.push_str(" : accept");
                    keyed(e, k)
                })
                .collect();
            self.map(name, &[&format!("type {ty} : verdict")], elements);
        }
    }
}

impl Renderer<'_> {
    /// The source-address check's two chains (none when it is off or names no interface).
    pub(super) fn source_check(&mut self) {
        let SourceCheck::Interfaces(patterns) = &self.ir.node_options.source_check else {
            return;
        };
        if patterns.is_empty() {
            return;
        }
        let names: Vec<String> = patterns.iter().map(|p| quoted(p)).collect();
        self.chain(
            "source_verify",
            None,
            vec![
                "ip saddr 0.0.0.0 return".to_string(),
                "ip6 saddr :: return".to_string(),
                "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } return"
                    .to_string(),
                "fib saddr . iif oif exists return".to_string(),
                format!(
                    "limit name \"{DENIED_LOG_LIMIT}\" log prefix \"{}\" group {}",
                    crate::SPOOFED_LOG_PREFIX,
                    crate::DENIED_LOG_GROUP
                ),
                format!("counter name \"{DENIED_SPOOFED}\" drop"),
            ],
        );
        self.chain(
            "source_check",
            None,
            vec![
                "type filter hook prerouting priority raw; policy accept;".to_string(),
                format!("iifname {{ {} }} jump source_verify", names.join(", ")),
            ],
        );
    }
}
