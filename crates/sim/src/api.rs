//! The HTTP face of the simulator: Kubernetes paths, verbs, query parameters, `Status`
//! errors, discovery, watches and the Table format kubectl asks for.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::Shared;
use super::auth;
use super::fields;
use super::patch::{PatchError, PatchType, apply};
use super::resources::{ResourceType, group, group_list, resource_list};
use super::store::{ApiError, DeleteOptions, Deleted, EventType, Store, Subresource, WatchEvent, Writer, text};
use disasterpiece_common::selector::{FieldSelector, LabelSelector};

const MAX_BODY: usize = 16 * 1024 * 1024;

fn json_response(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

pub(crate) fn error(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // No Retry-After: the API server sets none on a PodDisruptionBudget refusal, which is
    // final until the budget changes, not a request to come back in a second.
    json_response(code, &e.to_status())
}

/// A path the API server serves nothing under (an unknown group or version): its HTTP mux
/// answers in plain text, not with a Status.
fn page_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

/// An unknown resource of a group and version that are served: a Status.
fn resource_not_found() -> Response {
    let mut e = ApiError::new(404, "NotFound", "the server could not find the requested resource");
    e.details = Some(json!({}));
    error(&e)
}

fn server_version(shared: &Shared) -> String {
    super::version(shared)["gitVersion"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `/openapi/v2` in JSON. A client that accepts only the protobuf encoding gets 406, which
/// the API server also answers for an encoding it cannot give.
fn openapi_v2(headers: &HeaderMap, types: &[ResourceType], shared: &Shared) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    if !accept.contains("json") && !accept.contains("*/*") {
        return error(&ApiError::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json",
        ));
    }
    ok(&super::openapi::v2(types, &server_version(shared)))
}

/// What `fieldValidation` asks of a write whose object has fields its schema lacks: `Strict`
/// refuses it (400), `Warn` (the default) answers with a warning for each, `Ignore` neither.
fn check_fields(ty: &ResourceType, object: &Value, query: &Query) -> Result<Vec<String>, ApiError> {
    let directive = query.get("fieldValidation").unwrap_or("Warn");
    if !matches!(directive, "Strict" | "Warn" | "Ignore") {
        return Err(ApiError::bad_request(format!(
            "fieldValidation must be one of Ignore, Warn, or Strict, got {directive:?}"
        )));
    }
    if directive == "Ignore" {
        return Ok(Vec::new());
    }
    let unknown: Vec<String> = super::openapi::unknown_fields(ty, object)
        .into_iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if directive == "Strict" && !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            unknown.join(", ")
        )));
    }
    Ok(unknown)
}

/// `Warning: 299 - "…"` headers, as the API server sends them.
fn warn(mut response: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let value = format!("299 - {}", serde_json::Value::String(w.clone()));
        if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

/// The parsed query string, and the options type it stands for (`CreateOptions` for a POST…),
/// which the API server names when it refuses one.
struct Query(HashMap<String, String>, &'static str);

impl Query {
    fn parse(query: Option<&str>, method: &Method) -> Self {
        let options = match *method {
            Method::POST => "CreateOptions",
            Method::PUT => "UpdateOptions",
            Method::PATCH => "PatchOptions",
            Method::DELETE => "DeleteOptions",
            _ => "ListOptions",
        };
        Query(
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
            options,
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// 422 for a bad option, as the API server words it:
    /// `CreateOptions.meta.k8s.io "" is invalid: dryRun: …`.
    fn invalid(&self, field: &str, reason: &'static str, message: String) -> ApiError {
        let mut e = ApiError::new(
            422,
            "Invalid",
            format!("{}.meta.k8s.io \"\" is invalid: {field}: {message}", self.1),
        );
        e.details = Some(json!({"group": "meta.k8s.io", "kind": self.1,
            "causes": [{"reason": reason, "message": message, "field": field}]}));
        e
    }

    /// What a Table row carries of its object (`includeObject`).
    fn include(&self) -> &str {
        self.get("includeObject").unwrap_or("Metadata")
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(self.invalid(
                "dryRun",
                "FieldValueNotSupported",
                format!("Unsupported value: []string{{{other:?}}}: supported values: \"All\""),
            )),
        }
    }

    fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels =
            LabelSelector::parse(self.get("labelSelector").unwrap_or_default()).map_err(ApiError::bad_request)?;
        let fields =
            FieldSelector::parse(self.get("fieldSelector").unwrap_or_default()).map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    }
}

/// Where a request goes: `(namespace, type, name, subresource)`.
struct Target {
    namespace: Option<String>,
    ty: ResourceType,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(store: &Store, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let own = |s: &&str| (*s).to_owned();
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, plural, name, sub] => (Some(own(ns)), *plural, Some(own(name)), Some(own(sub))),
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
            (None, "namespaces", Some(own(ns)), Some(own(sub)))
        }
        ["namespaces", ns, plural, name] => (Some(own(ns)), *plural, Some(own(name)), None),
        ["namespaces", ns, plural] if group.is_empty() || *plural != "status" => (Some(own(ns)), *plural, None, None),
        [plural, name, sub] => (None, *plural, Some(own(name)), Some(own(sub))),
        [plural, name] => (None, *plural, Some(own(name)), None),
        [plural] => (None, *plural, None, None),
        _ => return None,
    };
    let ty = store.find_type(group, version, plural)?;
    if !ty.namespaced && namespace.is_some() {
        return None;
    }
    if ty.namespaced && namespace.is_none() && name.is_some() {
        return None;
    }
    if let Some(sub) = &sub
        && !ty.has(sub)
    {
        return None;
    }
    Some(Target {
        namespace,
        ty,
        name,
        sub,
    })
}

