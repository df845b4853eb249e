//! The controller against the simulator: an Exercise created with kubectl runs to a verdict
//! with its status, Events and report ConfigMap; deleting a running Exercise reverts its
//! fault first; a Scenario may not reach into another namespace without its opt-in.

use std::time::Duration;

use disasterpiece::clock::{Clock, ManualClock};
use disasterpiece::controller::crd::{Exercise, ExerciseSpec, Phase};
use disasterpiece::controller::{Options, control};
use disasterpiece::scenario::model::ScenarioResource;
use disasterpiece::scenario::{self, Resource};
use disasterpiece_sim::Sim;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use tokio::sync::watch;

use disasterpiece::controller::crd::{ConditionStatus, ConditionType, Verdict};

mod common;
use common::{eventually, fast_shop, start};

/// A controller polling every 100 ms, reading time from `clock`.
/// A controller on `clock` whose operator allowed the tests' local webhooks (127.0.0.1).
fn options(sim: &Sim, clock: Clock) -> Options {
    let base = common::controller_options(sim);
    Options {
        clock,
        sources: disasterpiece::probe::Sources {
            hosts: disasterpiece::probe::hosts::HostPolicy::parse(&["127.0.0.1"]).expect("rule"),
            ..base.sources.clone()
        },
        ..base
    }
}

/// The shop with the CRDs installed and a controller running; dropped, it stops.
struct Cluster {
    /// Kept so the simulator lives as long as the cluster.
    _sim: Sim,
    client: kube::Client,
    /// Where the controller serves /metrics, /healthz and /readyz.
    metrics_url: String,
    _stop: watch::Sender<bool>,
}

async fn cluster() -> Cluster {
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    let (stop_tx, stop) = watch::channel(false);
    let metrics = std::sync::Arc::new(disasterpiece::controller::metrics::Metrics::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let metrics_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(disasterpiece::controller::metrics::serve(listener, metrics.clone()));
    let options = Options {
        metrics,
        ..common::controller_options(&sim)
    };
    tokio::spawn(control(client.clone(), options, stop));
    Cluster {
        _sim: sim,
        client,
        metrics_url,
        _stop: stop_tx,
    }
}

async fn add_scenario(client: &kube::Client, namespace: &str, yaml: &str) {
    let mut loaded = scenario::load(yaml, &|_| true);
    assert!(loaded.problems.is_empty(), "{yaml}\n{:?}", loaded.problems);
    let scenario = match loaded.resources.remove(0).1 {
        Resource::Scenario(s) => *s,
        other => panic!("not a scenario: {other:?}"),
    };
    Api::<ScenarioResource>::namespaced(client.clone(), namespace)
        .create(
            &PostParams::default(),
            &ScenarioResource::new(&scenario.metadata.name, scenario.spec),
        )
        .await
        .expect("create the Scenario");
}

fn exercise(name: &str, scenario: &str) -> Exercise {
    Exercise::new(
        name,
        ExerciseSpec {
            scenario: scenario.into(),
            seed: Some(1),
            sample_every: Some(Duration::from_millis(200).into()),
            ..Default::default()
        },
    )
}

/// The Events in `shop` about the object named `name`.
async fn events_of(client: &kube::Client, name: &str) -> Vec<Event> {
    Api::<Event>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .collect()
}

/// Creates Exercise `name` of `scenario` in `namespace` and waits until it is refused.
async fn refused(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    scenario: &str,
) -> disasterpiece::controller::crd::ExerciseStatus {
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), namespace);
    exercises
        .create(&PostParams::default(), &exercise(name, scenario))
        .await
        .expect("create");
    eventually("the exercise is refused", || async {
        exercises.get(name).await.ok().and_then(|e| e.status?.phase) == Some(Phase::Refused)
    })
    .await;
    exercises.get(name).await.expect("get").status.expect("status")
}

