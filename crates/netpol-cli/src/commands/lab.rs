//! `netpol lab`: the lab of `probe`, kept up for exploring by hand.

use anyhow::{anyhow, Context, Result};
use netpol_core::Protocol;

use crate::cli::LabArgs;
use crate::input;
use crate::lab_run::{external_host_name, preflight, LabPlan, LabRun};
use crate::output::{join_addresses, kubectl_table, render};

pub fn run(args: &LabArgs) -> Result<u8> {
    preflight()?;
    let listen = parse_listeners(&args.listen)?;
    let input = input::load(&args.input);
    input.require_complete("fix them first, a partial cluster would enforce something else")?;
    netpol_dataplane::install_interrupt_cleanup()?;
    let run = LabRun::build(
        &input.cluster,
        input.opts,
        &LabPlan {
            listen: listen.clone(),
            externals: args.external.clone(),
        },
    )?;
    for key in &run.skipped {
        eprintln!("netpol: warning: {key} has no address: left out of the lab");
    }
    if !args.no_enforce {
        run.enforce(&input.cluster.policies)?;
    }
    let mut table = kubectl_table(&["HOST", "NODE", "ADDRESSES", "NETNS"]);
    for node in &run.nodes {
        table.add_row(vec![
            format!("node {node}"),
            node.clone(),
            String::new(),
            run.lab.node_netns(node).unwrap_or("?").to_string(),
        ]);
    }
    let keys = netpol_core::analysis::output_keys(&run.cluster);
    for &i in &run.members {
        let w = &run.cluster.workloads[i];
        table.add_row(vec![
            keys[i].clone(),
            w.node.clone().unwrap_or_default(),
            join_addresses(&w.addresses),
            run.lab.host_netns(&keys[i]).unwrap_or("?").to_string(),
        ]);
    }
    for address in &args.external {
        let name = external_host_name(*address);
        table.add_row(vec![
            name.clone(),
            "(outside)".to_string(),
            address.to_string(),
            run.lab.host_netns(&name).unwrap_or("?").to_string(),
        ]);
    }
    print!("{}", render(&table));
    println!(
        "listeners on every host: {}; rulesets {}",
        listen
            .iter()
            .map(|(p, port)| format!("{p}/{port}"))
            .collect::<Vec<_>>()
            .join(", "),
        if args.no_enforce {
            "not loaded (--no-enforce)"
        } else {
            "loaded into every node (nft list table inet netpol inside a node's netns)"
        }
    );
    println!("the lab stays up until Ctrl-C; everything is removed then");
    loop {
        // The interrupt handler removes the namespaces and exits; nothing to do meanwhile.
        std::thread::park();
    }
}

fn parse_listeners(specs: &[String]) -> Result<Vec<(Protocol, u16)>> {
    if specs.is_empty() {
        return Ok(vec![(Protocol::Tcp, 80)]);
    }
    specs
        .iter()
        .map(|spec| {
            let (protocol, port) = spec
                .split_once('/')
                .ok_or_else(|| anyhow!("--listen {spec:?}: expected PROTOCOL/PORT, e.g. TCP/80"))?;
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .with_context(|| format!("--listen {spec:?}: port must be 1-65535"))?;
            Ok((protocol.parse::<Protocol>()?, port))
        })
        .collect()
}
