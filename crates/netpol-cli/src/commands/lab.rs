//! `netpol lab`: the lab of `probe`, kept up for exploring by hand (the lab itself is
//! `netpol-lab`'s).

use anyhow::{anyhow, Context, Result};
use netpol_core::Protocol;
use netpol_lab::{preflight, ClusterLab, LabPlan};

use crate::cli::LabArgs;
use crate::commands::probe::warn_skipped;
use crate::input;
use crate::render::lab::render_inventory;

pub fn run(args: &LabArgs) -> Result<u8> {
    preflight()?;
    let listen = parse_listeners(&args.listen)?;
    let input = input::load(&args.input)?;
    input.require_complete("fix them first, a partial cluster would enforce something else")?;
    netpol_lab::install_interrupt_cleanup()?;
    let mut lab = ClusterLab::build(
        &input.cluster,
        input.opts,
        &LabPlan {
            listen: listen.clone(),
            externals: args.external.clone(),
        },
    )?;
    warn_skipped(&lab);
    if !args.no_enforce {
        lab.enforce(&input.cluster.policies, &input.cluster.admin_policies)?;
    }
    print!("{}", render_inventory(&lab.inventory()));
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