/// Scales the frontend to one for five minutes: long enough to abort it mid-fault.
const DOWN_TO_ONE: &str = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: frontend-down-to-one}
spec:
  hypothesis: The frontend copes with one replica.
  target: {namespace: shop, kind: Deployment, name: frontend}
  faults: [{scale: {replicas: 1}}]
  duration: 5m
  expect:
    - {name: one left, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
";

const POD_LOSS: &str = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-pod-loss}
spec:
  hypothesis: Checkout keeps answering while a pod is lost.
  target: {namespace: shop, kind: Deployment, name: checkout}
  faults: [{podKill: {gracePeriodSeconds: 0}}]
  duration: 2s
  expect:
    - {name: keeps answering, http: {url: 'http://checkout.shop.svc/'}, throughout: true}
    - {name: replaced, kube: {readyReplicas: {atLeast: 3}}, within: 10s}
  recovery: {within: 20s}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exercise_runs_to_a_verdict_with_status_events_and_report() {
    let cluster = cluster().await;
    let client = &cluster.client;
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    finished_pod_loss(client, "pod-loss-1").await;
    let done = exercises.get("pod-loss-1").await.expect("get");
    let status = done.status.clone().expect("status");
    assert_eq!(status.verdict, Some(Verdict::Confirmed), "{status:?}");
    assert_eq!(status.expectations.len(), 2);
    assert!(
        status
            .expectations
            .iter()
            .all(|e| e.verdict == Some(disasterpiece::report::model::ClauseVerdict::Confirmed))
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == ConditionType::Reverted && c.status == ConditionStatus::True)
    );
    assert_eq!(status.journal.len(), 1);
    assert!(
        done.metadata.finalizers.unwrap_or_default().is_empty(),
        "finalizer removed"
    );
    // The report ConfigMap holds the whole report.
    let map = Api::<ConfigMap>::namespaced(client.clone(), "shop")
        .get(status.report.as_deref().expect("report named"))
        .await
        .expect("the report ConfigMap");
    let report = disasterpiece::report::store::parse(&map.data.expect("data")["report.json"]).expect("a report");
    assert_eq!(report.exercise, "pod-loss-1");
    // Events for each phase, the injection, the revert and the end.
    eventually("the Events are recorded", || async {
        let reasons: Vec<String> = events_of(client, "pod-loss-1")
            .await
            .into_iter()
            .filter_map(|e| e.reason)
            .collect();
        ["Started", "Phase", "Injected", "Reverted", "Finished"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
    })
    .await;
    // In the order they happened, as `kubectl describe` sorts them (a series' last time, else
    // lastTimestamp, else eventTime): each has its eventTime to the microsecond, not only
    // whole seconds in which the phases of a fast exercise would be shuffled.
    let mut events = events_of(client, "pod-loss-1").await;
    for e in &events {
        assert!(e.last_timestamp.is_none() && e.series.is_none(), "{e:?}");
        assert!(e.event_time.is_some(), "{e:?}");
        assert_eq!(e.reporting_component.as_deref(), Some("disasterpiece-controller"));
        assert!(e.reporting_instance.is_some() && e.action.is_some(), "{e:?}");
    }
    events.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
    let order: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
            )
        })
        .collect();
    let first = |reason: &str, message: &str| {
        order
            .iter()
            .position(|(r, m)| r == reason && m.contains(message))
            .unwrap_or_else(|| panic!("no {reason} {message:?} in {order:?}"))
    };
    let sequence = [
        first("Started", ""),
        first("Phase", "preflight"),
        first("Phase", "inject"),
        first("Injected", ""),
        first("Phase", "revert"),
        first("Reverted", ""),
        first("Finished", ""),
    ];
    assert!(sequence.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    // The controller's own metrics and health.
    let metrics = common::http_body(&cluster.metrics_url, "/metrics").await;
    assert!(
        metrics.contains("disasterpiece_exercises_total{verdict=\"Confirmed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("disasterpiece_active_exercises 0"), "{metrics}");
    assert!(
        metrics.contains("disasterpiece_abort_latency_seconds_count 0"),
        "{metrics}"
    );
    assert_eq!(common::http_status(&cluster.metrics_url, "/healthz").await, Some(200));
    assert_eq!(common::http_status(&cluster.metrics_url, "/readyz").await, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_exercise_reverts_its_fault_first() {
    let cluster = cluster().await;
    let client = &cluster.client;
    let (exercises, deployments) = frontend_down_to_one(client, "shop", "scale-1").await;
    exercises
        .delete("scale-1", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the exercise is gone", || async {
        matches!(exercises.get("scale-1").await, Err(kube::Error::Api(s)) if s.code == 404)
    })
    .await;
    // The abort was recorded in an Event with its latency, and counted.
    eventually("an Aborted event with the latency", || async {
        events_of(client, "scale-1").await.iter().any(|e| {
            e.reason.as_deref() == Some("Aborted")
                && e.message.as_deref().is_some_and(|m| {
                    m.starts_with("the Exercise was deleted; every fault reverted") && m.ends_with("after the request")
                })
        })
    })
    .await;
    let metrics = common::http_body(&cluster.metrics_url, "/metrics").await;
    assert!(
        metrics.contains("disasterpiece_exercises_total{verdict=\"Aborted\"} 1")
            && metrics.contains("disasterpiece_abort_latency_seconds_count 1"),
        "{metrics}"
    );
    // The finalizer held the Exercise until the revert was done.
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_may_not_target_another_namespace_without_its_opt_in() {
    let cluster = cluster().await;
    let client = &cluster.client;
    let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "team-a"}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace");
    add_scenario(client, "team-a", POD_LOSS).await;
    let status = refused(client, "team-a", "reach-1", "checkout-pod-loss").await;
    let refusal = &status.conditions[0];
    assert_eq!(
        (refusal.type_, refusal.status),
        (ConditionType::Refused, ConditionStatus::True)
    );
    assert!(
        refusal
            .message
            .contains("label namespace shop disasterpiece.dev/allow-from=team-a"),
        "{}",
        refusal.message
    );
    // Nothing was touched: checkout still has its three pods, none replaced.
    let deployment = Api::<Deployment>::namespaced(client.clone(), "shop")
        .get("checkout")
        .await
        .expect("get");
    assert_eq!(deployment.status.and_then(|s| s.ready_replicas), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_dies_mid_fault_the_other_replica_reverts_it_and_injects_nothing_twice() {
    leader_dies_mid_fault("shop").await;
}

/// The Exercise in team-a, its fault (and journal) in shop: the new leader reverts it from the
/// journal where the fault is (it looked in the Exercise's namespace, found nothing, and said
/// "Reverted, 0 undo steps" while shop stayed scaled to one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_reverts_an_exercise_whose_fault_is_in_another_namespace() {
    leader_dies_mid_fault("team-a").await;
}

/// Replica A runs an Exercise in `namespace` that scales shop's frontend, and dies mid-fault;
/// replica B takes the Lease over, reverts the fault from its journal and ends the Exercise.
/// Options of a replica `identity` that runs Exercises only while it holds the Lease
/// `default/disasterpiece-controller`, which lasts `lasts`.
fn elected(sim: &Sim, identity: &str, lasts: Duration) -> Options {
    Options {
        election: Some(disasterpiece::controller::lease::Election {
            namespace: "default".into(),
            name: "disasterpiece-controller".into(),
            identity: identity.into(),
            duration: lasts,
        }),
        ..common::controller_options(sim)
    }
}

/// Creates Exercise `name` in `namespace` of the Scenario that scales shop's frontend to one
/// for five minutes, and waits until it is scaled; the Exercises of `namespace` and shop's
/// Deployments.
async fn frontend_down_to_one(client: &kube::Client, namespace: &str, name: &str) -> (Api<Exercise>, Api<Deployment>) {
    add_scenario(client, namespace, DOWN_TO_ONE).await;
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), namespace);
    exercises
        .create(&PostParams::default(), &exercise(name, "frontend-down-to-one"))
        .await
        .expect("create");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    eventually("the frontend is scaled to one", || async {
        deployments.get("frontend").await.ok().and_then(|d| d.spec.replicas) == Some(1)
    })
    .await;
    (exercises, deployments)
}

/// Waits until Exercise `name` has ended with the verdict Aborted.
async fn ended_aborted(exercises: &Api<Exercise>, name: &str) {
    eventually(&format!("{name} ends as aborted"), || async {
        exercises.get(name).await.ok().and_then(|e| e.status?.verdict) == Some(Verdict::Aborted)
    })
    .await;
}

/// Creates Exercise `name` of the pod-loss Scenario in shop, and waits until it has finished.
async fn finished_pod_loss(client: &kube::Client, name: &str) {
    add_scenario(client, "shop", POD_LOSS).await;
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    exercises
        .create(&PostParams::default(), &exercise(name, "checkout-pod-loss"))
        .await
        .expect("create");
    eventually("the exercise finishes", || async {
        exercises.get(name).await.ok().and_then(|e| e.status?.phase) == Some(Phase::Finished)
    })
    .await;
}

async fn leader_dies_mid_fault(namespace: &str) {
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    if namespace != "shop" {
        let created: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).expect("ns");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &created)
            .await
            .expect("namespace");
        let allow = serde_json::json!({"metadata": {"labels": {"disasterpiece.dev/allow-from": namespace}}});
        Api::<Namespace>::all(client.clone())
            .patch("shop", &PatchParams::default(), &Patch::Merge(&allow))
            .await
            .expect("shop allows it");
    }
    let options = elected(&sim, "replica-a", Duration::from_secs(2));
    // Replica A runs on a runtime of its own, which the test kills outright: no revert runs,
    // as when a process dies. Replica B runs all along, as the follower.
    let (die, dead) = tokio::sync::oneshot::channel::<()>();
    let kubeconfig = sim.kubeconfig_path().to_owned();
    let first = {
        let options = options.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async move {
                let config = kube::Config::from_custom_kubeconfig(
                    kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig"),
                    &Default::default(),
                )
                .await
                .expect("config");
                let client = kube::Client::try_from(config).expect("client");
                let (_keep, stop) = watch::channel(false);
                tokio::select! {
                    _ = control(client, options, stop) => {}
                    _ = dead => {}
                }
            });
            runtime.shutdown_background();
        })
    };
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), "default");
    let holder = || async {
        leases
            .get("disasterpiece-controller")
            .await
            .ok()
            .and_then(|l| l.spec?.holder_identity)
    };
    eventually("replica A leads", || async {
        holder().await.as_deref() == Some("replica-a")
    })
    .await;
    let mut b_options = options.clone();
    if let Some(e) = b_options.election.as_mut() {
        e.identity = "replica-b".into();
    }
    b_options.metrics = Default::default();
    let b_metrics = b_options.metrics.clone();
    let (_stop_b, stop) = watch::channel(false);
    tokio::spawn(control(client.clone(), b_options, stop));
    // The standby is Ready too (it serves, ready to take over): a rollout of two replicas is
    // not held up by the one that does not lead.
    eventually("the standby is Ready", || async { b_metrics.is_ready() }).await;
    let (exercises, deployments) = frontend_down_to_one(&client, namespace, "scale-2").await;
    let injected = || async {
        events_of(&client, "scale-2")
            .await
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Injected"))
            .count()
    };
    eventually("A recorded the injection", || async { injected().await == 1 }).await;
    let _ = die.send(());
    first.join().expect("the first controller is gone");
    assert_eq!(
        deployments.get("frontend").await.expect("get").spec.replicas,
        Some(1),
        "the fault outlived its controller"
    );
    assert_eq!(holder().await.as_deref(), Some("replica-a"), "only the leader ran it");
    // B takes the lease once A's has expired, finds the exercise Running, reverts it from its
    // journal, and ends it.
    eventually("replica B leads", || async {
        holder().await.as_deref() == Some("replica-b")
    })
    .await;
    ended_aborted(&exercises, "scale-2").await;
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(3));
    let status = exercises.get("scale-2").await.expect("get").status.expect("status");
    assert_eq!(status.phase, Some(Phase::Finished));
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == ConditionType::Reverted && c.status == ConditionStatus::True),
        "{status:?}"
    );
    // Not injected again: the frontend stays at three, and one injection was ever recorded.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(3));
    assert_eq!(injected().await, 1);
}

const REFUTES: &str = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: payments-refutes}
spec:
  hypothesis: Payments has 99 replicas (it does not).
  target: {namespace: shop, kind: Deployment, name: payments}
  faults: [{podKill: {gracePeriodSeconds: 0}}]
  duration: 2s
  expect:
    - {name: ninety-nine, kube: {readyReplicas: {equals: 99}}, within: 2s}
  recovery: {within: 20s}
";

