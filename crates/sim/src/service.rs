//! Synthetic HTTP services: a workload annotated `sim.disasterpiece.dev/http: "true"` gets an
//! HTTP endpoint on 127.0.0.1 whose answers follow the world, so http and prometheus probes
//! see real effects. Its URL is published on the workload as `sim.disasterpiece.dev/url`.
//!
//! - no Ready pod: 503;
//! - a pod cut off by an ingress NetworkPolicy: requests routed to it hang (time out);
//! - a pod whose egress to port 53 is blocked: requests routed to it fail with 502, as calls
//!   that need to resolve a name do;
//! - a running fault container (`DISASTERPIECE_FAULT`): `networkDelay` adds
//!   `DISASTERPIECE_LATENCY` (± `DISASTERPIECE_JITTER`), `networkLoss` drops
//!   `DISASTERPIECE_LOSS_PERCENT` of requests, `cpuStress`/`memoryStress` slow answers down.
//!
//! `/metrics` is Prometheus text: requests by code, a latency histogram, ready pods.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::store::{Store, at, pod_is_healthy, text};
use super::world::{ENV_FAULT, workload_selector};
use disasterpiece_common::duration::Duration as ScenarioDuration;
use disasterpiece_common::selector::LabelSelector;

pub const ANNOTATION_HTTP: &str = "sim.disasterpiece.dev/http";
pub const ANNOTATION_URL: &str = "sim.disasterpiece.dev/url";

/// How long a request to an unreachable pod hangs before the service gives up on it.
const HANG: Duration = Duration::from_secs(30);
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// What one serving pod does to a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoint {
    pub isolated: bool,
    /// Its egress to port 53 is blocked: calls that need a name fail.
    pub dns_blocked: bool,
    pub latency: Duration,
    pub jitter: Duration,
    pub loss: f64,
    pub slow: Duration,
    /// CPU the running cpuStress containers burn, in percent of one core.
    pub cpu_stress_percent: u64,
    /// Memory the running memoryStress containers hold.
    pub memory_stress_bytes: u64,
}

#[derive(Default)]
struct Stats {
    by_code: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

struct Service {
    name: String,
    endpoints: RwLock<Vec<Endpoint>>,
    stats: Mutex<Stats>,
    turn: std::sync::atomic::AtomicU64,
}

struct Running {
    url: String,
    service: Arc<Service>,
    task: JoinHandle<()>,
}

/// The synthetic services of the annotated workloads, by workload uid.
#[derive(Default)]
pub struct Services {
    running: HashMap<String, Running>,
}

impl Drop for Services {
    fn drop(&mut self) {
        for running in self.running.values() {
            running.task.abort();
        }
    }
}

impl Services {
    /// Starts and stops services as workloads come and go, publishes their URLs, and gives
    /// each the current state of its pods.
    pub fn sync(&mut self, store: &mut Store) {
        let mut seen = Vec::new();
        for key in ["apps/deployments", "apps/statefulsets"] {
            let workloads: Vec<Value> = store
                .all_of(key)
                .filter(|w| {
                    text(
                        w,
                        &format!("/metadata/annotations/{}", ANNOTATION_HTTP.replace('/', "~1")),
                    ) == "true"
                })
                .filter(|w| at(w, "/metadata/deletionTimestamp").is_none())
                .cloned()
                .collect();
            for workload in workloads {
                let uid = text(&workload, "/metadata/uid").to_owned();
                seen.push(uid.clone());
                if !self.running.contains_key(&uid) {
                    match start(text(&workload, "/metadata/name")) {
                        Ok(running) => {
                            self.running.insert(uid.clone(), running);
                        }
                        Err(err) => {
                            tracing::warn!(
                                "cannot start the synthetic service of {}: {err}",
                                text(&workload, "/metadata/name")
                            );
                            continue;
                        }
                    }
                }
                let Some(running) = self.running.get(&uid) else {
                    continue;
                };
                let endpoints = endpoints(store, &workload);
                *running.service.endpoints.write().expect("endpoints lock") = endpoints;
                let pointer = format!("/metadata/annotations/{}", ANNOTATION_URL.replace('/', "~1"));
                if text(&workload, &pointer) != running.url {
                    let mut annotated = workload.clone();
                    annotated["metadata"]["annotations"][ANNOTATION_URL] = json!(running.url);
                    if let Some(ty) = store.type_by_key(key) {
                        store.put_internal(&ty, annotated);
                    }
                }
            }
        }
        self.running.retain(|uid, running| {
            let keep = seen.contains(uid);
            if !keep {
                running.task.abort();
            }
            keep
        });
    }
}

fn start(name: &str) -> std::io::Result<Running> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}", listener.local_addr()?);
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let service = Arc::new(Service {
        name: name.to_owned(),
        endpoints: RwLock::new(Vec::new()),
        stats: Mutex::new(Stats::default()),
        turn: std::sync::atomic::AtomicU64::new(0),
    });
    let app = Router::new().fallback(answer).with_state(service.clone());
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Running { url, service, task })
}

