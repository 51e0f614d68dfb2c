/// Why the agent could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A setting is missing, malformed or contradicts another.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A manifest directory could not be watched for changes.
    #[error("cannot watch {path}: {message}")]
    Watch {
        /// The directory.
        path: String,
        /// What the file watcher reported.
        message: String,
    },
    /// The HTTP endpoint (metrics, health) could not bind its address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The Kubernetes client could not be configured or the API server refused it.
    #[error("Kubernetes client: {0}")]
    Kube(String),
}
