//! The embedded simulated cluster: a small Kubernetes API server over real HTTP on
//! 127.0.0.1, which the real `kube::Client` (and kubectl) talk to through a kubeconfig it
//! writes. Tests and the demo use it instead of a cluster; nothing in the engine is mocked.
//!
//! It serves the subset Disasterpiece uses with Kubernetes semantics (see `store` and `api`),
//! runs a world of controllers (`world`), gives annotated workloads synthetic HTTP services
//! (`service`), and can misbehave on purpose: API errors, added latency, dropped watches.
//!
//! It is a test and demo harness, not a substitute for Kubernetes: no authentication
//! (plain HTTP on loopback), no admission webhooks, no field ownership in server-side apply,
//! and paginated lists are not snapshots.

mod api;
pub mod auth;
mod exec;
mod fields;
mod openapi;
pub mod patch;
mod protobuf;
pub mod resources;
pub mod runtime;
mod schema;
pub mod seed;
mod tls;

pub mod service;
pub mod store;
pub mod world;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

pub use seed::Seed;

use disasterpiece_common::clock::Clock;
use store::{ApiError, Store};

/// The name of the kubeconfig context (and cluster) the simulator writes.
pub const CONTEXT: &str = "disasterpiece-sim";

/// How the world behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a controller waits before replacing a missing pod.
    pub replace_delay: Duration,
    /// How long a scheduled pod takes to become Ready.
    pub ready_delay: Duration,
    /// How many changes watches can resume across; older resourceVersions get 410 Gone.
    pub watch_history: usize,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// The API server's and the nodes' clock (timestamps it writes, ages it shows).
    pub clock: Clock,
    /// Containers run as real processes on this machine (`runtime`), where the simulator
    /// otherwise plays their effect.
    pub run_containers: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            replace_delay: Duration::from_secs(1),
            ready_delay: Duration::from_secs(2),
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(5),
            clock: Clock::system(),
            run_containers: false,
        }
    }
}

/// Deliberate faults of the API server itself, to test Disasterpiece against a flaky cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Misbehaviour {
    /// The share of resource requests answered with 500, 503 or 429 (0 to 1).
    #[serde(default)]
    pub error_rate: f64,
    /// Added to every resource request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Watches are closed this many seconds after they start.
    #[serde(default)]
    pub drop_watches_after_seconds: Option<u64>,
    /// The API server cannot dial the kubelets (a firewall on port 10250, a broken
    /// konnectivity agent): `pods/exec` is answered 500 "error dialing backend".
    #[serde(default)]
    pub kubelet_unreachable: bool,
}

struct Faults {
    error_rate: f64,
    latency: Duration,
    drop_watches_after: Option<Duration>,
    kubelet_unreachable: bool,
}

impl From<&Misbehaviour> for Faults {
    fn from(m: &Misbehaviour) -> Self {
        Faults {
            error_rate: m.error_rate.clamp(0.0, 1.0),
            latency: Duration::from_millis(m.latency_ms),
            drop_watches_after: m.drop_watches_after_seconds.map(Duration::from_secs),
            kubelet_unreachable: m.kubelet_unreachable,
        }
    }
}

pub(crate) struct Shared {
    store: Mutex<Store>,
    wake: Notify,
    config: Config,
    misbehaviour: Mutex<Faults>,
    requests_failed: AtomicU64,
    /// Every authenticated API request served (for the controller's idle benchmark).
    requests_total: AtomicU64,
    rng: AtomicU64,
    addr: SocketAddr,
    git_version: Option<String>,
    /// The container runtime, when containers run as real processes (taken after the store's
    /// lock when both are held).
    runtime: Option<Mutex<runtime::Runtime>>,
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the simulator's TLS certificates: {0}")]
    Tls(String),
    #[error("cannot write the kubeconfig to {path}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the seeded world did not settle within {0:?}")]
    NotSettled(Duration),
    #[error("cannot run containers as processes: {0}")]
    Runtime(String),
}

/// Builds a simulator: `Sim::builder().seed(Seed::Shop).start().await`.
#[derive(Debug, Clone, Default)]
pub struct SimBuilder {
    port: u16,
    seed: Seed,
    config: Config,
    misbehaviour: Misbehaviour,
    kubeconfig: Option<PathBuf>,
    bulk: Option<(usize, usize)>,
    denied: Vec<(String, String)>,
    git_version: Option<String>,
}