fn gameday(name: &str, dev: &str, prod: &str, extra: &str) -> disasterpiece::scenario::gameday::GameDayResource {
    let text = format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: GameDay
metadata: {{name: {name}}}
spec:
  host: {{name: Alice}}
  schedule: {{cron: '0 14 * * WED', timeZone: Europe/Berlin}}
  stages:
    - {{name: dev, namespaces: [shop], scenarios: [{{name: {dev}}}]}}
    - {{name: prod, namespaces: [shop], scenarios: [{{name: {prod}}}]}}
{extra}"
    );
    match scenario::load(&text, &|_| true).resources.remove(0).1 {
        Resource::GameDay(g) => disasterpiece::scenario::gameday::GameDayResource::new(name, g.spec),
        other => panic!("not a game day: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gamedays_fire_at_their_minute_in_their_time_zone_skip_blackouts_and_gate_prod_on_dev() {
    use chrono::{DateTime, Utc};
    use disasterpiece::scenario::gameday::GameDayResource;
    let utc = |s: &str| DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc);
    let pinned = ManualClock::new(utc("2026-11-25T12:59:00Z"));
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    add_scenario(&client, "shop", POD_LOSS).await;
    add_scenario(&client, "shop", REFUTES).await;
    let gamedays: Api<GameDayResource> = Api::namespaced(client.clone(), "shop");
    for g in [
        gameday("confirms", "checkout-pod-loss", "checkout-pod-loss", ""),
        gameday(
            "blacked-out",
            "checkout-pod-loss",
            "checkout-pod-loss",
            "  blackoutDates: ['2026-11-25']\n",
        ),
        gameday("dev-refutes", "payments-refutes", "checkout-pod-loss", ""),
        gameday(
            "quiet",
            "checkout-pod-loss",
            "checkout-pod-loss",
            "  quietHours: [{start: '13:30', end: '15:00', days: [wed]}]\n",
        ),
    ] {
        gamedays
            .create(&PostParams::default(), &g)
            .await
            .expect("create the GameDay");
    }
    let (_stop, stop) = watch::channel(false);
    let options = options(&sim, pinned.clock());
    tokio::spawn(control(client.clone(), options, stop));
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    // 13:59 in Berlin on Wednesday: nothing yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        exercises
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    // 14:00 in Berlin (13:00 UTC): due.
    pinned.set(utc("2026-11-25T13:00:00Z"));
    // From now on the controller's clock runs (a second every 50 ms), so the times it writes
    // say in which order things happened.
    let ticking = tokio::spawn({
        let pinned = pinned.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                pinned.advance(chrono::TimeDelta::seconds(1));
            }
        }
    });
    let run = |name: &'static str| {
        let gamedays = gamedays.clone();
        async move {
            gamedays
                .get(name)
                .await
                .ok()
                .and_then(|g| g.status?.runs.first().cloned())
        }
    };
    eventually("the blacked-out run is recorded as skipped", || async {
        run("blacked-out").await.is_some_and(|r| r.state == "skipped")
    })
    .await;
    let skipped = run("blacked-out").await.expect("run");
    assert_eq!(skipped.reason.as_deref(), Some("2026-11-25 is a blackout date"));
    assert!(skipped.exercises.is_empty());
    assert_eq!(skipped.scheduled_at, utc("2026-11-25T13:00:00Z"));
    eventually("the run in quiet hours is recorded as skipped", || async {
        run("quiet").await.is_some_and(|r| r.state == "skipped")
    })
    .await;
    assert_eq!(
        run("quiet").await.and_then(|r| r.reason).as_deref(),
        Some("quiet hours 13:30–15:00 (Europe/Berlin)")
    );
    eventually("the confirming game day confirms both stages", || async {
        run("confirms").await.is_some_and(|r| r.state == "confirmed")
    })
    .await;
    let confirmed = run("confirms").await.expect("run");
    assert_eq!(confirmed.id, "confirms-202611251300");
    assert_eq!(confirmed.exercises.len(), 2);
    // prod started only after dev had finished.
    let dev = exercises.get(&confirmed.exercises[0]).await.expect("dev");
    let prod = exercises.get(&confirmed.exercises[1]).await.expect("prod");
    assert_eq!(dev.spec.stage.as_deref(), Some("dev"));
    assert_eq!(prod.spec.stage.as_deref(), Some("prod"));
    // Both times are the controller's: the API server's clock is not compared with it.
    let dev_ended = dev.status.and_then(|s| s.ended_at).expect("dev ended");
    let prod_started = prod.status.and_then(|s| s.started_at).expect("prod started");
    assert!(prod_started >= dev_ended, "prod started before dev finished");
    eventually("the refuting game day stops after dev", || async {
        run("dev-refutes").await.is_some_and(|r| r.state == "stopped")
    })
    .await;
    let stopped = run("dev-refutes").await.expect("run");
    assert_eq!(stopped.exercises.len(), 1, "prod never started: {stopped:?}");
    assert!(
        stopped
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("stage dev did not confirm its hypotheses")),
        "{stopped:?}"
    );
    // The next Wednesday has not come: no second run.
    assert_eq!(
        gamedays
            .get("confirms")
            .await
            .expect("get")
            .status
            .expect("status")
            .runs
            .len(),
        1
    );
    ticking.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_on_a_gameday_aborts_its_running_exercise_and_skips_its_next_runs() {
    use chrono::{DateTime, Utc};
    use disasterpiece::scenario::gameday::GameDayResource;
    use kube::api::{Patch, PatchParams};
    let utc = |s: &str| DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc);
    let pinned = ManualClock::new(utc("2026-11-25T13:00:00Z"));
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    add_scenario(&client, "shop", DOWN_TO_ONE).await;
    // A webhook that keeps what it is sent.
    let (hook_url, received) = common::webhook().await;
    let gamedays: Api<GameDayResource> = Api::namespaced(client.clone(), "shop");
    gamedays
        .create(
            &PostParams::default(),
            &gameday(
                "long",
                "frontend-down-to-one",
                "frontend-down-to-one",
                &format!("  notify: {{webhook: '{hook_url}'}}\n"),
            ),
        )
        .await
        .expect("create the GameDay");
    let (_stop, stop) = watch::channel(false);
    let options = options(&sim, pinned.clock());
    tokio::spawn(control(client.clone(), options, stop));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    eventually("the dev stage scales the frontend to one", || async {
        deployments.get("frontend").await.ok().and_then(|d| d.spec.replicas) == Some(1)
    })
    .await;
    let patch = serde_json::json!({"metadata": {"annotations": {"disasterpiece.dev/abort": "stop the game day"}}});
    gamedays
        .patch("long", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("pull the cord");
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    ended_aborted(&exercises, "long-202611251300-dev-00").await;
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(3));
    // A week later, the next run does not start while the cord is pulled.
    pinned.set(utc("2026-12-02T13:00:00Z"));
    eventually("the next run is skipped", || async {
        gamedays
            .get("long")
            .await
            .ok()
            .and_then(|g| g.status?.runs.last().cloned())
            .is_some_and(|r| r.id == "long-202612021300" && r.state == "skipped")
    })
    .await;
    let runs = gamedays.get("long").await.expect("get").status.expect("status").runs;
    assert_eq!(
        runs.last().and_then(|r| r.reason.clone()).as_deref(),
        Some("the GameDay is annotated disasterpiece.dev/abort: stop the game day")
    );
    // The first run stopped: its dev stage did not confirm (it was aborted); prod never ran.
    assert_eq!(runs[0].state, "stopped");
    assert_eq!(runs[0].exercises.len(), 1);
    // The webhook heard the start, the abort and the end, each with a `text` for Slack.
    let messages = received.lock().expect("lock").clone();
    let events: Vec<&str> = messages.iter().filter_map(|m| m["event"].as_str()).collect();
    assert_eq!(events, ["started", "aborted", "finished"], "{messages:?}");
    let text = |i: usize| messages[i]["text"].as_str().unwrap_or_default().to_owned();
    assert!(
        text(0).starts_with("Game day long, stage dev: exercise shop/long-202611251300-dev-00 started."),
        "{}",
        text(0)
    );
    assert!(
        text(1).contains("ABORTED (GameDay long is annotated disasterpiece.dev/abort: stop the game day)"),
        "{}",
        text(1)
    );
    assert!(
        text(2).contains("hypothesis ABORTED. Report: kubectl get configmap -n shop report-long-202611251300-dev-00-"),
        "{}",
        text(2)
    );
    assert_eq!(messages[2]["verdict"], "Aborted");
}

