//! `netpol matrix`: the truth table for one port, or the connectivity map over every port.

use std::io::Write;

use anyhow::{bail, Result};
use netpol_core::{Analyzer, Protocol};

use crate::cli::{MatrixArgs, MatrixFormat};
use crate::input;
use crate::render::graph::{render_dot, render_mermaid};
use crate::render::matrix::{
    endpoint_counts, render_csv, render_grid, render_markdown, summary_line,
};

pub fn run(args: &MatrixArgs) -> Result<u8> {
    let input = input::load(&args.input)?;
    let analyzer = Analyzer::new(&input.cluster, input.opts);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.port {
        Some(port) => {
            let protocol: Protocol = args.protocol.parse()?;
            let table = analyzer.truth_table(protocol, port);
            let keys = table.keys();
            match args.output.unwrap_or(MatrixFormat::Table) {
                MatrixFormat::Table | MatrixFormat::Text => {
                    out.write_all(render_grid(&table, keys).as_bytes())?
                }
                MatrixFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &table)?;
                    writeln!(out)?;
                }
                MatrixFormat::Csv => out.write_all(render_csv(&table, keys).as_bytes())?,
                MatrixFormat::Md => out.write_all(render_markdown(&table, keys).as_bytes())?,
                MatrixFormat::Summary => writeln!(out, "{}", summary_line(&table))?,
                MatrixFormat::Dot | MatrixFormat::Mermaid => bail!(
                    "-o dot and -o mermaid draw the connectivity map over every port: leave out --port"
                ),
            }
        }
        None => {
            let map = analyzer.connectivity_map();
            match args.output.unwrap_or(MatrixFormat::Text) {
                MatrixFormat::Text => out.write_all(map.to_text().as_bytes())?,
                MatrixFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &map)?;
                    writeln!(out)?;
                }
                MatrixFormat::Dot => out.write_all(render_dot(&input.cluster, &map).as_bytes())?,
                MatrixFormat::Mermaid => {
                    out.write_all(render_mermaid(&input.cluster, &map).as_bytes())?
                }
                MatrixFormat::Summary => {
                    let order = map.workload_order();
                    let pairs = order.len() * order.len();
                    let connected = order
                        .iter()
                        .flat_map(|&f| order.iter().map(move |&t| (f, t)))
                        .filter(|&(f, t)| map.any_allowed(f, t))
                        .count();
                    writeln!(
                        out,
                        "{}, pairs: {pairs}, pairs with any allowed port: {connected}, pairs with none: {}{}",
                        endpoint_counts(order.len(), map.node_count()),
                        pairs - connected,
                        differing(&map)
                    )?;
                }
                other => bail!(
                    "-o {} needs --port; the connectivity map prints as text, json, summary, dot or mermaid",
                    format!("{other:?}").to_lowercase()
                ),
            }
        }
    }
    out.flush()?;
    input.answered_partially("matrix")?;
    Ok(0)
}

/// `, differ by family: N` when some dual-stack pairs' ports differ between the families.
fn differing(map: &netpol_core::ConnectivityMap) -> String {
    let order = map.workload_order();
    let n = order
        .iter()
        .flat_map(|&f| order.iter().map(move |&t| (f, t)))
        .filter(|&(f, t)| map.differs(f, t))
        .count();
    if n == 0 {
        String::new()
    } else {
        format!(", differ by family: {n}")
    }
}
