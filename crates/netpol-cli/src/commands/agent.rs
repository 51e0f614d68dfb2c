//! `netpol agent`: argument parsing for the node agent (`netpol-agent` does the work).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use netpol_agent::{AgentConfig, KubeConfig, LogFormat};
use netpol_core::EvalOptions;

use crate::cli::{AgentArgs, LogFormatArg};

pub fn run(args: &AgentArgs) -> Result<u8> {
    if args.manifests.is_empty() && !args.kube && args.kubeconfig.is_none() {
        bail!("give a source: --manifests DIR, --kube (in-cluster) or --kubeconfig PATH");
    }
    if !(args.drift_interval.is_finite() && args.drift_interval > 0.0) {
        bail!("--drift-interval must be a positive number of seconds");
    }
    let seconds = |name: &str, value: f64| {
        if value.is_finite() && value > 0.0 {
            Ok(Duration::from_secs_f64(value))
        } else {
            bail!("{name} must be a positive number of seconds")
        }
    };
    let mut config = AgentConfig::new(args.node_name.clone());
    config.manifest_dirs = args.manifests.clone();
    if args.kube || args.kubeconfig.is_some() {
        config.kube = Some(KubeConfig {
            kubeconfig: args.kubeconfig.clone(),
            state_dir: args.state_dir.clone(),
            request_timeout: seconds("--request-timeout", args.request_timeout)?,
            watch_idle_timeout: seconds("--watch-idle-timeout", args.watch_idle_timeout)?,
            ..KubeConfig::in_cluster()
        });
    } else if args.state_dir.is_some() {
        bail!("--state-dir keeps API objects: it needs --kube or --kubeconfig");
    }
    config.netns = args.netns.clone();
    config.listen = args.listen;
    config.drift_interval = Duration::from_secs_f64(args.drift_interval);
    config.cleanup_on_exit = args.cleanup_on_exit;
    config.denied_flow_log = !args.no_denied_flow_log;
    config.ct_mark_bits = args.ct_mark_bits;
    config.eval_options = EvalOptions {
        ipblock_matches_workloads: args.ipblock_matches_workloads,
    };
    config.log_format = match args.log_format {
        LogFormatArg::Text => LogFormat::Text,
        LogFormatArg::Json => LogFormat::Json,
    };
    netpol_agent::logging::init(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(netpol_agent::run(config))?;
    Ok(0)
}
