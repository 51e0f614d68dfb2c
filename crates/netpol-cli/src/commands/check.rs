//! `netpol check`: one flow, its verdict and why; one verdict per address family where a
//! dual-stack pair's families disagree.

use anyhow::{anyhow, Result};
use std::net::IpAddr;

use netpol_core::eval::{evaluate_ends, evaluate_hairpin_at, FlowEnd};
use netpol_core::model::{address_of_family, families_of};
use netpol_core::{Cluster, IpFamily, Protocol, Verdict};

use crate::cli::{CheckArgs, CheckFormat};
use crate::{input, refs};

pub fn run(args: &CheckArgs) -> Result<u8> {
    let protocol: Protocol = args.protocol.parse()?;
    let input = input::load(&args.input)?;
    let cluster = &input.cluster;
    let src = refs::resolve(cluster, &args.from).map_err(|e| anyhow!("--from: {e}"))?;
    let dst = refs::resolve(cluster, &args.to).map_err(|e| anyhow!("--to: {e}"))?;
    if !is_workload(&src) && !is_workload(&dst) {
        return Err(anyhow!(
            "neither {} nor {} is a workload of the input: no policy can apply to this flow",
            args.from,
            args.to
        ));
    }
    if args.via_service {
        return hairpin(args, &input, &src, &dst, protocol);
    }
    same_family(cluster, &src, &args.from, &dst, &args.to)?;
    let verdicts = evaluate_ends(cluster, input.opts, &src, &dst, protocol, args.port);
    match args.output {
        CheckFormat::Text => print!("{}", verdicts.explain()),
        CheckFormat::Json => println!("{}", serde_json::to_string_pretty(&verdicts)?),
    }
    input.answered_partially("verdict")?;
    Ok(if verdicts.allowed() { 0 } else { 1 })
}

/// `--via-service`: a workload to itself through a Service, over each of its families.
fn hairpin(
    args: &CheckArgs,
    input: &input::Input,
    src: &FlowEnd,
    dst: &FlowEnd,
    protocol: Protocol,
) -> Result<u8> {
    let (FlowEnd::Workload { index: a, .. }, FlowEnd::Workload { index: b, .. }) = (src, dst)
    else {
        return Err(anyhow!(
            "--via-service needs --from and --to to name one workload"
        ));
    };
    if a != b {
        return Err(anyhow!(
            "--via-service is a workload reaching itself through a Service: {} and {} are two workloads",
            args.from,
            args.to
        ));
    }
    let cluster = &input.cluster;
    let addresses: Vec<Option<IpAddr>> = match families_of(&cluster.workloads[*a].addresses)[..] {
        [] | [_] => vec![None],
        _ => IpFamily::ALL
            .iter()
            .map(|f| address_of_family(&cluster.workloads[*a].addresses, *f))
            .collect(),
    };
    let verdicts: Vec<Verdict> = addresses
        .into_iter()
        .map(|address| evaluate_hairpin_at(cluster, input.opts, *a, address, protocol, args.port))
        .collect();
    match args.output {
        CheckFormat::Text => {
            for v in &verdicts {
                print!("{}", v.explain());
            }
        }
        CheckFormat::Json => println!("{}", serde_json::to_string_pretty(&verdicts)?),
    }
    input.answered_partially("verdict")?;
    Ok(if verdicts.iter().all(|v| v.allowed) {
        0
    } else {
        1
    })
}

fn is_workload(end: &FlowEnd) -> bool {
    matches!(end, FlowEnd::Workload { .. })
}

/// The family an end is fixed to (an IP reference), and the families it has.
fn families(cluster: &Cluster, end: &FlowEnd) -> (Option<IpFamily>, Vec<IpFamily>) {
    match end {
        FlowEnd::Workload {
            address: Some(a), ..
        }
        | FlowEnd::Address(a) => (Some(IpFamily::of(a)), vec![IpFamily::of(a)]),
        FlowEnd::Workload { index, .. } => {
            (None, families_of(&cluster.workloads[*index].addresses))
        }
        FlowEnd::Node(n) => (None, families_of(&cluster.nodes[*n].addresses)),
    }
}

/// An end fixed to one family needs the other end to have an address of it (a workload without
/// any address is left to the evaluator, which explains that no ipBlock can match it).
fn same_family(
    cluster: &Cluster,
    src: &FlowEnd,
    from: &str,
    dst: &FlowEnd,
    to: &str,
) -> Result<()> {
    let (src_fixed, src_has) = families(cluster, src);
    let (dst_fixed, dst_has) = families(cluster, dst);
    for (fixed, fixed_ref, other_has, other_ref) in [
        (src_fixed, from, &dst_has, to),
        (dst_fixed, to, &src_has, from),
    ] {
        if let Some(f) = fixed {
            if !other_has.is_empty() && !other_has.contains(&f) {
                return Err(anyhow!(
                    "{other_ref} has no {f} address, so no flow of {fixed_ref}'s family reaches it"
                ));
            }
        }
    }
    Ok(())
}