/// The controller's clock runs from 09:57:30 to 10:06:30 in 30-second steps while the API
/// server's clock is `skew` off it; a GameDay due every two minutes (created at 09:57:30 by the
/// controller's clock, so at 09:57:30 + `skew` by the API server's) must run at 09:58, 10:00,
/// 10:02, 10:04 and 10:06, each exactly once: none from before it existed, none delayed.
async fn every_due_run_happens_once_with_the_api_server_clock_off_by(skew: chrono::TimeDelta) {
    use chrono::{DateTime, Utc};
    use disasterpiece::controller::gameday::RUN_LABEL;
    use disasterpiece::scenario::gameday::GameDayResource;
    let utc = |s: &str| DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc);
    let controller_clock = ManualClock::new(utc("2030-01-02T09:57:30Z"));
    let api_server_clock = controller_clock.clock().skewed(skew);
    let (sim, client) = start(fast_shop().clock(api_server_clock.clone())).await;
    common::install_crds(&client).await;
    let text = "apiVersion: disasterpiece.dev/v1alpha1
kind: GameDay
metadata: {name: every-two}
spec:
  host: {name: Alice}
  schedule: {cron: '*/2 * * * *', timeZone: UTC}
  concurrencyPolicy: Allow
  stages:
    - {name: only, namespaces: [shop], scenarios: [{name: no-such-scenario}]}
";
    let spec = match scenario::load(text, &|_| true).resources.remove(0).1 {
        Resource::GameDay(g) => g.spec,
        other => panic!("not a game day: {other:?}"),
    };
    let gamedays: Api<GameDayResource> = Api::namespaced(client.clone(), "shop");
    let created = gamedays
        .create(&PostParams::default(), &GameDayResource::new("every-two", spec))
        .await
        .expect("create the GameDay");
    // The API server stamped its own time: the two clocks really disagree.
    let stamped = created.metadata.creation_timestamp.expect("created").0.as_second();
    assert_eq!(stamped, api_server_clock.now().timestamp());
    assert_ne!(stamped, controller_clock.now().timestamp());

    let (_stop, stop) = watch::channel(false);
    tokio::spawn(control(client.clone(), options(&sim, controller_clock.clock()), stop));
    let status = || async { gamedays.get("every-two").await.ok().and_then(|g| g.status) };
    eventually("the controller has read the schedule", || async {
        status().await.is_some_and(|s| s.scheduled_since.is_some())
    })
    .await;
    let first_sight = status().await.and_then(|s| s.scheduled_since);
    assert_eq!(
        first_sight,
        Some(utc("2030-01-02T09:57:00Z")),
        "the controller's minute"
    );
    let due = [
        "2030-01-02T09:58:00Z",
        "2030-01-02T10:00:00Z",
        "2030-01-02T10:02:00Z",
        "2030-01-02T10:04:00Z",
        "2030-01-02T10:06:00Z",
    ];
    let run_ids = || async {
        status()
            .await
            .map(|s| s.runs.iter().map(|r| r.scheduled_at).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    while controller_clock.now() < utc("2030-01-02T10:06:30Z") {
        controller_clock.advance(chrono::TimeDelta::seconds(30));
        let now = controller_clock.now();
        let expected: Vec<DateTime<Utc>> = due.iter().map(|d| utc(d)).filter(|d| *d <= now).collect();
        eventually(&format!("the runs due by {now} are recorded"), || async {
            run_ids().await == expected
        })
        .await;
        // Several polls at this time: nothing more is started.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(run_ids().await, expected, "at {now}");
    }
    let runs = status().await.expect("status").runs;
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    for run in &runs {
        assert_ne!(run.state, "skipped", "{run:?}");
        let made = exercises
            .list(&ListParams::default().labels(&format!("{RUN_LABEL}={}", run.id)))
            .await
            .expect("list")
            .items;
        assert_eq!(made.len(), 1, "run {} made {} Exercises", run.id, made.len());
    }
    assert_eq!(
        exercises.list(&ListParams::default()).await.expect("list").items.len(),
        due.len(),
        "one Exercise per due run, and no other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gameday_runs_happen_once_each_with_the_api_server_clock_ten_minutes_ahead() {
    every_due_run_happens_once_with_the_api_server_clock_off_by(chrono::TimeDelta::minutes(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gameday_runs_happen_once_each_with_the_api_server_clock_ten_minutes_behind() {
    every_due_run_happens_once_with_the_api_server_clock_off_by(chrono::TimeDelta::minutes(-10)).await;
}

/// Leader election never compares one replica's clock with another's: a leader whose clock is
/// an hour behind writes `renewTime`s an hour old, yet keeps its Lease while it renews, and the
/// other replica takes it only once it has itself seen the Lease unrenewed for its duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_clock_is_an_hour_behind_keeps_its_lease_while_it_renews() {
    use disasterpiece::controller::lease::{Election, Elector};
    let (_sim, client) = start(fast_shop()).await;
    let election = |identity: &str| Election {
        namespace: "shop".into(),
        name: "disasterpiece-leader".into(),
        identity: identity.into(),
        duration: Duration::from_secs(2),
    };
    let mut behind = Elector::new(
        &client,
        election("behind"),
        Clock::system().skewed(chrono::TimeDelta::hours(-1)),
    );
    let mut other = Elector::new(&client, election("other"), Clock::system());
    assert!(behind.lead().await, "the first replica takes the free Lease");
    // Twice the lease's duration of renewals: the other replica never takes it.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(behind.lead().await, "the leader renews");
        assert!(
            !other.lead().await,
            "the other replica took a Lease that was being renewed"
        );
    }
    // The leader stops renewing: the other replica takes over, and the old one knows it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !other.lead().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other replica never took over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!behind.lead().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exercise_whose_scenario_has_a_command_probe_is_refused_and_runs_nothing() {
    let cluster = cluster().await;
    let client = &cluster.client;
    let marker =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("controller-command-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    // Anyone who may create a Scenario and an Exercise: the probe would run inside the
    // controller, as its ServiceAccount.
    add_scenario(
        client,
        "shop",
        &format!(
            "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: runs-a-command}}
spec:
  hypothesis: The frontend copes with one replica.
  target: {{namespace: shop, kind: Deployment, name: frontend}}
  faults: [{{scale: {{replicas: 1}}}}]
  duration: 2s
  expect:
    - {{name: harmless, command: {{run: [touch, '{}']}}, within: 2s}}
",
            marker.display()
        ),
    )
    .await;
    let status = refused(client, "shop", "command-1", "runs-a-command").await;
    let why = status
        .conditions
        .iter()
        .find(|c| c.type_ == ConditionType::Refused)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        why.contains("has command probes (harmless), which this controller does not run")
            && why.contains("--allow-command-probes"),
        "{why}"
    );
    eventually("a Refused Event says why", || async {
        events_of(client, "command-1").await.iter().any(|e| {
            e.reason.as_deref() == Some("Refused") && e.message.as_deref().is_some_and(|m| m.contains("command probes"))
        })
    })
    .await;
    assert!(!marker.exists(), "the command ran");
    let frontend = Api::<Deployment>::namespaced(client.clone(), "shop")
        .get("frontend")
        .await
        .expect("frontend");
    assert_eq!(frontend.spec.replicas, Some(3), "nothing was injected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_scenario_runs_only_from_a_namespace_the_controller_lists() {
    use k8s_openapi::api::core::v1::Node;
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    let (_stop_tx, stop) = watch::channel(false);
    let options = Options {
        node_namespaces: vec!["platform".into()],
        ..common::controller_options(&sim)
    };
    tokio::spawn(control(client.clone(), options, stop));
    const CORDON: &str = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: cordon-all}
spec:
  hypothesis: Nothing needs new pods for a while.
  target: {kind: Node, selector: {matchLabels: {kubernetes.io/os: linux}}}
  blastRadius: {mode: all, max: 3}
  faults: [{nodeCordon: {}}]
  duration: 1s
  expect:
    - {name: checkout stays, kube: {kind: Deployment, name: checkout, namespace: shop, readyReplicas: {atLeast: 1}}, within: 5s}
";
    for ns in ["team-a", "platform"] {
        let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).expect("ns");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace");
        add_scenario(&client, ns, CORDON).await;
    }
    // The platform team's probe reads shop, which lets it.
    let opt_in = serde_json::json!({"metadata": {"labels": {"disasterpiece.dev/allow-from": "platform"}}});
    Api::<Namespace>::all(client.clone())
        .patch(
            "shop",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&opt_in),
        )
        .await
        .expect("label shop");
    // A tenant's Scenario may not cordon the cluster's nodes.
    let status = refused(&client, "team-a", "cordon-1", "cordon-all").await;
    let why = status
        .conditions
        .iter()
        .find(|c| c.type_ == ConditionType::Refused)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        why.contains("targets Nodes")
            && why.contains("namespace team-a may not")
            && why.contains("--node-scenario-namespaces"),
        "{why}"
    );
    let nodes = Api::<Node>::all(client.clone());
    let cordoned = |list: Vec<Node>| {
        list.iter()
            .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
            .count()
    };
    assert_eq!(
        cordoned(nodes.list(&ListParams::default()).await.expect("nodes").items),
        0
    );

    // The platform team's may, and it is reverted.
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "platform");
    exercises
        .create(&PostParams::default(), &exercise("cordon-2", "cordon-all"))
        .await
        .expect("create");
    eventually("the platform's exercise finishes", || async {
        exercises.get("cordon-2").await.ok().and_then(|e| e.status?.phase) == Some(Phase::Finished)
    })
    .await;
    let status = exercises.get("cordon-2").await.expect("get").status.expect("status");
    assert_eq!(status.verdict, Some(Verdict::Confirmed), "{status:?}");
    assert_eq!(
        cordoned(nodes.list(&ListParams::default()).await.expect("nodes").items),
        0,
        "reverted"
    );
}