/// Every request ends here (axum's fallback): the simulator routes by itself.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = Query::parse(parts.uri.query(), &parts.method);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error(&ApiError::new(
                413,
                "RequestEntityTooLarge",
                "the request body is too large",
            ));
        }
    };
    let user = {
        let store = shared.store.lock().expect("store lock");
        let attributes = auth::attributes(&parts.method, &path, &segments, query.flag("watch"));
        match auth::authenticate(&store, &parts.headers).and_then(|user| {
            auth::check(&store, &user, &attributes)?;
            Ok(user)
        }) {
            Ok(user) => user,
            Err(e) => return error(&e),
        }
    };
    if segments.first() == Some(&"sim") {
        return super::admin(&shared, &parts.method, &segments, &body).await;
    }
    // What a client asked of the API (the admin endpoints are the harness's, not counted).
    shared.requests_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let ["api", "v1", "namespaces", ns, "pods", pod, "exec"] = segments.as_slice() {
        return super::exec::serve(&shared, ns, pod, parts).await;
    }
    if let ["api", "v1", "namespaces", ns, "services", service, "proxy", rest @ ..] = segments.as_slice() {
        let path = format!("/{}", rest.join("/"));
        return super::service::proxy(&shared, ns, service, &path, parts.uri.query()).await;
    }
    let is_resource = matches!(segments.as_slice(), ["api", _, _, ..] | ["apis", _, _, _, ..]);
    if is_resource && let Some(response) = super::misbehave(&shared).await {
        return response;
    }
    let routed = {
        let store_guard = shared.store.lock().expect("store lock");
        let types = &store_guard.types;
        match segments.as_slice() {
            ["version"] => Err(ok(&super::version(&shared))),
            ["openapi", "v2"] => Err(openapi_v2(&parts.headers, types, &shared)),
            ["openapi", "v3"] => Err(ok(&super::openapi::v3_index(types, &server_version(&shared)))),
            ["openapi", "v3", "api", v] => {
                Err(super::openapi::v3(types, "", v, &server_version(&shared)).map_or_else(page_not_found, |d| ok(&d)))
            }
            ["openapi", "v3", "apis", g, v] => {
                Err(super::openapi::v3(types, g, v, &server_version(&shared)).map_or_else(page_not_found, |d| ok(&d)))
            }
            ["healthz" | "readyz" | "livez"] => Err((StatusCode::OK, "ok").into_response()),
            ["api"] => Err(ok(
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}]}),
            )),
            ["api", "v1"] => Err(ok(&resource_list(types, "", "v1"))),
            ["apis"] => Err(ok(&group_list(types))),
            ["apis", g] => Err(group(types, g).map_or_else(page_not_found, |g| ok(&g))),
            ["apis", g, v] if types.iter().any(|t| t.group == *g && t.version == *v) => {
                Err(ok(&resource_list(types, g, v)))
            }
            ["api", "v1", rest @ ..] => Ok(parse_target(&store_guard, "", "v1", rest)),
            ["apis", g, v, ..] if !types.iter().any(|t| t.group == *g && t.version == *v) => Err(page_not_found()),
            ["apis", g, v, rest @ ..] => Ok(parse_target(&store_guard, g, v, rest)),
            _ => Err(page_not_found()),
        }
    };
    let target = match routed {
        Ok(target) => target,
        Err(response) => return response,
    };
    let Some(target) = target else {
        return resource_not_found();
    };
    let result = serve(&shared, &user, &parts.method, &parts.headers, &query, target, &body).await;
    if matches!(
        parts.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        shared.wake.notify_one();
    }
    match result {
        Ok(response) => response,
        Err(e) => error(&e),
    }
}

