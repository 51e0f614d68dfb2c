//! netpol-agent: the per-node agent. It follows one or more sources of cluster state (a directory
//! of manifests, the Kubernetes API), compiles the node's nftables table from the whole current
//! state whenever it changes, keeps that table in force (atomic replace, retry with backoff, drift
//! repair), and reports what it does through `/metrics`, `/healthz`, `/readyz` and logs,
//! including one log event per denied flow naming the policies that deny it ([`denied`]).
//!
//! The entry point is [`run`] with an [`AgentConfig`]; argument parsing belongs to `netpol-cli`.
//! The reconcile loop is written against three small traits ([`ManifestLoader`], [`Compiler`],
//! [`Enforcer`]) so that it can be driven by the real loader, compiler and kernel (the default
//! wiring in [`run`]) or, in tests, by the same real pieces inside a scratch network namespace.
//!
//! The API source also serves the CLI's reads of a live cluster: [`kube_source::connect`] (the
//! kubeconfig and context kubectl would use) and [`kube_source::snapshot`] (one list per kind,
//! the same pruning and loader as the watch).

mod config;
pub mod denied;
mod error;
pub mod explain;
pub mod files;
pub mod http;
pub mod kube_source;
pub mod logging;
pub mod metrics;
pub mod real;
pub mod reconcile;
pub mod store;
pub mod table_metrics;

pub use config::{AgentConfig, KubeConfig, LogFormat};
pub use error::AgentError;
pub use reconcile::{Compiled, Compiler, Enforcer, PolicyCounterValue};
pub use store::{LoadOutcome, ManifestLoader, Store};

use std::sync::Arc;

use tokio::sync::watch;

/// Runs the agent until SIGTERM or SIGINT (or until `shutdown` resolves, see [`run_until`]).
///
/// Rules stay in the kernel on exit unless `config.cleanup_on_exit` is set.
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = tx.send(true);
    });
    run_until(config, rx).await
}

/// Like [`run`], but stops when `shutdown` becomes true instead of on signals.
pub async fn run_until(
    config: AgentConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let loader: Arc<dyn ManifestLoader> = Arc::new(real::K8sLoader::new());
    let compiler: Arc<dyn Compiler> = Arc::new(real::NftCompiler::for_node(
        config.eval_options,
        config.node_options.clone(),
    ));
    let enforcer: Arc<dyn Enforcer> = Arc::new(real::KernelEnforcer::new(config.netns.clone()));
    run_with(config, loader, compiler, enforcer, shutdown).await
}

/// The agent with its three collaborators given explicitly.
pub async fn run_with(
    config: AgentConfig,
    loader: Arc<dyn ManifestLoader>,
    compiler: Arc<dyn Compiler>,
    enforcer: Arc<dyn Enforcer>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    config.validate()?;
    let metrics = Arc::new(metrics::Metrics::new());
    let store = Store::new();

    // Register every source before any of them starts, so that the reconcile loop cannot see
    // "all sources ready" while one has not even begun its initial list.
    let mut tasks = Vec::new();
    for (i, dir) in config.manifest_dirs.iter().enumerate() {
        let source = format!("dir{i}:{}", dir.display());
        store.register_source(&source);
        let handle = files::spawn(
            source,
            dir.clone(),
            config.file_debounce,
            loader.clone(),
            store.clone(),
            metrics.clone(),
            shutdown.clone(),
        )?;
        tasks.push(handle);
    }
    if let Some(kube) = &config.kube {
        let handles = kube_source::spawn(
            kube.clone(),
            &config.node_name,
            loader.clone(),
            store.clone(),
            metrics.clone(),
            shutdown.clone(),
        )
        .await?;
        tasks.extend(handles);
    }

    let state = reconcile::SharedState::default();
    let server = http::serve(
        config.listen,
        metrics.clone(),
        state.clone(),
        store.clone(),
        enforcer.clone(),
        shutdown.clone(),
    )
    .await?;
    tracing::info!(listen = %server.local_addr, node = %config.node_name, "agent started");

    let denied_log = start_denied_log(&config, &state, &metrics);

    let result =
        reconcile::Reconciler::new(&config, store, compiler, enforcer.clone(), metrics, state)
            .run(shutdown.clone())
            .await;

    let _ = shutdown.wait_for(|s| *s).await;
    for t in tasks {
        t.abort();
    }
    server.task.abort();
    if let Some(d) = denied_log {
        let _ = tokio::task::spawn_blocking(move || d.stop()).await;
    }
    if config.cleanup_on_exit {
        remove_ruleset(enforcer).await;
    } else {
        tracing::info!("leaving the ruleset in place on exit");
    }
    result
}

/// Starts the denied-flow log when configured. Logging denials is an aid, not enforcement: if
/// the group cannot be had, this says so and the agent goes on without it.
fn start_denied_log(
    config: &AgentConfig,
    state: &reconcile::SharedState,
    metrics: &Arc<metrics::Metrics>,
) -> Option<denied::DeniedLog> {
    if !config.denied_flow_log {
        return None;
    }
    match denied::DeniedLog::start(
        config.netns.as_deref(),
        config.eval_options,
        state.clone(),
        metrics.clone(),
    ) {
        Ok(d) => {
            tracing::info!(
                group = netpol_nft::DENIED_LOG_GROUP,
                "denied-flow log listening"
            );
            Some(d)
        }
        Err(error) => {
            tracing::error!(%error, "denied-flow log unavailable; denials are only counted");
            None
        }
    }
}

/// Deletes the table on exit (`cleanup_on_exit`), reporting the outcome.
async fn remove_ruleset(enforcer: Arc<dyn Enforcer>) {
    match tokio::task::spawn_blocking(move || enforcer.remove()).await {
        Ok(Ok(())) => tracing::info!("removed the ruleset on exit (cleanup_on_exit)"),
        Ok(Err(error)) => tracing::error!(%error, "could not remove the ruleset on exit"),
        Err(error) => tracing::error!(%error, "cleanup task failed"),
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the agent");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
