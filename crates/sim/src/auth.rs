//! Who a request comes from and what it may do, as the API server decides it: bearer tokens
//! (the admin's, and ServiceAccount tokens from the TokenRequest API), impersonation, and the
//! RBAC authorizer over the Roles, ClusterRoles and bindings stored in the simulator, with
//! the access reviews that ask it. Every request to the API is authorized before it is
//! routed, so a missing permission is a 403 whether or not the object exists.

use std::collections::HashMap;

use axum::http::{HeaderMap, Method, header};
use serde_json::{Value, json};

use super::resources::ResourceType;
use super::store::{ApiError, Cause, Store, text};

/// The user the kubeconfig the simulator writes is (kubeadm's name for it).
pub const ADMIN: &str = "kubernetes-admin";

/// The audience of tokens the TokenRequest API hands out by default.
const AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// An authenticated user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    fn service_account(namespace: &str, name: &str) -> Self {
        User {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// `(namespace, name)` of the ServiceAccount this user is.
    fn as_service_account(&self) -> Option<(&str, &str)> {
        let rest = self.name.strip_prefix("system:serviceaccount:")?;
        rest.split_once(':')
    }
}

/// A ServiceAccount token: whose, bound to which incarnation of it, until when.
#[derive(Debug, Clone)]
struct Token {
    namespace: String,
    name: String,
    uid: String,
    expires: chrono::DateTime<chrono::Utc>,
}

/// The tokens the simulator knows and the requests it was told to refuse.
#[derive(Debug, Default)]
pub struct Registry {
    admin_token: String,
    tokens: HashMap<String, Token>,
    /// `(verb, resource)` pairs refused to everyone, as a webhook authorizer ahead of RBAC
    /// that denies them would: the request gets 403 and access reviews say not allowed.
    pub denied: Vec<(String, String)>,
}

impl Registry {
    pub fn new() -> Self {
        Registry {
            admin_token: secret(),
            ..Registry::default()
        }
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }
}

