//! The prometheus and alert probes against a real Prometheus (Debian's package), which scrapes
//! the simulator's synthetic services and evaluates an alerting rule.
//!
//! Prometheus is found through `DISASTERPIECE_PROMETHEUS` or on PATH, Alertmanager through
//! `DISASTERPIECE_ALERTMANAGER` or on PATH (`.ci/run` installs both). Without them these tests
//! are ignored (build.rs), and `cargo test` counts them so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use disasterpiece::engine::run::{RunOptions, Silent, run};
use disasterpiece::probe::{self, ProbeContext, Verdict};
use disasterpiece::report::model::{ClauseVerdict, Outcome};
use disasterpiece::scenario::model::{PrometheusProbe, Target, TargetKind};
use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::Api;
use tokio::sync::watch;

mod common;
use common::{alertmanager_binary, eventually, fast_shop, free_port, parse, start, start_alertmanager};

fn prometheus_binary() -> PathBuf {
    common::program(
        Some("DISASTERPIECE_PROMETHEUS"),
        &["prometheus"],
        "apt-get install prometheus, or set DISASTERPIECE_PROMETHEUS",
    )
}

struct Prometheus {
    url: String,
    _child: tokio::process::Child,
}

/// Starts Prometheus scraping `targets` every second, with the rules of
/// `tests/prometheus/rules.yml` (CheckoutDegraded, CheckoutSlow), sending
/// alerts to `alertmanager` when given (`host:port`).
async fn start_prometheus(binary: &Path, dir: &Path, targets: &[String], alertmanager: Option<&str>) -> Prometheus {
    std::fs::create_dir_all(dir).expect("dir");
    let listed = targets.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: ['{rules}']\nscrape_configs:\n  - job_name: shop\n    static_configs:\n      - targets: [{listed}]\n{alertmanager}",
            rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prometheus/rules.yml").display(),
            alertmanager = alertmanager.map_or(String::new(), |am| format!("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{am}']\n"))
        ),
    )
    .expect("config");

    let port = free_port();
    let child = tokio::process::Command::new(binary)
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start prometheus");
    let url = format!("http://127.0.0.1:{port}");
    eventually("Prometheus has scraped every target", || async {
        probe::prometheus::instant(None, &url, "count(up == 1)")
            .await
            .ok()
            .and_then(|s| s.first().map(|(_, v)| *v as usize))
            == Some(targets.len())
    })
    .await;
    Prometheus { url, _child: child }
}

async fn shop_targets(client: &kube::Client) -> Vec<String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let mut targets = Vec::new();
    for name in ["checkout", "frontend", "payments"] {
        let url = deployments.get(name).await.expect("get").annotations()["sim.disasterpiece.dev/url"].clone();
        targets.push(url.trim_start_matches("http://").to_owned());
    }
    targets
}

/// A run against the simulator, sampled every 250 ms, asking `sources`.
fn options(exercise: &str, sources: disasterpiece::probe::Sources) -> RunOptions {
    RunOptions {
        exercise: exercise.into(),
        seed: 1,
        sample_every: Duration::from_millis(250),
        cluster: "sim".into(),
        sources,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_prometheus), ignore = "needs prometheus (apt-get install prometheus)")]
async fn an_alert_that_fires_is_detected_and_a_promql_threshold_must_hold_for_its_duration() {
    let binary = prometheus_binary();
    let (_sim, client) = start(fast_shop()).await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("prometheus-run-{}", std::process::id()));
    let prometheus = start_prometheus(&binary, &dir, &shop_targets(&client).await, None).await;
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-detected}
spec:
  hypothesis: Losing checkout replicas fires CheckoutDegraded, which resolves once they are back.
  target: {namespace: shop, kind: Deployment, name: checkout}
  faults: [{scale: {replicas: 1}}]
  duration: 6s
  steadyState:
    - {name: no alert, alert: {name: CheckoutDegraded, firing: false}}
  expect:
    - {name: alert fires, alert: {name: CheckoutDegraded, labels: {severity: page}}, within: 15s}
    - {name: fewer ready pods, prometheus: {query: 'sum(sim_ready_pods{service=\"checkout\"})', below: 3, for: 1s}, within: 10s}
    - {name: alert resolves, alert: {name: CheckoutDegraded, firing: false}, afterRecovery: true}
  recovery: {within: 30s}