impl SimBuilder {
    /// Reports this `gitVersion` from `/version` instead of the simulator's own, to test what
    /// Disasterpiece does against a cluster that is not the simulator.
    pub fn git_version(mut self, version: &str) -> Self {
        self.git_version = Some(version.to_owned());
        self
    }

    /// Makes SelfSubjectAccessReviews answer "not allowed" for `verb` on `resource`
    /// (`pods`, `pods/eviction`), to test permission checks. Requests themselves still succeed.
    pub fn deny(mut self, verb: &str, resource: &str) -> Self {
        self.denied.push((verb.to_owned(), resource.to_owned()));
        self
    }

    /// Adds `namespaces` namespaces `bulk-000`… with `per_namespace` Running pods each, for
    /// scale tests: pods are labelled `app: bulk` and `group: g0`…`g9` (a tenth in each).
    pub fn bulk_pods(mut self, namespaces: usize, per_namespace: usize) -> Self {
        self.bulk = Some((namespaces, per_namespace));
        self
    }

    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = seed;
        self
    }

    /// The port on 127.0.0.1; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    pub fn replace_delay(mut self, delay: Duration) -> Self {
        self.config.replace_delay = delay;
        self
    }

    pub fn ready_delay(mut self, delay: Duration) -> Self {
        self.config.ready_delay = delay;
        self
    }

    pub fn watch_history(mut self, changes: usize) -> Self {
        self.config.watch_history = changes;
        self
    }

    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.config.bookmark_interval = every;
        self
    }

    /// Runs containers as real processes on this machine (root and util-linux needed): a fault
    /// container's script, after Kubernetes' expansion, as its user, in namespaces of its own;
    /// `exec` inside it. See `runtime`.
    pub fn run_containers(mut self, run: bool) -> Self {
        self.config.run_containers = run;
        self
    }

    /// The API server's and the nodes' clock; the machine's by default. A skewed one
    /// (`Clock::skewed`) tests what Disasterpiece does when clocks disagree.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.config.clock = clock;
        self
    }

    pub fn misbehaviour(mut self, misbehaviour: Misbehaviour) -> Self {
        self.misbehaviour = misbehaviour;
        self
    }

    /// Where to write the kubeconfig; by default a file in the temp directory.
    pub fn kubeconfig_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }

    /// Starts the server and the world, seeds it, and waits until the seeded workloads are
    /// Ready, so a test starts from a settled cluster.
    pub async fn start(self) -> Result<Sim, SimError> {
        let SimBuilder {
            port,
            seed,
            config,
            misbehaviour,
            kubeconfig,
            bulk,
            denied,
            git_version,
        } = self;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| SimError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimError::Bind { port, source })?;
        let mut store = Store::new(config.watch_history, config.clock.clone());
        store.auth.denied = denied;
        auth::bootstrap(&mut store);
        seed::plant(&mut store, seed);
        if let Some((namespaces, per_namespace)) = bulk {
            seed::plant_bulk(&mut store, namespaces, per_namespace);
        }
        let runtime = if config.run_containers {
            Some(Mutex::new(
                runtime::Runtime::new(config.clock.clone()).map_err(SimError::Runtime)?,
            ))
        } else {
            None
        };
        let shared = Arc::new(Shared {
            runtime,
            store: Mutex::new(store),
            wake: Notify::new(),
            config: config.clone(),
            misbehaviour: Mutex::new(Faults::from(&misbehaviour)),
            requests_failed: AtomicU64::new(0),
            requests_total: AtomicU64::new(0),
            rng: AtomicU64::new(0x2545_f491_4f6c_dd1d ^ u64::from(addr.port())),
            addr,
            git_version,
        });
        let url = format!("https://{addr}");
        let certificates = tls::certificates().map_err(SimError::Tls)?;
        let kubeconfig = kubeconfig
            .unwrap_or_else(|| std::env::temp_dir().join(format!("disasterpiece-sim-{}.kubeconfig", addr.port())));
        let token = shared.store.lock().expect("store lock").auth.admin_token().to_owned();
        write_kubeconfig(&kubeconfig, &url, &certificates.ca_pem, &token).map_err(|source| SimError::Kubeconfig {
            path: kubeconfig.clone(),
            source,
        })?;

        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new().fallback(api::handle).with_state(shared.clone());
        let listener =
            tls::TlsListener::new(listener, certificates.server).map_err(|source| SimError::Bind { port, source })?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        let world = tokio::spawn(world_loop(shared.clone()));
        let sim = Sim {
            shared,
            url,
            kubeconfig,
            stop: Some(stop),
            tasks: vec![server, world],
        };
        let limit = config.replace_delay + config.ready_delay * 4 + Duration::from_secs(10);
        sim.settled(limit).await?;
        sim.shared.store.lock().expect("store lock").compact_history();
        Ok(sim)
    }
}