async fn serve(
    shared: &Arc<Shared>,
    user: &auth::User,
    method: &Method,
    headers: &HeaderMap,
    query: &Query,
    target: Target,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let Target {
        namespace,
        ty,
        name,
        sub,
    } = target;
    let ns = namespace.clone().unwrap_or_default();
    let wants_table = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"));
    if ty.create_only && *method != Method::POST {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource ({})",
                ty.plural
            ),
        ));
    }
    match (method.clone(), name, sub.as_deref()) {
        (Method::GET, None, None) if query.flag("watch") => Ok(watch(shared, &ty, namespace, query, wants_table)?),
        (Method::GET, None, None) => {
            let store = shared.store.lock().expect("store lock");
            list(&store, &ty, namespace.as_deref(), query, wants_table)
        }
        (Method::GET, Some(name), sub) => {
            let store = shared.store.lock().expect("store lock");
            let object = store
                .get(&ty.key(), &ns, &name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&ty, &name))?;
            match sub {
                Some("scale") => Ok(ok(&scale_of(&object))),
                _ if wants_table => Ok(ok(&table(
                    &ty,
                    &[&object],
                    &store.rv.to_string(),
                    query.include(),
                    store.clock.now(),
                ))),
                _ => Ok(ok(&object)),
            }
        }
        (Method::POST, None, None) if ty.create_only => {
            let object = parse_body(headers, body)?;
            let store = shared.store.lock().expect("store lock");
            let answer = auth::review(&store, user, &ty, &ns, object)?;
            Ok(json_response(StatusCode::CREATED, &answer))
        }
        (Method::POST, Some(name), Some("token")) => {
            let request = parse_body(headers, body)?;
            let mut store = shared.store.lock().expect("store lock");
            let token = auth::token_request(&mut store, &ns, &name, &request)?;
            Ok(json_response(StatusCode::CREATED, &token))
        }
        (Method::POST, None, None) => {
            let object = parse_body(headers, body)?;
            let mut store = shared.store.lock().expect("store lock");
            let warnings = check_fields(&ty, &object, query)?;
            let writer = writer(query, headers, "Update", sub.as_deref(), None)?;
            let created = store.create(&ty, &ns, object, &writer)?;
            Ok(warn(json_response(StatusCode::CREATED, &created), &warnings))
        }
        (Method::POST, Some(name), Some("eviction")) => {
            let eviction = parse_body(headers, body)?;
            let mut store = shared.store.lock().expect("store lock");
            let status = store.evict(&ns, &name, &eviction, query.dry_run()?)?;
            Ok(json_response(StatusCode::CREATED, &status))
        }
        (Method::PUT, Some(name), sub) => {
            let object = parse_body(headers, body)?;
            let warnings = match sub {
                Some("scale") => Vec::new(),
                _ => check_fields(&ty, &object, query)?,
            };
            let mut store = shared.store.lock().expect("store lock");
            let writer = writer(query, headers, "Update", sub, None)?;
            let updated = match sub {
                Some("scale") => update_scale(&mut store, &ty, &ns, &name, &object, &writer)?,
                _ => store.update(&ty, &ns, &name, object, subresource(sub), &writer)?,
            };
            Ok(warn(ok(&updated), &warnings))
        }
        (Method::PATCH, Some(name), sub) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let patch_type = PatchType::from_content_type(content_type)
                .ok_or_else(|| ApiError::new(415, "UnsupportedMediaType", "415: Unsupported Media Type"))?;
            if patch_type == PatchType::Apply && query.get("fieldManager").is_none() {
                return Err(query.invalid(
                    "fieldManager",
                    "FieldValueRequired",
                    "Required value: is required for apply patch".into(),
                ));
            }
            if patch_type == PatchType::Strategic && ty.custom {
                // Custom resources have no patch strategy to merge by.
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                ));
            }
            let mut store = shared.store.lock().expect("store lock");
            let existing = store.get(&ty.key(), &ns, &name).cloned();
            // An apply names the fields its manager owns from now on.
            let configuration = match patch_type {
                PatchType::Apply => Some(apply(&json!({}), patch_type, body).map_err(patch_error)?),
                _ => None,
            };
            let operation = if configuration.is_some() { "Apply" } else { "Update" };
            let writer = writer(query, headers, operation, sub, configuration.as_ref())?;
            let Some(existing) = existing else {
                if patch_type == PatchType::Apply && sub.is_none() {
                    let object = apply(&json!({"metadata": {"name": name}}), patch_type, body).map_err(patch_error)?;
                    check_fields(&ty, &object, query)?;
                    let created = store.create(&ty, &ns, object, &writer)?;
                    return Ok(json_response(StatusCode::CREATED, &created));
                }
                return Err(ApiError::not_found(&ty, &name));
            };
            if sub == Some("scale") {
                let patched = apply(&scale_of(&existing), patch_type, body).map_err(patch_error)?;
                return Ok(ok(&update_scale(&mut store, &ty, &ns, &name, &patched, &writer)?));
            }
            let mut patched = apply(&existing, patch_type, body).map_err(patch_error)?;
            let warnings = check_fields(&ty, &patched, query)?;
            if let (Some(configuration), Some(applied)) = (&configuration, &writer.applied)
                && sub.is_none()
            {
                let found = fields::conflicts(&existing, configuration, &writer.manager.name);
                if !found.is_empty() && !query.flag("force") {
                    return Err(apply_conflict(&ty, &name, &found));
                }
                // What this manager applied before and names no more goes, unless another
                // manager owns it too.
                for path in fields::dropped(&existing, &writer.manager.name, applied) {
                    fields::remove(&mut patched, &path);
                }
            }
            if patch_type == PatchType::Apply
                || text(&patched, "/metadata/resourceVersion") == text(&existing, "/metadata/resourceVersion")
            {
                // Only a resourceVersion the patch itself states is a precondition.
                let sent = serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|b| b.pointer("/metadata/resourceVersion").cloned());
                patched["metadata"]["resourceVersion"] =
                    sent.unwrap_or_else(|| existing["metadata"]["resourceVersion"].clone());
            }
            let updated = store.update(&ty, &ns, &name, patched, subresource(sub), &writer)?;
            Ok(warn(ok(&updated), &warnings))
        }
        (Method::DELETE, Some(name), None) => {
            let opts = delete_options(query, headers, body)?;
            let mut store = shared.store.lock().expect("store lock");
            match store.delete(&ty, &ns, &name, &opts)? {
                Deleted::Pending(object) => Ok(ok(&object)),
                Deleted::Gone(object) if ty.kind == "Pod" || ty.kind == "Namespace" => Ok(ok(&object)),
                Deleted::Gone(object) => Ok(ok(&json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": name, "group": ty.group, "kind": ty.plural, "uid": object["metadata"]["uid"]},
                }))),
            }
        }
        (Method::DELETE, None, None) => {
            let opts = delete_options(query, headers, body)?;
            let (labels, fields) = query.selectors()?;
            let mut store = shared.store.lock().expect("store lock");
            let names: Vec<(String, String)> = store
                .list(&ty.key(), namespace.as_deref())
                .filter(|o| labels.matches_object(o) && fields.matches(o))
                .map(|o| {
                    (
                        text(o, "/metadata/namespace").to_owned(),
                        text(o, "/metadata/name").to_owned(),
                    )
                })
                .collect();
            let mut items = Vec::new();
            for (object_ns, object_name) in names {
                match store.delete(&ty, &object_ns, &object_name, &opts) {
                    Ok(Deleted::Gone(o) | Deleted::Pending(o)) => items.push(o),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            let rv = store.rv.to_string();
            Ok(ok(
                &json!({"kind": format!("{}List", ty.kind), "apiVersion": ty.api_version(), "metadata": {"resourceVersion": rv}, "items": items}),
            ))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource ({})",
                ty.plural
            ),
        )),
    }
}

