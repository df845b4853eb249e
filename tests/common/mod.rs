//! Helpers shared by the integration tests (each test crate uses some of them).
#![allow(dead_code)]

use std::time::Duration;

use disasterpiece_sim::{Seed, Sim, SimBuilder};

/// Polls until `check` holds; panics naming `what` after 30 seconds. Not a timing assertion:
/// the simulator's delays are fractions of a second, the limit only stops a hung test.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The shop, with a world fast enough for tests (pods replaced after 200 ms, Ready 100 ms later).
pub fn fast_shop() -> SimBuilder {
    Sim::builder()
        .seed(Seed::Shop)
        .replace_delay(Duration::from_millis(200))
        .ready_delay(Duration::from_millis(100))
}

/// A controller for tests: every namespace, polling every 100 ms, no leader election.
pub fn controller_options(sim: &Sim) -> disasterpiece::controller::Options {
    disasterpiece::controller::Options {
        namespace: None,
        poll: Duration::from_millis(100),
        cluster: sim.url().to_owned(),
        sources: Default::default(),
        fault_image: None,
        fault_images: Vec::new(),
        journal_namespace: "default".into(),
        kill_switch: Default::default(),
        node_namespaces: Vec::new(),
        election: None,
        clock: Default::default(),
        metrics: Default::default(),
        floor: Default::default(),
        learn_every: Duration::from_secs(1),
        review: None,
    }
}

/// How the tests run an exercise in-process: sampled every 200 ms, against the simulator.
pub fn run_options(exercise: &str) -> disasterpiece::engine::run::RunOptions {
    disasterpiece::engine::run::RunOptions {
        exercise: exercise.into(),
        seed: 1,
        sample_every: Duration::from_millis(200),
        cluster: "sim".into(),
        ..Default::default()
    }
}

/// Starts a simulator and a client that shows every answer as it is (no kube retries).
pub async fn start(builder: SimBuilder) -> (Sim, kube::Client) {
    let sim = builder.start().await.expect("simulator starts");
    let client = sim.raw_client().await.expect("client from the written kubeconfig");
    (sim, client)
}

/// A plain HTTP/1.1 GET: the status and the whole response, or `None` when the service
/// does not answer within two seconds.
pub async fn http_get(url: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.strip_prefix("http://")?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let code = response.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, response))
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()
        .flatten()
}

pub async fn http_status(url: &str, path: &str) -> Option<u16> {
    http_get(url, path).await.map(|(code, _)| code)
}

pub async fn http_body(url: &str, path: &str) -> String {
    http_get(url, path)
        .await
        .map(|(_, text)| text)
        .expect("the service answers")
}

/// The NetworkPolicies of `shop`, as JSON.
pub fn shop_policies(client: &kube::Client) -> kube::Api<kube::core::DynamicObject> {
    let resource = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("networking.k8s.io", "v1", "NetworkPolicy"),
        "networkpolicies",
    );
    kube::Api::namespaced_with(client.clone(), "shop", &resource)
}

/// After a NetworkPolicy fault is reverted: no NetworkPolicy left in shop, and no pod of shop
/// with a label key under `domain` (the faults label pods `<domain>/<exercise>`).
pub async fn assert_no_policy_nor_label(client: &kube::Client, domain: &str) {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};
    let left = shop_policies(client)
        .list(&ListParams::default())
        .await
        .expect("list policies")
        .items;
    assert!(
        left.is_empty(),
        "NetworkPolicies left: {:?}",
        left.iter().map(|p| p.metadata.name.clone()).collect::<Vec<_>>()
    );
    let prefix = format!("{domain}/");
    let labelled: Vec<String> = Api::<Pod>::namespaced(client.clone(), "shop")
        .list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .iter()
        .flat_map(|p| p.metadata.labels.clone().unwrap_or_default().into_keys())
        .filter(|k| k.starts_with(&prefix))
        .collect();
    assert!(labelled.is_empty(), "pods still labelled {labelled:?}");
}

/// Creates Disasterpiece's CustomResourceDefinitions (as `disasterpiece crd` prints them).
pub async fn install_crds(client: &kube::Client) {
    disasterpiece::controller::crd::install(client)
        .await
        .expect("the CRDs are accepted");
}

