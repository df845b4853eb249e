//! The Helm chart's RBAC is enough, and no more than enough: the controller runs with the
//! token of the chart's ServiceAccount, bound only to the roles `helm template` renders, and
//! runs an Exercise of every fault kind to a verdict with no 403, in both RBAC modes (one
//! ClusterRole; Roles in listed namespaces); with one verb taken away, the step that needs it
//! fails with the API server's 403; and the chart README's table lists exactly what the chart
//! grants.

use std::time::Duration;

use disasterpiece::controller::control;
use disasterpiece::controller::crd::{Exercise, ExerciseSpec, Phase};
use disasterpiece::scenario::model::ScenarioResource;
use disasterpiece::scenario::{self, Resource};
use disasterpiece_sim::Sim;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use tokio::sync::watch;

use disasterpiece::controller::crd::{ConditionStatus, ConditionType, Verdict};

mod common;
use common::{eventually, fast_shop};

/// Not `disasterpiece-system`: nothing may assume the chart is installed there.
const RELEASE_NAMESPACE: &str = "chaos-tools";
const ACCOUNT: &str = "system:serviceaccount:chaos-tools:disasterpiece";

/// How the chart is installed: `rbac.scope` and what goes with it.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// `rbac.scope=cluster`: one ClusterRole, Exercises of every namespace.
    Cluster,
    /// `rbac.scope=namespaces`: Roles in `shop` (and the release namespace) only, the
    /// controller watching `shop`.
    Namespaces,
}

/// The chart's ServiceAccount and RBAC objects, as `helm template` renders them in `mode`,
/// with the shop's Node scenarios allowed (`controller.nodeScenarioNamespaces={shop}`).
fn rendered_rbac(mode: Mode) -> Vec<Value> {
    rendered(mode, &["--set", "controller.nodeScenarioNamespaces={shop}"])
}

fn rendered(mode: Mode, extra: &[&str]) -> Vec<Value> {
    let mut args: Vec<&str> = match mode {
        Mode::Cluster => vec![],
        Mode::Namespaces => vec![
            "--set",
            "rbac.scope=namespaces",
            "--set",
            "rbac.namespaces={shop}",
            "--set",
            "controller.watchNamespace=shop",
        ],
    };
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
    ]);
    let text = helm_template(&args);
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|document| serde::Deserialize::deserialize(document).ok())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// What `helm template` renders of the chart, installed in the release namespace, with `args`.
fn helm_template(args: &[&str]) -> String {
    let helm = common::program(
        Some("DISASTERPIECE_HELM"),
        &["helm"],
        "run .ci/helm-check (it installs helm into target/ci-tools) and set DISASTERPIECE_HELM",
    );
    let output = std::process::Command::new(helm)
        .args([
            "template",
            "disasterpiece",
            "helm/disasterpiece",
            "--namespace",
            RELEASE_NAMESPACE,
        ])
        .args(args)
        .output()
        .expect("run helm");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Creates `objects` as the cluster admin would (`kubectl apply` of the rendered chart).
async fn apply(admin: &kube::Client, objects: &[Value]) {
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": RELEASE_NAMESPACE}})).expect("ns");
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create the release namespace");
    for object in objects {
        let kind = object["kind"].as_str().expect("kind");
        let (group, version) = match object["apiVersion"].as_str().expect("apiVersion").split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", "v1"),
        };
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            &format!("{}s", kind.to_lowercase()),
        );
        let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(admin.clone(), ns, &resource),
            None => Api::all_with(admin.clone(), &resource),
        };
        let object: DynamicObject = serde_json::from_value(object.clone()).expect("an object");
        api.create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("create {kind}: {e}"));
    }
}

/// The shop, the CRDs, the chart's RBAC, every scenario of `tests/rbac/every-fault.yaml`,
/// and a controller that is the chart's ServiceAccount. Returns the admin's client.
async fn controller_with_chart_rbac(rbac: &[Value], mode: Mode) -> (Sim, kube::Client, watch::Sender<bool>) {
    controller_as_the_chart_runs_it(rbac, mode, |o| o).await
}