/// The writer of a request: its `fieldManager`, else its User-Agent up to the first `/`, as
/// the API server names managers (`kubectl`, `kube-rs`…).
fn writer(
    query: &Query,
    headers: &HeaderMap,
    operation: &'static str,
    sub: Option<&str>,
    configuration: Option<&Value>,
) -> Result<Writer, ApiError> {
    let name = query.get("fieldManager").map(str::to_owned).unwrap_or_else(|| {
        let agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let prefix = agent.split('/').next().unwrap_or_default().trim();
        if prefix.is_empty() {
            "unknown".to_owned()
        } else {
            prefix.to_owned()
        }
    });
    Ok(Writer {
        manager: fields::Manager {
            name,
            operation,
            subresource: if sub == Some("status") { "status" } else { "" },
        },
        applied: configuration.map(fields::applied_paths),
        dry_run: query.dry_run()?,
    })
}

/// 409 for an apply that would take fields other managers own, in the API server's words.
fn apply_conflict(ty: &ResourceType, name: &str, found: &[fields::Conflict]) -> ApiError {
    let mut managers: Vec<(&str, &str)> = Vec::new();
    for c in found {
        if !managers.contains(&(c.manager.as_str(), c.api_version.as_str())) {
            managers.push((&c.manager, &c.api_version));
        }
    }
    let message = if found.len() == 1 {
        let c = &found[0];
        format!(
            "Apply failed with 1 conflict: conflict with \"{}\" using {}: {}",
            c.manager, c.api_version, c.field
        )
    } else {
        let mut text = format!("Apply failed with {} conflicts:", found.len());
        for (manager, api_version) in &managers {
            text.push_str(&format!(" conflicts with \"{manager}\" using {api_version}:"));
            for c in found.iter().filter(|c| c.manager == *manager) {
                text.push_str(&format!("\n- {}", c.field));
            }
        }
        text
    };
    let causes: Vec<Value> = found
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version), "field": c.field}))
        .collect();
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(json!({"name": name, "group": ty.group, "kind": ty.plural, "causes": causes}));
    e
}