async fn world_loop(shared: Arc<Shared>) {
    let mut world = world::World::default();
    let mut services = service::Services::default();
    let ended = shared
        .runtime
        .as_ref()
        .map(|r| r.lock().expect("runtime lock").notify.clone())
        .unwrap_or_default();
    loop {
        let next = {
            let mut store = shared.store.lock().expect("store lock");
            let mut runtime = shared.runtime.as_ref().map(|r| r.lock().expect("runtime lock"));
            let next = world.reconcile(&mut store, &shared.config, runtime.as_deref_mut());
            services.sync(&mut store);
            next
        };
        let until = next.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = ended.notified() => {}
            _ = tokio::time::sleep_until(until) => {}
        }
    }
}

/// A running simulator. Dropping it stops the server and the world.
pub struct Sim {
    shared: Arc<Shared>,
    url: String,
    kubeconfig: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sim {
    pub fn builder() -> SimBuilder {
        SimBuilder::default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client that is the ServiceAccount `namespace/name`, with a token the admin asked the
    /// TokenRequest API for (as `kubectl create token` does). Its requests are authorized by
    /// the RBAC rules bound to that ServiceAccount.
    pub async fn service_account_client(&self, namespace: &str, name: &str) -> Result<kube::Client, kube::Error> {
        use k8s_openapi::api::authentication::v1::TokenRequest;
        use k8s_openapi::api::core::v1::ServiceAccount;
        let accounts: kube::Api<ServiceAccount> = kube::Api::namespaced(self.raw_client().await?, namespace);
        let issued = accounts
            .create_token_request(name, &kube::api::PostParams::default(), &TokenRequest::default())
            .await?;
        let token = issued.status.and_then(|s| s.token).unwrap_or_default();
        let mut config = self.kube_config().await?;
        config.default_retry = false;
        config.auth_info.token = Some(token.into());
        kube::Client::try_from(config)
    }

    /// The cluster admin's bearer token (the one in the kubeconfig).
    pub fn admin_token(&self) -> String {
        self.shared
            .store
            .lock()
            .expect("store lock")
            .auth
            .admin_token()
            .to_owned()
    }

    /// The `kube::Config` of the kubeconfig the simulator wrote.
    pub async fn kube_config(&self) -> Result<kube::Config, kube::Error> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).map_err(kube::Error::InferKubeconfig)?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(kube::Error::InferKubeconfig)
    }

    /// A `kube::Client` configured from the kubeconfig the simulator wrote, as kube builds it
    /// by default (which includes kube's own retries of 429, 503 and 504 answers).
    pub async fn client(&self) -> Result<kube::Client, kube::Error> {
        kube::Client::try_from(self.kube_config().await?)
    }

    /// A `kube::Client` that does not retry, to see each answer of the API server as it is.
    pub async fn raw_client(&self) -> Result<kube::Client, kube::Error> {
        let mut config = self.kube_config().await?;
        config.default_retry = false;
        kube::Client::try_from(config)
    }

    /// The current global resourceVersion: unchanged means nothing was written.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().expect("store lock").rv
    }

    pub fn set_misbehaviour(&self, misbehaviour: &Misbehaviour) {
        *self.shared.misbehaviour.lock().expect("misbehaviour lock") = Faults::from(misbehaviour);
    }

    /// How many API requests it has served so far (`/sim/admin/requests` says the same).
    pub fn requests_served(&self) -> u64 {
        self.shared.requests_total.load(Ordering::Relaxed)
    }

    /// How many requests the misbehaviour has failed so far.
    pub fn injected_errors(&self) -> u64 {
        self.shared.requests_failed.load(Ordering::Relaxed)
    }

    /// Waits until every Deployment and StatefulSet has all its replicas Ready.
    pub async fn settled(&self, limit: Duration) -> Result<(), SimError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.is_settled() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(SimError::NotSettled(limit));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn is_settled(&self) -> bool {
        let store = self.shared.store.lock().expect("store lock");
        ["apps/deployments", "apps/statefulsets"].iter().all(|key| {
            store.all_of(key).all(|w| {
                let want = w.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
                let ready = w.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0);
                ready == want
            })
        })
    }

    /// Stops the server and the world and removes the kubeconfig it wrote.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(runtime) = &self.shared.runtime {
            runtime.lock().unwrap_or_else(|e| e.into_inner()).shutdown();
        }
    }
}