/// An external program a test needs: the path the environment variable `variable` names,
/// else the first of `names` found on PATH. Each test that calls this carries
/// `#[cfg_attr(not(has_…), ignore = "needs …")]` (see build.rs), so the program is missing
/// only when such a test is run on purpose (`--ignored`): then the test fails, saying how to
/// install it, rather than passing without having run.
pub fn program(variable: Option<&str>, names: &[&str], install: &str) -> std::path::PathBuf {
    let named = variable.and_then(std::env::var_os).map(std::path::PathBuf::from);
    named
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("this test needs {}: {install}", names.join(" or ")))
}

/// The one Scenario of a YAML text, valid; panics with the problems otherwise.
pub fn parse(text: &str) -> disasterpiece::scenario::Scenario {
    let loaded = disasterpiece::scenario::load(text, &|_| true);
    match loaded.resources.into_iter().next() {
        Some((_, disasterpiece::scenario::Resource::Scenario(s))) => *s,
        _ => panic!("invalid test scenario: {:?}", loaded.problems),
    }
}

/// The replicas `spec` of Deployment `shop/name`.
pub async fn replicas(client: &kube::Client, name: &str) -> i32 {
    kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), "shop")
        .get(name)
        .await
        .expect("get the Deployment")
        .spec
        .replicas
        .unwrap_or(0)
}

/// Starts `disasterpiece run` on a scenario file and waits until it reports an injection.
pub async fn start_run(sim: &Sim, dir: &std::path::Path, scenario: &str, injections: usize) -> tokio::process::Child {
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(dir.join("scenario.yaml"), scenario).expect("write");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args(["run", "scenario.yaml", "--sample-every", "200ms", "--kubeconfig"])
        .arg(sim.kubeconfig_path())
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start run");
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = 0;
    while seen < injections {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("progress")
            .expect("read")
            .expect("a line");
        if line.contains("] injected: ") {
            seen += 1;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

pub fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().expect("pid").to_string();
    assert!(
        std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill")
            .success()
    );
}

/// Two cpuStress faults on one frontend pod (tests/in_pod.rs, tests/in_pod_processes.rs: a
/// re-run and two faults of one kind on one pod).
pub fn two_cpu_stresses(duration: &str) -> disasterpiece::scenario::Scenario {
    parse(&format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: frontend-two-stresses}}
spec:
  hypothesis: Frontend keeps up under two kinds of CPU pressure at once.
  target: {{namespace: shop, kind: Deployment, name: frontend}}
  blastRadius: {{mode: one}}
  faults: [{{cpuStress: {{workers: 1, load: 50}}}}, {{cpuStress: {{workers: 1, load: 30}}}}]
  duration: {duration}
  expect:
    - {{name: some ready, kube: {{readyReplicas: {{atLeast: 1}}}}, throughout: true}}
"
    ))
}

/// Runs `scenario` as exercise `exercise`, sampling every 200 ms, to its end.
pub async fn run_to_end(
    client: &kube::Client,
    scenario: &disasterpiece::scenario::Scenario,
    exercise: &str,
) -> disasterpiece::report::model::Report {
    use disasterpiece::engine::run::{RunOptions, Silent, run};
    let options = RunOptions {
        exercise: exercise.into(),
        seed: 1,
        sample_every: Duration::from_millis(200),
        cluster: "sim".into(),
        ..Default::default()
    };
    let (_cord, abort) = tokio::sync::watch::channel(None);
    run(client, scenario, options, abort, &Silent).await
}

/// A webhook on 127.0.0.1 that answers 200 and keeps each JSON body it was sent.
pub async fn webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let kept = got.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    if let Ok(json) = serde_json::from_str(body) {
                        kept.lock().expect("lock").push(json);
                    }
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                        .await;
                    return;
                }
            });
        }
    });
    (url, got)
}

/// A path to the simulator that the test can cut, as a network partition cuts one replica off
/// from the API server: while cut, requests are held (TCP retransmits them once the path
/// heals), so they hang rather than fail. It notes when each write request entered it.
/// Plain HTTP on the replica's side, the simulator's TLS on the other (through an admin
/// client, whose credentials replace the replica's).
pub struct Partition {
    pub url: String,
    /// What is held: nothing (`None`), or the requests whose path contains this (`""`: all).
    cut: tokio::sync::watch::Sender<Option<String>>,
    /// When each request other than GET entered the path, and its method and path.
    writes: std::sync::Arc<std::sync::Mutex<Vec<(tokio::time::Instant, String)>>>,
}

