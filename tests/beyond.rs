//! The observed blast radius: what a run sees beyond its targets (a workload in another
//! namespace that depends on the target, an alert no clause names), whose it is, and the halt
//! on unanticipated impact, by the scenario's rules and by the operator's floor.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use disasterpiece::clock::Clock;
use disasterpiece::engine::beyond::Floor;
use disasterpiece::engine::event::ExerciseEvent;
use disasterpiece::engine::preflight::{PlanOptions, plan};
use disasterpiece::engine::run::{Progress, run};
use disasterpiece::report::model::{CollateralKind, Outcome, Report};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use tokio::sync::watch;

mod common;
use common::{fast_shop, parse, start};

/// Kills every checkout pod, so for a moment checkout has no Ready endpoint.
fn checkout_loss(extra: &str) -> disasterpiece::scenario::Scenario {
    parse(&format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: checkout-loss}}
spec:
  hypothesis: Losing every checkout pod is absorbed; checkout is back within 20s.
  target: {{namespace: shop, kind: Deployment, name: checkout}}
  blastRadius: {{mode: all, respectPodDisruptionBudgets: false}}
  faults: [{{podKill: {{gracePeriodSeconds: 0}}}}]
  duration: 4s
  expect:
    - {{name: replaced, kube: {{readyReplicas: {{atLeast: 3}}}}, within: 20s}}
  recovery: {{within: 20s}}
{extra}"
    ))
}

