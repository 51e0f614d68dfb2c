//! One kind's list and watch, by hand rather than through kube-runtime's watcher, so that:
//! - every request has a timeout (a list page or a watch start not answered within
//!   `request_timeout` is abandoned and retried);
//! - an established watch that sends nothing, not even a bookmark (the agent asks for them), for
//!   `watch_idle_timeout` is treated as dead and restarted from its last resourceVersion; a
//!   `410 Gone` (expired resourceVersion) relists;
//! - retries wait a capped, jittered backoff (`backoff_initial` doubling to `backoff_max`);
//! - a failing or stuck kind is recorded in the store as in trouble (what, since when), which
//!   `/readyz` shows, until its next list completes or its watch delivers again;
//! - each failure is logged in words a user can act on (`errors`).
//!
//! Relists are buffered and replace the kind's objects in one step when complete, so no sync sees
//! part of one. An object that does not convert keeps its last good version: the one in the
//! store, or after a restart the one in the state file ([`crate::store::last_good`]).

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};
use netpol_core::Cluster;
use tokio::sync::watch;
use tokio::time::timeout;

use super::client::Backoff;
use super::errors::Verb;
use super::list::{self, Failure};
use super::{confirmed_not_served, crd_removed, object_key, resource, Ctx, Ended, Kind, Mode};

/// The server-side lifetime asked for a watch (kube-core refuses 295 s and more); the watch
/// then ends normally and is started again from its last resourceVersion.
const WATCH_TIMEOUT_SECS: u32 = 290;
/// Consecutive 404 Not Found answers for a CRD kind before discovery is asked whether the CRD
/// is gone; the backoff spaces them, so a removed CRD is noticed within about a second.
const NOT_FOUND_BEFORE_RECHECK: u32 = 2;

/// Where the kind's loop is.
enum Phase {
    List,
    Watch(String),
}

/// Lists and watches `kind` until shutdown, or until its CRD is gone (CRD kinds only).
pub(super) async fn watch_kind(
    ctx: Ctx,
    kind: Kind,
    mode: Mode,
    mut shutdown: watch::Receiver<bool>,
) -> Ended {
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource(kind));
    let mut w = KindWatch::new(ctx, kind, mode);
    let mut phase = Phase::List;
    loop {
        let step = async {
            match &mut phase {
                Phase::List => w.list(&api).await.map(|rv| Some(Phase::Watch(rv))),
                Phase::Watch(rv) => w.watch(&api, rv).await.map(|()| None),
            }
        };
        let outcome = tokio::select! {
            o = step => o,
            _ = crate::stopped(&mut shutdown) => return Ended::Stopped,
        };
        match outcome {
            Ok(Some(next)) => phase = next,
            Ok(None) => {} // the watch ended normally: watch again from its resourceVersion
            Err(failure) if failure.is_gone() => {
                tracing::info!(source = %w.source, "resourceVersion expired (410 Gone); relisting");
                phase = Phase::List;
                w.gone_in_row += 1;
                if w.gone_in_row > 1 {
                    // Gone again right after a relist: never relist in a hot loop.
                    let delay = w.backoff.delay();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = crate::stopped(&mut shutdown) => return Ended::Stopped,
                    }
                }
            }
            Err(failure) => {
                if let Some(ended) = w.failed(failure).await {
                    return ended;
                }
                let delay = w.backoff.delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = crate::stopped(&mut shutdown) => return Ended::Stopped,
                }
            }
        }
    }
}

/// The state of one kind's list and watch.
struct KindWatch {
    ctx: Ctx,
    kind: Kind,
    mode: Mode,
    source: String,
    backoff: Backoff,
    /// Consecutive 404 Not Found answers.
    not_found: u32,
    /// An initial list completed once.
    listed: bool,
    /// Objects whose current version does not convert, enforced as their last good version.
    held: BTreeSet<String>,
    /// The kind is recorded as in trouble in the store.
    troubled: bool,
    /// 410 Gone answers since a watch last delivered something.
    gone_in_row: u32,
}

/// A relist being received, applied in one step at its end.
#[derive(Default)]
struct Relist {
    objects: BTreeMap<String, Cluster>,
    texts: BTreeMap<String, String>,
    held: BTreeSet<String>,
}