/// 32 hex digits from the OS's random source.
fn secret() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        bytes[..8].copy_from_slice(&disasterpiece_common::random::u64().to_le_bytes());
        bytes[8..].copy_from_slice(&disasterpiece_common::random::u64().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a request asks to do, as the authorizer sees it (the API server's RequestInfo).
#[derive(Debug, Clone, PartialEq)]
pub enum Attributes {
    Resource {
        verb: String,
        group: String,
        resource: String,
        subresource: String,
        namespace: String,
        name: String,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

impl Attributes {
    fn verb(&self) -> &str {
        match self {
            Attributes::Resource { verb, .. } | Attributes::NonResource { verb, .. } => verb,
        }
    }
}

/// The attributes of a request, from its method, path and query, as the API server derives
/// them: `GET` is `get`, `list` or `watch`, `DELETE` without a name `deletecollection`, the
/// namespace of `/namespaces/NS` is NS, and `/api`, `/apis/G/V` are non-resource paths.
pub fn attributes(method: &Method, path: &str, segments: &[&str], watch: bool) -> Attributes {
    let non_resource = || Attributes::NonResource {
        verb: match *method {
            Method::HEAD => "get".to_owned(),
            ref m => m.as_str().to_lowercase(),
        },
        path: path.to_owned(),
    };
    let (group, rest) = match segments {
        ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
        _ => return non_resource(),
    };
    let mut namespace = "";
    let mut parts = rest;
    if let ["namespaces", ns, after @ ..] = rest {
        namespace = ns;
        if let [first, ..] = after
            && !matches!(*first, "status" | "finalize")
        {
            parts = after;
        }
    }
    let (resource, name, subresource) = match parts {
        [resource] => (*resource, "", ""),
        [resource, name] => (*resource, *name, ""),
        [resource, name, sub, ..] => (*resource, *name, *sub),
        [] => return non_resource(),
    };
    let verb = match (method.clone(), name.is_empty()) {
        (Method::GET | Method::HEAD, true) if watch => "watch",
        (Method::GET | Method::HEAD, true) => "list",
        (Method::GET | Method::HEAD, false) => "get",
        (Method::POST, _) => "create",
        (Method::PUT, _) => "update",
        (Method::PATCH, _) => "patch",
        (Method::DELETE, true) => "deletecollection",
        (Method::DELETE, false) => "delete",
        (m, _) => {
            return Attributes::NonResource {
                verb: m.as_str().to_lowercase(),
                path: path.to_owned(),
            };
        }
    };
    Attributes::Resource {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        subresource: subresource.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// 401, in the API server's words.
pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// Who sent the request: its bearer token, then the users and groups it impersonates, which
/// the token's user must be allowed to impersonate.
pub fn authenticate(store: &Store, headers: &HeaderMap) -> Result<User, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    let user = if token == store.auth.admin_token {
        User {
            name: ADMIN.into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    } else {
        let t = store.auth.tokens.get(token).ok_or_else(unauthorized)?;
        let account = store.get("/serviceaccounts", &t.namespace, &t.name);
        // A token outlives neither its expiry nor the ServiceAccount it was issued for.
        if account.is_none_or(|a| text(a, "/metadata/uid") != t.uid) || store.clock.now() >= t.expires {
            return Err(unauthorized());
        }
        User::service_account(&t.namespace, &t.name)
    };
    impersonate(store, user, headers)
}

fn impersonate(store: &Store, user: User, headers: &HeaderMap) -> Result<User, ApiError> {
    let value = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    let Some(name) = value("impersonate-user") else {
        if groups.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::new(
            500,
            "InternalError",
            "Internal error occurred: requested [{Group  }] without impersonating a user",
        ));
    };
    let may = |attributes: Attributes| -> Result<(), ApiError> {
        if authorize(store, &user, &attributes).allowed {
            Ok(())
        } else {
            Err(forbidden(&user, &attributes, ""))
        }
    };
    let target = User {
        name: name.clone(),
        groups: Vec::new(),
    };
    let mut impersonated = match target.as_service_account() {
        Some((namespace, account)) => {
            may(resource_attributes(
                "impersonate",
                "",
                "serviceaccounts",
                "",
                namespace,
                account,
            ))?;
            User::service_account(namespace, account)
        }
        None => {
            may(resource_attributes("impersonate", "", "users", "", "", &name))?;
            User {
                name,
                groups: Vec::new(),
            }
        }
    };
    for group in groups {
        may(resource_attributes("impersonate", "", "groups", "", "", &group))?;
        if !impersonated.groups.contains(&group) {
            impersonated.groups.push(group);
        }
    }
    if !impersonated.groups.iter().any(|g| g == "system:authenticated") && impersonated.name != "system:anonymous" {
        impersonated.groups.push("system:authenticated".into());
    }
    Ok(impersonated)
}

fn resource_attributes(verb: &str, group: &str, resource: &str, sub: &str, namespace: &str, name: &str) -> Attributes {
    Attributes::Resource {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// The authorizer's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// Why: the binding that allowed it, or what went wrong looking the rules up.
    pub reason: String,
    /// Refused outright (not merely not allowed).
    pub denied: bool,
}

/// The authorizer chain: the simulator's deny list (a webhook that denies), then RBAC.
pub fn authorize(store: &Store, user: &User, attributes: &Attributes) -> Decision {
    if let Attributes::Resource {
        verb,
        resource,
        subresource,
        ..
    } = attributes
    {
        let combined = combined(resource, subresource);
        if store.auth.denied.iter().any(|(v, r)| v == verb && *r == combined) {
            return Decision {
                allowed: false,
                reason: format!("the simulator was told to deny {verb} {combined}"),
                denied: true,
            };
        }
    }
    rbac(store, user, attributes)
}

fn combined(resource: &str, subresource: &str) -> String {
    if subresource.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}/{subresource}")
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";

/// RBAC as the API server evaluates it: every ClusterRoleBinding, then the RoleBindings of
/// the request's namespace, whose subjects include the user; allowed by the first rule of
/// their role that covers the request.
fn rbac(store: &Store, user: &User, attributes: &Attributes) -> Decision {
    let mut errors: Vec<String> = Vec::new();
    let cluster_key = format!("{RBAC}/clusterrolebindings");
    let namespaced_key = format!("{RBAC}/rolebindings");
    let request_namespace = match attributes {
        Attributes::Resource { namespace, .. } if !namespace.is_empty() => Some(namespace.as_str()),
        _ => None,
    };
    let cluster = store.list(&cluster_key, None).map(|b| (b, ""));
    let namespaced = request_namespace
        .into_iter()
        .flat_map(|ns| store.list(&namespaced_key, Some(ns)).map(move |b| (b, ns)));
    for (binding, namespace) in cluster.chain(namespaced) {
        let Some(subject) = binding["subjects"]
            .as_array()
            .and_then(|subjects| subjects.iter().find(|s| applies_to(s, user, namespace)))
        else {
            continue;
        };
        let role_kind = text(binding, "/roleRef/kind");
        let role_name = text(binding, "/roleRef/name");
        let role = match role_kind {
            "ClusterRole" => store.get(&format!("{RBAC}/clusterroles"), "", role_name),
            "Role" if !namespace.is_empty() => store.get(&format!("{RBAC}/roles"), namespace, role_name),
            _ => None,
        };
        let Some(role) = role else {
            let what = if role_kind == "Role" { "role" } else { "clusterrole" };
            errors.push(format!("{what}.{RBAC} \"{role_name}\" not found"));
            continue;
        };
        let rules = role["rules"].as_array().map(Vec::as_slice).unwrap_or_default();
        // Namespaced bindings never grant non-resource URLs.
        if rules.iter().any(|rule| allows(rule, attributes, namespace.is_empty())) {
            let binding_kind = if namespace.is_empty() {
                "ClusterRoleBinding"
            } else {
                "RoleBinding"
            };
            let binding_name = if namespace.is_empty() {
                text(binding, "/metadata/name").to_owned()
            } else {
                format!("{}/{namespace}", text(binding, "/metadata/name"))
            };
            return Decision {
                allowed: true,
                reason: format!(
                    "RBAC: allowed by {binding_kind} \"{binding_name}\" of {role_kind} \"{role_name}\" to {}",
                    describe(subject, namespace)
                ),
                denied: false,
            };
        }
    }
    let reason = match errors.len() {
        0 => String::new(),
        1 => format!("RBAC: {}", errors[0]),
        _ => format!("RBAC: [{}]", errors.join(", ")),
    };
    Decision {
        allowed: false,
        reason,
        denied: false,
    }
}

/// `User "x"`, `Group "g"`, `ServiceAccount "name/namespace"`, as RBAC names a subject.
fn describe(subject: &Value, binding_namespace: &str) -> String {
    let name = text(subject, "/name");
    match text(subject, "/kind") {
        "ServiceAccount" => {
            let ns = Some(text(subject, "/namespace"))
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            format!("ServiceAccount \"{name}/{ns}\"")
        }
        kind => format!("{kind} \"{name}\""),
    }
}

fn applies_to(subject: &Value, user: &User, binding_namespace: &str) -> bool {
    let name = text(subject, "/name");
    match text(subject, "/kind") {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = Some(text(subject, "/namespace"))
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            user.as_service_account() == Some((ns, name))
        }
        _ => false,
    }
}

fn strings(rule: &Value, field: &str) -> Vec<String> {
    rule[field]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn allows(rule: &Value, attributes: &Attributes, cluster_wide: bool) -> bool {
    let verbs = strings(rule, "verbs");
    if !verbs.iter().any(|v| v == "*" || v == attributes.verb()) {
        return false;
    }
    match attributes {
        Attributes::Resource {
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            let groups = strings(rule, "apiGroups");
            if !groups.iter().any(|g| g == "*" || g == group) {
                return false;
            }
            let wanted = combined(resource, subresource);
            let resources = strings(rule, "resources");
            let resource_matches = resources.iter().any(|r| {
                r == "*"
                    || *r == wanted
                    || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource.as_str()))
            });
            let names = strings(rule, "resourceNames");
            resource_matches && (names.is_empty() || names.iter().any(|n| n == name))
        }
        Attributes::NonResource { path, .. } => {
            cluster_wide
                && strings(rule, "nonResourceURLs").iter().any(|u| {
                    u == "*" || u == path || u.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix))
                })
        }
    }
}

/// 403, in the API server's words: `pods "x" is forbidden: User "u" cannot delete resource
/// "pods" in API group "" in the namespace "ns"`, then the authorizer's reason if it gave one.
pub fn forbidden(user: &User, attributes: &Attributes, reason: &str) -> ApiError {
    let suffix = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    match attributes {
        Attributes::Resource {
            verb,
            group,
            resource,
            subresource,
            namespace,
            name,
        } => {
            let qualified = if group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{group}")
            };
            let subject = if name.is_empty() {
                qualified
            } else {
                format!("{qualified} \"{name}\"")
            };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace \"{namespace}\"")
            };
            let mut e = ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{}\" in API group \"{group}\" {scope}{suffix}",
                    user.name,
                    combined(resource, subresource)
                ),
            );
            let mut details = serde_json::Map::new();
            for (key, value) in [("name", name), ("group", group), ("kind", resource)] {
                if !value.is_empty() {
                    details.insert(key.into(), json!(value));
                }
            }
            e.details = Some(Value::Object(details));
            e
        }
        Attributes::NonResource { verb, path } => {
            let mut e = ApiError::new(
                403,
                "Forbidden",
                format!(
                    "forbidden: User \"{}\" cannot {verb} path \"{path}\"{suffix}",
                    user.name
                ),
            );
            e.details = Some(json!({}));
            e
        }
    }
}