async fn no_journal_left(client: &kube::Client) {
    let left = Api::<ConfigMap>::namespaced(client.clone(), "shop")
        .list(&ListParams::default().labels("disasterpiece.dev/journal=true"))
        .await
        .expect("list journals");
    assert!(left.items.is_empty(), "journals left: {:?}", left.items);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_workload_in_another_namespace_is_recorded_as_collateral_with_its_owner() {
    let (_sim, client) = start(fast_shop()).await;
    common::orders_depends_on_checkout(&client, serde_json::json!({"team": "orders-team"})).await;
    let scenario = checkout_loss("  watch: {namespaces: [orders]}");
    let (_tx, abort) = watch::channel(None);
    let report = run(
        &client,
        &scenario,
        common::run_options("loss-1"),
        abort,
        &disasterpiece::engine::run::Silent,
    )
    .await;
    // Recorded only: the verdict is the hypothesis's, the report says what else was hit.
    assert_ne!(report.outcome, Outcome::Aborted, "{:#?}", report.abort);
    let observed = report.observed_blast_radius.as_ref().expect("an observed blast radius");
    assert_eq!(observed.watched.namespaces, ["orders", "shop"]);
    let orders = observed
        .collateral
        .iter()
        .find(|c| c.kind == CollateralKind::Workload && c.subject == "Deployment orders/orders")
        .unwrap_or_else(|| panic!("orders is collateral: {:#?}", observed.collateral));
    assert_eq!(orders.owner.as_deref(), Some("orders-team"));
    assert!(orders.until.is_some(), "orders recovered within the watch: {orders:?}");
    assert!(!orders.halts);
    assert_eq!(observed.halted_by, None);
    // The targets and their replacements are the declared radius, never collateral.
    assert!(
        observed
            .collateral
            .iter()
            .all(|c| c.namespace.as_deref() == Some("orders")),
        "{:#?}",
        observed.collateral
    );
    assert_eq!(observed.declared.hit.len(), 3, "{:?}", observed.declared);
    // Every format says so.
    let markdown = disasterpiece::report::render::markdown(&report);
    assert!(markdown.contains("## Observed blast radius"), "{markdown}");
    assert!(
        markdown.contains("| workload | Deployment orders/orders |"),
        "{markdown}"
    );
    assert!(markdown.contains("orders-team"), "{markdown}");
    let junit = disasterpiece::report::render::junit(std::slice::from_ref(&report));
    assert!(junit.contains("name=\"no unanticipated impact\""), "{junit}");
    assert!(junit.contains("type=\"unanticipated\""), "{junit}");
    let html = disasterpiece::report::html::html(&report);
    assert!(html.contains("<table id=\"collateral\">"), "{html}");
    // The timeline has it too.
    assert!(
        report.timeline.iter().any(|e| e.kind == "collateral"),
        "{:#?}",
        report.timeline
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collateral_in_a_namespace_the_scenario_halts_on_aborts_the_run_and_reverts_everything() {
    let (_sim, client) = start(fast_shop()).await;
    common::orders_depends_on_checkout(&client, serde_json::json!({"team": "orders-team"})).await;
    let scenario =
        checkout_loss("  watch: {namespaces: [orders]}\n  unanticipated: {abortOn: {collateralIn: [orders]}}");
    let (_tx, abort) = watch::channel(None);
    let report = run(
        &client,
        &scenario,
        common::run_options("loss-2"),
        abort,
        &disasterpiece::engine::run::Silent,
    )
    .await;
    assert_eq!(report.outcome, Outcome::Aborted, "{:#?}", report.timeline);
    assert_eq!(report.exit_code(), 3);
    assert!(report.revert_failures.is_empty());
    let abort = report.abort.as_ref().expect("an abort");
    assert!(abort.reason.starts_with("unanticipated impact:"), "{}", abort.reason);
    assert!(abort.reason.contains("orders"), "{}", abort.reason);
    assert!(
        abort.reason.contains("(halts on collateral in orders (scenario))"),
        "{}",
        abort.reason
    );
    let observed = report.observed_blast_radius.as_ref().expect("observed");
    let tripped = &observed.collateral[observed.halted_by.expect("halted by one")];
    assert!(tripped.halts);
    assert_eq!(tripped.namespace.as_deref(), Some("orders"));
    // Detection comes first, then the request, then the revert: seen → halted → reverted.
    assert!(tripped.first_seen <= abort.requested_at);
    let completed = abort.completed_at.expect("completed");
    println!(
        "detection → everything reverted: {} ms",
        (completed - tripped.first_seen).num_milliseconds()
    );
    no_journal_left(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_lists_what_is_watched_and_what_halts_and_refuses_a_watch_it_may_not_open() {
    let (sim, client) = start(fast_shop()).await;
    common::orders_depends_on_checkout(&client, serde_json::json!({"team": "orders-team"})).await;
    let scenario =
        checkout_loss("  watch: {namespaces: [orders]}\n  unanticipated: {abortOn: {collateralIn: [orders]}}");
    let floor = Floor {
        alerts: vec![r#"severity="page""#.into()],
        ..Floor::default()
    };
    let options = PlanOptions {
        floor: floor.clone(),
        ..Default::default()
    };
    let planned = plan(&client, &scenario, "sim", 1, &options, &Clock::system()).await;
    assert_eq!(planned.watch.namespaces, ["orders", "shop"]);
    assert!(planned.watch.nodes, "{:?}", planned.watch.nodes_not_watched);
    assert_eq!(
        planned.watch.halts_on,
        [
            r#"alerts matching severity="page" (operator)"#,
            "collateral in orders (scenario)"
        ]
    );
    // An alert rule with no Alertmanager to read would never trigger: refused.
    assert!(!planned.runnable);
    assert!(
        planned.refusals.iter().any(|r| r.contains("--alertmanager-url")),
        "{:?}",
        planned.refusals
    );
    // An identity that may act in shop but not watch orders is refused, with the watch named.
    let admin = client.clone();
    let account: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "shop-only"}})).expect("sa");
    Api::namespaced(admin.clone(), "shop")
        .create(&Default::default(), &account)
        .await
        .expect("service account");
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "shop-only", "namespace": "shop"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "shop-only", "namespace": "shop"}]
    }))
    .expect("binding");
    Api::namespaced(admin.clone(), "shop")
        .create(&Default::default(), &binding)
        .await
        .expect("binding");
    let shop_only = sim.service_account_client("shop", "shop-only").await.expect("token");
    let planned = plan(&shop_only, &scenario, "sim", 1, &Default::default(), &Clock::system()).await;
    assert!(!planned.runnable);
    assert!(
        planned
            .refusals
            .iter()
            .any(|r| r == "not allowed to list pods in orders"),
        "{:?}",
        planned.refusals
    );
    // Nodes are not required: not watched, and the plan says why.
    assert!(!planned.watch.nodes);
    assert!(
        planned
            .watch
            .nodes_not_watched
            .as_deref()
            .is_some_and(|w| w.contains("list nodes")),
        "{:?}",
        planned.watch
    );
    // The command prints the watch and the halt rules.
    let file =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("beyond-plan-{}.yaml", std::process::id()));
    std::fs::write(&file, serde_yaml::to_string(&scenario).expect("yaml")).expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args(["plan", file.to_str().expect("utf-8"), "--kubeconfig"])
        .arg(sim.kubeconfig_path())
        .args(["--halt-on-alert", r#"severity="page""#, "--watch-namespace", "payments"])
        .env_remove("KUBECONFIG")
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("  namespaces    orders, payments, shop"), "{text}");
    assert!(
        text.contains(r#"  halts on      alerts matching severity="page" (operator)"#),
        "{text}"
    );
    assert!(
        text.contains("  halts on      collateral in orders (scenario)"),
        "{text}"
    );
    assert_eq!(output.status.code(), Some(2), "refused: no Alertmanager\n{text}");
}

/// Posts an alert to Alertmanager as soon as the first fault is in.
struct AlertOnInjection {
    am_url: String,
    labels: Vec<(&'static str, &'static str)>,
    posted: Arc<Mutex<bool>>,
}

impl Progress for AlertOnInjection {
    fn event(&self, _: Duration, event: &ExerciseEvent) {
        if matches!(event, ExerciseEvent::Injected { .. }) {
            let mut posted = self.posted.lock().expect("lock");
            if !*posted {
                *posted = true;
                let (url, labels) = (self.am_url.clone(), self.labels.clone());
                tokio::spawn(async move { common::post_alert(&url, &labels).await });
            }
        }
    }
}

async fn alert_run(
    client: &kube::Client,
    am_url: &str,
    scenario: &disasterpiece::scenario::Scenario,
    floor: Floor,
    labels: Vec<(&'static str, &'static str)>,
) -> Report {
    let mut options = common::run_options("alerting-1");
    options.sources.alertmanager = Some(am_url.to_owned());
    options.floor = floor;
    let (_tx, abort) = watch::channel(None);
    let progress = AlertOnInjection {
        am_url: am_url.to_owned(),
        labels,
        posted: Arc::default(),
    };
    run(client, scenario, options, abort, &progress).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_alertmanager),
    ignore = "needs alertmanager (apt-get install prometheus-alertmanager)"
)]
async fn an_unanticipated_page_alert_halts_the_run_and_is_reported_with_its_labels() {
    let (_sim, client) = start(fast_shop()).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("beyond-page-{}", std::process::id()));
    let (am_url, _am) = common::start_alertmanager(&common::alertmanager_binary(), &dir).await;
    let scenario = checkout_loss("  unanticipated: {abortOn: {alerts: ['severity=~\"page|critical\"']}}");
    let labels = vec![
        ("alertname", "OrdersErrorBudgetBurn"),
        ("severity", "page"),
        ("team", "orders-team"),
    ];
    let report = alert_run(&client, &am_url, &scenario, Floor::default(), labels).await;
    assert_eq!(report.outcome, Outcome::Aborted, "{:#?}", report.timeline);
    let abort = report.abort.as_ref().expect("abort");
    assert!(abort.reason.contains("OrdersErrorBudgetBurn"), "{}", abort.reason);
    let observed = report.observed_blast_radius.as_ref().expect("observed");
    let alert = &observed.collateral[observed.halted_by.expect("halted")];
    assert_eq!(alert.kind, CollateralKind::Alert);
    assert_eq!(alert.labels.get("severity").map(String::as_str), Some("page"));
    assert_eq!(alert.owner.as_deref(), Some("orders-team"));
    assert_eq!(observed.watched.alertmanager.as_deref(), Some(am_url.as_str()));
    no_journal_left(&client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_alertmanager),
    ignore = "needs alertmanager (apt-get install prometheus-alertmanager)"
)]
async fn an_alert_the_hypothesis_names_or_one_already_firing_does_not_halt() {
    let (_sim, client) = start(fast_shop()).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("beyond-named-{}", std::process::id()));
    let (am_url, _am) = common::start_alertmanager(&common::alertmanager_binary(), &dir).await;
    // Firing before the exercise: the baseline.
    common::post_alert(&am_url, &[("alertname", "DiskAlmostFull"), ("severity", "page")]).await;
    let scenario = parse(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-paged}
