//! The simulator against what a real Kubernetes v1.28.7 API server answered: the fixtures of
//! `../shared/k8s-conformance/setup.yaml` are created, then every request of `cases.jsonl` is
//! replayed and its answer compared as that folder's README says (status code, kind, Status
//! reason, message and causes, body pointers, watch events).
//!
//! The simulator does not answer every case like Kubernetes yet (issue 13). The cases it still
//! answers differently are listed, each with what is missing, in
//! `tests/conformance/known-differences.txt`. The test fails when any other case differs (a
//! regression) and when a listed case has come to pass (take it off the list), so the list
//! only shrinks, and the summary says how many cases pass.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use disasterpiece_sim::{Seed, Sim};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

mod common;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/k8s-conformance")
}

/// An answer: the status code and the body.
struct Answer {
    code: u16,
    body: Vec<u8>,
}

/// Sends one request as the cluster admin, or impersonating `as_user`.
async fn send(
    client: &kube::Client,
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    as_user: Option<&str>,
) -> Answer {
    let mut request = http::Request::builder().method(method).uri(path_and_query);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(user) = as_user {
        request = request.header("Impersonate-User", user);
    }
    let request = request.body(Body::from(body)).expect("a valid request");
    let response = client.send(request).await.expect("the simulator answers");
    let code = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    Answer { code, body }
}

async fn get_json(client: &kube::Client, path: &str) -> Value {
    let answer = send(client, "GET", path, &[], Vec::new(), None).await;
    serde_json::from_slice(&answer.body).unwrap_or(Value::Null)
}

/// Where objects of `kind` are created, in `namespace`.
fn collection(kind: &str, api_version: &str, namespace: &str) -> Option<String> {
    let (plural, namespaced) = match kind {
        "Namespace" => ("namespaces", false),
        "Node" => ("nodes", false),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        "Deployment" => ("deployments", true),
        "StatefulSet" => ("statefulsets", true),
        "Service" => ("services", true),
        "PodDisruptionBudget" => ("poddisruptionbudgets", true),
        "ConfigMap" => ("configmaps", true),
        "ServiceAccount" => ("serviceaccounts", true),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "Pod" => ("pods", true),
        "Widget" => ("widgets", true),
        _ => return None,
    };
    let prefix = if api_version == "v1" {
        "/api/v1".to_owned()
    } else {
        format!("/apis/{api_version}")
    };
    Some(if namespaced {
        format!("{prefix}/namespaces/{namespace}/{plural}")
    } else {
        format!("{prefix}/{plural}")
    })
}

