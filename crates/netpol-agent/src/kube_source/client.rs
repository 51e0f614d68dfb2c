//! The API client: where the API is, how long a connection may take, who is asking.

use std::time::Duration;

use axum::http::{header, HeaderValue};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;

use crate::{AgentError, KubeConfig};

/// The agent's User-Agent: `netpol-agent/VERSION (node NODE)`, so that API server audit logs
/// and rate limiting (API priority and fairness) can tell the agents of the nodes apart.
pub fn user_agent(node: &str) -> String {
    format!("netpol-agent/{} (node {node})", env!("CARGO_PKG_VERSION"))
}

/// Builds the client from the configuration.
///
/// Timeouts: connecting takes at most `request_timeout`; every read of a response waits at most
/// `watch_idle_timeout` plus `request_timeout` for bytes (a backstop under the source's own
/// per-request and idle timeouts, which are shorter and say which kind is stuck). kube's own
/// retry layer is off: the source retries every request itself, with its capped backoff, and
/// reports what it is waiting for.
pub async fn client(config: &KubeConfig, node: &str) -> Result<Client, AgentError> {
    let mut cfg = match (&config.api_server, &config.kubeconfig) {
        (Some(url), _) => {
            let uri: axum::http::Uri = url
                .parse()
                .map_err(|e| AgentError::Kube(format!("bad API server URL {url:?}: {e}")))?;
            kube::Config::new(uri)
        }
        (None, Some(path)) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                AgentError::Kube(format!(
                    "cannot read the kubeconfig {}: {e}",
                    path.display()
                ))
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| AgentError::Kube(format!("the kubeconfig {}: {e}", path.display())))?
        }
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| AgentError::Kube(e.to_string()))?,
    };
    cfg.connect_timeout = Some(config.request_timeout);
    cfg.read_timeout = Some(config.watch_idle_timeout + config.request_timeout);
    cfg.reset_reader_on_write = true;
    cfg.write_timeout = Some(config.request_timeout);
    cfg.default_retry = false;
    let agent = HeaderValue::from_str(&user_agent(node)).map_err(|e| {
        AgentError::Config(format!(
            "the node name {node:?} is not valid in a header: {e}"
        ))
    })?;
    cfg.headers.push((header::USER_AGENT, agent));
    Client::try_from(cfg).map_err(|e| AgentError::Kube(e.to_string()))
}

/// Delays between retries: doubling from `initial` up to `max`, each drawn at random between
/// half of it and all of it. Reset once a request succeeds.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff whose first delay is about `initial` and whose delays never exceed `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next retry.
    pub fn delay(&mut self) -> Duration {
        let full = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        full.mul_f64(0.5 + 0.5 * random_unit())
    }

    /// A request succeeded: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// A number in [0, 1) from the standard library's randomly keyed hasher (no random crate
/// needed for jitter).
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_its_cap_with_jitter_and_restarts_after_a_success() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));
        let delays: Vec<Duration> = (0..8).map(|_| b.delay()).collect();
        let caps = [250, 500, 1000, 2000, 4000, 4000, 4000, 4000];
        for (d, cap) in delays.iter().zip(caps) {
            let cap = Duration::from_millis(cap);
            assert!(
                *d <= cap && *d >= cap / 2,
                "{d:?} not within [{:?}, {cap:?}]",
                cap / 2
            );
        }
        // Jitter: the capped delays are not all the same.
        assert!(delays[4..].windows(2).any(|w| w[0] != w[1]), "{delays:?}");
        b.reset();
        assert!(b.delay() <= Duration::from_millis(250));
    }

    #[test]
    fn the_user_agent_names_the_version_and_the_node() {
        assert_eq!(
            user_agent("virtlab-1"),
            format!(
                "netpol-agent/{} (node virtlab-1)",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}
