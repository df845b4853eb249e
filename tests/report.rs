//! Reports as people and tools read them: golden Markdown and JUnit of a fixed report, JUnit
//! checked against the common XML shape, annotations that survive re-rendering and
//! concurrent writers, trends over 200 reports, and the HTML in a real headless Chromium.
//!
//! Golden files: `UPDATE_GOLDEN=1 cargo test --test report` rewrites them; review the diff.
//! xmllint and Chromium are found on PATH (`DISASTERPIECE_CHROMIUM` names another Chromium);
//! `.ci/run` installs them. Without them those tests say so and pass, except in CI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{TimeZone, Utc};
use disasterpiece::report::store;
use serde_json::{Value, json};

mod common;

const FIXTURE: &str = "tests/golden/report.json";

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args(args)
        .output()
        .expect("run disasterpiece")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

use common::golden;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn markdown_of_a_fixed_report_matches_the_golden_file() {
    let markdown = stdout(&cli(&["report", FIXTURE]));
    golden("report.md", &markdown);
    // The summary a lead reads first: verdict, hypothesis, the times, impact, follow-ups.
    let summary: String = markdown.lines().take(16).collect::<Vec<_>>().join("\n");
    for needle in [
        "REFUTED",
        "Hypothesis:",
        "Time to detect | 3.1s",
        "Time to recover",
        "Impact |",
        "Follow-ups | 1 open, 1 done",
    ] {
        assert!(summary.contains(needle), "{needle} in the summary:\n{summary}");
    }
}

#[test]
fn junit_of_a_fixed_report_matches_the_golden_file_and_the_junit_shape() {
    let xml = stdout(&cli(&["report", FIXTURE, "--format", "junit"]));
    golden("report.junit.xml", &xml);
    assert!(xml.contains("<failure message=\"CheckoutDegraded is not firing\" type=\"refuted\">"));
    assert!(xml.contains("<skipped message=\"inconclusive: "));
}

#[test]
#[cfg_attr(not(has_xmllint), ignore = "needs xmllint (apt-get install libxml2-utils)")]
fn junit_of_a_fixed_report_has_the_shape_ci_tools_read() {
    let xml = stdout(&cli(&["report", FIXTURE, "--format", "junit"]));
    let xmllint = common::program(None, &["xmllint"], "apt-get install libxml2-utils");
    let dir = scratch("junit");
    let file = dir.join("report.xml");
    std::fs::write(&file, &xml).expect("write");
    let checked = Command::new(&xmllint)
        .args(["--noout", "--schema", "tests/golden/junit.xsd"])
        .arg(&file)
        .output()
        .expect("xmllint");
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    // A broken document does not pass the same check: the check can fail.
    std::fs::write(&file, xml.replace(" classname=", " class=")).expect("write");
    let broken = Command::new(&xmllint)
        .args(["--noout", "--schema", "tests/golden/junit.xsd"])
        .arg(&file)
        .output()
        .expect("xmllint");
    assert!(!broken.status.success());
}

#[test]
fn annotations_survive_re_rendering_and_concurrent_writers() {
    let dir = scratch("annotate");
    let file = dir.join("report.json");
    std::fs::copy(FIXTURE, &file).expect("copy");
    let path = file.to_str().expect("utf-8");
    stdout(&cli(&[
        "annotate",
        path,
        "--confidence-after",
        "4",
        "--learned",
        "The alert threshold was wrong.",
        "--follow-up",
        "Page on 2 ready pods",
        "--owner",
        "payments",
        "--done",
        "1",
    ]));
    // Twelve annotators at once, each adding one follow-up: none is lost.
    let writers: Vec<_> = (0..12)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
                .args(["annotate", path, "--follow-up", &format!("concurrent follow-up {i}")])
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut w in writers {
        assert!(w.wait().expect("wait").success());
    }
    let report = store::load(&file).expect("still a report");
    assert_eq!(report.follow_ups.len(), 2 + 1 + 12);
    for i in 0..12 {
        let text = format!("concurrent follow-up {i}");
        assert!(report.follow_ups.iter().any(|f| f.text == text), "{text} lost");
    }
    // Re-rendering reads the annotations from the report; rendering twice gives the same.
    let once = stdout(&cli(&["report", path]));
    let twice = stdout(&cli(&["report", path]));
    assert_eq!(once, twice);
    assert!(once.contains("| Confidence | 3/5 before → 4/5 after |"), "{once}");
    assert!(once.contains("- [x] Lower the CheckoutDegraded threshold"), "{once}");
    assert!(once.contains("- [ ] Page on 2 ready pods — payments"), "{once}");
    assert!(once.contains("- The alert threshold was wrong."), "{once}");
    let html = stdout(&cli(&["report", path, "--format", "html"]));
    assert!(html.contains("concurrent follow-up 11"));
    // A wrong index is refused and changes nothing.
    let before = std::fs::read_to_string(&file).expect("read");
    let refused = cli(&["annotate", path, "--done", "99"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("there is no follow-up 99"));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), before);
}