/// Scales the frontend to one for 2 s; `{extra}` adds to its spec.
fn tenant_scenario(name: &str, fault: &str, probe: &str, extra: &str) -> String {
    format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: {name}}}
spec:
  hypothesis: The frontend copes.
  target: {{namespace: shop, kind: Deployment, name: frontend}}
  faults: [{fault}]
  duration: 2s
  expect:
    - {{name: watched, {probe}, within: 2s}}
{extra}"
    )
}

/// A tenant who may create Scenarios and Exercises in `shop` gets no more than `shop` gives:
/// no image of their choosing inside the pod, no address the operator did not list (the cloud
/// metadata service least of all), no read of another namespace, no webhook to an unlisted
/// host. Each is refused with the reason, as a condition and an Event, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_scenario_reaches_no_image_host_namespace_or_webhook_the_operator_did_not_allow() {
    use disasterpiece::scenario::gameday::GameDayResource;
    use k8s_openapi::api::core::v1::Pod;
    let cluster = cluster().await;
    let client = &cluster.client;
    let kube_ok = "kube: {readyReplicas: {atLeast: 1}}";
    // Another team's namespace, which has not opted in.
    let billing: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": "billing"}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &billing)
        .await
        .expect("namespace");
    let scale = "{scale: {replicas: 1}}";
    let cases = [
        (
            "own-image",
            tenant_scenario(
                "own-image",
                "{cpuStress: {workers: 1, load: 50}}",
                kube_ok,
                "  faultImage: evil.example/rootkit:1\n",
            ),
            "faultImage evil.example/rootkit:1, which this controller does not allow",
        ),
        (
            "metadata",
            tenant_scenario(
                "metadata",
                scale,
                "http: {url: 'http://169.254.169.254/latest/meta-data/iam/'}",
                "",
            ),
            "link-local or metadata address",
        ),
        (
            "unlisted-host",
            tenant_scenario(
                "unlisted-host",
                scale,
                "http: {url: 'http://internal.example.com/admin'}",
                "",
            ),
            "internal.example.com is not an allowed probe host",
        ),
        (
            "own-prometheus",
            tenant_scenario(
                "own-prometheus",
                scale,
                "prometheus: {url: 'http://10.0.0.9:9090', query: up, equals: 1}",
                "",
            ),
            "10.0.0.9 is not an allowed probe host",
        ),
        (
            "own-alertmanager",
            tenant_scenario(
                "own-alertmanager",
                scale,
                "alert: {name: X, source: alertmanager, url: 'http://metadata.google.internal/'}",
                "",
            ),
            "metadata.google.internal is a cloud metadata service",
        ),
        (
            "reads-billing",
            tenant_scenario(
                "reads-billing",
                scale,
                "kube: {kind: Deployment, name: ledger, namespace: billing, readyReplicas: {atLeast: 1}}",
                "",
            ),
            "probe `watched` reads namespace billing: a Scenario in namespace shop may not target namespace billing",
        ),
        (
            "proxies-billing",
            tenant_scenario(
                "proxies-billing",
                scale,
                "http: {url: 'http://ledger.billing.svc:8080/'}",
                "",
            ),
            "probe `watched` reads namespace billing: a Scenario in namespace shop may not target namespace billing",
        ),
    ];
    for (name, yaml, expected) in &cases {
        add_scenario(client, "shop", yaml).await;
        let status = refused(client, "shop", &format!("{name}-1"), name).await;
        let why = status
            .conditions
            .iter()
            .find(|c| c.type_ == ConditionType::Refused)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        assert!(why.contains(expected), "{name}: {why}");
        eventually("a Refused Event says why", || async {
            events_of(client, &format!("{name}-1")).await.iter().any(|e| {
                e.reason.as_deref() == Some("Refused") && e.message.as_deref().is_some_and(|m| m.contains(expected))
            })
        })
        .await;
    }
    let frontend = Api::<Deployment>::namespaced(client.clone(), "shop")
        .get("frontend")
        .await
        .expect("frontend");
    assert_eq!(frontend.spec.replicas, Some(3), "nothing was injected");
    let pods = Api::<Pod>::namespaced(client.clone(), "shop")
        .list(&ListParams::default())
        .await
        .expect("pods");
    for pod in pods.items {
        let ephemeral = pod.spec.and_then(|s| s.ephemeral_containers).unwrap_or_default();
        assert!(ephemeral.is_empty(), "{:?} got {ephemeral:?}", pod.metadata.name);
    }

    // A GameDay's webhook to a host the operator did not list: the Exercise runs, the webhook
    // is never called, and an Event says why.
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let hook_url = format!("http://{}/hook", hook.local_addr().expect("addr"));
    let called = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn({
        let called = called.clone();
        async move {
            while hook.accept().await.is_ok() {
                called.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    // No schedule: only the hand-made Exercise below runs.
    let mut gameday_resource = gameday(
        "hooked",
        "checkout-pod-loss",
        "checkout-pod-loss",
        &format!("  notify: {{webhook: '{hook_url}'}}\n"),
    );
    gameday_resource.spec.schedule = None;
    Api::<GameDayResource>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &gameday_resource)
        .await
        .expect("create the GameDay");
    add_scenario(client, "shop", POD_LOSS).await;
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    let mut hooked = exercise("hooked-1", "checkout-pod-loss");
    hooked.spec.game_day = Some("hooked".into());
    exercises.create(&PostParams::default(), &hooked).await.expect("create");
    eventually("the exercise finishes", || async {
        exercises.get("hooked-1").await.ok().and_then(|e| e.status?.phase) == Some(Phase::Finished)
    })
    .await;
    let events = events_of(client, "hooked-1").await;
    let refused = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("WebhookRefused"))
        .unwrap_or_else(|| panic!("no WebhookRefused Event: {events:?}"));
    assert!(
        refused
            .message
            .as_deref()
            .is_some_and(|m| m.contains("127.0.0.1 is not an allowed probe host")),
        "{refused:?}"
    );
    assert_eq!(
        called.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the webhook was called"
    );
}

/// What an operator reads: the controller's log (stderr) shows each phase of an Exercise at
/// info, with the Exercise, and a reconcile error once with its category.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_logs_each_phase_and_each_reconcile_error_with_its_category() {
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    let (mut controller, log) = controller_process(sim.kubeconfig_path());
    finished_pod_loss(&client, "logged-1").await;
    // A second controller whose ServiceAccount may watch Exercises but not patch them (a Role
    // that lacks a verb): its reconcile of a new Exercise fails with 403, logged each time
    // with its category and the Exercise.
    let narrow = narrow_kubeconfig(&sim, &client).await;
    let (mut denied, denied_log) = controller_process(&narrow);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    exercises
        .create(&PostParams::default(), &exercise("denied-1", "checkout-pod-loss"))
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = denied.start_kill();
    let _ = denied.wait().await;
    let denied_log = denied_log.await.expect("log");
    let error = denied_log
        .lines()
        .find(|l| l.contains("reconcile failed") && l.contains("exercise=shop/denied-1"))
        .unwrap_or_else(|| panic!("no reconcile error in:\n{denied_log}"));
    assert!(
        error.contains(" WARN ") && error.contains("category=\"forbidden\""),
        "{error}"
    );
    let pid = controller.id().expect("pid").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let _ = tokio::time::timeout(Duration::from_secs(30), controller.wait()).await;
    let log = log.await.expect("log");
    for phase in ["inject", "observe", "revert", "recovery"] {
        assert!(
            log.lines().any(|l| l.contains(" INFO ")
                && l.contains(&format!("phase {phase}"))
                && l.contains("exercise=shop/logged-1")),
            "no info line for phase {phase} in:\n{log}"
        );
    }
    assert!(log.contains("controller started"), "{log}");
    assert!(log.contains("controller stopped"), "{log}");
}

