//! A FAKE Kubernetes API server: the one faked part of the agent's and the CLI's tests (no real
//! one can run in tests). It speaks just enough of the real protocol for kube-rs clients:
//! paginated lists with resourceVersions and continue tokens, cluster-wide or in one namespace
//! (`/api/v1/namespaces/NS/pods`), streaming watches from a resourceVersion with ADDED/MODIFIED/DELETED events and
//! BOOKMARKs, watches that end after a while (clients must re-watch), a one-shot
//! `410 Gone` (expired resourceVersion) that forces a relist, and group discovery for CRDs.
//!
//! CRDs can be installed and removed while clients run: a custom resource (any group version
//! other than the built-in ones in `BUILT_IN`) is listed and watched only while
//! [`FakeApi::serve_group`] serves it; otherwise its list and watch answer 404 Not Found, as a
//! real API server does for a CRD that is not (or no longer) installed, and its open watches end.
//!
//! Faults on purpose ([`Faults`], [`FakeApi::set_faults`], [`FakeApi::reset_connections`]):
//! discovery answering 500, every connection reset, lists accepted and never answered, watches
//! that go silent on a live connection, a required token (401), RBAC refusals (403); and https
//! with a certificate of choice ([`FakeApi::start_tls`]: trusted, expired, for another host).
// Helpers outside #[test] functions may panic too: in a test a panic is a failure report, and
// clippy's allow-unwrap-in-tests only covers #[test] functions and #[cfg(test)] modules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faults;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::channel::mpsc;
use serde_json::{json, Value};
use tokio::sync::Notify;

pub use faults::{cert_path, Faults};

#[derive(Default)]
struct Inner {
    rv: u64,
    /// plural -> "ns/name" -> object
    objects: HashMap<String, BTreeMap<String, Value>>,
    /// (rv, plural, type, object)
    events: Vec<(u64, String, &'static str, Value)>,
    /// plurals whose next watch request gets 410 Gone.
    gone: HashMap<String, bool>,
    /// Bumped to end every open watch.
    watch_generation: u64,
    page_size: usize,
    page_delay: Duration,
    watch_lifetime: Duration,
    served_groups: Vec<(String, String, String)>, // (group/version, plural, kind)
    pub list_requests: u64,
    /// plural -> list and watch requests for it (404s included).
    requests_by_plural: HashMap<String, u64>,
    discovery_requests: u64,
    pub watch_requests: u64,
    pub gone_sent: u64,
    faults: Faults,
    /// Every User-Agent header received.
    user_agents: Vec<String>,
    /// plural -> the query of every watch request.
    watch_queries: HashMap<String, Vec<HashMap<String, String>>>,
    /// plural -> list requests (pages) answered or hung.
    lists_by_plural: HashMap<String, u64>,
}

/// Group versions the fake serves without any CRD (besides the core `v1` under `/api`).
const BUILT_IN: &[&str] = &["networking.k8s.io/v1", "apps/v1", "batch/v1"];

impl Inner {
    /// Whether `plural` of `group_version` exists: always for built-in groups, for custom
    /// resources only while their CRD is installed.
    fn serves(&self, group_version: &str, plural: &str) -> bool {
        group_version == "v1"
            || BUILT_IN.contains(&group_version)
            || self
                .served_groups
                .iter()
                .any(|(g, p, _)| g == group_version && p == plural)
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})),
    )
        .into_response()
}

/// Records the User-Agent and checks the token: `Some` is the 401 answer.
fn admit(fake: &FakeApi, headers: &HeaderMap) -> Option<Response> {
    let mut i = fake.inner.lock().unwrap();
    if let Some(ua) = headers.get("user-agent").and_then(|v| v.to_str().ok()) {
        i.user_agents.push(ua.to_string());
    }
    let token = i.faults.token.clone()?;
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    (given != Some(format!("Bearer {token}").as_str()))
        .then(|| status(401, "Unauthorized", "Unauthorized"))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404})),
    )
        .into_response()
}

/// A running fake API server (cheap to clone: every clone is the same server).
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
    resetting: Arc<AtomicBool>,
    tls: bool,
    /// Where it listens (on loopback).
    pub addr: SocketAddr,
}

fn key_of(obj: &Value) -> String {
    format!(
        "{}/{}",
        obj["metadata"]["namespace"].as_str().unwrap_or(""),
        obj["metadata"]["name"].as_str().unwrap_or("")
    )
}

impl FakeApi {
    /// A plain-http fake.
    pub async fn start() -> FakeApi {
        FakeApi::start_with(None).await
    }

    /// An https fake serving `certs/<cert>.pem` (`server`, `expired`, `wrong-host`).
    pub async fn start_tls(cert: &str) -> FakeApi {
        FakeApi::start_with(Some(cert)).await
    }