/// Authorizes one request, or says why not.
pub fn check(store: &Store, user: &User, attributes: &Attributes) -> Result<(), ApiError> {
    let decision = authorize(store, user, attributes);
    if decision.allowed {
        Ok(())
    } else {
        Err(forbidden(user, attributes, &decision.reason))
    }
}

/// SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview: the authorizer's
/// answer for the user the review names (the caller, for a self review); SelfSubjectReview:
/// who the caller is. Not stored.
pub fn review(
    store: &Store,
    caller: &User,
    ty: &ResourceType,
    namespace: &str,
    mut object: Value,
) -> Result<Value, ApiError> {
    if ty.kind == "SelfSubjectReview" {
        // `kubectl auth whoami`.
        object["metadata"] = json!({"creationTimestamp": null});
        object["status"] = json!({"userInfo": {"username": caller.name, "groups": caller.groups}});
        return Ok(object);
    }
    let spec = &object["spec"];
    let has = |field: &str| spec.get(field).is_some_and(|v| !v.is_null());
    let invalid = |field: &str, reason: &'static str, message: String| {
        // The API server's own wording, with the kind left out as it leaves it out.
        let mut e = ApiError::new(
            422,
            "Invalid",
            format!(".{} \"\" is invalid: {field}: {message}", ty.group),
        );
        e.details =
            Some(json!({"group": ty.group, "causes": [{"reason": reason, "message": message, "field": field}]}));
        e
    };
    if has("resourceAttributes") == has("nonResourceAttributes") {
        return Err(invalid(
            "spec.resourceAttributes",
            "FieldValueInvalid",
            "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
                .into(),
        ));
    }
    let user = match ty.kind.as_str() {
        "SelfSubjectAccessReview" => caller.clone(),
        _ => {
            let name = text(spec, "/user");
            let groups = strings(spec, "groups");
            if name.is_empty() && groups.is_empty() {
                return Err(invalid(
                    "spec.user",
                    "FieldValueInvalid",
                    "Invalid value: \"\": at least one of user or group must be specified".into(),
                ));
            }
            User {
                name: name.to_owned(),
                groups,
            }
        }
    };
    let attributes = if has("resourceAttributes") {
        let a = &spec["resourceAttributes"];
        let review_namespace = text(a, "/namespace");
        if ty.kind == "LocalSubjectAccessReview" && review_namespace != namespace {
            return Err(invalid(
                "spec.resourceAttributes.namespace",
                "FieldValueInvalid",
                format!("Invalid value: {review_namespace:?}: must match metadata.namespace"),
            ));
        }
        resource_attributes(
            text(a, "/verb"),
            text(a, "/group"),
            text(a, "/resource"),
            text(a, "/subresource"),
            review_namespace,
            text(a, "/name"),
        )
    } else {
        let a = &spec["nonResourceAttributes"];
        Attributes::NonResource {
            verb: text(a, "/verb").to_owned(),
            path: text(a, "/path").to_owned(),
        }
    };
    let decision = authorize(store, &user, &attributes);
    let mut status = json!({"allowed": decision.allowed});
    if decision.denied {
        status["denied"] = json!(true);
    }
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    object["status"] = status;
    if object["metadata"].is_null() {
        object["metadata"] = json!({"creationTimestamp": null});
    }
    Ok(object)
}