/// The same, with `tweak` applied to the controller's options.
async fn controller_as_the_chart_runs_it(
    rbac: &[Value],
    mode: Mode,
    tweak: impl FnOnce(disasterpiece::controller::Options) -> disasterpiece::controller::Options,
) -> (Sim, kube::Client, watch::Sender<bool>) {
    let sim = fast_shop().start().await.expect("simulator");
    let admin = sim.raw_client().await.expect("admin client");
    common::install_crds(&admin).await;
    apply(&admin, rbac).await;
    let text = std::fs::read_to_string("tests/rbac/every-fault.yaml").expect("scenarios");
    for (_, resource) in scenario::load(&text, &|_| true).resources {
        let Resource::Scenario(s) = resource else {
            panic!("not a scenario")
        };
        Api::<ScenarioResource>::namespaced(admin.clone(), "shop")
            .create(&PostParams::default(), &ScenarioResource::new(&s.metadata.name, s.spec))
            .await
            .expect("create the Scenario");
    }
    let controller = sim
        .service_account_client(RELEASE_NAMESPACE, "disasterpiece")
        .await
        .expect("the chart ServiceAccount's token");
    // The shop's own node scenarios are allowed, as a platform team would set
    // controller.nodeScenarioNamespaces.
    // As the chart runs it: its namespace for Node journals (DISASTERPIECE_JOURNAL_NAMESPACE),
    // and in `namespaces` mode only shop's Exercises.
    let options = disasterpiece::controller::Options {
        node_namespaces: vec!["shop".into()],
        journal_namespace: RELEASE_NAMESPACE.into(),
        kill_switch: chart_kill_switch(),
        namespace: (mode == Mode::Namespaces).then(|| "shop".to_owned()),
        ..common::controller_options(&sim)
    };
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(control(controller, tweak(options), stop));
    (sim, admin, stop_tx)
}

/// The chart's Deployment, as `helm template` renders it with `extra`.
fn rendered_deployment(extra: &[&str]) -> Value {
    let mut args = extra.to_vec();
    args.extend_from_slice(&["--show-only", "templates/deployment.yaml"]);
    serde_yaml::from_str(&helm_template(&args)).expect("the Deployment")
}

/// The kill switch the chart gives the controller (`--kill-switch`).
fn chart_kill_switch() -> disasterpiece::engine::abort::KillSwitch {
    let deployment = rendered_deployment(&[]);
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args");
    let arg = args
        .iter()
        .find_map(|a| a.as_str()?.strip_prefix("--kill-switch="))
        .expect("the chart passes --kill-switch");
    arg.parse().expect("NAMESPACE/NAME")
}

/// Creates Exercise `name` of Scenario `scenario` in shop and waits until it is done.
async fn exercise(admin: &kube::Client, name: &str, scenario: &str) -> Exercise {
    let exercises: Api<Exercise> = Api::namespaced(admin.clone(), "shop");
    let spec = ExerciseSpec {
        scenario: scenario.into(),
        seed: Some(1),
        sample_every: Some(Duration::from_millis(200).into()),
        ..Default::default()
    };
    exercises
        .create(&PostParams::default(), &Exercise::new(name, spec))
        .await
        .expect("create the Exercise");
    eventually(&format!("Exercise {name} is done"), || async {
        let phase = exercises.get(name).await.ok().and_then(|e| e.status?.phase);
        matches!(phase, Some(Phase::Finished | Phase::Refused))
    })
    .await;
    exercises.get(name).await.expect("get the Exercise")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_helm), ignore = "needs helm (.ci/helm-check installs it)")]
async fn the_cluster_mode_rbac_runs_every_fault_kind_to_a_verdict_without_a_403() {
    every_fault_kind_without_a_403(Mode::Cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_helm), ignore = "needs helm (.ci/helm-check installs it)")]