fn subresource(sub: Option<&str>) -> Subresource {
    match sub {
        Some("status") => Subresource::Status,
        Some("ephemeralcontainers") => Subresource::EphemeralContainers,
        _ => Subresource::Main,
    }
}

/// A POST or PUT body, in the media type it says it is: JSON, YAML, or the protobuf kubectl
/// sends for the built-in kinds `protobuf` knows. Anything else gets 415.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or_default().trim();
    match media {
        "application/json" | "" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}"))),
        "application/yaml" => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}"))),
        "application/vnd.kubernetes.protobuf" => super::protobuf::decode(body).map_err(|e| match e {
            super::protobuf::Unreadable::Malformed(why) => {
                ApiError::bad_request(format!("the request body is not valid protobuf: {why}"))
            }
            super::protobuf::Unreadable::Unsupported(why) => ApiError::new(415, "UnsupportedMediaType", why),
        }),
        _ => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        )),
    }
}

fn delete_options(query: &Query, headers: &HeaderMap, body: &Bytes) -> Result<DeleteOptions, ApiError> {
    let from_body: Value = if body.is_empty() {
        Value::Null
    } else {
        parse_body(headers, body)?
    };
    let grace = query
        .get("gracePeriodSeconds")
        .map(|g| {
            g.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("gracePeriodSeconds {g:?} is not a number")))
        })
        .transpose()?
        .or_else(|| from_body.get("gracePeriodSeconds").and_then(Value::as_i64));
    let dry_run = query.dry_run()?
        || from_body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        grace_period_seconds: grace,
        propagation: query.get("propagationPolicy").map(str::to_owned).or_else(|| {
            from_body
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }),
        precondition_uid: from_body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        precondition_rv: from_body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
        dry_run,
    })
}

/// A patch that was not applied, as the API server answers it: a body it cannot read is 400;
/// a JSON patch whose operation fails is 422 with its generic words (it says no more).
fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::Malformed(message) => ApiError::bad_request(message),
        PatchError::NotApplicable(_) => ApiError::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        ),
    }
}

fn scale_of(object: &Value) -> Value {
    let selector = object
        .pointer("/spec/selector")
        .map(|s| LabelSelector::from_object(s).map(|s| s.to_query()).unwrap_or_default())
        .unwrap_or_default();
    let meta = &object["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                     "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {"replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector},
    })
}

fn update_scale(
    store: &mut Store,
    ty: &ResourceType,
    ns: &str,
    name: &str,
    scale: &Value,
    writer: &Writer,
) -> Result<Value, ApiError> {
    let object = store
        .get(&ty.key(), ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(ty, name))?;
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        let cause = super::store::Cause {
            field: "spec.replicas".into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {replicas}: must be greater than or equal to 0"),
        };
        // The API server validates the Scale, so it names the Scale.
        return Err(ApiError::invalid_kind(
            "Scale.autoscaling",
            "autoscaling",
            name,
            vec![cause],
        ));
    }
    let mut updated = object.clone();
    updated["spec"]["replicas"] = json!(replicas);
    let sent_rv = text(scale, "/metadata/resourceVersion");
    if !sent_rv.is_empty() {
        updated["metadata"]["resourceVersion"] = json!(sent_rv);
    }
    let stored = store.update(ty, ns, name, updated, Subresource::Main, writer)?;
    Ok(scale_of(&stored))
}

