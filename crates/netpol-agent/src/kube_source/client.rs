//! The API client: where the API is, how long a connection may take, who is asking.
//!
//! Two callers: the agent ([`client`], from its [`KubeConfig`]) and the CLI's one-shot reads
//! ([`connect`], from a [`ClusterAccess`]: `--kubeconfig`, `--context`, found the way kubectl
//! finds them). Both go through [`from_kubeconfig`] for a kubeconfig file and [`harden`] for the
//! timeouts.

use std::path::{Path, PathBuf};
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
            let file = KubeconfigFile::read(path)?;
            from_kubeconfig(file, None).await?
        }
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| AgentError::Kube(e.to_string()))?,
    };
    let read_timeout = config.watch_idle_timeout + config.request_timeout;
    harden(&mut cfg, config.request_timeout, read_timeout);
    let agent = HeaderValue::from_str(&user_agent(node)).map_err(|e| {
        AgentError::Config(format!(
            "the node name {node:?} is not valid in a header: {e}"
        ))
    })?;
    cfg.headers.push((header::USER_AGENT, agent));
    Client::try_from(cfg).map_err(|e| AgentError::Kube(e.to_string()))
}

/// Connecting and writing take at most `request_timeout`, a read waits at most `read_timeout`
/// for bytes; kube's own retry layer is off (the callers retry, or report, themselves).
fn harden(cfg: &mut kube::Config, request_timeout: Duration, read_timeout: Duration) {
    cfg.connect_timeout = Some(request_timeout);
    cfg.read_timeout = Some(read_timeout);
    cfg.reset_reader_on_write = true;
    cfg.write_timeout = Some(request_timeout);
    cfg.default_retry = false;
}

/// How a one-shot reader (the CLI) reaches a cluster, as kubectl does.
#[derive(Clone, Debug, Default)]
pub struct ClusterAccess {
    /// `--kubeconfig PATH`; else `$KUBECONFIG` (a list of files, merged), else
    /// `~/.kube/config`, else the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// `--context NAME`: a context of the kubeconfig instead of its current-context.
    pub context: Option<String>,
    /// The longest wait for one request (connecting, a page of a list).
    pub request_timeout: Duration,
    /// The User-Agent header (`netpol/VERSION`).
    pub user_agent: String,
}

/// A client for one cluster, and what the kubeconfig says about it.
#[derive(Clone)]
pub struct Connection {
    /// The client.
    pub client: Client,
    /// The context's namespace (`default` when it names none, and in-cluster the pod's).
    pub default_namespace: String,
    /// The API server's URL, for messages.
    pub server: String,
}

/// A kubeconfig read from a file (or the files of `$KUBECONFIG`), and where it came from.
struct KubeconfigFile {
    kubeconfig: Kubeconfig,
    from: String,
}

impl KubeconfigFile {
    fn read(path: &Path) -> Result<KubeconfigFile, AgentError> {
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
            AgentError::Kube(format!(
                "cannot read the kubeconfig {}: {e}",
                path.display()
            ))
        })?;
        Ok(KubeconfigFile {
            kubeconfig,
            from: path.display().to_string(),
        })
    }

    /// kubectl's search: `path`, else `$KUBECONFIG`, else `~/.kube/config` when it exists;
    /// `None` when there is no kubeconfig at all (in-cluster is then the only way left).
    fn find(path: Option<&Path>) -> Result<Option<KubeconfigFile>, AgentError> {
        if let Some(path) = path {
            return KubeconfigFile::read(path).map(Some);
        }
        let listed = Kubeconfig::from_env().map_err(|e| {
            AgentError::Kube(format!("cannot read the kubeconfig of $KUBECONFIG: {e}"))
        })?;
        if let Some(kubeconfig) = listed {
            return Ok(Some(KubeconfigFile {
                kubeconfig,
                from: "$KUBECONFIG".to_string(),
            }));
        }
        match std::env::home_dir().map(|h| h.join(".kube").join("config")) {
            Some(default) if default.exists() => KubeconfigFile::read(&default).map(Some),
            _ => Ok(None),
        }
    }
}

/// The client configuration of `context` (the current-context when `None`) of `file`; an
/// unknown context is an error listing the contexts the file has.
async fn from_kubeconfig(
    file: KubeconfigFile,
    context: Option<&str>,
) -> Result<kube::Config, AgentError> {
    let KubeconfigFile { kubeconfig, from } = file;
    if let Some(name) = context {
        if !kubeconfig.contexts.iter().any(|c| c.name == name) {
            let known: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(AgentError::Kube(format!(
                "the kubeconfig {from} has no context {name:?}; its contexts: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| AgentError::Kube(format!("the kubeconfig {from}: {e}")))
}

/// The client of a one-shot reader: the kubeconfig kubectl would use (see [`ClusterAccess`]),
/// else the in-cluster service account; every request within `request_timeout`, no retries.
pub async fn connect(access: &ClusterAccess) -> Result<Connection, AgentError> {
    let mut cfg = match KubeconfigFile::find(access.kubeconfig.as_deref())? {
        Some(file) => from_kubeconfig(file, access.context.as_deref()).await?,
        None if access.context.is_some() => {
            return Err(AgentError::Kube(
                "--context needs a kubeconfig, and there is none (no --kubeconfig, no \
                 $KUBECONFIG, no ~/.kube/config)"
                    .to_string(),
            ))
        }
        None => kube::Config::incluster().map_err(|e| {
            AgentError::Kube(format!(
                "no kubeconfig (no --kubeconfig, no $KUBECONFIG, no ~/.kube/config) and not \
                 in a pod ({e}): say which cluster to read with --kubeconfig, or give PATHs"
            ))
        })?,
    };
    harden(&mut cfg, access.request_timeout, access.request_timeout);
    let agent = HeaderValue::from_str(&access.user_agent)
        .map_err(|e| AgentError::Config(format!("bad User-Agent: {e}")))?;
    cfg.headers.push((header::USER_AGENT, agent));
    let default_namespace = cfg.default_namespace.clone();
    let server = cfg.cluster_url.to_string();
    let client = Client::try_from(cfg).map_err(|e| AgentError::Kube(e.to_string()))?;
    Ok(Connection {
        client,
        default_namespace,
        server,
    })
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