impl Partition {
    pub async fn to(sim: &Sim) -> Partition {
        use axum::response::IntoResponse;
        let upstream = sim.raw_client().await.expect("client");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (cut, cut_rx) = tokio::sync::watch::channel(None::<String>);
        let writes: std::sync::Arc<std::sync::Mutex<Vec<(tokio::time::Instant, String)>>> = Default::default();
        let noted = writes.clone();
        let forward = move |request: axum::extract::Request| {
            let (upstream, mut cut, noted) = (upstream.clone(), cut_rx.clone(), noted.clone());
            async move {
                let (parts, body) = request.into_parts();
                if !matches!(parts.method, http::Method::GET | http::Method::HEAD) {
                    let line = format!("{} {}", parts.method, parts.uri);
                    noted.lock().expect("lock").push((tokio::time::Instant::now(), line));
                }
                let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
                    return http::StatusCode::BAD_REQUEST.into_response();
                };
                let path = parts.uri.path().to_owned();
                let held = move |cut: &Option<String>| cut.as_deref().is_some_and(|c| path.contains(c));
                if cut.wait_for(|c| !held(c)).await.is_err() {
                    return http::StatusCode::BAD_GATEWAY.into_response();
                }
                let mut request = http::Request::from_parts(parts, kube::client::Body::from(body.to_vec()));
                request.headers_mut().remove(http::header::AUTHORIZATION);
                match upstream.send(request).await {
                    Ok(response) => {
                        let (parts, body) = response.into_parts();
                        // Answers are held too (a watch's events among them).
                        let held = http_body_util::StreamBody::new(futures_util::StreamExt::then(
                            http_body_util::BodyStream::new(body),
                            move |frame| {
                                let (mut cut, held) = (cut.clone(), held.clone());
                                async move {
                                    let _ = cut.wait_for(|c| !held(c)).await;
                                    frame
                                }
                            },
                        ));
                        http::Response::from_parts(parts, axum::body::Body::new(held)).into_response()
                    }
                    Err(e) => (http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                }
            }
        };
        let app = axum::Router::new().fallback(forward);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Partition { url, cut, writes }
    }

    /// A client (no kube retries) whose every request takes this path.
    pub async fn client(&self, sim: &Sim) -> kube::Client {
        let mut config = sim.kube_config().await.expect("config");
        config.cluster_url = self.url.parse().expect("url");
        config.default_retry = false;
        kube::Client::try_from(config).expect("client")
    }

    /// Holds every request.
    pub fn cut(&self) {
        self.cut.send_replace(Some(String::new()));
    }

    /// Holds only the requests whose path contains `part` (those already held included).
    pub fn hold_only(&self, part: &str) {
        self.cut.send_replace(Some(part.to_owned()));
    }

    pub fn heal(&self) {
        self.cut.send_replace(None);
    }

    /// The write requests (method and path) that entered the path after `since`.
    pub fn writes_since(&self, since: tokio::time::Instant) -> Vec<String> {
        self.writes
            .lock()
            .expect("lock")
            .iter()
            .filter(|(at, _)| *at > since)
            .map(|(_, line)| line.clone())
            .collect()
    }
}

/// Debian names it prometheus-alertmanager; elsewhere it is alertmanager.
pub fn alertmanager_binary() -> std::path::PathBuf {
    program(
        Some("DISASTERPIECE_ALERTMANAGER"),
        &["prometheus-alertmanager", "alertmanager"],
        "apt-get install prometheus-alertmanager, or set DISASTERPIECE_ALERTMANAGER",
    )
}