/// A kubeconfig for the cluster admin (`kubernetes-admin`, group `system:masters`), with its
/// bearer token; readable by its owner only, as the token is a credential.
fn write_kubeconfig(path: &Path, url: &str, ca_pem: &str, token: &str) -> std::io::Result<()> {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n    namespace: default\ncurrent-context: {CONTEXT}\nusers:\n- name: {CONTEXT}\n  user:\n    token: {token}\npreferences: {{}}\n"
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())
}

fn version(shared: &Shared) -> Value {
    let git_version = shared
        .git_version
        .clone()
        .unwrap_or_else(|| "v1.34.0-disasterpiece-sim".into());
    json!({
        "major": "1", "minor": "34", "gitVersion": git_version, "gitCommit": "",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "",
        "compiler": "rustc", "platform": "linux/amd64",
    })
}

/// Injects the configured latency and errors into a resource request.
async fn misbehave(shared: &Shared) -> Option<Response> {
    let (latency, error_rate) = {
        let faults = shared.misbehaviour.lock().expect("misbehaviour lock");
        (faults.latency, faults.error_rate)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if error_rate <= 0.0 {
        return None;
    }
    let mut x = shared.rng.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let roll = (x >> 11) as f64 / (1u64 << 53) as f64;
    if roll >= error_rate {
        return None;
    }
    shared.requests_failed.fetch_add(1, Ordering::Relaxed);
    let e = match x % 3 {
        0 => ApiError::new(
            500,
            "InternalError",
            "Internal error occurred: the simulator injected this error",
        ),
        1 => ApiError::new(
            503,
            "ServiceUnavailable",
            "the simulator injected this error: the server is currently unable to handle the request",
        ),
        _ => ApiError::new(
            429,
            "TooManyRequests",
            "the simulator injected this error: too many requests, please try again later",
        ),
    };
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        e.to_status().to_string(),
    )
        .into_response();
    if e.code == 429 {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    Some(response)
}

/// `/sim/admin/misbehave`: GET shows, PUT sets the deliberate faults. `/sim/admin/requests`:
/// GET says how many API requests were served.
async fn admin(shared: &Shared, method: &Method, segments: &[&str], body: &Bytes) -> Response {
    let json_reply = |code: StatusCode, v: Value| {
        (
            code,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response()
    };
    if segments == ["sim", "admin", "requests"] && *method == Method::GET {
        return json_reply(
            StatusCode::OK,
            json!({"requests": shared.requests_total.load(Ordering::Relaxed)}),
        );
    }
    if segments != ["sim", "admin", "misbehave"] {
        return json_reply(
            StatusCode::NOT_FOUND,
            ApiError::new(
                404,
                "NotFound",
                "unknown admin endpoint; use /sim/admin/misbehave or /sim/admin/requests",
            )
            .to_status(),
        );
    }
    match *method {
        Method::PUT | Method::POST => match serde_json::from_slice::<Misbehaviour>(body) {
            Ok(m) => {
                *shared.misbehaviour.lock().expect("misbehaviour lock") = Faults::from(&m);
                json_reply(StatusCode::OK, json!(m))
            }
            Err(e) => json_reply(
                StatusCode::BAD_REQUEST,
                ApiError::bad_request(format!(
                    "expected {{\"errorRate\": 0.2, \"latencyMs\": 50, \"dropWatchesAfterSeconds\": 10, \"kubeletUnreachable\": false}}: {e}"
                ))
                .to_status(),
            ),
        },
        _ => {
            let f = shared.misbehaviour.lock().expect("misbehaviour lock");
            let m = Misbehaviour {
                error_rate: f.error_rate,
                latency_ms: f.latency.as_millis() as u64,
                drop_watches_after_seconds: f.drop_watches_after.map(|d| d.as_secs()),
                kubelet_unreachable: f.kubelet_unreachable,
            };
            json_reply(StatusCode::OK, json!(m))
        }
    }
}