/// A reconcile that fails is tried again by the work queue with a backoff that doubles (1 s,
/// 2 s, 4 s…), without waiting for the object to change, and without hammering the API server
/// at every poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_reconcile_is_tried_again_with_a_doubling_backoff() {
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    add_scenario(&client, "shop", POD_LOSS).await;
    narrow_kubeconfig(&sim, &client).await;
    let narrow = sim.service_account_client("default", "narrow").await.expect("client");
    let metrics = std::sync::Arc::new(disasterpiece::controller::metrics::Metrics::default());
    let options = Options {
        metrics: metrics.clone(),
        ..common::controller_options(&sim)
    };
    let (_stop, stop) = watch::channel(false);
    tokio::spawn(control(narrow, options, stop));
    tokio::time::sleep(Duration::from_millis(500)).await;
    Api::<Exercise>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &exercise("denied-2", "checkout-pod-loss"))
        .await
        .expect("create");
    let forbidden = || {
        let text = metrics.text();
        text.lines()
            .find_map(|l| l.strip_prefix("disasterpiece_reconcile_errors_total{category=\"forbidden\"} "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    eventually("the first reconcile fails", || async { forbidden() >= 1 }).await;
    // Tried again at 1 s, then 3 s, then 7 s: within 2.5 s, two or three tries; a retry at every
    // 100 ms poll would have made some twenty.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let tries = forbidden();
    assert!((2..=3).contains(&tries), "{tries} tries in 2.5 s");
}

/// `disasterpiece controller -A` as a process of its own, at its default log level; its
/// stderr, whole once it has ended.
fn controller_process(kubeconfig: &std::path::Path) -> (tokio::process::Child, tokio::task::JoinHandle<String>) {
    use tokio::io::AsyncReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args([
            "controller",
            "-A",
            "--poll",
            "200ms",
            "--metrics-addr",
            "127.0.0.1:0",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the controller");
    let mut stderr = child.stderr.take().expect("stderr");
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    (child, log)
}

/// A kubeconfig for a ServiceAccount that may read and watch what the controller reads, but
/// not patch Exercises.
async fn narrow_kubeconfig(sim: &Sim, client: &kube::Client) -> std::path::PathBuf {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let account: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "narrow", "namespace": "default"}}))
            .expect("sa");
    Api::<ServiceAccount>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &account)
        .await
        .expect("sa");
    let role: ClusterRole = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "narrow"},
        "rules": [
            {"apiGroups": ["disasterpiece.dev"], "resources": ["exercises", "gamedays", "scenarios"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["disasterpiece.dev"], "resources": ["scenarios/status"], "verbs": ["patch"]},
            {"apiGroups": [""], "resources": ["configmaps", "namespaces"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        ]
    }))
    .expect("role");
    Api::<ClusterRole>::all(client.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "narrow"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "narrow"},
        "subjects": [{"kind": "ServiceAccount", "name": "narrow", "namespace": "default"}]
    }))
    .expect("binding");
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding");
    let token = Api::<ServiceAccount>::namespaced(client.clone(), "default")
        .create_token_request("narrow", &PostParams::default(), &TokenRequest::default())
        .await
        .expect("token")
        .status
        .expect("status")
        .token;
    let kubeconfig = std::fs::read_to_string(sim.kubeconfig_path())
        .expect("kubeconfig")
        .replace(&sim.admin_token(), token.as_deref().expect("a token"));
    let path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("narrow-{}.kubeconfig", std::process::id()));
    std::fs::write(&path, kubeconfig).expect("write");
    path
}

/// A leader that stops cleanly (SIGTERM, a rollout) gives its Lease up: another replica leads
/// at once, not a lease duration later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_stops_cleanly_hands_its_lease_over_at_once() {
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    let options = elected(&sim, "replica-a", Duration::from_secs(60));
    let election = options.election.clone().expect("elected");
    let (stop_a, stop) = watch::channel(false);
    let a = tokio::spawn(control(client.clone(), options, stop));
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), "default");
    let holder = || async {
        leases
            .get("disasterpiece-controller")
            .await
            .ok()
            .and_then(|l| l.spec?.holder_identity)
    };
    eventually("replica A leads", || async {
        holder().await.as_deref() == Some("replica-a")
    })
    .await;
    stop_a.send(true).expect("stop");
    a.await.expect("A stopped");
    assert_eq!(holder().await.as_deref(), Some(""), "released");
    let mut b = disasterpiece::controller::lease::Elector::new(
        &client,
        disasterpiece::controller::lease::Election {
            identity: "replica-b".into(),
            ..election
        },
        Clock::system(),
    );
    assert!(b.lead().await, "B leads at once, not 60 s later");
}

/// Stopping the controller (SIGTERM in a pod) aborts what it runs and reverts it before it
/// returns, renewing its Lease meanwhile (the reverts pass its fence), then hands the Lease over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_stops_reverts_what_it_runs_first() {
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    let (stop_a, stop) = watch::channel(false);
    let a = tokio::spawn(control(
        client.clone(),
        elected(&sim, "replica-a", Duration::from_secs(2)),
        stop,
    ));
    let (exercises, deployments) = frontend_down_to_one(&client, "shop", "stopped-1").await;
    stop_a.send(true).expect("stop");
    a.await.expect("the controller stopped");
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(3));
    let status = exercises.get("stopped-1").await.expect("get").status.expect("status");
    assert_eq!(status.verdict, Some(Verdict::Aborted));
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == ConditionType::Aborted && c.message.contains("the controller is stopping")),
        "{:?}",
        status.conditions
    );
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client.clone(), "default")
        .get("disasterpiece-controller")
        .await
        .expect("lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some(""),
        "released"
    );
}

/// A leader that finds its Lease taken (it was cut off, and another replica took over) never
/// writes again: not its revert, not its status. The replica that leads reverts the fault from
/// the journal; the old one's late writes used to land after, and overwrite, the new leader's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_lost_its_lease_never_writes_again() {
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    let options = elected(&sim, "replica-a", Duration::from_secs(4));
    let election = options.election.clone().expect("elected");
    let (_stop_a, stop) = watch::channel(false);
    tokio::spawn(control(client.clone(), options.clone(), stop));
    let (exercises, deployments) = frontend_down_to_one(&client, "shop", "fenced-1").await;
    // Another replica holds the Lease now, as after A was cut off from the API server.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), "default");
    let taken = serde_json::json!({"spec": {"holderIdentity": "replica-b"}});
    leases
        .patch(
            "disasterpiece-controller",
            &PatchParams::default(),
            &Patch::Merge(&taken),
        )
        .await
        .expect("take the lease");
    let before = exercises.get("fenced-1").await.expect("get");
    // Past A's next renewals: it sees the Lease taken and stops, without a write.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = exercises.get("fenced-1").await.expect("get");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "A wrote the Exercise after losing its Lease: {:?}",
        after.status
    );
    assert_eq!(
        deployments.get("frontend").await.expect("get").spec.replicas,
        Some(1),
        "A reverted after losing its Lease"
    );
    // B, the holder, takes the Exercise over from its journal.
    let mut b_options = options.clone();
    b_options.election = Some(disasterpiece::controller::lease::Election {
        identity: "replica-b".into(),
        ..election
    });
    b_options.metrics = Default::default();
    let (_stop_b, stop) = watch::channel(false);
    tokio::spawn(control(client.clone(), b_options, stop));
    ended_aborted(&exercises, "fenced-1").await;
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(3));
    let ended = exercises.get("fenced-1").await.expect("get");
    // And A stays silent after B's takeover.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        exercises.get("fenced-1").await.expect("get").metadata.resource_version,
        ended.metadata.resource_version
    );
}