/// The TokenRequest API (`POST serviceaccounts/NAME/token`): a token for the ServiceAccount,
/// valid until it expires or the ServiceAccount is deleted.
pub fn token_request(store: &mut Store, namespace: &str, name: &str, request: &Value) -> Result<Value, ApiError> {
    let ty = store.type_by_key("/serviceaccounts").expect("built-in type");
    let account = store
        .get("/serviceaccounts", namespace, name)
        .ok_or_else(|| ApiError::not_found(&ty, name))?;
    let uid = text(account, "/metadata/uid").to_owned();
    let seconds = request
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    if seconds < 600 {
        let cause = Cause {
            field: "spec.expirationSeconds".into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {seconds}: may not specify a duration less than 10 minutes"),
        };
        return Err(ApiError::invalid_kind(
            "TokenRequest.authentication.k8s.io",
            "authentication.k8s.io",
            name,
            vec![cause],
        ));
    }
    let seconds = seconds.min(1 << 32);
    let expires = store.clock.now() + chrono::Duration::seconds(seconds);
    let token = format!("sim-sa-{}", secret());
    store.auth.tokens.insert(
        token.clone(),
        Token {
            namespace: namespace.into(),
            name: name.into(),
            uid,
            expires,
        },
    );
    let audiences = request
        .pointer("/spec/audiences")
        .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        .cloned()
        .unwrap_or_else(|| json!([AUDIENCE]));
    Ok(json!({
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": store.now_rfc3339()},
        "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": request.pointer("/spec/boundObjectRef").cloned()},
        "status": {"token": token, "expirationTimestamp": super::store::rfc3339(expires)},
    }))
}