async fn the_namespaces_mode_rbac_runs_every_fault_kind_to_a_verdict_without_a_403() {
    every_fault_kind_without_a_403(Mode::Namespaces).await;
}

async fn every_fault_kind_without_a_403(mode: Mode) {
    let (_sim, admin, _stop) = controller_with_chart_rbac(&rendered_rbac(mode), mode).await;
    let text = std::fs::read_to_string("tests/rbac/every-fault.yaml").expect("scenarios");
    let names: Vec<String> = scenario::load(&text, &|_| true)
        .resources
        .into_iter()
        .map(|(_, r)| match r {
            Resource::Scenario(s) => s.metadata.name,
            _ => panic!("not a scenario"),
        })
        .collect();
    assert_eq!(names.len(), 12, "one scenario per fault kind");
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(admin.clone(), "shop");
    for scenario in &names {
        // Each starts from a whole shop: the pods the last one took are back and Ready.
        eventually("the shop is whole again", || async {
            let items = pods
                .list(&Default::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let ready = |p: &k8s_openapi::api::core::v1::Pod| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            };
            items.len() == 11 && items.iter().all(ready)
        })
        .await;
        let done = exercise(&admin, scenario, scenario).await;
        let status = done.status.expect("status");
        let text = serde_json::to_string(&status).expect("JSON");
        assert_eq!(status.phase, Some(Phase::Finished), "{scenario}: {text}");
        assert!(
            matches!(status.verdict, Some(Verdict::Confirmed | Verdict::Refuted)),
            "{scenario}: {text}"
        );
        assert!(
            status
                .conditions
                .iter()
                .any(|c| c.type_ == ConditionType::Reverted && c.status == ConditionStatus::True),
            "{scenario}: {text}"
        );
        assert!(!text.to_lowercase().contains("forbidden"), "{scenario}: {text}");
        // The report, which the controller wrote, names no refusal either.
        let report = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(admin.clone(), "shop")
            .get(status.report.as_deref().expect("report named"))
            .await
            .expect("the report ConfigMap");
        let report = serde_json::to_string(&report.data).expect("JSON");
        assert!(!report.to_lowercase().contains("forbidden"), "{scenario}: {report}");
        if scenario == "rbac-nodedrain" {
            // The report lists each pod the drain evicted.
            assert!(report.contains(r#"\"evicted\":[\"shop/"#), "{report}");
        }
    }
}

/// The rendered objects with `verb` taken away on `resource` alone, in every role: a rule
/// that also names other resources keeps them as they were.
fn without(mut rbac: Vec<Value>, resource: &str, verb: &str) -> Vec<Value> {
    let mut removed = false;
    for object in rbac.iter_mut() {
        let Some(rules) = object["rules"].as_array_mut() else {
            continue;
        };
        let mut split = Vec::new();
        for rule in rules.iter_mut() {
            let names = |r: &Value| {
                r["resources"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| x == resource))
            };
            let grants = |r: &Value| r["verbs"].as_array().is_some_and(|v| v.iter().any(|x| x == verb));
            if !(names(rule) && grants(rule)) {
                continue;
            }
            removed = true;
            let mut alone = rule.clone();
            alone["resources"] = json!([resource]);
            if let Some(verbs) = alone["verbs"].as_array_mut() {
                verbs.retain(|v| v != verb);
            }
            if let Some(others) = rule["resources"].as_array_mut() {
                others.retain(|r| r != resource);
            }
            split.push(alone);
        }
        rules.retain(|r| r["resources"].as_array().is_none_or(|r| !r.is_empty()));
        rules.extend(split);
    }
    assert!(removed, "the chart grants {verb} {resource}");
    rbac
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_helm), ignore = "needs helm (.ci/helm-check installs it)")]
async fn one_verb_less_and_the_step_that_needs_it_fails_with_the_real_403() {
    // Without `get` on scenarios the controller cannot read the Scenario an Exercise names:
    // the Exercise is refused with the API server's words, and nothing is injected.
    let rbac = without(rendered_rbac(Mode::Cluster), "scenarios", "get");
    let (_sim, admin, _stop) = controller_with_chart_rbac(&rbac, Mode::Cluster).await;
    let done = exercise(&admin, "no-get", "rbac-scale").await;
    let status = done.status.expect("status");
    assert_eq!(status.phase, Some(Phase::Refused));
    let message = status
        .conditions
        .iter()
        .find(|c| c.type_ == ConditionType::Refused)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    let forbidden = format!(
        "scenarios.disasterpiece.dev \"rbac-scale\" is forbidden: User \"{ACCOUNT}\" cannot get resource \"scenarios\" in API group \"disasterpiece.dev\" in the namespace \"shop\""
    );
    assert!(message.contains(&forbidden), "{message}");
    let frontend = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(admin.clone(), "shop")
        .get("frontend")
        .await
        .expect("frontend");
    assert_eq!(frontend.spec.replicas, Some(3), "nothing was scaled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_helm), ignore = "needs helm (.ci/helm-check installs it)")]
async fn without_get_on_pods_exec_an_in_pod_fault_is_refused_before_it_starts() {
    // The exec that stops an in-pod fault is a GET: without `get pods/exec` an abort could not
    // stop the fault, so preflight refuses the Exercise and no ephemeral container is added.
    let rbac = without(rendered_rbac(Mode::Namespaces), "pods/exec", "get");
    let (_sim, admin, _stop) = controller_with_chart_rbac(&rbac, Mode::Namespaces).await;
    let done = exercise(&admin, "no-exec", "rbac-cpustress").await;
    let status = done.status.expect("status");
    assert_eq!(status.phase, Some(Phase::Refused));
    let why = status
        .conditions
        .iter()
        .find(|c| c.type_ == ConditionType::Refused)
        .map(|c| c.message.as_str());
    assert!(
        why.is_some_and(|m| m.contains("get pods/exec in shop")),
        "{:?}",
        status.conditions
    );
    let report = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(admin.clone(), "shop")
        .get(status.report.as_deref().expect("report named"))
        .await
        .expect("the report ConfigMap");
    let report = serde_json::to_string(&report.data).expect("JSON");
    assert!(report.contains("get pods/exec in shop"), "{report}");
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(admin.clone(), "shop")
        .list(&Default::default())
        .await
        .expect("pods");
    assert!(
        pods.items
            .iter()
            .all(|p| p.spec.as_ref().is_none_or(|s| s.ephemeral_containers.is_none())),
        "no fault container was added"
    );
}

/// `(granted by, API group, resource, verb)`.
type Grant = (String, String, String, String);

/// The rules of `object`, as grants under `by`.
fn grants_of(object: &Value, by: &str) -> std::collections::BTreeSet<Grant> {
    let mut grants = std::collections::BTreeSet::new();
    for rule in object["rules"].as_array().into_iter().flatten() {
        let strings = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        for group in strings("apiGroups") {
            for resource in strings("resources") {
                for verb in strings("verbs") {
                    grants.insert((by.into(), group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    grants
}

/// The rows of the chart README's RBAC table, as grants.
fn readme_grants() -> std::collections::BTreeSet<Grant> {
    let text = std::fs::read_to_string("helm/disasterpiece/README.md").expect("the chart README");
    let table = text.split("| Granted by |").nth(1).expect("the RBAC table");
    let mut grants = std::collections::BTreeSet::new();
    for line in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [by, group, resources, verbs, _why] = cells[..] else {
            panic!("a row of five cells: {line}")
        };
        let group = if group == "(core)" { "" } else { group };
        for resource in resources.split(", ") {
            for verb in verbs.split(", ") {
                grants.insert((by.into(), group.into(), resource.into(), verb.into()));
            }
        }
    }
    grants
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .collect()
}

#[test]
#[cfg_attr(not(has_helm), ignore = "needs helm (.ci/helm-check installs it)")]
fn the_readme_rbac_table_is_exactly_what_the_chart_grants_in_both_modes() {
    let table = readme_grants();
    let rows =
        |by: &str| -> std::collections::BTreeSet<Grant> { table.iter().filter(|g| g.0 == by).cloned().collect() };
    let relabel = |grants: std::collections::BTreeSet<Grant>, by: &str| -> std::collections::BTreeSet<Grant> {
        grants.into_iter().map(|(_, g, r, v)| (by.into(), g, r, v)).collect()
    };
    let both = |a: std::collections::BTreeSet<Grant>, b: std::collections::BTreeSet<Grant>| &a | &b;

    // Cluster mode, Node scenarios allowed.
    let cluster = rendered_rbac(Mode::Cluster);
    let workload = named(&cluster, "ClusterRole", "disasterpiece");
    assert_eq!(workload.len(), 1);
    assert_eq!(grants_of(workload[0], "workload"), rows("workload"));
    let wide = named(&cluster, "ClusterRole", "disasterpiece-cluster");
    assert_eq!(
        relabel(grants_of(wide[0], "x"), "x"),
        relabel(both(rows("cluster"), rows("nodes")), "x")
    );
    let leader = named(&cluster, "Role", "disasterpiece-leader");
    assert_eq!(leader[0]["metadata"]["namespace"], RELEASE_NAMESPACE);
    assert_eq!(grants_of(leader[0], "leader"), rows("leader"));

    // Without Node scenarios, nothing on nodes and no cluster-wide eviction.
    let no_nodes = rendered(Mode::Cluster, &[]);
    let wide = named(&no_nodes, "ClusterRole", "disasterpiece-cluster");
    assert_eq!(grants_of(wide[0], "cluster"), rows("cluster"));

    // Namespaces mode: the workload rows as Roles in shop and the release namespace only.
    let namespaced = rendered_rbac(Mode::Namespaces);
    assert!(named(&namespaced, "ClusterRole", "disasterpiece").is_empty());
    let roles = named(&namespaced, "Role", "disasterpiece");
    let mut where_: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap_or_default())
        .collect();
    where_.sort();
    assert_eq!(where_, [RELEASE_NAMESPACE, "shop"]);
    for role in roles {
        assert_eq!(grants_of(role, "workload"), rows("workload"));
    }
    let wide = named(&namespaced, "ClusterRole", "disasterpiece-cluster");
    assert_eq!(
        relabel(grants_of(wide[0], "x"), "x"),
        relabel(both(rows("cluster"), rows("nodes")), "x")
    );
}

/// In `namespaces` mode the controller may not list ConfigMaps cluster-wide: its start-up
/// recovery looks in the namespace it serves (and its own), and reverts a dead run's journal
/// there with the Role the chart gives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_helm), ignore = "needs helm (.ci/helm-check installs it)")]
async fn in_namespaces_mode_start_up_recovery_reverts_a_dead_run_in_the_served_namespace() {
    use disasterpiece::blast_radius::Unit;
    use disasterpiece::blast_radius::resolve::resolve;
    use disasterpiece::clock::Clock;
    use disasterpiece::engine::journal::{Journal, State};
    use disasterpiece::fault::{self, Context};
    use disasterpiece::scenario::model::{FaultKind, Scale, Target, TargetKind};
    use k8s_openapi::api::apps::v1::Deployment;
    let sim = fast_shop().start().await.expect("simulator");
    let admin = sim.raw_client().await.expect("admin client");
    common::install_crds(&admin).await;
    apply(&admin, &rendered_rbac(Mode::Namespaces)).await;
    // A run that died ten minutes ago, its frontend still at 1.
    let ctx = Context {
        client: admin.clone(),
        exercise: "ex-dead".into(),
        dry_run: false,
        in_pod: Default::default(),
        clock: Default::default(),
    };
    let ten_minutes_ago = Clock::system().skewed(-chrono::Duration::minutes(10));
    let journal = Journal::open(&admin, "shop", "ex-dead", "scale", &ten_minutes_ago)
        .await
        .expect("journal");
    let frontend = Target {
        namespace: Some("shop".into()),
        kind: TargetKind::Deployment,
        name: Some("frontend".into()),
        selector: None,
    };
    let workload = resolve(&admin, &frontend, Unit::Workload)
        .await
        .expect("resolve")
        .candidates
        .remove(0);
    let prepared = fault::prepare(&ctx, FaultKind::Scale(&Scale { replicas: 1 }), &workload)
        .await
        .expect("prepare");
    let id = journal
        .intend("deployment shop/frontend", &prepared, chrono::Utc::now())
        .await
        .expect("intend")
        .id;
    fault::apply(&ctx, &prepared).await.expect("apply");
    journal.mark(id, State::Applied).await.expect("mark");
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "shop");
    assert_eq!(deployments.get("frontend").await.expect("get").spec.replicas, Some(1));

    let controller = sim
        .service_account_client(RELEASE_NAMESPACE, "disasterpiece")
        .await
        .expect("the chart ServiceAccount's token");
    let options = disasterpiece::controller::Options {
        journal_namespace: RELEASE_NAMESPACE.into(),
        namespace: Some("shop".into()),
        ..common::controller_options(&sim)
    };
    let (_stop, stop) = watch::channel(false);
    tokio::spawn(control(controller, options, stop));
    eventually("the dead run's scale is reverted", || async {
        deployments.get("frontend").await.ok().and_then(|d| d.spec.replicas) == Some(3)
    })
    .await;
    eventually("its journal is closed", || async {
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(admin.clone(), "shop")
            .list(&kube::api::ListParams::default().labels("disasterpiece.dev/journal=true"))
            .await
            .is_ok_and(|l| l.items.is_empty())
    })
    .await;
}

/// The weekly review as the chart schedules it: every `--review-*` flag the chart renders is one
/// the controller takes, and with only the chart's RBAC (both modes) the review lists the
/// workloads for coverage and records its post, without a 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_helm), ignore = "needs helm (.ci/helm-check installs it)")]
async fn the_scheduled_weekly_review_runs_on_the_chart_rbac_in_both_modes() {
    use chrono::TimeDelta;
    use disasterpiece::clock::ManualClock;
    use disasterpiece::controller::weekly::{POSTED_FOR, RECORD, Schedule};
    use disasterpiece::report::review::{Org, View};
    use k8s_openapi::api::core::v1::ConfigMap;
    let deployment = rendered_deployment(&[
        "--set",
        "review.enabled=true",
        "--set",
        "review.webhookSecret.name=slack",
    ]);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let flags: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| {
            a.as_str()?
                .strip_prefix("--review")?
                .split('=')
                .next()
                .map(|f| format!("--review{f}"))
        })
        .collect();
    assert_eq!(flags.len(), 6, "{flags:?}");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args(["controller", "--help"])
        .output()
        .expect("controller --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in flags.iter().map(String::as_str).chain(["--review-webhook"]) {
        assert!(help.contains(flag), "the controller takes no {flag}:\n{help}");
    }
    assert!(
        container["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e["name"] == "DISASTERPIECE_REVIEW_WEBHOOK"),
        "the webhook from the Secret"
    );
    assert!(help.contains("DISASTERPIECE_REVIEW_WEBHOOK"), "{help}");

    for mode in [Mode::Cluster, Mode::Namespaces] {
        let at = "2026-11-30T08:59:50Z".parse().expect("time");
        let clock = ManualClock::new(at);
        let (url, got) = common::webhook().await;
        let schedule = Schedule {
            cron: "0 9 * * MON".into(),
            time_zone: "UTC".into(),
            period: TimeDelta::days(7),
            view: View::Team,
            org: Org::default(),
            stale: TimeDelta::days(90),
            webhook: url,
        };
        let (_sim, admin, _stop) =
            controller_as_the_chart_runs_it(&rendered_rbac(mode), mode, |o| disasterpiece::controller::Options {
                clock: clock.clock(),
                review: Some(schedule),
                ..o
            })
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        clock.advance(TimeDelta::seconds(20));
        eventually("the review is posted", || async {
            !got.lock().expect("lock").is_empty()
        })
        .await;
        let text = got.lock().expect("lock")[0]["text"].as_str().expect("text").to_owned();
        assert!(
            text.contains("Deployment shop/frontend"),
            "{mode:?}: coverage lists the workloads:\n{text}"
        );
        let records = Api::<ConfigMap>::namespaced(admin.clone(), RELEASE_NAMESPACE);
        eventually("the post is recorded", || async {
            records
                .get_opt(RECORD)
                .await
                .ok()
                .flatten()
                .is_some_and(|r| r.metadata.annotations.unwrap_or_default().contains_key(POSTED_FOR))
        })
        .await;
    }
}

/// Installed outside `disasterpiece-system` with only the chart's RBAC, in both modes: the
/// kill switch is the release namespace's, the controller may read it, and creating it stops
/// a running Exercise, reverted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_helm), ignore = "needs helm (.ci/helm-check installs it)")]
async fn the_kill_switch_in_the_release_namespace_stops_a_running_exercise_in_both_modes() {
    use disasterpiece::engine::abort::KILL_SWITCH_NAME;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ConfigMap;
    assert_eq!(chart_kill_switch().namespace, RELEASE_NAMESPACE);
    for mode in [Mode::Cluster, Mode::Namespaces] {
        let (_sim, admin, _stop) = controller_with_chart_rbac(&rendered_rbac(mode), mode).await;
        // Scales the frontend to one for five minutes.
        let scenario: disasterpiece::scenario::model::ScenarioSpec = serde_json::from_value(json!({
            "hypothesis": "h",
            "target": {"namespace": "shop", "kind": "Deployment", "name": "frontend"},
            "faults": [{"scale": {"replicas": 1}}],
            "duration": "5m",
            "expect": [{"name": "up", "kube": {"readyReplicas": {"atLeast": 1}}, "throughout": true}]
        }))
        .expect("scenario");
        Api::<ScenarioResource>::namespaced(admin.clone(), "shop")
            .create(&PostParams::default(), &ScenarioResource::new("long-scale", scenario))
            .await
            .expect("create the Scenario");
        let exercises: Api<Exercise> = Api::namespaced(admin.clone(), "shop");
        let spec = ExerciseSpec {
            scenario: "long-scale".into(),
            ..Default::default()
        };
        exercises
            .create(&PostParams::default(), &Exercise::new("stopped", spec))
            .await
            .expect("create the Exercise");
        let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "shop");
        let replicas = || async { deployments.get("frontend").await.ok().and_then(|d| d.spec.replicas) };
        eventually(&format!("{mode:?}: the fault is in place"), || async {
            replicas().await == Some(1)
        })
        .await;
        let switch: ConfigMap = serde_json::from_value(json!({"metadata": {"name": KILL_SWITCH_NAME}})).expect("cm");
        Api::<ConfigMap>::namespaced(admin.clone(), RELEASE_NAMESPACE)
            .create(&PostParams::default(), &switch)
            .await
            .expect("pull the kill switch");
        eventually(&format!("{mode:?}: the Exercise ends aborted"), || async {
            exercises
                .get("stopped")
                .await
                .ok()
                .and_then(|e| e.status)
                .is_some_and(|s| s.phase == Some(Phase::Finished) && s.verdict == Some(Verdict::Aborted))
        })
        .await;
        let status = exercises.get("stopped").await.expect("get").status.expect("status");
        let text = serde_json::to_string(&status).expect("JSON");
        assert!(
            text.contains(&format!("ConfigMap {RELEASE_NAMESPACE}/{KILL_SWITCH_NAME} exists")),
            "{mode:?}: {text}"
        );
        assert!(!text.to_lowercase().contains("forbidden"), "{mode:?}: {text}");
        assert_eq!(replicas().await, Some(3), "{mode:?}: the frontend is put back");
    }
}