",
    );
    let (_tx, abort) = watch::channel(None);
    let options = options(
        "ex-prom",
        disasterpiece::probe::Sources {
            prometheus: Some(prometheus.url.clone()),
            alertmanager: None,
            commands: Default::default(),
            hosts: disasterpiece::probe::hosts::HostPolicy::any(),
        },
    );
    let report = run(&client, &scenario, options, abort, &Silent).await;
    assert_eq!(
        report.outcome,
        Outcome::Confirmed,
        "{:?} {:#?}",
        report.refusals,
        report.expectations
    );
    assert!(
        report
            .expectations
            .iter()
            .all(|e| e.verdict == ClauseVerdict::Confirmed)
    );
    let fired = report.expectations[0].first_held.expect("the alert fired");
    let threshold = report.expectations[1].first_held.expect("the threshold held");
    assert!(
        report.expectations[1].observed.starts_with("1 (want < 3)"),
        "{}",
        report.expectations[1].observed
    );
    // Time to detect comes from the alert, not from the first clause to hold.
    let detect = report.metrics.time_to_detect_s.expect("detected");
    let injected = report.injections[0].injected_at.expect("injected");
    assert!(
        (detect - (fired - injected).num_milliseconds() as f64 / 1000.0).abs() < 0.01,
        "{detect} vs {fired}"
    );
    // `for: 1s`: the threshold counted only after a second of holding.
    assert!(
        threshold - injected >= chrono::Duration::seconds(1),
        "{threshold} vs {injected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_prometheus), ignore = "needs prometheus (apt-get install prometheus)")]
async fn no_data_several_series_and_bad_queries_are_inconclusive_never_a_pass() {
    let binary = prometheus_binary();
    let (_sim, client) = start(fast_shop()).await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("prometheus-edge-{}", std::process::id()));
    let prometheus = start_prometheus(&binary, &dir, &shop_targets(&client).await, None).await;
    let ctx = ProbeContext {
        client: client.clone(),
        target: Target {
            namespace: Some("shop".into()),
            kind: TargetKind::Deployment,
            name: Some("checkout".into()),
            selector: None,
        },
        sources: disasterpiece::probe::Sources {
            prometheus: Some(prometheus.url.clone()),
            alertmanager: None,
            commands: Default::default(),
            hosts: disasterpiece::probe::hosts::HostPolicy::any(),
        },
        clock: Default::default(),
    };
    let ask = |query: &str| PrometheusProbe {
        query: query.into(),
        below: Some(100.0),
        ..PrometheusProbe::default()
    };
    let cases = [
        (
            "sim_ready_pods",
            Verdict::Inconclusive,
            "returned 3 series; aggregate it",
        ),
        ("sim_ready_pods{service=\"nothing\"}", Verdict::Inconclusive, "no data"),
        (
            "sum(sim_ready_pods",
            Verdict::Inconclusive,
            "Prometheus refused the query",
        ),
        ("sum(sim_ready_pods)", Verdict::Pass, "8 (want < 100)"),
    ];
    for (query, verdict, observed) in cases {
        let sample = probe::prometheus::sample(&ctx, &ask(query)).await;
        assert_eq!(sample.verdict, verdict, "{query}: {}", sample.observed);
        assert!(sample.observed.contains(observed), "{query}: {}", sample.observed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(has_prometheus, has_alertmanager)),
    ignore = "needs prometheus and alertmanager (apt-get install prometheus prometheus-alertmanager)"
)]
async fn an_alert_read_from_alertmanager_is_detected() {
    let Monitored {
        _sim,
        client,
        prometheus,
        am_url,
        _am,
    } = monitored_shop("alertmanager").await;
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-paged}
spec:
  hypothesis: Losing checkout replicas pages through Alertmanager.
  target: {namespace: shop, kind: Deployment, name: checkout}
  faults: [{scale: {replicas: 1}}]
  duration: 8s
  expect:
    - {name: paged, alert: {name: CheckoutDegraded, labels: {severity: page}, source: alertmanager}, within: 20s}
  recovery: {within: 30s}