/// A leader cut off from the API server sends no write once it can no longer know it leads,
/// even while its Lease renewal hangs: here the path heals for everything but the Lease, and
/// A's run (its fault window over) would revert and write its status and Events after the new
/// leader took the Exercise over. Its requests are held, not refused, as on a real network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_sends_no_write_once_its_lease_may_have_passed() {
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    let lasts = Duration::from_secs(2);
    let path = common::Partition::to(&sim).await;
    let a_client = path.client(&sim).await;
    // A's probe does not go through the API server: its fault window ends (and A would
    // revert) on time while A is cut off.
    let (answers, _) = common::webhook().await;
    let a_options = Options {
        sources: disasterpiece::probe::Sources {
            hosts: disasterpiece::probe::hosts::HostPolicy::parse(&["127.0.0.1"]).expect("rule"),
            ..Default::default()
        },
        ..elected(&sim, "replica-a", lasts)
    };
    let (_stop_a, stop) = watch::channel(false);
    tokio::spawn(control(a_client, a_options, stop));
    add_scenario(
        &client,
        "shop",
        &format!(
            "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: frontend-down-briefly}}
spec:
  hypothesis: The frontend copes with one replica.
  target: {{namespace: shop, kind: Deployment, name: frontend}}
  faults: [{{scale: {{replicas: 1}}}}]
  duration: 3s
  expect:
    - {{name: answers, http: {{url: '{answers}'}}, throughout: true}}
"
        ),
    )
    .await;
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    exercises
        .create(&PostParams::default(), &exercise("cut-off-1", "frontend-down-briefly"))
        .await
        .expect("create");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    eventually("the frontend is scaled to one", || async {
        deployments.get("frontend").await.ok().and_then(|d| d.spec.replicas) == Some(1)
    })
    .await;
    path.cut();
    let cut_at = tokio::time::Instant::now();
    let (_stop_b, stop) = watch::channel(false);
    tokio::spawn(control(client.clone(), elected(&sim, "replica-b", lasts), stop));
    ended_aborted(&exercises, "cut-off-1").await;
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(3));
    let ended = exercises.get("cut-off-1").await.expect("get");
    // Everything but A's renewal goes through again: its run goes on, past its window's end.
    path.hold_only("/leases/");
    tokio::time::sleep(Duration::from_secs(5)).await;
    path.heal();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A's last renewal came before the cut: its fence closed by lasts / 2 after it (slack for
    // a request already on its way at the cut). The renewal itself may still be tried, with
    // the resourceVersion A last read (a reply held at the cut can be that stale): the API
    // server refuses it (409) once B holds the Lease.
    let late: Vec<String> = path
        .writes_since(cut_at + lasts / 2 + Duration::from_millis(300))
        .into_iter()
        .filter(|w| !w.contains("/leases/disasterpiece-controller"))
        .collect();
    assert!(
        late.is_empty(),
        "A sent writes after its Lease may have passed: {late:?}"
    );
    let after = exercises.get("cut-off-1").await.expect("get");
    assert_eq!(
        after.metadata.resource_version, ended.metadata.resource_version,
        "A wrote the Exercise after B ended it: {:?}",
        after.status
    );
    assert_eq!(after.status.and_then(|s| s.verdict), Some(Verdict::Aborted));
}

/// A GameDay that `validate` rejects is stored (the CRD's schema cannot say all of it), but
/// never runs: its status says why in validate's words, and an Event says it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_gameday_says_why_in_a_valid_condition_and_never_runs() {
    use disasterpiece::scenario::gameday::GameDayResource;
    let cluster = cluster().await;
    let client = &cluster.client;
    let broken: GameDayResource = serde_json::from_value(serde_json::json!({
        "apiVersion": "disasterpiece.dev/v1alpha1", "kind": "GameDay",
        "metadata": {"name": "broken", "namespace": "shop"},
        "spec": {"host": {"name": "Alice"},
            "schedule": {"cron": "every wednesday", "timeZone": "Mars/Olympus"},
            "stages": [{"name": "dev", "scenarios": [{"name": "checkout-pod-loss"}]}]}
    }))
    .expect("game day");
    let gamedays: Api<GameDayResource> = Api::namespaced(client.clone(), "shop");
    gamedays.create(&PostParams::default(), &broken).await.expect("stored");
    let valid = || async {
        gamedays.get("broken").await.ok().and_then(|g| {
            g.status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == ConditionType::Valid)
        })
    };
    eventually("the GameDay has a Valid condition", || async {
        valid().await.is_some()
    })
    .await;
    let condition = valid().await.expect("Valid");
    assert_eq!(
        (condition.status, condition.reason.as_str()),
        (ConditionStatus::False, "Invalid")
    );
    for said in [
        "it will not run",
        "schedule.cron: `every wednesday` is not a 5-field cron expression",
        "schedule.timeZone: unknown time zone `Mars/Olympus`",
        "stages[0]: a stage must say where it runs",
    ] {
        assert!(
            condition.message.contains(said),
            "{said:?} not in {}",
            condition.message
        );
    }
    eventually("an Invalid Event is recorded", || async {
        events_of(client, "broken")
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some("Invalid"))
    })
    .await;
    // Some polls later: still one Event, no run, no Exercise.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let events = events_of(client, "broken").await;
    assert_eq!(
        events.iter().filter(|e| e.reason.as_deref() == Some("Invalid")).count(),
        1
    );
    let status = gamedays.get("broken").await.expect("get").status.expect("status");
    assert!(status.runs.is_empty(), "{:?}", status.runs);
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    assert!(
        exercises
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

/// A Scenario resource says as soon as it is stored whether `validate` accepts it: a Valid
/// condition (with validate's messages and hint when not), one Invalid Event, and a new
/// judgement when it is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_says_whether_it_is_valid_as_soon_as_it_is_stored_or_changed() {
    let cluster = cluster().await;
    let client = &cluster.client;
    let scenarios: Api<ScenarioResource> = Api::namespaced(client.clone(), "shop");
    // The CRD's schema accepts any duration string; validate caps it at 24 hours.
    let long: ScenarioResource = serde_yaml::from_str(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: too-long, namespace: shop}
spec:
  hypothesis: The frontend copes with one replica.
  target: {namespace: shop, kind: Deployment, name: frontend}
  faults: [{scale: {replicas: 1}}]
  duration: 48h
  expect:
    - {name: one left, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
",
    )
    .expect("scenario");
    scenarios.create(&PostParams::default(), &long).await.expect("stored");
    let valid = |generation: i64| async move {
        let scenario = Api::<ScenarioResource>::namespaced(client.clone(), "shop")
            .get("too-long")
            .await
            .ok()?;
        let status = scenario.status?;
        (status.observed_generation == Some(generation))
            .then(|| status.conditions.into_iter().find(|c| c.type_ == ConditionType::Valid))
            .flatten()
    };
    eventually("the Scenario has a Valid condition", || async {
        valid(1).await.is_some()
    })
    .await;
    let condition = valid(1).await.expect("Valid");
    assert_eq!(
        (condition.status, condition.reason.as_str()),
        (ConditionStatus::False, "Invalid")
    );
    assert!(
        condition
            .message
            .starts_with("an Exercise of it is refused: spec.duration: ")
            && condition.message.contains("24h"),
        "{}",
        condition.message
    );
    eventually("an Invalid Event is recorded", || async {
        events_of(client, "too-long")
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some("Invalid") && e.message.as_deref() == Some(condition.message.as_str()))
    })
    .await;
    // Mended: judged again at its new generation.
    let mut stored = scenarios.get("too-long").await.expect("get");
    stored.spec.duration = serde_yaml::from_str("30s").expect("duration");
    scenarios
        .replace("too-long", &PostParams::default(), &stored)
        .await
        .expect("replace");
    eventually("the mended Scenario is judged valid", || async {
        valid(2).await.is_some_and(|c| c.status == ConditionStatus::True)
    })
    .await;
    // At rest, nothing more is written.
    let judged = scenarios.get("too-long").await.expect("get").metadata.resource_version;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        scenarios.get("too-long").await.expect("get").metadata.resource_version,
        judged
    );
    assert_eq!(
        events_of(client, "too-long")
            .await
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Invalid"))
            .count(),
        1
    );
}

