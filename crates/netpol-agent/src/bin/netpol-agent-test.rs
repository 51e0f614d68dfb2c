//! Test harness process: runs the agent with flags (no clap; `netpol agent` is the real command).
//! `netpol-agent-test --node N [--dir D]... [--kube URL [--state-dir DIR]] [--netns NS]
//! [--listen ADDR] [--drift-ms MS] [--coalesce-ms MS] [--cleanup] [--json] [--no-denied-flow-log]`

use std::process::ExitCode;
use std::time::Duration;

use netpol_agent::{AgentConfig, KubeConfig, LogFormat};

fn parse() -> Result<AgentConfig, String> {
    let mut config = AgentConfig::new("");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--node" => config.node_name = value()?,
            "--dir" => config.manifest_dirs.push(value()?.into()),
            "--kube" => {
                config.kube = Some(KubeConfig {
                    api_server: Some(value()?),
                    ..KubeConfig::in_cluster()
                })
            }
            "--state-dir" => match config.kube.as_mut() {
                Some(kube) => kube.state_dir = Some(value()?.into()),
                None => return Err("--state-dir needs --kube first".into()),
            },
            "--netns" => config.netns = Some(value()?),
            "--listen" => config.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--drift-ms" => {
                config.drift_interval =
                    Duration::from_millis(value()?.parse().map_err(|e| format!("--drift-ms: {e}"))?)
            }
            "--coalesce-ms" => {
                config.coalesce_window = Duration::from_millis(
                    value()?
                        .parse()
                        .map_err(|e| format!("--coalesce-ms: {e}"))?,
                )
            }
            "--cleanup" => config.cleanup_on_exit = true,
            "--json" => config.log_format = LogFormat::Json,
            "--no-denied-flow-log" => config.denied_flow_log = false,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("netpol-agent-test: {e}");
            return ExitCode::from(2);
        }
    };
    netpol_agent::logging::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("netpol-agent-test: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(netpol_agent::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netpol-agent-test: {e}");
            ExitCode::from(2)
        }
    }
}
