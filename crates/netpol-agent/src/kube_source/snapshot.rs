//! A one-shot read of a live cluster, for the CLI: one paged list per kind (no watch).
//!
//! Which kinds: [`CLI_KINDS`], every kind the loader reads from files (netpol-k8s's
//! `READ_KINDS`): the agent's watched kinds plus Node, the workload controllers (Deployment,
//! ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ReplicationController) and KubeVirt's
//! VirtualMachine, so that Pods fold into their controllers and `--from deployment/NS/NAME`
//! works as it does on manifests. The agent's watch does not list them (enforcement needs no
//! object without an address); only this snapshot does.
//!
//! A CRD kind is listed only when discovery says it is served; one that is not installed is
//! absent, with a note. Every object is pruned and named as the watch does it, keeping the owner
//! references the controllers' folding reads too ([`ObjectText::with_owners`]), and the texts are loaded by the netpol-k8s loader as one input
//! ([`Snapshot::load`]), like the files of a directory. A kind that cannot be read (403, a
//! timeout, the server unreachable) is a [`KindError`] naming it; the other kinds are still read.

use std::fmt;
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::Client;
use netpol_k8s::schema::{self, KindSchema};
use netpol_k8s::{LoadOptions, Loaded};

use super::errors::Asker;
use super::{discover_with, list, resource, Discovered, Kind, ObjectText};

/// The kinds a snapshot lists: everything the loader reads from files.
pub static CLI_KINDS: &[KindSchema] = &schema::READ_KINDS;

/// Where the namespaced kinds are listed; cluster-scoped kinds are always listed whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Namespaces {
    /// Every namespace (`-A`).
    All,
    /// One namespace (`-n NS`, or the context's).
    One(String),
}

/// A kind that could not be read, and why (in words saying what to do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindError {
    /// The kind.
    pub kind: Kind,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for KindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read {} ({}): {}",
            self.kind.plural, self.kind.api_version, self.message
        )
    }
}

/// What a snapshot read.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every object read, kind by kind in [`CLI_KINDS`] order, each kind's by key.
    pub objects: Vec<ObjectText>,
    /// Kinds not served (CRDs not installed): absent, not an error.
    pub not_served: Vec<Kind>,
    /// Kinds that could not be read.
    pub errors: Vec<KindError>,
    /// How many kinds were read completely (a served kind with no object counts).
    pub kinds_read: usize,
    /// The API server could not be reached at all (no answer to the first list, not even an
    /// error status): why. Nothing else was asked.
    pub unreachable: Option<String>,
}

impl Snapshot {
    /// Every object as `(name, text)`.
    pub fn texts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.objects
            .iter()
            .map(|o| (o.name.as_str(), o.text.as_str()))
    }

    /// The objects loaded as one input, exactly as the files of a directory would be.
    pub fn load(&self, opts: &LoadOptions) -> Loaded {
        netpol_k8s::load_texts(self.texts(), opts)
    }
}

/// How one kind's read ended.
enum KindRead {
    Objects(Vec<ObjectText>),
    NotServed,
    Failed {
        message: String,
        /// No answer at all (transport, TLS, timeout), rather than an error status.
        unanswered: bool,
    },
}

/// Lists `kinds` once each, every request within `request_timeout`: the first kind alone (a
/// server that does not answer it is [`Snapshot::unreachable`], one message rather than one per
/// kind), then the others all at once.
pub async fn snapshot(
    client: &Client,
    kinds: &'static [KindSchema],
    namespaces: &Namespaces,
    request_timeout: Duration,
) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let Some((first, rest)) = kinds.split_first() else {
        return snapshot;
    };
    let answer = read_kind(client, first, namespaces, request_timeout).await;
    if let KindRead::Failed {
        message,
        unanswered: true,
    } = &answer
    {
        snapshot.unreachable = Some(message.clone());
        return snapshot;
    }
    let reads = rest
        .iter()
        .map(|kind| read_kind(client, kind, namespaces, request_timeout));
    let answers = std::iter::once(answer).chain(futures::future::join_all(reads).await);
    for (kind, answer) in kinds.iter().zip(answers) {
        match answer {
            KindRead::Objects(objects) => {
                snapshot.objects.extend(objects);
                snapshot.kinds_read += 1;
            }
            KindRead::NotServed => snapshot.not_served.push(kind),
            KindRead::Failed { message, .. } => snapshot.errors.push(KindError { kind, message }),
        }
    }
    snapshot
}

async fn read_kind(
    client: &Client,
    kind: Kind,
    namespaces: &Namespaces,
    after: Duration,
) -> KindRead {
    if kind.crd {
        match discover_with(client, after, kind, Asker::User).await {
            Discovered::Served => {}
            Discovered::NotServed => return KindRead::NotServed,
            Discovered::Unknown(why) => {
                return KindRead::Failed {
                    message: why,
                    unanswered: false,
                }
            }
        }
    }
    let api: Api<DynamicObject> = match namespaces {
        Namespaces::One(ns) if kind.namespaced => {
            Api::namespaced_with(client.clone(), ns, &resource(kind))
        }
        _ => Api::all_with(client.clone(), &resource(kind)),
    };
    let mut objects = Vec::new();
    match list::pages(&api, after, |obj| {
        objects.push(ObjectText::with_owners(kind, &obj))
    })
    .await
    {
        Ok(_) => {
            objects.sort_by(|a, b| a.key.cmp(&b.key));
            KindRead::Objects(objects)
        }
        Err(failure) => KindRead::Failed {
            message: failure.describe_for(kind, Asker::User),
            unanswered: failure.status().is_none(),
        },
    }
}
