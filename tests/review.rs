//! The weekly review over half a year of exercises: six teams in three groups, one exercise a
//! week each for 26 weeks (157 reports, each built by the engine's report builder from what its
//! run recorded, typed events on its timeline, and annotated as `annotate` does), follow-ups
//! overdue, open, done and verified by a later run; checked in the three views and three
//! formats against figures worked out by hand.

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use disasterpiece::engine::event::{ExerciseEvent, Phase};
use disasterpiece::engine::run::finish::{self, People, Record};
use disasterpiece::report::model::{
    ClauseVerdict, Collateral, CollateralKind, Environment, Event, ExpectationResult, Injection, ObservedBlastRadius,
    Outcome, Report, TargetChoice, Watched,
};
use disasterpiece::report::review::{self, Ask, Org, Source, Standing, View};
use disasterpiece::report::store::Annotation;
use disasterpiece::scenario::Scenario;
use serde_json::Value;

mod common;

/// Monday, the first week.
fn week(w: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 10, 0, 0).single().expect("date") + Duration::weeks(w)
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

/// Team `t`'s scenario: kill a pod of its service (t4: partition it) and expect its alert and
/// its answers to hold.
fn scenario(t: i64) -> Scenario {
    let fault = if t == 4 {
        "networkPartition: {}"
    } else {
        "podKill: {gracePeriodSeconds: 0}"
    };
    let text = format!(
        "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {{name: scenario-t{t}, labels: {{team: t{t}}}}}
spec:
  hypothesis: svc-t{t} keeps answering without a pod, and its alert fires within 2m.
  target: {{namespace: shop, kind: Deployment, name: svc-t{t}}}
  blastRadius: {{mode: one}}
  faults: [{{{fault}}}]
  duration: 3m
  expect:
    - name: alert fires
      alert: {{name: SvcT{t}Degraded, source: alertmanager}}
      within: 2m
    - name: keeps answering
      http: {{url: \"http://svc-t{t}.shop.svc/\", expectStatus: 200}}
      throughout: true
  recovery: {{within: 1m}}
"
    );
    match disasterpiece::scenario::load(&text, &|_| true).resources.remove(0).1 {
        disasterpiece::scenario::Resource::Scenario(s) => *s,
        other => panic!("not a scenario: {other:?}"),
    }
}

/// What team `t`'s exercise of week `w` recorded, as the engine records a run: the typed
/// events on its timeline, the fault in place from 10 s after the start for three minutes, the
/// alert first seen `detect` seconds after injection, the answers failing when `refuted`.
fn record(t: i64, started: DateTime<Utc>, detect: i64, refuted: bool, collateral: Vec<Collateral>) -> Record {
    let injected = started + Duration::seconds(10);
    let reverted = injected + Duration::minutes(3);
    let action = if t == 4 {
        format!("partition Pod shop/svc-t{t}-0")
    } else {
        format!("delete Pod shop/svc-t{t}-0")
    };
    let mut timeline = Vec::new();
    let mut emit = |at: DateTime<Utc>, event: ExerciseEvent| {
        timeline.extend(event.timeline().into_iter().map(|(kind, detail)| Event {
            at,
            kind: kind.into(),
            detail,
        }));
    };
    let phase = |phase| ExerciseEvent::Phase {
        phase,
        window: None,
        every: None,
    };
    emit(started, phase(Phase::Preflight));
    emit(injected, phase(Phase::Inject));
    emit(injected, ExerciseEvent::Injected { action: action.clone() });
    emit(injected, phase(Phase::Observe));
    let held_at = injected + Duration::seconds(detect);
    emit(
        held_at,
        ExerciseEvent::Held {
            clause: "alert fires".into(),
            observed: format!("SvcT{t}Degraded firing"),
        },
    );
    let answers = if refuted {
        let observed = "503 Service Unavailable".to_owned();
        emit(
            injected + Duration::seconds(30),
            ExerciseEvent::Failed {
                clause: "keeps answering".into(),
                observed: observed.clone(),
            },
        );
        (ClauseVerdict::Refuted, observed)
    } else {
        (ClauseVerdict::Confirmed, "200 OK".to_owned())
    };
    emit(reverted, phase(Phase::Revert));
    emit(
        reverted,
        ExerciseEvent::Reverted {
            actions: 1,
            failed: Vec::new(),
        },
    );
    let recover = 10 + t;
    emit(reverted + Duration::seconds(recover), ExerciseEvent::Recovered);
    let clause = |name: &str, expected: &str, verdict, first_held, observed: String, probe: &str| ExpectationResult {
        name: name.into(),
        expected: expected.into(),
        verdict,
        first_held,
        observed,
        samples: 90,
        probe: probe.into(),
        history: Vec::new(),
    };
    Record {
        started_at: started,
        ended_at: started + Duration::minutes(5),
        targets: vec![TargetChoice {
            fault: if t == 4 { "networkPartition" } else { "podKill" }.into(),
            chosen: vec![format!("Pod shop/svc-t{t}-0")],
            excluded: vec![(format!("Pod shop/svc-t{t}-1"), "mode one: one target".into())],
        }],
        timeline,
        injections: vec![Injection {
            fault: if t == 4 { "networkPartition" } else { "podKill" }.into(),
            target: format!("Pod shop/svc-t{t}-0"),
            action,
            injected_at: Some(injected),
            not_injected: None,
            reverted_at: Some(reverted),
            evicted: Vec::new(),
            partial: None,
        }],
        expectations: vec![
            clause(
                "alert fires",
                "within 2m",
                ClauseVerdict::Confirmed,
                Some(held_at),
                format!("SvcT{t}Degraded firing"),
                "alert",
            ),
            clause("keeps answering", "throughout", answers.0, None, answers.1, "http"),
        ],
        recovered: true,
        time_to_recover_s: Some(recover as f64),
        observed: Some(ObservedBlastRadius {
            watched: Watched {
                namespaces: vec!["shop".into(), "orders".into()],
                nodes: true,
                ..Watched::default()
            },
            collateral,
            ..ObservedBlastRadius::default()
        }),
        ..Record::default()
    }
}

/// Half a year of exercises, each built by the engine's report builder from what the run
/// recorded and annotated as `annotate` does. Team `t`'s exercise of week `w` is refuted when
/// (w + t) is a multiple of 5, else confirmed; even teams write a lesson down when refuted;
/// time to detect 60 - w + t seconds; confidence 2 before, 3 after. Follow-ups: t0's of week
/// 20 done on 2026-11-24; t1's of week 24 proven by its own scenario; t2, t3, t4's of week 20
/// due 2026-11-20; t5's of week 20 due 2026-12-15; one more of t3 in week 25, without a due
/// date. t3's week-25 run hit orders beyond its targets. t4 partitions the network; t5 also
/// exercised a legacy target in week 0.
fn history() -> Vec<Source> {
    let mut sources = Vec::new();
    let environment = Environment {
        cluster: "shop-prod".into(),
        namespace: Some("shop".into()),
        disasterpiece_version: env!("CARGO_PKG_VERSION").into(),
        ..Environment::default()
    };
    let report_of = |w: i64, t: i64, scenario: &Scenario, exercise: String| {
        let started = week(w) + Duration::days(t);
        let collateral = if (w, t) == (25, 3) {
            vec![Collateral {
                kind: CollateralKind::Workload,
                subject: "Deployment orders/orders".into(),
                namespace: Some("orders".into()),
                what: "0/2 Ready".into(),
                labels: Default::default(),
                owner: Some("orders-team".into()),
                first_seen: started + Duration::seconds(20),
                until: None,
                for_s: 4.0,
                halts: false,
            }]
        } else {
            Vec::new()
        };
        let refuted = (w + t) % 5 == 0;
        let record = record(t, started, 60 - w + t, refuted, collateral);
        let people = People {
            host: Some(format!("host-t{t}")),
            participants: vec![format!("owner-t{t}")],
            confidence_before: Some(2),
        };
        let mut r = finish::report(exercise, scenario, environment.clone(), people, record);
        assert_eq!(r.outcome == Outcome::Refuted, refuted, "{r:#?}");
        let annotated = started + Duration::hours(2);
        let annotate = |r: &mut Report, a: Annotation| a.apply(r).expect("annotation");
        annotate(
            &mut r,
            Annotation {
                confidence_after: Some(3),
                learned: if refuted && t % 2 == 0 {
                    vec![format!("lesson {w}-{t}")]
                } else {
                    Vec::new()
                },
                at: Some(annotated),
                ..Annotation::default()
            },
        );
        let follow_up = |text: &str, due: Option<&str>, proven_by: Option<&str>| Annotation {
            follow_ups: vec![text.into()],
            owner: Some(format!("owner-t{t}")),
            due: due.map(date),
            ticket: Some(format!("https://tracker.example.com/T{t}")),
            proven_by: proven_by.map(Into::into),
            at: Some(annotated),
            ..Annotation::default()
        };
        match (w, t) {
            (20, 0) => {
                annotate(&mut r, follow_up("add a readiness probe", Some("2026-11-20"), None));
                let closed = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).single().expect("date");
                annotate(
                    &mut r,
                    Annotation {
                        done: vec![1],
                        at: Some(closed),
                        ..Annotation::default()
                    },
                );
            }
            (24, 1) => annotate(
                &mut r,
                follow_up("retry the payment call", Some("2026-12-01"), Some("scenario-t1")),
            ),
            (20, 2..=4) => annotate(&mut r, follow_up("raise the replica count", Some("2026-11-20"), None)),
            (20, 5) => annotate(&mut r, follow_up("page the right team", Some("2026-12-15"), None)),
            (25, 3) => annotate(&mut r, follow_up("alert on orders", None, None)),
            _ => {}
        }
        Source {
            at: format!("reports/{}.json", r.exercise),
            report: (&r).into(),
        }
    };
    let scenarios: Vec<Scenario> = (0..6).map(scenario).collect();
    for w in 0..26 {
        for t in 0..6 {
            sources.push(report_of(w, t, &scenarios[t as usize], format!("ex-{w}-{t}")));
        }
    }
    let mut legacy = scenarios[5].clone();
    legacy.spec.target.name = Some("svc-t5-legacy".into());
    sources.push(report_of(0, 5, &legacy, "ex-legacy".into()));
    sources
}

fn org() -> Org {
    serde_yaml::from_str(
        "org: Shop
teams: {t0: checkout, t1: checkout, t2: fulfilment, t3: fulfilment, t4: platform, t5: platform}",
    )
    .expect("org")
}

fn ask(view: View) -> Ask {
    Ask {
        since: week(25) - Duration::hours(10),
        until: week(26) - Duration::hours(10),
        view,
        org: org(),
        stale: Duration::days(90),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_review_gives_the_hand_computed_figures_in_each_view_and_format() {
    let sources = history();
    assert!(sources.len() >= 150);
    let team = review::review(&sources, &ask(View::Team));
    // The week of 2026-11-23: six exercises; t0 ((25 + 0) % 5 == 0) and t5 refuted.
    assert_eq!(team.ran.len(), 6);
    assert_eq!(team.total.exercises, 6);
    assert_eq!(team.total.confirmed, 4);
    let lessons: Vec<(&str, usize)> = team
        .learned
        .iter()
        .map(|l| (l.scenario.as_str(), l.learned.len()))
        .collect();
    assert_eq!(lessons, [("scenario-t0", 1), ("scenario-t5", 0)]);
    // Follow-ups as of 2026-11-30: overdue first (t2, t3, t4), then open (t3's new, t5),
    // verified (t1, by its week-25 run), done (t0).
    let standings: Vec<(Standing, &str)> = team
        .follow_ups
        .iter()
        .map(|f| (f.standing, f.owner.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        standings,
        [
            (Standing::Overdue, "owner-t2"),
            (Standing::Overdue, "owner-t3"),
            (Standing::Overdue, "owner-t4"),
            (Standing::Open, "owner-t5"),
            (Standing::Open, "owner-t3"),
            (Standing::Verified, "owner-t1"),
            (Standing::Done, "owner-t0"),
        ]
    );
    let verified = team
        .follow_ups
        .iter()
        .find(|f| f.standing == Standing::Verified)
        .expect("verified");
    assert_eq!(verified.verified_by.as_deref(), Some("ex-25-1"));
    assert_eq!((team.follow_ups_opened, team.follow_ups_closed), (1, 1));
    // The success metrics.
    let s = &team.success;
    assert_eq!(
        (s.confidence_before, s.confidence_after, s.confidence_pairs),
        (Some(2.0), Some(3.0), 6)
    );
    assert_eq!(s.hypotheses_taught, 1);
    assert_eq!(s.follow_ups_verified, 1);
    assert_eq!(s.detections, 6);
    // Detect 35..40 s → 37.5; the week before 36..41 → 38.5: a second faster.
    assert_eq!(s.median_time_to_detect_s, Some(37.5));
    assert_eq!(team.total.time_to_detect_change_s, Some(-1.0));
    assert_eq!(team.total.exercises_by_period, vec![6; 12]);
    // Impact, and coverage with the stale legacy target.
    assert_eq!(team.impact.len(), 1);
    assert_eq!(team.impact[0].owner.as_deref(), Some("orders-team"));
    assert_eq!(team.total.with_collateral, 1);
    let stale: Vec<&str> = team
        .coverage
        .iter()
        .filter(|c| c.stale)
        .map(|c| c.target.as_str())
        .collect();
    assert_eq!(stale, ["Deployment shop/svc-t5-legacy"]);
    let t4 = team.coverage.iter().find(|c| c.team == "t4").expect("t4");
    assert_eq!(t4.fault_classes, ["network"]);
    // Groups roll the teams up: fulfilment has two of the three overdue follow-ups.
    let group = |name: &str| team.groups.iter().find(|g| g.name == name).expect("group").clone();
    assert_eq!(group("fulfilment").follow_ups_overdue, 2);
    assert_eq!(group("platform").follow_ups_overdue, 1);
    assert_eq!(group("checkout").follow_ups_verified, 1);
    assert_eq!(group("checkout").exercises, 2);

    // The three views, in Markdown.
    let md = review::markdown(&team);
    assert!(md.starts_with("# Weekly review — Shop (team view)"), "{md}");
    for needle in [
        "## What ran",
        "| 2026-11-23 | t0 | scenario-t0 | REFUTED | reports/ex-25-0.json |",
        "## What we learned",
        "lesson 25-0",
        "no lesson written down yet",
        "## Unanticipated impact",
        "Deployment orders/orders 0/2 Ready (owner orders-team)",
        "| OVERDUE | raise the replica count | owner-t2 | 2026-11-20 | https://tracker.example.com/T2 |  |",
        "| VERIFIED | retry the payment call | owner-t1 | 2026-12-01 | https://tracker.example.com/T1 | ex-25-1 |",
        "## Coverage",
        "| t5 | Deployment shop/svc-t5-legacy |",
    ] {
        assert!(md.contains(needle), "{needle} in:\n{md}");
    }
    let lead = review::markdown(&review::review(&sources, &ask(View::Lead)));
    assert!(lead.contains("### Group fulfilment"), "{lead}");
    assert!(
        !lead.contains("| 2026-11-23 | t0 |"),
        "a lead sees teams, not each exercise:\n{lead}"
    );
    assert!(lead.contains("| t2 | 1 |"), "{lead}");
    let org_view = review::markdown(&review::review(&sources, &ask(View::Org)));
    assert!(org_view.contains("### Groups"), "{org_view}");
    assert!(org_view.contains("| Shop | 6 | 4 |"), "{org_view}");
    assert!(
        !org_view.contains("## What we learned") && !org_view.contains("## Coverage"),
        "{org_view}"
    );
    assert!(
        !org_view.contains("| OPEN |"),
        "the org view lists overdue follow-ups only:\n{org_view}"
    );

    // JSON carries everything; HTML is one page with a chart per figures table.
    let json: Value = serde_json::to_value(&team).expect("json");
    assert_eq!(json["followUps"][0]["standing"], "overdue");
    assert_eq!(json["success"]["hypothesesTaught"], 1);
    let html = review::html(&team);
    // Every view in every format, as a lead would get it, kept as golden files.
    for view in [View::Team, View::Lead, View::Org] {
        let rendered = review::review(&sources, &ask(view));
        let name = format!("review-{view:?}").to_lowercase();
        common::golden(&format!("{name}.md"), &review::markdown(&rendered));
        common::golden(&format!("{name}.html"), &review::html(&rendered));
        let json = serde_json::to_string_pretty(&rendered).expect("json") + "\n";
        common::golden(&format!("{name}.json"), &json);
    }
    assert!(html.contains("<svg class=\"review-chart\""), "{html}");
    assert!(
        html.contains("class=\"axis x\"") && html.contains("class=\"legend\""),
        "{html}"
    );
    assert!(!html.contains("<script"), "self-contained");
}

/// The lead's page, as a browser shows it: its charts are in the DOM, and it asks for
/// nothing (no script, font or image from anywhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_chromium), ignore = "needs chromium (apt-get install chromium)")]
async fn the_review_page_renders_in_headless_chromium_and_asks_for_nothing() {
    let chromium = common::program(
        Some("DISASTERPIECE_CHROMIUM"),
        &["chromium"],
        "apt-get install chromium, or set DISASTERPIECE_CHROMIUM",
    );
    let html = review::html(&review::review(&history(), &ask(View::Lead)));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("review-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let page = dir.join("review.html");
    std::fs::write(&page, &html).expect("write");
    let (output, requests) = common::chromium(
        &chromium,
        &dir.join("profile"),
        &["--dump-dom".into()],
        &format!("file://{}", page.display()),
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains("<svg class=\"review-chart\""), "{dom}");
    assert!(dom.contains("<polyline") && dom.contains("class=\"axis x\""), "{dom}");
    assert_eq!(
        common::asked_by_page(&requests),
        Vec::<String>::new(),
        "the page asked for something"
    );
}

/// `annotate` records a follow-up's owner, due date, ticket and the scenario that proves it,
/// and refuses a ticket that is no web address.
#[test]
fn annotate_takes_a_due_date_a_ticket_and_the_scenario_that_proves_it() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("review-annotate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("report.json");
    std::fs::copy("tests/golden/report.json", &file).expect("copy");
    let bin = env!("CARGO_BIN_EXE_disasterpiece");
    let ok = Command::new(bin)
        .arg("annotate")
        .arg(&file)
        .args([
            "--follow-up",
            "retry the payment call",
            "--owner",
            "payments",
            "--due",
            "2026-12-01",
            "--ticket",
            "https://tracker.example.com/PAY-7",
            "--proven-by",
            "checkout-pod-loss",
        ])
        .output()
        .expect("annotate");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    let added = report["followUps"]
        .as_array()
        .and_then(|f| f.last())
        .expect("a follow-up");
    assert_eq!(added["due"], "2026-12-01");
    assert_eq!(added["ticket"], "https://tracker.example.com/PAY-7");
    assert_eq!(added["provenBy"], "checkout-pod-loss");
    assert!(added["openedAt"].is_string());
    let refused = Command::new(bin)
        .arg("annotate")
        .arg(&file)
        .args(["--follow-up", "x", "--ticket", "javascript:alert(1)"])
        .output()
        .expect("annotate");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is not an http or https address"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// `review --from-cluster --context a --context b` merges the reports two clusters keep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_from_two_clusters_merges_their_reports() {
    use disasterpiece::controller::crd::{Exercise, ExerciseSpec};
    let real = common::pod_loss_report("ex-real").await;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("review-clusters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut merged = serde_yaml::Mapping::new();
    let mut sims = Vec::new();
    for (context, team) in [("east", "payments"), ("west", "fulfilment")] {
        let (sim, client) = common::start(common::fast_shop()).await;
        // A report the controller would keep there, of this cluster's team, started an hour ago.
        let mut report = real.clone();
        report.exercise = format!("{context}-1");
        report.scenario.metadata.labels = [("team".to_owned(), team.to_owned())].into();
        let exercise = Exercise::new(&report.exercise, ExerciseSpec::default());
        disasterpiece::controller::reports::store(&client, "shop", &format!("report-{context}-1"), &exercise, &report)
            .await
            .expect("store the report");
        // Its kubeconfig, renamed to `context`, into one file of two contexts.
        let text = std::fs::read_to_string(sim.kubeconfig_path()).expect("kubeconfig");
        let renamed = text.replace(disasterpiece_sim::CONTEXT, context);
        let config: serde_yaml::Mapping = serde_yaml::from_str(&renamed).expect("yaml");
        for key in ["clusters", "contexts", "users"] {
            let list = merged
                .entry(key.into())
                .or_insert_with(|| serde_yaml::Value::Sequence(Vec::new()));
            if let (Some(all), Some(more)) = (list.as_sequence_mut(), config.get(key).and_then(|v| v.as_sequence())) {
                all.extend(more.iter().cloned());
            }
        }
        merged.insert("current-context".into(), context.into());
        sims.push(sim);
    }
    merged.insert("apiVersion".into(), "v1".into());
    merged.insert("kind".into(), "Config".into());
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, serde_yaml::to_string(&merged).expect("yaml")).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args([
            "review",
            "--from-cluster",
            "--context",
            "east",
            "--context",
            "west",
            "--format",
            "json",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env_remove("KUBECONFIG")
        .output()
        .expect("review");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let review: Value = serde_json::from_slice(&output.stdout).expect("json");
    let ran: Vec<(&str, &str)> = review["ran"]
        .as_array()
        .expect("ran")
        .iter()
        .map(|r| {
            (
                r["exercise"].as_str().unwrap_or_default(),
                r["report"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        ran,
        [
            ("east-1", "report of east-1 in east"),
            ("west-1", "report of west-1 in west")
        ]
    );
    let teams: Vec<&str> = review["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(teams, ["fulfilment", "payments"]);
    assert_eq!(review["total"]["exercises"], 2);
    // Coverage: checkout was exercised; the shop's other workloads never were.
    let coverage = review["coverage"].as_array().expect("coverage");
    let last = |target: &str| {
        coverage
            .iter()
            .find(|c| c["target"] == target)
            .map(|c| c["lastExercised"].clone())
            .unwrap_or_else(|| panic!("{target} in {coverage:?}"))
    };
    assert!(last("Deployment shop/checkout").is_string());
    assert!(last("Deployment shop/frontend").is_null());
    assert!(last("StatefulSet shop/orders-db").is_null());
    let frontends = coverage
        .iter()
        .filter(|c| c["target"] == "Deployment shop/frontend")
        .count();
    assert_eq!(frontends, 1, "listed once for both clusters");
}

/// A report folder may hold anything: a link to /dev/zero or a FIFO is named and skipped, and
/// the review ends (neither is read without end, nor waited on).
#[test]
fn review_skips_what_is_not_a_regular_report_file_and_says_so() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("review-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy("tests/golden/report.json", dir.join("real.json")).expect("copy");
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.json")).expect("link");
    let fifo = Command::new("mkfifo")
        .arg(dir.join("fifo.json"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    let output = Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args([
            "review",
            "--since",
            "2020-01-01",
            "--until",
            "2030-01-01",
            "--format",
            "json",
        ])
        .arg(&dir)
        .output()
        .expect("review");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in ["zero.json", "fifo.json"] {
        assert!(
            stderr.contains(name) && stderr.contains("not a regular file"),
            "{name} in:\n{stderr}"
        );
    }
    let review: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(review["total"]["exercises"], 1, "the real report is read");
}

/// The controller posts the weekly review at its cron's tick, once; a replica that takes over
/// reads which tick was posted last and posts the one it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_posts_the_weekly_review_to_its_webhook_once_per_tick() {
    use chrono::{DurationRound, TimeDelta};
    use disasterpiece::clock::ManualClock;
    use disasterpiece::controller::crd::{Exercise, ExerciseSpec};
    use disasterpiece::controller::weekly::{POSTED_FOR, RECORD, Schedule};
    use k8s_openapi::api::core::v1::ConfigMap;
    let mut report = common::pod_loss_report("weekly-1").await;
    report.scenario.metadata.labels = [("team".to_owned(), "payments".to_owned())].into();
    let (sim, client) = common::start(common::fast_shop()).await;
    common::install_crds(&client).await;
    let exercise = Exercise::new(&report.exercise, ExerciseSpec::default());
    disasterpiece::controller::reports::store(&client, "shop", "report-weekly-1", &exercise, &report)
        .await
        .expect("store the report");
    // Hourly, over the last week: the tick is the hour after the run.
    let tick = report.started_at.duration_trunc(TimeDelta::hours(1)).expect("hour") + TimeDelta::hours(1);
    let clock = ManualClock::new(tick - TimeDelta::seconds(30));
    let (url, got) = common::webhook().await;
    let options = || disasterpiece::controller::Options {
        clock: clock.clock(),
        review: Some(Schedule {
            cron: "0 * * * *".into(),
            time_zone: "UTC".into(),
            period: TimeDelta::days(7),
            view: View::Team,
            org: Org::default(),
            stale: TimeDelta::days(90),
            webhook: url.clone(),
        }),
        ..common::controller_options(&sim)
    };
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let first = tokio::spawn(disasterpiece::controller::control(
        client.clone(),
        options(),
        stop.clone(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(got.lock().expect("lock").is_empty(), "nothing before the tick");
    clock.advance(TimeDelta::seconds(40));
    common::eventually("the review is posted", || async {
        !got.lock().expect("lock").is_empty()
    })
    .await;
    let posted = got.lock().expect("lock")[0].clone();
    assert_eq!(posted["event"], "weeklyReview");
    assert_eq!(posted["until"], tick.to_rfc3339());
    let text = posted["text"].as_str().expect("text");
    assert!(text.starts_with("# Weekly review"), "{text}");
    assert!(
        text.contains("| payments | demo-checkout-pod-loss |") && text.contains("## Coverage"),
        "{text}"
    );
    // Recorded, and not posted again by this replica, nor by one that takes over.
    let records = kube::Api::<ConfigMap>::namespaced(client.clone(), "default");
    common::eventually("the post is recorded", || async {
        records
            .get_opt(RECORD)
            .await
            .ok()
            .flatten()
            .is_some_and(|r| r.metadata.annotations.unwrap_or_default().get(POSTED_FOR) == Some(&tick.to_rfc3339()))
    })
    .await;
    clock.advance(TimeDelta::seconds(20));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(got.lock().expect("lock").len(), 1, "posted once per tick");
    // The replica stops; the next one takes over after the next tick, reads what was posted
    // last and posts the tick it missed.
    first.abort();
    clock.advance(TimeDelta::hours(1));
    let _second = tokio::spawn(disasterpiece::controller::control(client.clone(), options(), stop));
    common::eventually("the missed review is posted", || async {
        got.lock().expect("lock").len() == 2
    })
    .await;
    let next = got.lock().expect("lock")[1].clone();
    assert_eq!(next["until"], (tick + TimeDelta::hours(1)).to_rfc3339());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(got.lock().expect("lock").len(), 2, "posted once per tick");
}

/// A webhook that is down when the tick comes gets the review once it answers again, within
/// the hour: the post is tried again, not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_the_webhook_refused_is_posted_once_it_answers_again() {
    use chrono::TimeDelta;
    use disasterpiece::clock::ManualClock;
    use disasterpiece::controller::weekly::Schedule;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Answers 503 to its first request, 200 after; counts the requests.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let asked = std::sync::Arc::new(AtomicUsize::new(0));
    tokio::spawn({
        let asked = asked.clone();
        async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 1 << 20];
                let _ = stream.read(&mut buf).await;
                let status = match asked.fetch_add(1, Ordering::SeqCst) {
                    0 => "503 Service Unavailable",
                    _ => "200 OK",
                };
                let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        }
    });
    let (sim, client) = common::start(common::fast_shop()).await;
    common::install_crds(&client).await;
    let clock = ManualClock::new(week(26) - TimeDelta::seconds(30));
    let options = disasterpiece::controller::Options {
        clock: clock.clock(),
        review: Some(Schedule {
            cron: "0 * * * *".into(),
            time_zone: "UTC".into(),
            period: TimeDelta::days(7),
            view: View::Org,
            org: Org::default(),
            stale: TimeDelta::days(90),
            webhook: url,
        }),
        ..common::controller_options(&sim)
    };
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let _controller = tokio::spawn(disasterpiece::controller::control(client.clone(), options, stop));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    clock.advance(TimeDelta::seconds(40));
    // Refused once; tried again 30 polls (3 s here) later, and delivered.
    common::eventually("the review is posted after the webhook refused it", || async {
        asked.load(Ordering::SeqCst) == 2
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(asked.load(Ordering::SeqCst), 2, "delivered once, then not again");
}
