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
    if let Some(path) = &args.kubeconfig {
        // kube's config inference reads $KUBECONFIG; set it before any thread exists.
        std::env::set_var("KUBECONFIG", path);
    }
    let mut config = AgentConfig::new(args.node_name.clone());
    config.manifest_dirs = args.manifests.clone();
    if args.kube || args.kubeconfig.is_some() {
        config.kube = Some(KubeConfig::in_cluster());
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
