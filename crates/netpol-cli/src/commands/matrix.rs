//! `netpol matrix`: the truth table for one port, or the connectivity map over every port.

use std::io::Write;

use anyhow::{bail, Result};
use netpol_core::{analysis::output_keys, Analyzer, Protocol, TruthTable};

use crate::cli::{MatrixArgs, MatrixFormat};
use crate::input;
use crate::output::{grid, mark};

pub fn run(args: &MatrixArgs) -> Result<u8> {
    let input = input::load(&args.input);
    let analyzer = Analyzer::new(&input.cluster, input.opts);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.port {
        Some(port) => {
            let protocol: Protocol = args.protocol.parse()?;
            let table = analyzer.truth_table(protocol, port);
            let keys = output_keys(&input.cluster);
            match args.output.unwrap_or(MatrixFormat::Table) {
                MatrixFormat::Table | MatrixFormat::Text => {
                    out.write_all(render_grid(&table, &keys).as_bytes())?
                }
                MatrixFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &table)?;
                    writeln!(out)?;
                }
                MatrixFormat::Csv => out.write_all(render_csv(&table, &keys).as_bytes())?,
                MatrixFormat::Md => out.write_all(render_markdown(&table, &keys).as_bytes())?,
                MatrixFormat::Summary => writeln!(out, "{}", summary_line(&table))?,
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
                        "workloads: {}, pairs: {pairs}, pairs with any allowed port: {connected}, pairs with none: {}",
                        order.len(),
                        pairs - connected
                    )?;
                }
                other => bail!(
                    "-o {} needs --port; the connectivity map prints as text, json or summary",
                    format!("{other:?}").to_lowercase()
                ),
            }
        }
    }
    out.flush()?;
    input.answered_partially("matrix")?;
    Ok(0)
}

/// `workloads: 3, pairs: 9, allowed: 7, denied: 2 (TCP/80)`.
pub fn summary_line(table: &TruthTable) -> String {
    let n = table.workload_order().len();
    format!(
        "workloads: {n}, pairs: {}, allowed: {}, denied: {} ({}/{})",
        n * n,
        table.allowed_count(),
        table.denied_count(),
        table.protocol,
        table.port
    )
}

/// Rows are sources, columns destinations, `.` allowed and `X` denied.
pub fn render_grid(table: &TruthTable, keys: &[String]) -> String {
    let order = table.workload_order();
    let names: Vec<String> = order.iter().map(|&i| keys[i].clone()).collect();
    let corner = format!("{}/{} FROM\\TO", table.protocol, table.port);
    format!(
        "{}(. allowed, X denied)\n",
        grid(&corner, &names, |r, c| mark(
            table.allowed(order[r], order[c])
        ))
    )
}

fn render_csv(table: &TruthTable, keys: &[String]) -> String {
    let order = table.workload_order();
    let mut out = String::from("from\\to");
    for &to in order {
        out.push(',');
        out.push_str(&csv_field(&keys[to]));
    }
    out.push('\n');
    for &from in order {
        out.push_str(&csv_field(&keys[from]));
        for &to in order {
            out.push_str(if table.allowed(from, to) {
                ",true"
            } else {
                ",false"
            });
        }
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn render_markdown(table: &TruthTable, keys: &[String]) -> String {
    let order = table.workload_order();
    let mut out = format!("| {}/{} from \\ to |", table.protocol, table.port);
    for &to in order {
        out.push_str(&format!(" {} |", keys[to]));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(order.len()));
    out.push('\n');
    for &from in order {
        out.push_str(&format!("| {} |", keys[from]));
        for &to in order {
            out.push_str(if table.allowed(from, to) {
                " ✓ |"
            } else {
                " ✗ |"
            });
        }
        out.push('\n');
    }
    out
}