/// The ClusterRoles and ClusterRoleBindings every cluster starts with that matter here:
/// cluster-admin for `system:masters`, discovery, version and health for everyone signed in,
/// and the access reviews any user may ask about themselves.
pub fn bootstrap(store: &mut Store) {
    let role = store
        .type_by_key(&format!("{RBAC}/clusterroles"))
        .expect("built-in type");
    let binding = store
        .type_by_key(&format!("{RBAC}/clusterrolebindings"))
        .expect("built-in type");
    let roles = [
        (
            "cluster-admin",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
            "system:masters",
        ),
        (
            "system:basic-user",
            json!([{"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                   {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]),
            "system:authenticated",
        ),
        (
            "system:discovery",
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
            "system:authenticated",
        ),
        (
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
            "system:authenticated",
        ),
    ];
    for (name, rules, group) in roles {
        let labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
        store.create_internal(
            &role,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": name, "labels": labels}, "rules": rules}),
        );
        store.create_internal(
            &binding,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": name, "labels": labels},
                   "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
                   "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": group}]}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: Method, path: &str, watch: bool) -> Attributes {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        attributes(&method, path, &segments, watch)
    }

    #[test]
    fn requests_map_to_the_attributes_the_api_server_authorizes() {
        let r = |verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str| {
            resource_attributes(verb, group, resource, sub, ns, name)
        };
        // The exec upgrade is a GET: `get pods/exec`, not `create`.
        assert_eq!(
            of(Method::GET, "/api/v1/namespaces/shop/pods/p/exec", false),
            r("get", "", "pods", "exec", "shop", "p")
        );
        // The service proxy: the name carries the port, the rest of the path is not a resource.
        assert_eq!(
            of(
                Method::POST,
                "/api/v1/namespaces/shop/services/checkout:80/proxy/api/v1/x",
                false
            ),
            r("create", "", "services", "proxy", "shop", "checkout:80")
        );
        assert_eq!(
            of(Method::GET, "/apis/apps/v1/deployments", true),
            r("watch", "apps", "deployments", "", "", "")
        );
        assert_eq!(
            of(Method::DELETE, "/api/v1/namespaces/shop/pods", false),
            r("deletecollection", "", "pods", "", "shop", "")
        );
        // A namespace is in its own namespace; its status and finalize are subresources.
        assert_eq!(
            of(Method::PUT, "/api/v1/namespaces/shop/finalize", false),
            r("update", "", "namespaces", "finalize", "shop", "shop")
        );
        assert_eq!(
            of(Method::GET, "/api/v1/namespaces/shop", false),
            r("get", "", "namespaces", "", "shop", "shop")
        );
        for path in ["/api", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v2"] {
            assert_eq!(
                of(Method::GET, path, false),
                Attributes::NonResource {
                    verb: "get".into(),
                    path: path.into()
                }
            );
        }
    }

    #[test]
    fn rules_match_as_rbac_matches_them() {
        let exec = resource_attributes("get", "", "pods", "exec", "shop", "p");
        let rule = |v: Value| allows(&v, &exec, false);
        assert!(rule(
            json!({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]})
        ));
        assert!(rule(
            json!({"apiGroups": ["*"], "resources": ["*/exec"], "verbs": ["*"]})
        ));
        // `pods` does not cover its subresources, nor `create` the upgrade's `get`.
        assert!(!rule(
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]})
        ));
        assert!(!rule(
            json!({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]})
        ));
        assert!(!rule(
            json!({"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"], "resourceNames": ["q"]})
        ));
        let path = Attributes::NonResource {
            verb: "get".into(),
            path: "/apis/apps".into(),
        };
        let rule = json!({"nonResourceURLs": ["/apis/*"], "verbs": ["get"]});
        assert!(allows(&rule, &path, true));
        // A RoleBinding never grants a non-resource URL.
        assert!(!allows(&rule, &path, false));
    }
}