/// Reports outlive their Exercise: deleting it (or a GameDay pruning its history) leaves the
/// report, which `trend --from-cluster` counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_survives_its_exercise_and_trend_from_the_cluster_counts_it() {
    let cluster = cluster().await;
    let client = &cluster.client;
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    finished_pod_loss(client, "kept-1").await;
    let name = exercises
        .get("kept-1")
        .await
        .expect("get")
        .status
        .and_then(|s| s.report)
        .expect("report named");
    exercises
        .delete("kept-1", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the Exercise is gone", || async {
        exercises.get("kept-1").await.is_err()
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    let kept = maps.get(&name).await.expect("the report outlives its Exercise");
    let labels = kept.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("disasterpiece.dev/scenario").map(String::as_str),
        Some("checkout-pod-loss")
    );
    assert_eq!(
        labels.get("disasterpiece.dev/target-namespace").map(String::as_str),
        Some("shop")
    );
    let kubeconfig = cluster._sim.kubeconfig_path().to_str().expect("utf-8").to_owned();
    // The CLI against the cluster's kubeconfig; its JSON on stdout when it succeeds.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
            .args(args)
            .args(["--kubeconfig", &kubeconfig])
            .env_remove("KUBECONFIG")
            .output()
            .expect("run disasterpiece")
    };
    let json = |output: std::process::Output| -> serde_json::Value {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("json")
    };
    let trend = json(cli(&["trend", "--from-cluster", "--format", "json"]));
    assert_eq!(trend["reports"], 1, "{trend}");
    assert!(trend.to_string().contains("checkout-pod-loss"), "{trend}");
    // The weekly review reads the same reports (the run started within the last 7 days).
    let review = json(cli(&["review", "--from-cluster", "--format", "json"]));
    assert_eq!(review["ran"][0]["exercise"], "kept-1", "{review}");
    // One report, fetched by its Exercise's name (gone) and by its own.
    for name in ["kept-1", name.as_str()] {
        let report = json(cli(&[
            "report",
            "--from-cluster",
            name,
            "-n",
            "shop",
            "--format",
            "json",
        ]));
        assert_eq!(report["exercise"], "kept-1");
    }
    let fetch = |name: &str| cli(&["report", "--from-cluster", name, "-n", "shop"]);
    let missing = fetch("nothing-here");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no report named nothing-here in shop"));
    // A name that would add terms to the label selector (here: every report) names nothing.
    let crafted = fetch("x,disasterpiece.dev/report");
    assert_eq!(crafted.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&crafted.stderr).contains("names no report or Exercise"),
        "{}",
        String::from_utf8_lossy(&crafted.stderr)
    );
}

/// An Exercise whose fault reaches a workload of another team (orders, which depends on
/// checkout and whose namespace lets shop's Scenarios watch it) records an
/// UnanticipatedImpact Event naming the owner, and the GameDay's webhook hears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collateral_beyond_the_targets_is_an_event_and_a_webhook_message_naming_its_owner() {
    use chrono::{DateTime, Utc};
    use disasterpiece::scenario::gameday::GameDayResource;
    let utc = |s: &str| DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc);
    let pinned = ManualClock::new(utc("2026-11-25T13:00:00Z"));
    let (sim, client) = start(fast_shop()).await;
    common::install_crds(&client).await;
    common::orders_depends_on_checkout(
        &client,
        serde_json::json!({"team": "orders-team", "disasterpiece.dev/allow-from": "shop"}),
    )
    .await;
    add_scenario(
        &client,
        "shop",
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: checkout-loss}
spec:
  hypothesis: Losing every checkout pod is absorbed.
  target: {namespace: shop, kind: Deployment, name: checkout}
  blastRadius: {mode: all, respectPodDisruptionBudgets: false}
  faults: [{podKill: {gracePeriodSeconds: 0}}]
  duration: 3s
  expect:
    - {name: replaced, kube: {readyReplicas: {atLeast: 3}}, within: 20s}
  watch: {namespaces: [orders]}
  unanticipated: {abortOn: {collateralIn: [orders]}}
  recovery: {within: 20s}
",
    )
    .await;
    let (hook_url, received) = common::webhook().await;
    Api::<GameDayResource>::namespaced(client.clone(), "shop")
        .create(
            &PostParams::default(),
            &gameday(
                "beyond",
                "checkout-loss",
                "checkout-loss",
                &format!("  notify: {{webhook: '{hook_url}'}}\n"),
            ),
        )
        .await
        .expect("create the GameDay");
    let (_stop, stop) = watch::channel(false);
    tokio::spawn(control(client.clone(), options(&sim, pinned.clock()), stop));
    let exercises: Api<Exercise> = Api::namespaced(client.clone(), "shop");
    let name = "beyond-202611251300-dev-00";
    ended_aborted(&exercises, name).await;
    let events = events_of(&client, name).await;
    let impact = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("UnanticipatedImpact"))
        .unwrap_or_else(|| panic!("an UnanticipatedImpact Event: {events:#?}"));
    let note = impact.message.clone().unwrap_or_default();
    assert!(
        note.contains("orders") && note.contains("(owner orders-team)"),
        "{note}"
    );
    assert_eq!(impact.type_.as_deref(), Some("Warning"));
    eventually("the webhook hears of the impact", || async {
        received
            .lock()
            .expect("lock")
            .iter()
            .any(|m| m["event"] == "unanticipatedImpact")
    })
    .await;
    let messages = received.lock().expect("lock").clone();
    let message = messages
        .iter()
        .find(|m| m["event"] == "unanticipatedImpact")
        .expect("the message");
    assert_eq!(message["owners"], serde_json::json!(["orders-team"]));
    // shop may not read Nodes here (no --node-scenario-namespaces): its report shows none.
    let (reports, _) = disasterpiece::controller::reports::list(&client, Some("shop"))
        .await
        .expect("reports");
    let watched = &reports[0].observed_blast_radius.as_ref().expect("observed").watched;
    assert!(!watched.nodes);
    assert!(
        watched
            .nodes_not_watched
            .as_deref()
            .is_some_and(|w| w.contains("--node-scenario-namespaces")),
        "{watched:?}"
    );
    assert!(
        message["text"]
            .as_str()
            .is_some_and(|t| t.contains("reached beyond its targets") && t.contains("(owners: orders-team)")),
        "{message}"
    );
}

/// What a tenant's watch beyond its targets reads goes into its report: a namespace that did
/// not opt in is refused, as a probe of it would be, and so is `*`, which only the operator
/// may set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_may_not_watch_a_namespace_that_did_not_opt_in_nor_every_namespace() {
    let shop = cluster().await;
    let client = &shop.client;
    common::orders_depends_on_checkout(client, serde_json::json!({"team": "orders-team"})).await;
    let watching = |name: &str, namespaces: &str| {
        format!(
            "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: {name}}}
spec:
  hypothesis: Losing a checkout pod is absorbed.
  target: {{namespace: shop, kind: Deployment, name: checkout}}
  faults: [{{podKill: {{}}}}]
  duration: 3s
  expect:
    - {{name: replaced, kube: {{readyReplicas: {{atLeast: 3}}}}, within: 20s}}
  watch: {{namespaces: {namespaces}}}
"
        )
    };
    add_scenario(client, "shop", &watching("watch-orders", "[orders]")).await;
    add_scenario(client, "shop", &watching("watch-all", "['*']")).await;
    let why = |status: disasterpiece::controller::crd::ExerciseStatus| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == ConditionType::Refused)
            .map(|c| c.message.clone())
            .unwrap_or_default()
    };
    let orders = why(refused(client, "shop", "orders-1", "watch-orders").await);
    assert!(
        orders.contains("watch.namespaces names namespace orders")
            && orders.contains("disasterpiece.dev/allow-from=shop"),
        "{orders}"
    );
    let all = why(refused(client, "shop", "all-1", "watch-all").await);
    assert!(
        all.contains("only the operator may") && all.contains("--watch-namespace"),
        "{all}"
    );
    // Nothing was injected.
    for name in ["orders-1", "all-1"] {
        let events = events_of(client, name).await;
        assert!(
            !events.iter().any(|e| e.reason.as_deref() == Some("Injected")),
            "{events:#?}"
        );
    }
}