fn list(
    store: &Store,
    ty: &ResourceType,
    namespace: Option<&str>,
    query: &Query,
    wants_table: bool,
) -> Result<Response, ApiError> {
    let (labels, fields) = query.selectors()?;
    if let (Some(rv), Some("Exact")) = (query.get("resourceVersion"), query.get("resourceVersionMatch"))
        && rv != store.rv.to_string()
    {
        return Err(ApiError::gone("The resourceVersion for the provided list is too old."));
    }
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let after = query.get("continue").map(str::to_owned);
    let key = ty.key();
    let mut matching = store
        .list(&key, namespace)
        .filter(|o| labels.matches_object(o) && fields.matches(o))
        .filter(|o| {
            after.as_deref().is_none_or(|token| {
                format!("{}/{}", text(o, "/metadata/namespace"), text(o, "/metadata/name")).as_str() > token
            })
        });
    let mut items: Vec<&Value> = Vec::new();
    let mut next = None;
    let mut remaining = None;
    for object in matching.by_ref() {
        if limit.is_some_and(|l| items.len() == l) {
            let last = items
                .last()
                .map(|o| format!("{}/{}", text(o, "/metadata/namespace"), text(o, "/metadata/name")));
            next = last;
            // As etcd counts them: only for a list no selector filters.
            remaining = (labels.is_empty() && fields.is_empty()).then(|| 1 + matching.by_ref().count());
            break;
        }
        items.push(object);
    }
    let rv = store.rv.to_string();
    let paginate = |metadata: &mut Value| {
        if let Some(token) = &next {
            metadata["continue"] = json!(token);
        }
        if let Some(n) = remaining {
            metadata["remainingItemCount"] = json!(n);
        }
    };
    if wants_table {
        let mut t = table(ty, &items, &rv, query.include(), store.clock.now());
        paginate(&mut t["metadata"]);
        return Ok(ok(&t));
    }
    let mut metadata = json!({"resourceVersion": rv});
    paginate(&mut metadata);
    let body = json!({"kind": format!("{}List", ty.kind), "apiVersion": ty.api_version(), "metadata": metadata, "items": items});
    Ok(ok(&body))
}

