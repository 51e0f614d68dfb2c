//! One kind's complete list, page by page (`limit` and `continue`, as kube-rs pages), every
//! page within the request timeout: the agent's relists and the CLI's snapshot both read a kind
//! this way.

use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::Status;
use tokio::time::timeout;

use super::errors::{describe_for, describe_status_for, Asker, Verb};
use super::Kind;

/// Objects asked for per list page.
pub(super) const PAGE_SIZE: u32 = 500;

/// Why a list or watch did not go on.
pub(super) enum Failure {
    /// The request failed (an HTTP error status, a transport or TLS error).
    Request { verb: Verb, error: kube::Error },
    /// An ERROR event on an established watch.
    Event(Box<Status>),
    /// The request was not answered within the request timeout.
    Timeout { verb: Verb, after: Duration },
    /// An established watch sent nothing for the idle timeout.
    Silent { after: Duration },
}

impl Failure {
    pub(super) fn is_gone(&self) -> bool {
        self.status().is_some_and(|s| s.code == 410)
    }

    pub(super) fn is_not_found(&self) -> bool {
        self.status().is_some_and(|s| s.code == 404)
    }

    pub(super) fn status(&self) -> Option<&Status> {
        match self {
            Failure::Request {
                error: kube::Error::Api(status),
                ..
            } => Some(status),
            Failure::Event(status) => Some(status),
            _ => None,
        }
    }

    pub(super) fn describe(&self, kind: Kind) -> String {
        self.describe_for(kind, Asker::Agent)
    }

    /// [`describe`](Self::describe) in the words for `asker`.
    pub(super) fn describe_for(&self, kind: Kind, asker: Asker) -> String {
        match self {
            Failure::Request { verb, error } => format!(
                "{} failed: {}",
                verb_word(*verb),
                describe_for(error, kind, *verb, asker)
            ),
            Failure::Event(status) => format!(
                "watch failed: {}",
                describe_status_for(status, kind, Verb::Watch, asker)
            ),
            Failure::Timeout { verb, after } => format!(
                "{} not answered within {} s (request timeout)",
                verb_word(*verb),
                after.as_secs_f64()
            ),
            Failure::Silent { after } => format!(
                "watch sent nothing (no event, no bookmark) for {} s; restarted from its last resourceVersion",
                after.as_secs_f64()
            ),
        }
    }
}

fn verb_word(verb: Verb) -> &'static str {
    match verb {
        Verb::Discover => "discovery",
        Verb::List => "list",
        Verb::Watch => "watch",
    }
}

/// Lists every page of `api`, handing each object to `each` as it comes; returns the list's
/// resourceVersion. A page not answered within `after` is a [`Failure::Timeout`].
pub(super) async fn pages(
    api: &Api<DynamicObject>,
    after: Duration,
    mut each: impl FnMut(DynamicObject),
) -> Result<String, Failure> {
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = timeout(after, api.list(&params))
            .await
            .map_err(|_| Failure::Timeout {
                verb: Verb::List,
                after,
            })?
            .map_err(|error| Failure::Request {
                verb: Verb::List,
                error,
            })?;
        for obj in page.items {
            each(obj);
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params.continue_token = Some(token),
            _ => return Ok(page.metadata.resource_version.unwrap_or_default()),
        }
    }
}
