//! `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::reconcile::{status, Enforcer, PolicyCounterValue, SharedState};
use crate::store::Store;
use crate::AgentError;

#[derive(Clone)]
struct App {
    metrics: Arc<Metrics>,
    state: SharedState,
    store: Store,
    enforcer: Arc<dyn Enforcer>,
}

/// The running server.
pub struct Server {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    /// The task serving requests; it ends when shutdown is signalled.
    pub task: JoinHandle<()>,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `shutdown` turns true.
///
/// `/readyz` answers 200 only when a ruleset is applied, the last sync succeeded and no source
/// is in trouble (a Kubernetes kind whose list or watch fails or is stuck, see
/// [`Store::set_trouble`]): then the rules in force may be out of date, and it says which kind
/// and since when.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    state: SharedState,
    store: Store,
    enforcer: Arc<dyn Enforcer>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Server, AgentError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Listen { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| AgentError::Listen { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(App {
            metrics,
            state,
            store,
            enforcer,
        });
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(%error, "metrics server failed");
        }
    });
    Ok(Server { local_addr, task })
}

async fn readyz(State(app): State<App>) -> impl IntoResponse {
    let s = status(&app.state);
    let troubles = app.store.troubles();
    if s.ready() && troubles.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else if s.ready() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "enforcing the last known state, which may be out of date: {}\n",
                troubles.join("; ")
            ),
        )
    } else if !s.waiting_for.is_empty() {
        // The store's view is fresher than the one of the last sync attempt.
        let waiting = app.store.not_ready();
        let waiting = if waiting.is_empty() {
            s.waiting_for
        } else {
            waiting
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("waiting for initial list of: {}\n", waiting.join(", ")),
        )
    } else if !s.first_applied {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no ruleset applied yet{}\n",
                s.last_error.map(|e| format!(": {e}")).unwrap_or_default()
            ),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "last sync failed: {}\n",
                s.last_error.unwrap_or_else(|| "unknown".into())
            ),
        )
    }
}

async fn metrics_handler(State(app): State<App>) -> impl IntoResponse {
    let s = status(&app.state);
    if s.first_applied && !s.counters.is_empty() {
        let enforcer = app.enforcer.clone();
        match tokio::task::spawn_blocking(move || enforcer.counters()).await {
            Ok(Ok(values)) => {
                let values = values
                    .into_iter()
                    .filter_map(|reading| {
                        s.counters
                            .get(&reading.name)
                            .map(|policy| PolicyCounterValue {
                                policy: policy.clone(),
                                counter: reading.name,
                                packets: reading.packets,
                                bytes: reading.bytes,
                            })
                    })
                    .collect();
                app.metrics.set_policy_counters(values);
            }
            Ok(Err(error)) => tracing::warn!(%error, "cannot read the kernel's counters"),
            Err(error) => tracing::warn!(%error, "counter task failed"),
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
}