/// The serving pods of a workload and what each does to a request.
fn endpoints(store: &Store, workload: &Value) -> Vec<Endpoint> {
    let namespace = text(workload, "/metadata/namespace");
    let Some(selector) = workload_selector(workload) else {
        return Vec::new();
    };
    let policies: Vec<&Value> = store
        .list("networking.k8s.io/networkpolicies", Some(namespace))
        .collect();
    store
        .list("/pods", Some(namespace))
        .filter(|p| selector.matches_object(p) && pod_is_healthy(p))
        .map(|pod| {
            let mut endpoint = Endpoint {
                isolated: policies.iter().any(|policy| cuts_ingress(policy, pod)),
                dns_blocked: blocks_dns(&policies, pod),
                ..Endpoint::default()
            };
            for container in running_fault_containers(pod) {
                let env = |name: &str| {
                    container["env"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|e| e["name"] == name)
                        .and_then(|e| e["value"].as_str())
                        .map(str::to_owned)
                };
                let duration = |name: &str| {
                    env(name)
                        .and_then(|d| d.parse::<ScenarioDuration>().ok())
                        .map(ScenarioDuration::as_std)
                        .unwrap_or_default()
                };
                match env(ENV_FAULT).as_deref() {
                    Some("networkDelay") => {
                        endpoint.latency += duration("DISASTERPIECE_LATENCY");
                        endpoint.jitter += duration("DISASTERPIECE_JITTER");
                    }
                    Some("networkLoss") => {
                        let percent = env("DISASTERPIECE_LOSS_PERCENT")
                            .and_then(|p| p.parse::<f64>().ok())
                            .unwrap_or(0.0);
                        endpoint.loss = (endpoint.loss + percent / 100.0).min(1.0);
                    }
                    Some("cpuStress") => {
                        let number =
                            |name: &str, default: u64| env(name).and_then(|l| l.parse::<u64>().ok()).unwrap_or(default);
                        let load = number("DISASTERPIECE_CPU_LOAD", 100);
                        endpoint.slow += Duration::from_millis(2 * load);
                        endpoint.cpu_stress_percent += load * number("DISASTERPIECE_CPU_WORKERS", 1);
                    }
                    Some("memoryStress") => {
                        endpoint.slow += Duration::from_millis(100);
                        endpoint.memory_stress_bytes += env("DISASTERPIECE_MEMORY_BYTES")
                            .and_then(|b| b.parse::<u64>().ok())
                            .unwrap_or(0);
                    }
                    _ => {}
                }
            }
            endpoint
        })
        .collect()
}