#[test]
fn annotate_changes_the_report_a_link_names_keeps_mode_and_unknown_fields_and_refuses_read_only() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = scratch("annotate-safety");
    // A report with a field this build does not know, at the top and nested, mode 0640.
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("fixture")).expect("JSON");
    value["fromTheFuture"] = json!({"kept": true});
    value["environment"]["region"] = json!("eu-west-1");
    let real = dir.join("real.json");
    std::fs::write(&real, value.to_string()).expect("write");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let link = dir.join("link.json");
    symlink(&real, &link).expect("symlink");

    stdout(&cli(&[
        "annotate",
        link.to_str().expect("utf-8"),
        "--learned",
        "through a link",
    ]));
    // The link is still a link, and the report it names holds the annotation.
    assert!(std::fs::symlink_metadata(&link).expect("link").file_type().is_symlink());
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&real).expect("read")).expect("JSON");
    assert!(written["learned"].to_string().contains("through a link"), "{written}");
    assert_eq!(written["fromTheFuture"], json!({"kept": true}));
    assert_eq!(written["environment"]["region"], json!("eu-west-1"));
    let mode = std::fs::metadata(&real).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the mode changed to {mode:o}");
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");

    // A read-only report is refused with a way out, and stays as it was.
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let before = std::fs::read_to_string(&real).expect("read");
    let refused = cli(&["annotate", real.to_str().expect("utf-8"), "--learned", "no"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("read-only") && stderr.contains("chmod u+w"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&real).expect("read"), before);

    // A link planted where the lock file goes is refused; its target is untouched.
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").expect("write");
    let lock = dir.join("real.json.lock");
    let _ = std::fs::remove_file(&lock);
    symlink(&victim, &lock).expect("plant");
    let refused = cli(&["annotate", real.to_str().expect("utf-8"), "--learned", "no"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("symbolic link"));
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "precious");
    assert_eq!(std::fs::read_to_string(&real).expect("read"), before);
}

#[test]
fn hostile_report_text_stays_text_in_markdown_junit_and_the_terminal() {
    let dir = scratch("hostile");
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("fixture")).expect("JSON");
    value["scenario"]["metadata"]["name"] = json!("pwn\u{1b}[2J\u{1b}]0;owned\u{7}");
    value["scenario"]["spec"]["hypothesis"] = json!("<img src=x onerror=alert(1)>\n# injected heading");
    value["scenario"]["spec"]["runbook"] = json!("javascript:alert(document.cookie)");
    value["learned"] = json!(["![tracker](https://evil.example/p.png) [click](javascript:alert(1))"]);
    value["expectations"][2]["observed"] = json!("bad \u{FFFE}\u{FFFF} chars");
    let file = dir.join("hostile.json");
    std::fs::write(&file, value.to_string()).expect("write");
    let path = file.to_str().expect("utf-8");

    let md = stdout(&cli(&["report", path]));
    assert!(!md.contains('\u{1b}') && !md.contains('\u{7}'), "{md:?}");
    assert!(md.contains("\\<img src=x onerror=alert(1)> # injected heading"), "{md}");
    // An escaped `\]` closes no link text.
    assert!(
        !md.replace("\\]", "").contains("](javascript:"),
        "a javascript: link: {md}"
    );
    assert!(md.contains("runbook: javascript:alert(document.cookie)"), "{md}");
    assert!(md.contains("\\!\\[tracker\\](https://evil.example/p.png)"), "{md}");
    assert!(!md.lines().any(|l| l.starts_with("# injected")), "{md}");

    let junit = stdout(&cli(&["report", path, "--format", "junit"]));
    assert!(!junit.contains('\u{FFFE}') && !junit.contains('\u{FFFF}') && !junit.contains('\u{1b}'));
    assert!(junit.contains("bad    chars"), "{junit}");
}