",
    );
    let (_tx, abort) = watch::channel(None);
    let sources = disasterpiece::probe::Sources {
        prometheus: Some(prometheus.url.clone()),
        alertmanager: Some(am_url),
        commands: Default::default(),
        hosts: disasterpiece::probe::hosts::HostPolicy::any(),
    };
    let options = options("ex-am", sources);
    let report = run(&client, &scenario, options, abort, &Silent).await;
    assert_eq!(
        report.expectations[0].verdict,
        ClauseVerdict::Confirmed,
        "{:#?}",
        report.expectations
    );
    assert_eq!(
        report.expectations[0].observed,
        "CheckoutDegraded is firing (Alertmanager)"
    );
    assert!(report.metrics.time_to_detect_s.is_some());
}

/// The shop, scraped by a Prometheus that sends its alerts to an Alertmanager.
struct Monitored {
    _sim: disasterpiece_sim::Sim,
    client: kube::Client,
    prometheus: Prometheus,
    am_url: String,
    _am: tokio::process::Child,
}

/// Starts the shop, Alertmanager and Prometheus.
async fn monitored_shop(dir_name: &str) -> Monitored {
    let (prom_binary, am_binary) = (prometheus_binary(), alertmanager_binary());
    let (_sim, client) = start(fast_shop()).await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{dir_name}-{}", std::process::id()));
    let (am_url, _am) = start_alertmanager(&am_binary, &dir).await;
    let prometheus = start_prometheus(
        &prom_binary,
        &dir.join("prom"),
        &shop_targets(&client).await,
        Some(am_url.trim_start_matches("http://")),
    )
    .await;
    Monitored {
        _sim,
        client,
        prometheus,
        am_url,
        _am,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(has_prometheus, has_alertmanager)),
    ignore = "needs prometheus and alertmanager (apt-get install prometheus prometheus-alertmanager)"
)]
async fn a_300ms_delay_fires_checkout_slow_and_the_report_measures_time_to_detect() {
    let Monitored {
        _sim,
        client,
        prometheus,
        am_url,
        _am,
    } = monitored_shop("checkout-slow").await;
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/checkout-slow-alert.yaml"))
            .expect("read the scenario");
    let scenario = parse(&text);
    let (_tx, abort) = watch::channel(None);
    let options = options(
        "ex-slow",
        disasterpiece::probe::Sources {
            prometheus: Some(prometheus.url.clone()),
            alertmanager: Some(am_url),
            commands: Default::default(),
            hosts: disasterpiece::probe::hosts::HostPolicy::any(),
        },
    );
    let report = run(&client, &scenario, options, abort, &Silent).await;
    assert_eq!(
        report.outcome,
        Outcome::Confirmed,
        "{:?} {:#?}",
        report.refusals,
        report.expectations
    );
    assert_eq!(report.injections.len(), 3, "every checkout pod delayed");
    assert!(
        report
            .injections
            .iter()
            .all(|i| i.injected_at.is_some() && i.reverted_at.is_some())
    );
    assert_eq!(report.expectations[0].observed, "CheckoutSlow is firing (Alertmanager)");
    let detect = report.metrics.time_to_detect_s.expect("a measured time to detect");
    let fired = report.expectations[0].first_held.expect("the alert fired");
    let injected = report.injections[0].injected_at.expect("injected");
    assert!(
        (detect - (fired - injected).num_milliseconds() as f64 / 1000.0).abs() < 0.01,
        "{detect} vs {fired}"
    );
    assert!(detect > 0.0 && detect <= 30.0, "{detect}");
    println!("CheckoutSlow fired {detect:.1}s after the 300ms delay was injected");
    // The delay is gone: checkout answers fast again.
    let url = shop_targets(&client).await[0].clone();
    let started = std::time::Instant::now();
    assert_eq!(common::http_status(&format!("http://{url}"), "/").await, Some(200));
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?} after the revert",
        started.elapsed()
    );
}