spec:
  hypothesis: Losing checkout pages its team.
  target: {namespace: shop, kind: Deployment, name: checkout}
  faults: [{podKill: {}}]
  duration: 3s
  expect:
    - {name: paged, alert: {name: CheckoutDegraded, labels: {severity: page}, source: alertmanager}, within: 20s}
  unanticipated: {abortOn: {alerts: ['severity=\"page\"']}}
  recovery: {within: 20s}
",
    );
    let labels = vec![("alertname", "CheckoutDegraded"), ("severity", "page")];
    let report = alert_run(&client, &am_url, &scenario, Floor::default(), labels).await;
    assert_ne!(report.outcome, Outcome::Aborted, "{:#?}", report.abort);
    let observed = report.observed_blast_radius.as_ref().expect("observed");
    assert!(observed.collateral.is_empty(), "{:#?}", observed.collateral);
    assert_eq!(observed.watched.already_firing, ["DiskAlmostFull{severity=\"page\"}"]);
    assert_eq!(
        report.expectations[0].verdict,
        disasterpiece::report::model::ClauseVerdict::Confirmed
    );
    let junit = disasterpiece::report::render::junit(std::slice::from_ref(&report));
    assert!(junit.contains("name=\"no unanticipated impact\""), "{junit}");
    assert!(!junit.contains("type=\"unanticipated\""), "{junit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_alertmanager),
    ignore = "needs alertmanager (apt-get install prometheus-alertmanager)"
)]
async fn a_record_only_scenario_still_halts_under_the_operators_floor() {
    let (_sim, client) = start(fast_shop()).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("beyond-floor-{}", std::process::id()));
    let (am_url, _am) = common::start_alertmanager(&common::alertmanager_binary(), &dir).await;
    // The scenario asks for nothing to halt it.
    let scenario = checkout_loss("");
    let floor = Floor {
        alerts: vec![r#"severity="page""#.into()],
        ..Floor::default()
    };
    let labels = vec![("alertname", "PaymentsDown"), ("severity", "page")];
    let report = alert_run(&client, &am_url, &scenario, floor, labels).await;
    assert_eq!(report.outcome, Outcome::Aborted, "{:#?}", report.timeline);
    let abort = report.abort.as_ref().expect("abort");
    assert!(abort.reason.contains("(operator)"), "{}", abort.reason);
    no_journal_left(&client).await;
}
