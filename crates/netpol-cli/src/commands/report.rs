//! `netpol report`: the self-contained HTML page (or the data it draws).

use std::io::Write;

use anyhow::Result;
use netpol_core::Analyzer;

use crate::cli::{ReportArgs, ReportFormat};
use crate::input;
use crate::render::report::ReportData;

pub fn run(args: &ReportArgs) -> Result<u8> {
    let input = input::load(&args.input)?;
    let map = Analyzer::new(&input.cluster, input.opts).connectivity_map();
    let data = ReportData::new(&input.cluster, input.opts, &map);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.output {
        ReportFormat::Html => out.write_all(data.to_html()?.as_bytes())?,
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &data)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    input.answered_partially("report")?;
    Ok(0)
}
