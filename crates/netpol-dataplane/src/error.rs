use std::io;

/// Everything that can go wrong while talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// A helper binary (`ip`, `nft`) could not be started at all.
    #[error("could not run `{command}`: {source} (are iproute2 and nftables installed?)")]
    Spawn {
        /// The command line that could not be started.
        command: String,
        /// Why it could not be started.
        #[source]
        source: io::Error,
    },
    /// `nft` refused or failed; nothing of that transaction was applied.
    #[error("nft {operation} failed{}: {stderr}", netns_suffix(.netns))]
    Nft {
        /// What nft was asked to do (`apply`, `list`, ...).
        operation: String,
        /// The namespace it ran in; `None` for the caller's own.
        netns: Option<String>,
        /// What nft printed on standard error.
        stderr: String,
    },
    /// `ip` (or another helper) exited with an error.
    #[error("`{command}` failed{}: {stderr}", netns_suffix(.netns))]
    Command {
        /// The command line that failed.
        command: String,
        /// The namespace it ran in; `None` for the caller's own.
        netns: Option<String>,
        /// What it printed on standard error.
        stderr: String,
    },
    /// A named network namespace could not be opened or entered.
    #[error("network namespace {name:?}: {source}")]
    Netns {
        /// The namespace's name.
        name: String,
        /// Why it could not be opened or entered.
        #[source]
        source: io::Error,
    },
    /// A name that would be unsafe or invalid to hand to the kernel or a script.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What the name is for (a namespace, a table, ...).
        what: &'static str,
        /// The refused name.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The lab description is inconsistent, or a lab operation names something unknown.
    #[error("lab: {0}")]
    Lab(String),
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, for the message.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// nft printed something this crate could not understand.
    #[error("unexpected nft output: {0}")]
    Parse(String),
}

fn netns_suffix(netns: &Option<String>) -> String {
    match netns {
        Some(name) => format!(" in netns {name}"),
        None => String::new(),
    }
}

impl DataplaneError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        DataplaneError::Io {
            context: context.into(),
            source,
        }
    }
}