    async fn start_with(cert: Option<&str>) -> FakeApi {
        let inner = Arc::new(Mutex::new(Inner {
            page_size: 500,
            watch_lifetime: Duration::from_millis(800),
            ..Inner::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = FakeApi {
            inner,
            notify: Arc::new(Notify::new()),
            resetting: Arc::new(AtomicBool::new(false)),
            tls: cert.is_some(),
            addr,
        };
        let listener = faults::FaultyListener {
            tcp: listener,
            tls: cert.map(faults::tls_acceptor),
            resetting: fake.resetting.clone(),
        };
        let app = Router::new()
            .route("/api/v1/{plural}", get(core_list))
            .route("/api/v1/namespaces/{namespace}/{plural}", get(core_list_in))
            .route("/apis/{group}/{version}", get(discovery))
            .route("/apis/{group}/{version}/{plural}", get(group_list))
            .route(
                "/apis/{group}/{version}/namespaces/{namespace}/{plural}",
                get(group_list_in),
            )
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        fake
    }

    /// `http://127.0.0.1:PORT` (or https).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Changes the faults.
    pub fn set_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.inner.lock().unwrap().faults);
    }

    /// While `on`, every connection is reset: new ones at once, open ones (pooled keep-alive
    /// connections, watches) at their next read or write.
    pub fn reset_connections(&self, on: bool) {
        self.resetting.store(on, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Ends every open watch normally (clients watch again from their resourceVersion).
    pub fn end_watches(&self) {
        self.inner.lock().unwrap().watch_generation += 1;
        self.notify.notify_waiters();
    }

    /// Every User-Agent received so far.
    pub fn user_agents(&self) -> Vec<String> {
        self.inner.lock().unwrap().user_agents.clone()
    }

    /// The queries of the watch requests for `plural` so far.
    pub fn watch_queries(&self, plural: &str) -> Vec<HashMap<String, String>> {
        let i = self.inner.lock().unwrap();
        i.watch_queries.get(plural).cloned().unwrap_or_default()
    }

    /// List requests (pages, hung ones included) for `plural` so far.
    pub fn lists_for(&self, plural: &str) -> u64 {
        let i = self.inner.lock().unwrap();
        i.lists_by_plural.get(plural).copied().unwrap_or(0)
    }

    /// Installs a CRD: discovery lists `plural` under `group_version` and its list and watch
    /// answer from then on (objects applied before are there, as if created with the CRD).
    pub fn serve_group(&self, group_version: &str, plural: &str, kind: &str) {
        self.inner.lock().unwrap().served_groups.push((
            group_version.into(),
            plural.into(),
            kind.into(),
        ));
    }

    /// Removes a CRD: discovery stops listing it, its open watches end and its list and watch
    /// answer 404. Its objects vanish WITHOUT DELETED events (a real API server deletes them
    /// first, with events; here the client is made to have missed them, the case that only
    /// the 404 can reveal).
    pub fn remove_group(&self, group_version: &str, plural: &str) {
        let mut i = self.inner.lock().unwrap();
        i.served_groups
            .retain(|(g, p, _)| !(g == group_version && p == plural));
        i.objects.remove(plural);
        i.events.retain(|(_, p, _, _)| p != plural);
        drop(i);
        self.notify.notify_waiters();
    }

    /// List and watch requests for `plural` so far (404 answers included).
    pub fn requests_for(&self, plural: &str) -> u64 {
        let i = self.inner.lock().unwrap();
        i.requests_by_plural.get(plural).copied().unwrap_or(0)
    }

    /// Group discovery requests so far.
    pub fn discovery_requests(&self) -> u64 {
        self.inner.lock().unwrap().discovery_requests
    }

    /// At most `page_size` objects per list page (whatever `limit` asks), each page answered
    /// after `page_delay`.
    pub fn set_paging(&self, page_size: usize, page_delay: Duration) {
        let mut i = self.inner.lock().unwrap();
        i.page_size = page_size;
        i.page_delay = page_delay;
    }

    /// Creates or replaces objects (one event each), all under one lock.
    pub fn apply_all(&self, plural: &str, objs: Vec<Value>) {
        let mut i = self.inner.lock().unwrap();
        for mut obj in objs {
            i.rv += 1;
            let rv = i.rv;
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            let key = key_of(&obj);
            let map = i.objects.entry(plural.into()).or_default();
            let kind = if map.contains_key(&key) {
                "MODIFIED"
            } else {
                "ADDED"
            };
            map.insert(key, obj.clone());
            i.events.push((rv, plural.into(), kind, obj));
        }
        drop(i);
        self.notify.notify_waiters();
    }

    /// Creates or replaces one object.
    pub fn apply(&self, plural: &str, obj: Value) {
        self.apply_all(plural, vec![obj]);
    }

    /// Deletes the object `key` (`ns/name`, `/name` when cluster-scoped), with a DELETED event.
    pub fn delete(&self, plural: &str, key: &str) {
        let mut i = self.inner.lock().unwrap();
        let Some(mut obj) = i.objects.get_mut(plural).and_then(|m| m.remove(key)) else {
            return;
        };
        i.rv += 1;
        let rv = i.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        i.events.push((rv, plural.into(), "DELETED", obj));
        drop(i);
        self.notify.notify_waiters();
    }

    /// Ends every open watch; the next watch of each of `plurals` gets 410 Gone, forcing a relist.
    /// Changes made while `expire` holds the lock are invisible to watches (only a relist sees
    /// them), like events lost to etcd compaction.
    pub fn expire_and<F: FnOnce(&mut dyn FnMut(&str, Vec<Value>))>(
        &self,
        plurals: &[&str],
        changes: F,
    ) {
        let mut i = self.inner.lock().unwrap();
        i.watch_generation += 1;
        for p in plurals {
            i.gone.insert(p.to_string(), true);
        }
        let mut apply = |plural: &str, objs: Vec<Value>| {
            for mut obj in objs {
                i.rv += 1;
                obj["metadata"]["resourceVersion"] = json!(i.rv.to_string());
                let key = key_of(&obj);
                // Compacted away: no event, only the state.
                i.objects.entry(plural.into()).or_default().insert(key, obj);
            }
        };
        changes(&mut apply);
        drop(i);
        self.notify.notify_waiters();
    }

    /// (list pages answered, watch requests, 410 Gone answers sent) so far.
    pub fn stats(&self) -> (u64, u64, u64) {
        let i = self.inner.lock().unwrap();
        (i.list_requests, i.watch_requests, i.gone_sent)
    }
}

async fn discovery(
    State(fake): State<FakeApi>,
    Path((group, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = admit(&fake, &headers) {
        return refused;
    }
    let gv = format!("{group}/{version}");
    let mut i = fake.inner.lock().unwrap();
    i.discovery_requests += 1;
    if let Some(code) = i.faults.discovery_status {
        return status(code, "InternalError", "etcdserver: request timed out");
    }
    let resources: Vec<Value> = i
        .served_groups
        .iter()
        .filter(|(g, _, _)| *g == gv)
        .map(|(_, plural, kind)| {
            json!({"name": plural, "singularName": "", "namespaced": true, "kind": kind, "verbs": ["get", "list", "watch"]})
        })
        .collect();
    if resources.is_empty() {
        return not_found();
    }
    axum::Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})).into_response()
}

async fn core_list(
    State(fake): State<FakeApi>,
    Path(plural): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = admit(&fake, &headers) {
        return refused;
    }
    list_or_watch(fake, "v1".into(), plural, q).await
}

/// `/api/v1/namespaces/NS/PLURAL`: a list (or watch) in one namespace.
async fn core_list_in(
    State(fake): State<FakeApi>,
    Path((namespace, plural)): Path<(String, String)>,
    Query(mut q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = admit(&fake, &headers) {
        return refused;
    }
    q.insert(IN_NAMESPACE.into(), namespace);
    list_or_watch(fake, "v1".into(), plural, q).await
}

/// `/apis/GROUP/VERSION/namespaces/NS/PLURAL`.
async fn group_list_in(
    State(fake): State<FakeApi>,
    Path((group, version, namespace, plural)): Path<(String, String, String, String)>,
    Query(mut q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = admit(&fake, &headers) {
        return refused;
    }
    q.insert(IN_NAMESPACE.into(), namespace);
    list_or_watch(fake, format!("{group}/{version}"), plural, q).await
}

/// The query key (not a real parameter: it has a space) carrying the namespace of the path.
const IN_NAMESPACE: &str = "in namespace";

async fn group_list(
    State(fake): State<FakeApi>,
    Path((group, version, plural)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = admit(&fake, &headers) {
        return refused;
    }
    list_or_watch(fake, format!("{group}/{version}"), plural, q).await
}

async fn list_or_watch(
    fake: FakeApi,
    api_version: String,
    plural: String,
    q: HashMap<String, String>,
) -> Response {
    {
        let mut i = fake.inner.lock().unwrap();
        *i.requests_by_plural.entry(plural.clone()).or_default() += 1;
        if !i.serves(&api_version, &plural) {
            return not_found();
        }
    }
    let is_watch = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = if is_watch { "watch" } else { "list" };
    if let Some(answer) = faulty(&fake, &plural, verb, &q) {
        return answer;
    }
    let hung = !is_watch
        && fake
            .inner
            .lock()
            .unwrap()
            .faults
            .hung_lists
            .contains(&plural);
    if hung {
        // Accepted and never answered.
        return std::future::pending().await;
    }
    if is_watch {
        return watch(fake, api_version, plural, q).await;
    }
    let delay = fake.inner.lock().unwrap().page_delay;
    tokio::time::sleep(delay).await;
    let mut i = fake.inner.lock().unwrap();
    i.list_requests += 1;
    let in_namespace = q.get(IN_NAMESPACE);
    let all: Vec<Value> = i
        .objects
        .get(&plural)
        .map(|m| {
            m.values()
                .filter(|o| {
                    in_namespace.is_none_or(|ns| o["metadata"]["namespace"].as_str() == Some(ns))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let (offset, list_rv) = match q.get("continue") {
        Some(c) => {
            let (o, r) = c.split_once(':').unwrap();
            (o.parse::<usize>().unwrap(), r.parse::<u64>().unwrap())
        }
        None => (0, i.rv),
    };
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let n = limit.min(i.page_size);
    let items: Vec<Value> = all.iter().skip(offset).take(n).cloned().collect();
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if offset + n < all.len() {
        metadata["continue"] = json!(format!("{}:{}", offset + n, list_rv));
    }
    axum::Json(
        json!({"apiVersion": api_version, "kind": "List", "metadata": metadata, "items": items}),
    )
    .into_response()
}

/// Records the request; `Some` is the answer a fault gives instead of the real one.
fn faulty(
    fake: &FakeApi,
    plural: &str,
    verb: &str,
    q: &HashMap<String, String>,
) -> Option<Response> {
    let mut i = fake.inner.lock().unwrap();
    if i.faults
        .forbidden
        .contains(&(plural.to_string(), verb.to_string()))
    {
        let message = format!("{plural} is forbidden: User \"system:serviceaccount:netpol:netpol-agent\" cannot {verb} resource \"{plural}\" at the cluster scope");
        return Some(status(403, "Forbidden", &message));
    }
    if verb == "watch" {
        i.watch_queries
            .entry(plural.to_string())
            .or_default()
            .push(q.clone());
        if i.faults.silent_watches.contains(plural) {
            // Answered, then nothing ever: a dead load balancer keeping the connection.
            let body = futures::stream::pending::<Result<String, std::io::Error>>();
            return Some(Response::new(Body::from_stream(body)));
        }
    } else {
        *i.lists_by_plural.entry(plural.to_string()).or_default() += 1;
    }
    None
}

async fn watch(
    fake: FakeApi,
    api_version: String,
    plural: String,
    q: HashMap<String, String>,
) -> Response {
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let (tx, rx) = mpsc::unbounded::<Result<String, std::io::Error>>();
    let (generation, lifetime, gone) = {
        let mut i = fake.inner.lock().unwrap();
        i.watch_requests += 1;
        let gone = i.gone.insert(plural.clone(), false).unwrap_or(false);
        if gone {
            i.gone_sent += 1;
        }
        (i.watch_generation, i.watch_lifetime, gone)
    };
    if gone {
        let ev = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "too old resource version", "reason": "Expired", "code": 410}});
        let _ = tx.unbounded_send(Ok(format!("{ev}\n")));
        drop(tx);
        return Response::new(Body::from_stream(rx));
    }
    tokio::spawn(async move {
        let started = Instant::now();
        let mut last = from;
        loop {
            let notified = fake.notify.notified();
            let (events, rv, ended) = {
                let i = fake.inner.lock().unwrap();
                let evs: Vec<(u64, &'static str, Value)> = i
                    .events
                    .iter()
                    .filter(|(rv, p, _, _)| *rv > last && *p == plural)
                    .map(|(rv, _, t, o)| (*rv, *t, o.clone()))
                    .collect();
                let ended = i.watch_generation != generation || !i.serves(&api_version, &plural);
                (evs, i.rv, ended)
            };
            if ended || started.elapsed() > lifetime {
                break; // the watch ends: the client re-watches from its last resourceVersion
            }
            for (rv, t, o) in events {
                last = rv;
                if tx
                    .unbounded_send(Ok(format!("{}\n", json!({"type": t, "object": o}))))
                    .is_err()
                {
                    return;
                }
            }
            let bookmark = json!({"type": "BOOKMARK", "object": {"kind": "Bookmark", "apiVersion": api_version, "metadata": {"resourceVersion": rv.to_string()}}});
            if rv > last {
                last = rv;
            }
            if tx.unbounded_send(Ok(format!("{bookmark}\n"))).is_err() {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    });
    Response::new(Body::from_stream(rx))
}