/// Creates every object of setup.yaml, twice as its README says (the Widget needs its CRD
/// established first), with the requests `kubectl apply` sends to create; what the server
/// refuses is returned, as kubectl would print it.
async fn apply_setup(client: &kube::Client) -> Vec<String> {
    let text = std::fs::read_to_string(corpus().join("setup.yaml")).expect("read setup.yaml");
    let mut refused = BTreeMap::new();
    for _pass in 0..2 {
        for document in serde_yaml::Deserializer::from_str(&text) {
            let object: Value = match serde::Deserialize::deserialize(document) {
                Ok(Value::Null) => continue,
                Ok(v) => v,
                Err(e) => panic!("setup.yaml: {e}"),
            };
            let kind = object["kind"].as_str().unwrap_or_default();
            let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default");
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let Some(path) = collection(kind, api_version, namespace) else {
                panic!("setup.yaml has a {kind}, which this test does not know where to create");
            };
            let body = serde_json::to_vec(&object).expect("JSON");
            let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
            // As `kubectl apply` creates: a POST whose field manager is kubectl's.
            let path = format!("{path}?fieldManager=kubectl-client-side-apply");
            let answer = send(client, "POST", &path, &headers, body, None).await;
            let key = format!("{kind} {namespace}/{name}");
            if answer.code == 201 || answer.code == 409 {
                refused.remove(&key);
            } else {
                refused.insert(
                    key,
                    format!("{}: {}", answer.code, String::from_utf8_lossy(&answer.body)),
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    refused.into_iter().map(|(k, v)| format!("{k}: {v}")).collect()
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Replaces `{pod:…}`, `{rv:…}`, `{continue:…}` and `{repeat:C:N}` in `text`.
async fn resolve(client: &kube::Client, text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { break };
        let inner = &rest[start + 1..start + len];
        let replacement = if let Some(selector) = inner.strip_prefix("pod:") {
            let query: String = url::form_urlencoded::byte_serialize(selector.as_bytes()).collect();
            let pods = get_json(
                client,
                &format!("/api/v1/namespaces/conf-shop/pods?labelSelector={query}"),
            )
            .await;
            let mut names: Vec<String> = pods["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| is_ready(p))
                .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
                .collect();
            names.sort();
            Some(
                names
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| format!("no-ready-pod-for-{selector}")),
            )
        } else if let Some(path) = inner.strip_prefix("rv:") {
            let list = get_json(client, path).await;
            list["metadata"]["resourceVersion"].as_str().map(str::to_owned)
        } else if let Some(path) = inner.strip_prefix("continue:") {
            let list = get_json(client, path).await;
            list["metadata"]["continue"].as_str().map(str::to_owned)
        } else if let Some(spec) = inner.strip_prefix("repeat:") {
            spec.split_once(':').and_then(|(c, n)| Some(c.repeat(n.parse().ok()?)))
        } else {
            None
        };
        match replacement {
            Some(r) => {
                out.push_str(&rest[..start]);
                out.push_str(&r);
            }
            None => out.push_str(&rest[..start + len + 1]),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Resolves the placeholders in every string of a JSON value.
async fn resolve_value(client: &kube::Client, value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(resolve(client, s).await),
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.push(Box::pin(resolve_value(client, item)).await);
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(resolve(client, k).await, Box::pin(resolve_value(client, v)).await);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// What differs between `answer` and `expect`, for people; empty when nothing does.
fn differences(expect: &Value, answer: &Answer) -> Vec<String> {
    let mut diffs = Vec::new();
    let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let text = String::from_utf8_lossy(&answer.body);
    if let Some(code) = expect["code"].as_u64()
        && u64::from(answer.code) != code
    {
        diffs.push(format!("code {} (want {code})", answer.code));
    }
    let object = body.as_ref().filter(|b| b.is_object());
    let status = object.filter(|b| b["kind"] == "Status");
    if let Some(kind) = expect["kind"].as_str() {
        let got = object.and_then(|b| b["kind"].as_str()).unwrap_or_default();
        if got != kind {
            diffs.push(format!("kind {got:?} (want {kind:?})"));
        }
    }
    if let Some(reason) = expect["reason"].as_str() {
        let got = status.and_then(|b| b["reason"].as_str()).unwrap_or_default();
        if got != reason {
            diffs.push(format!("reason {got:?} (want {reason:?})"));
        }
    }
    if let Some(message) = expect["message"].as_str() {
        let got = status.and_then(|b| b["message"].as_str()).unwrap_or_default();
        let prefix = expect["message_match"] == "prefix";
        if !(got == message || prefix && got.starts_with(message)) {
            diffs.push(format!(
                "message {got:?} (want {message:?}{})",
                if prefix { "…" } else { "" }
            ));
        }
    }
    if let Some(causes) = expect["causes"].as_array() {
        let got: Vec<Value> = status
            .and_then(|b| b.pointer("/details/causes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| json!({"reason": c["reason"].as_str().unwrap_or_default(), "field": c["field"].as_str().unwrap_or_default()}))
            .collect();
        if &got != causes {
            diffs.push(format!("causes {} (want {})", json!(got), json!(causes)));
        }
    }
    if let Some(start) = expect["text"].as_str()
        && (body.is_some() || !text.starts_with(start))
    {
        diffs.push(format!(
            "text {:?} (want it to start {start:?})",
            text.chars().take(120).collect::<String>()
        ));
    }
    let at = |pointer: &str| body.as_ref().and_then(|b| b.pointer(pointer));
    for (key, wanted) in [("body_has", true), ("body_lacks", false)] {
        let pointers = expect[key].as_array().into_iter().flatten().filter_map(Value::as_str);
        for pointer in pointers.filter(|p| at(p).is_some() != wanted) {
            diffs.push(if wanted {
                format!("no {pointer} in the body")
            } else {
                format!("{pointer} in the body")
            });
        }
    }
    for (pointer, value) in expect["body_values"].as_object().into_iter().flatten() {
        if at(pointer) != Some(value) {
            diffs.push(format!(
                "{pointer} is {} (want {value})",
                at(pointer).map_or("absent".into(), |v| v.to_string())
            ));
        }
    }
    if let Some(events) = expect.get("events") {
        diffs.extend(event_differences(events, &text));
    }
    diffs
}

fn event_differences(expect: &Value, text: &str) -> Vec<String> {
    let mut diffs = Vec::new();
    let events: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        *counts
            .entry(e["type"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    for (kind, n) in expect["counts"].as_object().into_iter().flatten() {
        let got = counts.get(kind).copied().unwrap_or(0);
        if Some(got) != n.as_u64() {
            diffs.push(format!("{got} {kind} events (want {n})"));
        }
    }
    for kind in expect["include"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !counts.contains_key(kind) {
            diffs.push(format!("no {kind} event (got {counts:?})"));
        }
    }
    if let Some(error) = expect.get("error") {
        match events.iter().find(|e| e["type"] == "ERROR") {
            None => diffs.push("no ERROR event".into()),
            Some(e) => {
                let status = &e["object"];
                if status["code"] != error["code"] || status["reason"] != error["reason"] {
                    diffs.push(format!(
                        "ERROR {} {} (want {} {})",
                        status["code"], status["reason"], error["code"], error["reason"]
                    ));
                }
                let message = error["message"].as_str().unwrap_or_default();
                if !status["message"].as_str().unwrap_or_default().starts_with(message) {
                    diffs.push(format!("ERROR message {} (want {message:?}…)", status["message"]));
                }
            }
        }
    }
    diffs
}

/// `name` → why, from the list of cases the simulator still answers differently.
fn known_differences() -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/known-differences.txt"))
            .expect("read tests/conformance/known-differences.txt");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(' ') {
            Some((name, why)) => (name.to_owned(), why.trim().to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(has_conformance_corpus),
    ignore = "needs ../shared/k8s-conformance beside the repository"
)]
async fn the_simulator_answers_the_recorded_requests_as_kubernetes_did() {
    let sim = Sim::builder().seed(Seed::Shop).start().await.expect("simulator");
    let client = sim.raw_client().await.expect("client");
    // The node the recording cluster's pods were pinned to.
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "fake-node-1",
        "labels": {"kubernetes.io/hostname": "fake-node-1"}}});
    let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
    let created = send(
        &client,
        "POST",
        "/api/v1/nodes",
        &headers,
        serde_json::to_vec(&node).expect("JSON"),
        None,
    )
    .await;
    assert_eq!(created.code, 201, "{}", String::from_utf8_lossy(&created.body));
    let refused = apply_setup(&client).await;
    for r in &refused {
        eprintln!("setup.yaml: refused {r}");
    }
    common::eventually("every fixture pod is Ready", || async {
        let mut ready = true;
        for ns in ["conf-shop", "conf-psa-baseline", "conf-psa-restricted"] {
            let pods = get_json(&client, &format!("/api/v1/namespaces/{ns}/pods")).await;
            let items = pods["items"].as_array().cloned().unwrap_or_default();
            ready &= !items.is_empty() && items.iter().all(is_ready);
        }
        ready
    })
    .await;

    // The tenant's own credentials, from the TokenRequest API as `kubectl create token` gets them.
    let token_path = "/api/v1/namespaces/conf-shop/serviceaccounts/conf-tenant/token";
    let request =
        serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}))
            .expect("JSON");
    let issued = send(&client, "POST", token_path, &headers, request, None).await;
    assert_eq!(issued.code, 201, "{}", String::from_utf8_lossy(&issued.body));
    let issued: Value = serde_json::from_slice(&issued.body).expect("a TokenRequest");
    let mut config = sim.kube_config().await.expect("kubeconfig");
    config.auth_info.token = Some(issued["status"]["token"].as_str().expect("a token").to_owned().into());
    let tenant = kube::Client::try_from(config).expect("tenant client");

    let known = known_differences();
    let cases: Vec<Value> = std::fs::read_to_string(corpus().join("cases.jsonl"))
        .expect("read cases.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a case is JSON"))
        .collect();
    let names: BTreeSet<&str> = cases.iter().filter_map(|c| c["name"].as_str()).collect();
    let stale: Vec<&String> = known.keys().filter(|k| !names.contains(k.as_str())).collect();
    assert!(stale.is_empty(), "known-differences.txt names no such case: {stale:?}");

    let mut passed = 0;
    let mut regressions = Vec::new();
    let mut fixed = Vec::new();
    let mut still = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap_or_default();
        let request = &case["request"];
        let path = resolve(&client, request["path"].as_str().unwrap_or_default()).await;
        let mut query = String::new();
        for (k, v) in request["query"].as_object().into_iter().flatten() {
            let v = resolve(&client, v.as_str().unwrap_or_default()).await;
            query.push(if query.is_empty() { '?' } else { '&' });
            query.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
            query.push('=');
            query.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
        }
        let mut headers = Vec::new();
        for (k, v) in request["headers"].as_object().into_iter().flatten() {
            headers.push((k.clone(), resolve(&client, v.as_str().unwrap_or_default()).await));
        }
        let body = match &request["body"] {
            Value::Null => Vec::new(),
            Value::String(s) => resolve(&client, s).await.into_bytes(),
            other => serde_json::to_vec(&resolve_value(&client, other).await).expect("JSON"),
        };
        let method = request["method"].as_str().unwrap_or("GET");
        let path_and_query = format!("{path}{query}");
        let expect = resolve_value(&client, &case["expect"]).await;
        let mut diffs = Vec::new();
        if case["as"] == "conf-tenant" {
            // The real server answers the same to the ServiceAccount's own token and to the
            // admin impersonating it: both ways must agree.
            let as_user = Some("system:serviceaccount:conf-shop:conf-tenant");
            let impersonated = send(&client, method, &path_and_query, &headers, body.clone(), as_user).await;
            diffs.extend(
                differences(&expect, &impersonated)
                    .into_iter()
                    .map(|d| format!("impersonating: {d}")),
            );
            let own = send(&tenant, method, &path_and_query, &headers, body, None).await;
            diffs.extend(
                differences(&expect, &own)
                    .into_iter()
                    .map(|d| format!("with its token: {d}")),
            );
        } else {
            let answer = send(&client, method, &path_and_query, &headers, body, None).await;
            diffs = differences(&expect, &answer);
        }
        match (diffs.is_empty(), known.get(name)) {
            (true, None) => passed += 1,
            (true, Some(_)) => {
                passed += 1;
                fixed.push(name.to_owned());
            }
            (false, None) => regressions.push(format!("{name}: {}", diffs.join("; "))),
            (false, Some(why)) => still.push(format!("{name} ({why}): {}", diffs.join("; "))),
        }
    }
    eprintln!("{passed} of {} cases answered as Kubernetes did", cases.len());
    for s in &still {
        eprintln!("  known difference: {s}");
    }
    assert!(
        regressions.is_empty(),
        "cases that differ from Kubernetes:\n{}",
        regressions.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "these cases pass now: take them off tests/conformance/known-differences.txt:\n{}",
        fixed.join("\n")
    );
}