/// The 200 reports of the trend test. Report `i` belongs to team `i % 5` and month
/// `(i / 5) % 12` of 2026, and is the `j = i / 60`-th of its (team, month) cell: January to
/// April hold four per team, May to December three. Within a cell: j 0 and 2 confirm, 1 is
/// refuted, 3 aborted; time to detect is 30 - month + team + 2j seconds; one follow-up each,
/// done for j 0; confidence 2 before and 3 + j % 2 after; availability 1 - j/100. j 0 and 1
/// watched beyond their targets, and j 1 hit `orders` there; j 2 and 3 are reports from
/// before the watch (no `observedBlastRadius`).
fn generated(i: usize) -> Value {
    let mut report: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("fixture")).expect("JSON");
    let (team, month, j) = (i % 5, (i / 5) % 12, i / 60);
    let started = Utc
        .with_ymd_and_hms(2026, month as u32 + 1, 1 + j as u32, 9, 0, 0)
        .single()
        .expect("date");
    report["exercise"] = json!(format!("ex-{i}"));
    report["startedAt"] = json!(started);
    report["endedAt"] = json!(started + chrono::Duration::minutes(5));
    report["scenario"]["metadata"]["labels"] = json!({"team": format!("team-{team}")});
    report["outcome"] = json!(["confirmed", "refuted", "confirmed", "aborted"][j]);
    report["metrics"]["timeToDetectS"] = json!((30 - month + team + 2 * j) as f64);
    report["metrics"]["availability"] = json!(1.0 - j as f64 / 100.0);
    report["followUps"] = json!([{"text": "do it", "status": if j == 0 { "done" } else { "open" }}]);
    report["confidenceBefore"] = json!(2);
    report["confidenceAfter"] = json!(3 + j % 2);
    let collateral = json!([{"kind": "workload", "subject": "Deployment orders/orders", "namespace": "orders",
        "what": "0/2 Ready", "owner": "orders-team", "firstSeen": started, "forS": 2.5}]);
    match j {
        0 | 1 => {
            report["observedBlastRadius"] = json!({"watched": {"namespaces": ["shop"], "nodes": true},
                "declared": {"hit": [], "spared": []}, "collateral": if j == 1 { collateral } else { json!([]) }});
        }
        _ => {
            report.as_object_mut().expect("object").remove("observedBlastRadius");
        }
    }
    report
}