impl KindWatch {
    fn new(ctx: Ctx, kind: Kind, mode: Mode) -> Self {
        let backoff = Backoff::new(ctx.config.backoff_initial, ctx.config.backoff_max);
        KindWatch {
            ctx,
            kind,
            mode,
            source: super::source_name(kind),
            backoff,
            not_found: 0,
            listed: false,
            held: BTreeSet::new(),
            // Discovery may have recorded trouble for the kind before its loop started.
            troubled: true,
            gone_in_row: 0,
        }
    }

    /// Lists every page; returns the list's resourceVersion to watch from.
    async fn list(&mut self, api: &Api<DynamicObject>) -> Result<String, Failure> {
        let after = self.ctx.config.request_timeout;
        let mut relist = Relist::default();
        tracing::debug!(source = %self.source, "list started");
        let rv = list::pages(api, after, |obj| self.relisted(obj, &mut relist)).await?;
        self.relist_done(relist);
        Ok(rv)
    }

    /// Watches from `rv` (kept up to date) until the watch ends normally or fails.
    async fn watch(&mut self, api: &Api<DynamicObject>, rv: &mut String) -> Result<(), Failure> {
        let (after, idle) = (
            self.ctx.config.request_timeout,
            self.ctx.config.watch_idle_timeout,
        );
        let params = WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
        let stream = timeout(after, api.watch(&params, rv))
            .await
            .map_err(|_| Failure::Timeout {
                verb: Verb::Watch,
                after,
            })?
            .map_err(|error| Failure::Request {
                verb: Verb::Watch,
                error,
            })?;
        let mut stream = std::pin::pin!(stream);
        let mut delivered = false;
        loop {
            let item = timeout(idle, stream.next())
                .await
                .map_err(|_| Failure::Silent { after: idle })?;
            let event = match item {
                None if delivered => return Ok(()),
                None => {
                    // Ended without a single event or bookmark: something in between closes
                    // watches at once; do not re-watch in a hot loop.
                    tokio::time::sleep(self.backoff.delay()).await;
                    return Ok(());
                }
                Some(Err(error)) => {
                    return Err(Failure::Request {
                        verb: Verb::Watch,
                        error,
                    })
                }
                Some(Ok(WatchEvent::Error(status))) => return Err(Failure::Event(status)),
                Some(Ok(event)) => event,
            };
            if !delivered {
                delivered = true;
                self.gone_in_row = 0;
                self.recovered();
            }
            match event {
                WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                    set_rv(rv, &obj);
                    self.applied(obj);
                }
                WatchEvent::Deleted(obj) => {
                    set_rv(rv, &obj);
                    self.deleted(&obj);
                }
                WatchEvent::Bookmark(b) => *rv = b.metadata.resource_version,
                WatchEvent::Error(_) => {}
            }
        }
    }

    /// The kind answers again: clear its trouble and restart the backoff.
    fn recovered(&mut self) {
        self.not_found = 0;
        self.backoff.reset();
        if !std::mem::take(&mut self.troubled) {
            return;
        }
        if let Some(trouble) = self.ctx.store.clear_trouble(&self.source) {
            let down = trouble.since.elapsed().unwrap_or_default().as_secs_f64();
            tracing::info!(source = %self.source, after_seconds = down, was = %trouble.what,
                "{} is followed again", self.kind.plural);
            self.ctx.metrics.set_source_stale(&self.source, false);
        }
    }

    /// A failure: `Some` when the watch must end (its CRD is gone).
    async fn failed(&mut self, failure: Failure) -> Option<Ended> {
        let (source, kind) = (&self.source, self.kind);
        self.ctx.metrics.source_error(source);
        if self.mode != Mode::BuiltIn && failure.is_not_found() {
            self.not_found += 1;
            tracing::warn!(%source, "{} not found (CRD being removed?); retrying", kind.plural);
            if self.not_found < NOT_FOUND_BEFORE_RECHECK {
                return None;
            }
            if confirmed_not_served(&self.ctx, kind).await {
                crd_removed(&self.ctx.store, kind, self.mode);
                self.ctx.last_good.replace_source(source, BTreeMap::new());
                self.ctx.metrics.set_last_good(source, 0);
                self.ctx.store.clear_trouble(source);
                self.ctx.metrics.set_source_stale(source, false);
                return Some(Ended::NotServed(kind));
            }
            // Discovery still lists it (a CRD being re-created) or cannot be asked now.
        }
        let what = failure.describe(kind);
        tracing::warn!(%source, error = %what, "{} may be out of date; the last state stays in force, retrying", kind.plural);
        self.ctx.store.set_trouble(source, what);
        self.ctx.metrics.set_source_stale(source, true);
        self.troubled = true;
        None
    }

    /// One object of a relist.
    fn relisted(&mut self, obj: DynamicObject, relist: &mut Relist) {
        let key = object_key(&obj);
        match self.ctx.converter(self.kind).convert(obj) {
            Ok((objects, text)) => {
                relist.objects.insert(key.clone(), objects);
                if self.ctx.last_good.path().is_some() {
                    relist.texts.insert(key, text);
                }
            }
            Err(errors) => {
                if let Some((objects, from)) = self.last_good(&key) {
                    self.report_held(&key, &errors, from);
                    relist.objects.insert(key.clone(), objects);
                    if let Some(text) = self.ctx.last_good.get(&self.source, &key) {
                        relist.texts.insert(key.clone(), text);
                    }
                    relist.held.insert(key);
                } else {
                    self.report_skipped(&key, &errors);
                }
            }
        }
    }

    fn relist_done(&mut self, relist: Relist) {
        let (source, kind) = (&self.source, self.kind);
        if self.mode == Mode::CrdLate && !self.listed {
            tracing::info!(%source, objects = relist.objects.len(), "initial list of {} applied (CRD installed after start)", kind.kind);
        } else {
            tracing::info!(%source, objects = relist.objects.len(), "list complete");
        }
        self.listed = true;
        self.ctx.store.replace_source(source, relist.objects);
        self.ctx.last_good.replace_source(source, relist.texts);
        self.held = relist.held;
        self.ctx.metrics.set_last_good(source, self.held.len());
        if self.mode != Mode::CrdLate {
            self.ctx.store.mark_ready(source);
        }
        self.recovered();
    }

    /// An ADDED or MODIFIED object.
    fn applied(&mut self, obj: DynamicObject) {
        let key = object_key(&obj);
        match self.ctx.converter(self.kind).convert(obj) {
            Ok((objects, text)) => {
                self.ctx.store.upsert(&self.source, &key, objects);
                self.ctx.last_good.record(&self.source, &key, &text);
                if self.held.remove(&key) {
                    tracing::info!(source = %self.source, object = %key, "object valid again; its current version is enforced");
                }
            }
            Err(errors) => match self.last_good(&key) {
                Some((objects, from)) => {
                    self.report_held(&key, &errors, from);
                    self.ctx.store.upsert(&self.source, &key, objects);
                    self.held.insert(key);
                }
                None => self.report_skipped(&key, &errors),
            },
        }
        self.ctx
            .metrics
            .set_last_good(&self.source, self.held.len());
    }

    fn deleted(&mut self, obj: &DynamicObject) {
        let key = object_key(obj);
        self.ctx.store.remove(&self.source, &key);
        self.ctx.last_good.forget(&self.source, &key);
        self.held.remove(&key);
        self.ctx
            .metrics
            .set_last_good(&self.source, self.held.len());
    }

    /// The last good version of `key`: the one in force (memory) or, after a restart, the
    /// state file's (loaded again, so it is validated like any object).
    fn last_good(&self, key: &str) -> Option<(Cluster, &'static str)> {
        if let Some(objects) = self.ctx.store.get(&self.source, key) {
            return Some((objects, "in force"));
        }
        let text = self.ctx.last_good.get(&self.source, key)?;
        let name = format!(
            "{}/{} (state file)",
            self.kind.kind,
            key.trim_start_matches('/')
        );
        let outcome = self.ctx.loader.load(&name, &text);
        outcome
            .errors
            .is_empty()
            .then_some((outcome.cluster, "from the state file"))
    }

    fn report_held(&self, key: &str, errors: &str, from: &str) {
        tracing::warn!(source = %self.source, object = %key, %errors,
            "object does not convert; its last good version ({from}) stays enforced until a valid one arrives");
    }

    fn report_skipped(&self, key: &str, errors: &str) {
        tracing::warn!(source = %self.source, object = %key, %errors,
            "object skipped: it does not convert and no good version of it is known");
    }
}

fn set_rv(rv: &mut String, obj: &DynamicObject) {
    if let Some(v) = &obj.metadata.resource_version {
        rv.clone_from(v);
    }
}