/// What one watch sees of one event, after its namespace and selectors.
fn visible(
    event: &WatchEvent,
    ty: &ResourceType,
    namespace: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> Option<EventType> {
    if event.type_key != ty.key() || namespace.is_some_and(|ns| ns != event.namespace) {
        return None;
    }
    let matches = |o: &Value| labels.matches_object(o) && fields.matches(o);
    let now = matches(&event.object);
    match event.event {
        EventType::Added => now.then_some(EventType::Added),
        EventType::Deleted => now.then_some(EventType::Deleted),
        EventType::Modified => match (event.old.as_ref().is_some_and(matches), now) {
            (true, true) => Some(EventType::Modified),
            (false, true) => Some(EventType::Added),
            (true, false) => Some(EventType::Deleted),
            (false, false) => None,
        },
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn watch(
    shared: &Arc<Shared>,
    ty: &ResourceType,
    namespace: Option<String>,
    query: &Query,
    wants_table: bool,
) -> Result<Response, ApiError> {
    // `kubectl get -w` asks for Tables: each event's object is then a one-row Table.
    let render = {
        let ty = ty.clone();
        let include = query.include().to_owned();
        let clock = shared.config.clock.clone();
        move |kind: &str, object: &Value| -> Bytes {
            if wants_table && kind != "ERROR" && kind != "BOOKMARK" {
                let rv = text(object, "/metadata/resourceVersion").to_owned();
                line(kind, &table(&ty, &[object], &rv, &include, clock.now()))
            } else {
                line(kind, object)
            }
        }
    };
    let (labels, fields) = query.selectors()?;
    if query.get("sendInitialEvents").is_some() {
        // Kubernetes 1.28, which this simulator answers as, has the WatchList gate off.
        return Err(query.invalid(
            "sendInitialEvents",
            "FieldValueForbidden",
            "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled".into(),
        ));
    }
    let bookmarks = query.flag("allowWatchBookmarks");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    let (receiver, start_rv) = {
        let store = shared.store.lock().expect("store lock");
        let receiver = store.events.subscribe();
        let rv_param = query.get("resourceVersion").unwrap_or("0");
        if rv_param == "0" {
            for object in store
                .list(&ty.key(), namespace.as_deref())
                .filter(|o| labels.matches_object(o) && fields.matches(o))
            {
                pending.push_back(render("ADDED", object));
            }
        } else {
            let rv: u64 = rv_param
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv_param:?}")))?;
            match store.events_since(rv) {
                Some(events) => {
                    for event in events {
                        if let Some(kind) = visible(&event, ty, namespace.as_deref(), &labels, &fields) {
                            pending.push_back(render(kind.as_str(), &event.object));
                        }
                    }
                }
                None => {
                    // As the API server does: 200, then an ERROR event carrying 410 Gone.
                    let e = ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        store.oldest_resumable() + 1
                    ));
                    pending.push_back(line("ERROR", &e.to_status()));
                    let body = Body::from_stream(futures_util::stream::iter(
                        pending.into_iter().map(Ok::<_, std::io::Error>),
                    ));
                    return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
                }
            }
        }
        (receiver, store.rv)
    };
    let drop_after = shared
        .misbehaviour
        .lock()
        .expect("misbehaviour lock")
        .drop_watches_after;
    let end = [timeout, drop_after]
        .into_iter()
        .flatten()
        .min()
        .map(|d| Instant::now() + d);
    let state = WatchState {
        pending,
        receiver,
        last_rv: start_rv,
        ty: ty.clone(),
        namespace,
        labels,
        fields,
        bookmarks,
        bookmark_every: shared.config.bookmark_interval,
        next_bookmark: Instant::now() + shared.config.bookmark_interval,
        end,
        render: Box::new(render),
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(bytes) = s.pending.pop_front() {
                return Some((Ok::<_, std::io::Error>(bytes), s));
            }
            let end = s.end.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                received = s.receiver.recv() => match received {
                    Ok(event) => {
                        if event.rv <= s.last_rv { continue; }
                        s.last_rv = event.rv;
                        if let Some(kind) = visible(&event, &s.ty, s.namespace.as_deref(), &s.labels, &s.fields) {
                            s.pending.push_back((s.render)(kind.as_str(), &event.object));
                        }
                    }
                    // A watcher that falls too far behind is closed; it resumes from its last version.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep_until(s.next_bookmark) => {
                    s.next_bookmark = Instant::now() + s.bookmark_every;
                    if s.bookmarks {
                        let mark = json!({"kind": s.ty.kind, "apiVersion": s.ty.api_version(), "metadata": {"resourceVersion": s.last_rv.to_string()}});
                        s.pending.push_back(line("BOOKMARK", &mark));
                    }
                }
                _ = tokio::time::sleep_until(end) => return None,
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

struct WatchState {
    pending: VecDeque<Bytes>,
    receiver: tokio::sync::broadcast::Receiver<Arc<WatchEvent>>,
    last_rv: u64,
    ty: ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    bookmarks: bool,
    bookmark_every: Duration,
    next_bookmark: Instant,
    end: Option<Instant>,
    render: Render,
}

/// How a watch writes one event (as JSON, or as a one-row Table).
type Render = Box<dyn Fn(&str, &Value) -> Bytes + Send>;

/// A cell kubectl shows as `<none>` when empty.
fn or_none(value: &str) -> &str {
    if value.is_empty() { "<none>" } else { value }
}

/// `5s`, `3m`, `2h`, `4d`, as kubectl shows ages.
fn age(object: &Value, now: chrono::DateTime<chrono::Utc>) -> String {
    let created = chrono::DateTime::parse_from_rfc3339(text(object, "/metadata/creationTimestamp"));
    let Ok(created) = created else {
        return "<unknown>".into();
    };
    let secs = (now - created.with_timezone(&chrono::Utc)).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The `meta.k8s.io/v1 Table` kubectl asks for, with the columns `kubectl get` shows.
fn table(ty: &ResourceType, objects: &[&Value], rv: &str, include: &str, now: chrono::DateTime<chrono::Utc>) -> Value {
    let column = |name: &str, kind: &str, priority: u8| json!({"name": name, "type": kind, "format": if name == "Name" { "name" } else { "" }, "description": "", "priority": priority});
    type Cells = Box<dyn Fn(&Value) -> Vec<Value>>;
    let (columns, cells): (Vec<Value>, Cells) = match ty.kind.as_str() {
        "Pod" => (
            vec![
                column("Name", "string", 0),
                column("Ready", "string", 0),
                column("Status", "string", 0),
                column("Restarts", "string", 0),
                column("Age", "string", 0),
                column("IP", "string", 1),
                column("Node", "string", 1),
                column("Nominated Node", "string", 1),
                column("Readiness Gates", "string", 1),
            ],
            Box::new(move |p: &Value| {
                let statuses = p
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let total = p
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let ready = statuses.iter().filter(|s| s["ready"] == true).count();
                let restarts: i64 = statuses.iter().map(|s| s["restartCount"].as_i64().unwrap_or(0)).sum();
                let status = if p.pointer("/metadata/deletionTimestamp").is_some() {
                    "Terminating".to_owned()
                } else {
                    text(p, "/status/phase").to_owned()
                };
                vec![
                    json!(text(p, "/metadata/name")),
                    json!(format!("{ready}/{total}")),
                    json!(status),
                    json!(restarts.to_string()),
                    json!(age(p, now)),
                    json!(or_none(text(p, "/status/podIP"))),
                    json!(or_none(text(p, "/spec/nodeName"))),
                    json!(or_none(text(p, "/status/nominatedNodeName"))),
                    json!("<none>"),
                ]
            }),
        ),
        "Deployment" => (
            vec![
                column("Name", "string", 0),
                column("Ready", "string", 0),
                column("Up-to-date", "integer", 0),
                column("Available", "integer", 0),
                column("Age", "string", 0),
            ],
            Box::new(move |d: &Value| {
                vec![
                    json!(text(d, "/metadata/name")),
                    json!(format!(
                        "{}/{}",
                        int(d, "/status/readyReplicas"),
                        int(d, "/spec/replicas")
                    )),
                    json!(int(d, "/status/updatedReplicas")),
                    json!(int(d, "/status/availableReplicas")),
                    json!(age(d, now)),
                ]
            }),
        ),
        "ReplicaSet" => (
            vec![
                column("Name", "string", 0),
                column("Desired", "integer", 0),
                column("Current", "integer", 0),
                column("Ready", "integer", 0),
                column("Age", "string", 0),
            ],
            Box::new(move |r: &Value| {
                vec![
                    json!(text(r, "/metadata/name")),
                    json!(int(r, "/spec/replicas")),
                    json!(int(r, "/status/replicas")),
                    json!(int(r, "/status/readyReplicas")),
                    json!(age(r, now)),
                ]
            }),
        ),
        "StatefulSet" => (
            vec![
                column("Name", "string", 0),
                column("Ready", "string", 0),
                column("Age", "string", 0),
            ],
            Box::new(move |s: &Value| {
                vec![
                    json!(text(s, "/metadata/name")),
                    json!(format!(
                        "{}/{}",
                        int(s, "/status/readyReplicas"),
                        int(s, "/spec/replicas")
                    )),
                    json!(age(s, now)),
                ]
            }),
        ),
        "Node" => (
            vec![
                column("Name", "string", 0),
                column("Status", "string", 0),
                column("Roles", "string", 0),
                column("Age", "string", 0),
                column("Version", "string", 0),
            ],
            Box::new(move |n: &Value| {
                let ready = n
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
                let mut status = if ready {
                    "Ready".to_owned()
                } else {
                    "NotReady".to_owned()
                };
                if n.pointer("/spec/unschedulable") == Some(&json!(true)) {
                    status.push_str(",SchedulingDisabled");
                }
                vec![
                    json!(text(n, "/metadata/name")),
                    json!(status),
                    json!("<none>"),
                    json!(age(n, now)),
                    json!(text(n, "/status/nodeInfo/kubeletVersion")),
                ]
            }),
        ),
        "Namespace" => (
            vec![
                column("Name", "string", 0),
                column("Status", "string", 0),
                column("Age", "string", 0),
            ],
            Box::new(move |n: &Value| {
                vec![
                    json!(text(n, "/metadata/name")),
                    json!(text(n, "/status/phase")),
                    json!(age(n, now)),
                ]
            }),
        ),
        "PodDisruptionBudget" => (
            vec![
                column("Name", "string", 0),
                column("Min Available", "string", 0),
                column("Max Unavailable", "string", 0),
                column("Allowed Disruptions", "integer", 0),
                column("Age", "string", 0),
            ],
            Box::new(move |p: &Value| {
                let show = |ptr: &str| {
                    p.pointer(ptr)
                        .map_or("N/A".to_owned(), |v| v.as_str().map_or(v.to_string(), str::to_owned))
                };
                vec![
                    json!(text(p, "/metadata/name")),
                    json!(show("/spec/minAvailable")),
                    json!(show("/spec/maxUnavailable")),
                    json!(int(p, "/status/disruptionsAllowed")),
                    json!(age(p, now)),
                ]
            }),
        ),
        _ if !ty.printer_columns.is_empty() => {
            // A custom resource: Name, then its CRD's printer columns, as the API server
            // renders them (a `date` column as an age).
            let printer = ty.printer_columns.clone();
            let mut columns = vec![column("Name", "string", 0)];
            for c in &printer {
                columns.push(json!({"name": c["name"], "type": c["type"], "format": c.get("format").cloned().unwrap_or(json!("")),
                    "description": c.get("description").cloned().unwrap_or(json!("")), "priority": c.get("priority").cloned().unwrap_or(json!(0))}));
            }
            (
                columns,
                Box::new(move |o: &Value| {
                    let mut cells = vec![json!(text(o, "/metadata/name"))];
                    for c in &printer {
                        let pointer = c["jsonPath"].as_str().unwrap_or_default().replace('.', "/");
                        let value = o.pointer(&pointer).cloned().unwrap_or(Value::Null);
                        cells.push(match (c["type"].as_str(), &value) {
                            (Some("date"), Value::String(t)) => {
                                json!(age(&json!({"metadata": {"creationTimestamp": t}}), now))
                            }
                            _ => value,
                        });
                    }
                    cells
                }),
            )
        }
        _ => (
            vec![column("Name", "string", 0), column("Age", "string", 0)],
            Box::new(move |o: &Value| vec![json!(text(o, "/metadata/name")), json!(age(o, now))]),
        ),
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let object = match include {
                "None" => Value::Null,
                "Object" => (*o).clone(),
                _ => {
                    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
                }
            };
            json!({"cells": cells(o), "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv}, "columnDefinitions": columns, "rows": rows})
}