/// The controller shows the success metrics of the reports it keeps on `/metrics`; a real
/// Prometheus scrapes them, a PromQL query gives the team's figure, and every query of the
/// chart's Grafana dashboard returns data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_prometheus), ignore = "needs prometheus (apt-get install prometheus)")]
async fn the_success_metrics_reach_prometheus_and_every_dashboard_query_has_data() {
    use disasterpiece::controller::crd::{Exercise, ExerciseSpec};
    use disasterpiece::report::model::{FollowUp, FollowUpStatus};
    let report = common::pod_loss_report("learned-1").await;
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    // Two reports kept in the cluster: payments refuted and learned, with a follow-up overdue.
    for (i, outcome) in [Outcome::Confirmed, Outcome::Refuted].into_iter().enumerate() {
        let mut r = report.clone();
        r.exercise = format!("learned-{i}");
        r.outcome = outcome;
        r.scenario.metadata.labels = [("team".to_owned(), "payments".to_owned())].into();
        r.metrics.time_to_detect_s = Some(12.0 + i as f64);
        r.metrics.time_to_recover_s = Some(3.0);
        if outcome == Outcome::Refuted {
            r.learned = vec!["the alert fires on errors, not on latency".into()];
            r.follow_ups = vec![FollowUp {
                text: "alert on latency".into(),
                owner: Some("payments".into()),
                status: FollowUpStatus::Open,
                due: Some(chrono::NaiveDate::from_ymd_opt(2020, 1, 1).expect("date")),
                ticket: None,
                proven_by: None,
                opened_at: None,
                closed_at: None,
            }];
        }
        let exercise = Exercise::new(&r.exercise, ExerciseSpec::default());
        disasterpiece::controller::reports::store(&client, "shop", &format!("report-learned-{i}"), &exercise, &r)
            .await
            .expect("store");
    }
    // Payments owns the shop: four workloads, of which the reports exercised checkout.
    kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .patch(
            "shop",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"labels": {"team": "payments"}}})),
        )
        .await
        .expect("label the namespace");
    let metrics = std::sync::Arc::new(disasterpiece::controller::metrics::Metrics::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let address = listener.local_addr().expect("addr").to_string();
    tokio::spawn(disasterpiece::controller::metrics::serve(listener, metrics.clone()));
    let (_stop, stop) = watch::channel(false);
    let options = disasterpiece::controller::Options {
        metrics: metrics.clone(),
        ..common::controller_options(&sim)
    };
    tokio::spawn(disasterpiece::controller::control(client.clone(), options, stop));
    eventually("the success metrics are on /metrics", || async {
        metrics
            .text()
            .contains("disasterpiece_follow_ups{team=\"payments\",standing=\"overdue\"} 1")
    })
    .await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("learning-{}", std::process::id()));
    let prometheus = start_prometheus(&prometheus_binary(), &dir, &[address], None).await;
    let value = |query: &str| {
        let url = prometheus.url.clone();
        let query = query.to_owned();
        async move { probe::prometheus::instant(None, &url, &query).await.unwrap_or_default() }
    };
    eventually("Prometheus has the success metrics", || async {
        !value("disasterpiece_follow_ups").await.is_empty()
    })
    .await;
    let overdue = value("sum(disasterpiece_follow_ups{team=\"payments\",standing=\"overdue\"})").await;
    assert_eq!(overdue.first().map(|(_, v)| *v), Some(1.0), "{overdue:?}");
    let taught = value("sum(disasterpiece_hypotheses_taught{team=\"payments\"})").await;
    assert_eq!(taught.first().map(|(_, v)| *v), Some(1.0), "{taught:?}");
    let kept = value("sum(disasterpiece_reported_exercises{team=\"payments\"})").await;
    assert_eq!(kept.first().map(|(_, v)| *v), Some(2.0), "{kept:?}");
    // Coverage: checkout of frontend, checkout, payments and orders-db.
    let ratio = value("disasterpiece_coverage_ratio{team=\"payments\"}").await;
    assert_eq!(ratio.first().map(|(_, v)| *v), Some(0.25), "{ratio:?}");
    let never = value("sum(disasterpiece_workloads{team=\"payments\",coverage=\"never\"})").await;
    assert_eq!(never.first().map(|(_, v)| *v), Some(3.0), "{never:?}");
    // The chart's dashboard: valid JSON, and every query has data.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("helm/disasterpiece/dashboards/learning.json").expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    assert!(queries.len() >= 6, "{queries:?}");
    for query in queries {
        let found = value(&query).await;
        assert!(!found.is_empty(), "no data for the dashboard's `{query}`");
    }
}