/// A port on 127.0.0.1 nothing listens on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts Alertmanager on a free port with a receiver that drops everything; its URL and
/// process (killed on drop).
pub async fn start_alertmanager(binary: &std::path::Path, dir: &std::path::Path) -> (String, tokio::process::Child) {
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(dir.join("alertmanager.yml"), "route: {receiver: 'null', group_wait: 0s, group_interval: 1s, repeat_interval: 1h}\nreceivers: [{name: 'null'}]\n").expect("config");
    let port = free_port();
    let child = tokio::process::Command::new(binary)
        .arg(format!("--config.file={}", dir.join("alertmanager.yml").display()))
        .arg(format!("--storage.path={}", dir.join("am").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start alertmanager");
    let am_url = format!("http://127.0.0.1:{port}");
    eventually("Alertmanager is ready", || async {
        let url = url::Url::parse(&am_url).expect("url");
        disasterpiece::probe::http::direct(None, &url, "GET", "/-/ready", &Default::default())
            .await
            .is_ok_and(|(code, _)| code == 200)
    })
    .await;
    (am_url, child)
}

/// Posts one alert with `labels` to Alertmanager (its v2 API), firing from now until told
/// otherwise.
pub async fn post_alert(am_url: &str, labels: &[(&str, &str)]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
        .collect();
    let body = serde_json::json!([{"labels": labels}]).to_string();
    let addr = am_url.strip_prefix("http://").expect("http URL");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to Alertmanager");
    let request = format!(
        "POST /api/v2/alerts HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("post");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "Alertmanager refused the alert: {answer}"
    );
}

/// `orders` in a namespace of its own (with `labels`), whose pods are Ready only
/// while checkout (in shop) has a Ready pod.
pub async fn orders_depends_on_checkout(client: &kube::Client, labels: serde_json::Value) {
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "orders", "labels": labels}
    }))
    .expect("namespace");
    kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&Default::default(), &ns)
        .await
        .expect("create namespace orders");
    let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "orders", "namespace": "orders",
            "annotations": {"sim.disasterpiece.dev/depends-on": "shop/checkout"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "orders"}},
            "template": {"metadata": {"labels": {"app": "orders"}},
                "spec": {"containers": [{"name": "orders", "image": "registry.example.com/orders:1"}]}}}
    }))
    .expect("deployment");
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> = kube::Api::namespaced(client.clone(), "orders");
    api.create(&Default::default(), &deployment)
        .await
        .expect("create orders");
    eventually("orders is ready", || async {
        api.get("orders")
            .await
            .ok()
            .and_then(|d| d.status?.ready_replicas)
            .is_some_and(|r| r == 2)
    })
    .await;
}

/// Compares `actual` with `tests/golden/NAME`; `UPDATE_GOLDEN=1` writes it first.
pub fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs from the rendering; if the change is intended, run UPDATE_GOLDEN=1 cargo test --test NAME and review the diff.\n--- rendered:\n{actual}",
        path.display()
    );
}

/// A real report: the pod-loss demo scenario, run on the simulator as `exercise`.
pub async fn pod_loss_report(exercise: &str) -> disasterpiece::report::model::Report {
    use disasterpiece::engine::run::{Silent, run};
    let (_sim, client) = start(fast_shop()).await;
    let text = std::fs::read_to_string("scenarios/demo-checkout-pod-loss.yaml").expect("scenario");
    let scenario = match disasterpiece::scenario::load(&text, &|_| true).resources.remove(0).1 {
        disasterpiece::scenario::Resource::Scenario(s) => *s,
        other => panic!("not a scenario: {other:?}"),
    };
    let (_tx, abort) = tokio::sync::watch::channel(None);
    run(&client, &scenario, run_options(exercise), abort, &Silent).await
}

/// Runs headless Chromium on `url` with `extra` arguments and its own profile in `profile`,
/// every request it makes sent to a "proxy" of its own that writes down the request line of
/// each connection: what it printed, and the lines.
pub fn chromium(
    chromium: &std::path::Path,
    profile: &std::path::Path,
    extra: &[String],
    url: &str,
) -> (std::process::Output, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let proxy_addr = proxy.local_addr().expect("addr");
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    std::thread::spawn({
        let requests = requests.clone();
        move || {
            for stream in proxy.incoming().flatten() {
                use std::io::BufRead;
                let mut line = String::new();
                let _ = std::io::BufReader::new(stream).read_line(&mut line);
                requests.lock().expect("lock").push(line.trim().to_owned());
            }
        }
    });
    let output = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--window-size=1200,1600",
        ])
        .arg(format!("--proxy-server=http://{proxy_addr}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium");
    (output, requests)
}

/// What a page asked for, leaving out connections that sent no request and Chromium's own
/// calls home (component updates, network time, accounts), which it makes even with
/// background networking off.
pub fn asked_by_page(requests: &std::sync::Mutex<Vec<String>>) -> Vec<String> {
    let own = [".google.com", ".googleapis.com", ".gvt1.com"];
    requests
        .lock()
        .expect("lock")
        .iter()
        .filter(|line| {
            let target = line.split_whitespace().nth(1).unwrap_or_default();
            let host = target
                .trim_start_matches("http://")
                .split(['/', ':'])
                .next()
                .unwrap_or_default();
            !line.is_empty() && !own.iter().any(|o| host.ends_with(o))
        })
        .cloned()
        .collect()
}