fn month<'a>(group: &'a Value, period: &str) -> &'a Value {
    group["months"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["period"] == period))
        .unwrap_or_else(|| panic!("no {period} in {group}"))
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn trend_over_200_reports_gives_the_hand_computed_figures() {
    let dir = scratch("trend");
    for i in 0..200 {
        let sub = dir.join(format!("team-{}", i % 5));
        std::fs::create_dir_all(&sub).expect("dir");
        std::fs::write(sub.join(format!("ex-{i}.json")), generated(i).to_string()).expect("write");
    }
    std::fs::write(dir.join("broken.json"), "{\"reportVersion\": 1, \"exercise\": ").expect("write");
    let mut newer = generated(0);
    newer["reportVersion"] = json!(disasterpiece::report::model::REPORT_VERSION + 1);
    std::fs::write(dir.join("future.json"), newer.to_string()).expect("write");
    let d = dir.to_str().expect("utf-8");

    let output = cli(&["trend", d, "--group-by", "team", "--format", "json"]);
    let trend: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(trend["reports"], 200);
    assert_eq!(trend["groups"].as_array().map(Vec::len), Some(5));
    let skipped = trend["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    let reason = |file: &str| {
        skipped
            .iter()
            .find(|s| s["file"].as_str().is_some_and(|f| f.ends_with(file)))
            .map(|s| s["reason"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    assert!(reason("broken.json").starts_with("not a report: invalid JSON"));
    let version = disasterpiece::report::model::REPORT_VERSION;
    assert!(reason("future.json").contains(&format!(
        "newer Disasterpiece (reportVersion {}; this one reads up to {version})",
        version + 1
    )));
    assert!(String::from_utf8_lossy(&output.stderr).contains("future.json"));

    let team2 = &trend["groups"][2];
    assert_eq!(team2["name"], "team-2");
    // January: four reports, detect 32, 34, 36, 38 s.
    let january = month(team2, "2026-01");
    assert_eq!(january["exercises"], 4);
    assert_eq!(january["confirmed"], 2);
    assert!(close(&january["confirmedRate"], 0.5));
    assert_eq!(january["aborted"], 1);
    assert!(close(&january["medianTimeToDetectS"], 35.0));
    assert!(january["timeToDetectChangeS"].is_null(), "no month before January");
    assert!(close(&january["availability"], (1.0 + 0.99 + 0.98 + 0.97) / 4.0));
    assert_eq!(january["followUpsOpened"], 4);
    assert_eq!(january["followUpsDone"], 1);
    assert!(close(&january["meanConfidenceBefore"], 2.0));
    assert!(close(&january["meanConfidenceAfter"], 3.5));
    // Two of the four watched beyond their targets; one of them hit something there.
    assert_eq!(january["watched"], 2);
    assert_eq!(january["withCollateral"], 1);
    // February: 31, 33, 35, 37 → 34, one second faster than January.
    let february = month(team2, "2026-02");
    assert!(close(&february["medianTimeToDetectS"], 34.0));
    assert!(close(&february["timeToDetectChangeS"], -1.0));
    // June: three reports (j 0..2), detect 27, 29, 31 → 29; two confirmed of three.
    let june = month(team2, "2026-06");
    assert_eq!(june["exercises"], 3);
    assert_eq!(june["confirmed"], 2);
    assert!(close(&june["confirmedRate"], 2.0 / 3.0));
    assert_eq!(june["aborted"], 0);
    assert!(close(&june["medianTimeToDetectS"], 29.0));
    assert!(close(&june["meanConfidenceAfter"], 10.0 / 3.0));
    // The whole year: 4 months of 4 and 8 of 3 = 40 exercises, 24 confirmed, 4 aborted.
    let total = &team2["total"];
    assert_eq!(total["period"], "all");
    assert_eq!(total["exercises"], 40);
    assert_eq!(total["confirmed"], 24);
    assert!(close(&total["confirmedRate"], 0.6));
    assert_eq!(total["aborted"], 4);
    assert_eq!(total["followUpsOpened"], 40);
    assert_eq!(total["followUpsDone"], 12);

    // --since keeps July to December: six months of three.
    let since: Value = serde_json::from_str(&stdout(&cli(&[
        "trend",
        d,
        "--group-by",
        "team",
        "--format",
        "json",
        "--since",
        "2026-07-01",
    ])))
    .expect("JSON");
    assert_eq!(since["reports"], 90);
    assert_eq!(since["groups"][0]["total"]["exercises"], 18);
    assert_eq!(since["groups"][0]["months"][0]["period"], "2026-07");

    // Both renderings, with every group.
    let markdown = stdout(&cli(&["trend", d, "--group-by", "team"]));
    assert!(markdown.starts_with("# Game day trends by team"));
    assert!(
        markdown.contains("| 2026-02 | 4 | 2 (50.0%) | 1 | 34.0s (↓ 1.0s) |"),
        "{markdown}"
    );
    assert!(markdown.contains("## Skipped files"));
    let html = stdout(&cli(&["trend", d, "--group-by", "team", "--format", "html"]));
    for team in 0..5 {
        assert!(html.contains(&format!("<svg class=\"trend\" data-group=\"team-{team}\"")));
    }
    let by_scenario: Value = serde_json::from_str(&stdout(&cli(&["trend", d, "--format", "json"]))).expect("JSON");
    assert_eq!(by_scenario["groups"][0]["name"], "checkout-pod-loss");
    assert_eq!(by_scenario["groups"][0]["total"]["exercises"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_chromium), ignore = "needs chromium (apt-get install chromium)")]
async fn the_html_report_renders_in_headless_chromium_and_asks_for_nothing() {
    let chromium = common::program(
        Some("DISASTERPIECE_CHROMIUM"),
        &["chromium"],
        "apt-get install chromium, or set DISASTERPIECE_CHROMIUM",
    );
    let mut report = common::pod_loss_report("ex-html").await;
    assert!(!report.expectations.is_empty());
    // What the watch beyond the targets would add had orders gone down with checkout.
    let observed = report
        .observed_blast_radius
        .as_mut()
        .expect("the run watched beyond its targets");
    observed.collateral.push(disasterpiece::report::model::Collateral {
        kind: disasterpiece::report::model::CollateralKind::Workload,
        subject: "Deployment orders/orders".into(),
        namespace: Some("orders".into()),
        what: "0/2 Ready".into(),
        labels: Default::default(),
        owner: Some("orders-team".into()),
        first_seen: report.started_at,
        until: None,
        for_s: 3.0,
        halts: false,
    });
    let dir = scratch("html");
    let json_file = dir.join("report.json");
    std::fs::write(&json_file, serde_json::to_string(&report).expect("JSON")).expect("write");
    let html_file = dir.join("report.html");
    stdout(&cli(&[
        "report",
        json_file.to_str().expect("utf-8"),
        "--format",
        "html",
        "--out",
        html_file.to_str().expect("utf-8"),
    ]));
    let html = std::fs::read_to_string(&html_file).expect("html");
    assert!(!html.contains("<script") && !html.contains("<link"), "self-contained");

    let screenshot = dir.join("report.png");
    let leaky = dir.join("leaky.html");
    std::fs::write(&leaky, "<!DOCTYPE html><img src=\"http://images.example.test/x.png\">").expect("write");
    let url = format!("file://{}", html_file.display());
    let profile = dir.join("profile");
    let chrome = |extra: &[String], url: &str| common::chromium(&chromium, &profile, extra, url);
    let asked_by_page = common::asked_by_page;
    // The check can fail: a page that loads an image from elsewhere is caught.
    let (_, requests) = chrome(&["--dump-dom".into()], &format!("file://{}", leaky.display()));
    assert!(
        asked_by_page(&requests)
            .iter()
            .any(|r| r.contains("images.example.test")),
        "the proxy sees a page's requests: {:?}",
        requests.lock().expect("lock")
    );

    let (dom, dom_requests) = chrome(&["--dump-dom".into()], &url);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(
        dom.contains("<svg id=\"timeline\""),
        "the timeline SVG is in the DOM:\n{dom}"
    );
    assert!(dom.contains("id=\"fault-window\""));
    // The observed blast radius: the watched scope, and the collateral with its owner.
    assert!(dom.contains("<h2>Observed blast radius</h2>"), "{dom}");
    assert!(dom.contains("<table id=\"collateral\">"), "{dom}");
    assert!(
        dom.contains("<td>Deployment orders/orders</td>") && dom.contains("<td>orders-team</td>"),
        "{dom}"
    );
    for e in &report.expectations {
        assert!(
            dom.contains(&format!("data-expectation=\"{}\"", e.name)),
            "a lane for {}",
            e.name
        );
        assert!(dom.contains(&format!("<td>{}</td>", e.name)), "a row for {}", e.name);
    }
    let (shot, shot_requests) = chrome(&[format!("--screenshot={}", screenshot.display())], &url);
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    // Nothing but the file itself was asked for.
    for requests in [dom_requests, shot_requests] {
        assert_eq!(
            asked_by_page(&requests),
            Vec::<String>::new(),
            "the report asked for something"
        );
    }
}