fn running_fault_containers(pod: &Value) -> Vec<Value> {
    let running: Vec<&str> = pod
        .pointer("/status/ephemeralContainerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| at(s, "/state/running").is_some())
        .filter_map(|s| s["name"].as_str())
        .collect();
    at(pod, "/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c["name"].as_str().is_some_and(|n| running.contains(&n)))
        .cloned()
        .collect()
}

/// Whether the egress policies selecting the pod leave no way to port 53 (policies add up:
/// one that allows DNS is enough).
fn blocks_dns(policies: &[&Value], pod: &Value) -> bool {
    let selecting: Vec<&&Value> = policies
        .iter()
        .filter(|p| {
            let types: Vec<&str> = p
                .pointer("/spec/policyTypes")
                .and_then(Value::as_array)
                .map(|t| t.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let egress = types.contains(&"Egress") || (types.is_empty() && p.pointer("/spec/egress").is_some());
            egress
                && p.pointer("/spec/podSelector")
                    .and_then(|s| LabelSelector::from_object(s).ok())
                    .is_some_and(|s| s.matches_object(pod))
        })
        .collect();
    let allows_53 = |rule: &Value| {
        let ports = rule.get("ports").and_then(Value::as_array);
        ports.is_none_or(|ports| {
            ports.is_empty()
                || ports.iter().any(|p| match p.get("port").and_then(Value::as_u64) {
                    None => true,
                    Some(first) => {
                        let last = p.get("endPort").and_then(Value::as_u64).unwrap_or(first);
                        (first..=last).contains(&53)
                    }
                })
        })
    };
    !selecting.is_empty()
        && !selecting.iter().any(|p| {
            p.pointer("/spec/egress")
                .and_then(Value::as_array)
                .is_some_and(|rules| rules.iter().any(allows_53))
        })
}

/// Whether a NetworkPolicy selects the pod for ingress and lets nothing in from outside.
fn cuts_ingress(policy: &Value, pod: &Value) -> bool {
    let selects = policy
        .pointer("/spec/podSelector")
        .and_then(|s| LabelSelector::from_object(s).ok())
        .is_some_and(|s| s.matches_object(pod));
    if !selects {
        return false;
    }
    let types: Vec<&str> = policy
        .pointer("/spec/policyTypes")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let ingress = types.is_empty() || types.contains(&"Ingress");
    // A rule with no `from` admits everyone; any other rule admits only some peers.
    let open = policy
        .pointer("/spec/ingress")
        .and_then(Value::as_array)
        .is_some_and(|rules| {
            rules
                .iter()
                .any(|r| r.get("from").is_none_or(|f| f.as_array().is_some_and(Vec::is_empty)))
        });
    ingress && !open
}

async fn answer(State(service): State<Arc<Service>>, request: Request) -> Response {
    if request.uri().path() == "/metrics" {
        return metrics(&service).into_response();
    }
    let started = tokio::time::Instant::now();
    let endpoint = {
        let endpoints = service.endpoints.read().expect("endpoints lock");
        if endpoints.is_empty() {
            None
        } else {
            let turn = service.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(endpoints[(turn % endpoints.len() as u64) as usize].clone())
        }
    };
    let (code, body) = match endpoint {
        None => (StatusCode::SERVICE_UNAVAILABLE, "no endpoints available for service\n"),
        Some(e) if e.dns_blocked && !e.isolated => (StatusCode::BAD_GATEWAY, "upstream name resolution failed\n"),
        Some(e) if e.isolated => {
            tokio::time::sleep(HANG).await;
            (StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n")
        }
        Some(e) => {
            let roll = random_unit();
            if roll < e.loss {
                tokio::time::sleep(HANG).await;
                (StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n")
            } else {
                let jitter = e.jitter.mul_f64(random_unit() * 2.0);
                let delay = (e.latency + jitter).saturating_sub(e.jitter) + e.slow;
                tokio::time::sleep(delay).await;
                (StatusCode::OK, "ok\n")
            }
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut stats = service.stats.lock().expect("stats lock");
    *stats.by_code.entry(code.as_u16()).or_default() += 1;
    for (i, bound) in BUCKETS.iter().enumerate() {
        if seconds <= *bound {
            stats.buckets[i] += 1;
        }
    }
    stats.sum += seconds;
    stats.count += 1;
    (code, body).into_response()
}

fn metrics(service: &Service) -> String {
    let stats = service.stats.lock().expect("stats lock");
    let (ready, cpu, memory) = {
        let endpoints = service.endpoints.read().expect("endpoints lock");
        (
            endpoints.len(),
            endpoints.iter().map(|e| e.cpu_stress_percent).sum::<u64>(),
            endpoints.iter().map(|e| e.memory_stress_bytes).sum::<u64>(),
        )
    };
    let name = &service.name;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP http_requests_total Requests answered by the synthetic service."
    );
    let _ = writeln!(out, "# TYPE http_requests_total counter");
    for (code, n) in &stats.by_code {
        let _ = writeln!(out, "http_requests_total{{service=\"{name}\",code=\"{code}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP http_request_duration_seconds Time to answer a request.");
    let _ = writeln!(out, "# TYPE http_request_duration_seconds histogram");
    for (bound, n) in BUCKETS.iter().zip(stats.buckets) {
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{service=\"{name}\",le=\"{bound}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "http_request_duration_seconds_bucket{{service=\"{name}\",le=\"+Inf\"}} {}",
        stats.count
    );
    let _ = writeln!(
        out,
        "http_request_duration_seconds_sum{{service=\"{name}\"}} {}",
        stats.sum
    );
    let _ = writeln!(
        out,
        "http_request_duration_seconds_count{{service=\"{name}\"}} {}",
        stats.count
    );
    let _ = writeln!(out, "# HELP sim_ready_pods Ready pods behind the synthetic service.");
    let _ = writeln!(out, "# TYPE sim_ready_pods gauge");
    let _ = writeln!(out, "sim_ready_pods{{service=\"{name}\"}} {ready}");
    let _ = writeln!(
        out,
        "# HELP sim_cpu_stress_percent CPU burnt by cpuStress containers, in percent of one core."
    );
    let _ = writeln!(out, "# TYPE sim_cpu_stress_percent gauge");
    let _ = writeln!(out, "sim_cpu_stress_percent{{service=\"{name}\"}} {cpu}");
    let _ = writeln!(
        out,
        "# HELP sim_memory_stress_bytes Memory held by memoryStress containers."
    );
    let _ = writeln!(out, "# TYPE sim_memory_stress_bytes gauge");
    let _ = writeln!(out, "sim_memory_stress_bytes{{service=\"{name}\"}} {memory}");
    out
}

/// A number in [0, 1); good enough to drop requests.
fn random_unit() -> f64 {
    (disasterpiece_common::random::u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// `GET /api/v1/namespaces/NS/services/NAME[:PORT]/proxy/PATH`, as the API server proxies to
/// a Service: here, to the synthetic service of the workload the Service selects. This is how
/// a client outside the cluster reaches `http://NAME.NS.svc/PATH`.
pub(crate) async fn proxy(
    shared: &super::Shared,
    namespace: &str,
    service: &str,
    path: &str,
    query: Option<&str>,
) -> Response {
    // `NAME`, `NAME:PORT` or `SCHEME:NAME:PORT`; PORT is a port's number or name.
    let parts: Vec<&str> = service.split(':').collect();
    let (name, port) = match parts.as_slice() {
        [_, name, port] => (*name, Some(*port)),
        [name, port] => (*name, Some(*port)),
        _ => (service, None),
    };
    let unavailable = |message: String| {
        let e = super::store::ApiError::new(503, "ServiceUnavailable", message);
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            e.to_status().to_string(),
        )
            .into_response()
    };
    let target = {
        let store = shared.store.lock().expect("store lock");
        let Some(svc) = store.get("/services", namespace, name).cloned() else {
            let e = super::store::ApiError::new(404, "NotFound", format!("services \"{name}\" not found"));
            return (
                StatusCode::NOT_FOUND,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                e.to_status().to_string(),
            )
                .into_response();
        };
        if let Some(port) = port.filter(|p| !p.is_empty()) {
            let known =
                svc["spec"]["ports"].as_array().into_iter().flatten().any(|p| {
                    p["name"].as_str() == Some(port) || p["port"].as_i64().is_some_and(|n| n.to_string() == port)
                });
            if !known {
                return unavailable(format!("no service port {port} found for service \"{name}\""));
            }
        }
        let selector: serde_json::Map<String, Value> = svc["spec"]["selector"].as_object().cloned().unwrap_or_default();
        let pointer = format!("/metadata/annotations/{}", ANNOTATION_URL.replace('/', "~1"));
        ["apps/deployments", "apps/statefulsets"]
            .iter()
            .flat_map(|key| store.list(key, Some(namespace)).cloned().collect::<Vec<_>>())
            .find(|w| {
                let labels = w["spec"]["template"]["metadata"]["labels"].as_object();
                !selector.is_empty() && selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .map(|w| text(&w, &pointer).to_owned())
            .filter(|url| !url.is_empty())
    };
    let Some(url) = target else {
        return unavailable(format!("no endpoints available for service \"{name}\""));
    };
    let full = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    match forward(&url, &full).await {
        Ok((code, body)) => (StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY), body).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("error trying to reach service: {e}"),
        )
            .into_response(),
    }
}

/// A GET to a synthetic service on loopback (HTTP/1.1, connection closed after).
async fn forward(url: &str, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(502);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}
