//! The OpenAPI documents an API server publishes: `/openapi/v2` (Swagger 2.0) and
//! `/openapi/v3` (an index, then one OpenAPI 3.0 document per group/version). kubectl reads
//! them to validate (`apply`, `create`: whether the server validates fields itself), to
//! `explain` and to `edit`. The built-in kinds' schemas are k8s-openapi's own; a custom
//! resource's are its CRD's `openAPIV3Schema`. Every write operation takes `fieldValidation`,
//! which tells kubectl the server checks fields (see `unknown_fields`).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::resources::ResourceType;

/// Definitions of the built-in kinds, and which definition each `(group, version, kind)` is.
struct Builtin {
    definitions: Map<String, Value>,
    roots: BTreeMap<(String, String, String), String>,
}

macro_rules! register {
    ($generator:ident, $roots:ident; $($t:ty => $group:literal, $version:literal, $kind:literal;)*) => {
        $(
            $generator.subschema_for::<$t>();
            $roots.insert(($group.to_owned(), $version.to_owned(), $kind.to_owned()), <$t>::schema_name().into_owned());
        )*
    };
}

fn builtin(settings: SchemaSettings) -> Builtin {
    let mut generator: SchemaGenerator = settings.into_generator();
    let mut roots = BTreeMap::new();
    register! { generator, roots;
        api::core::v1::Namespace => "", "v1", "Namespace";
        api::core::v1::Node => "", "v1", "Node";
        api::core::v1::Pod => "", "v1", "Pod";
        api::core::v1::ConfigMap => "", "v1", "ConfigMap";
        api::core::v1::Event => "", "v1", "Event";
        api::core::v1::Service => "", "v1", "Service";
        api::core::v1::ServiceAccount => "", "v1", "ServiceAccount";
        api::apps::v1::Deployment => "apps", "v1", "Deployment";
        api::apps::v1::ReplicaSet => "apps", "v1", "ReplicaSet";
        api::apps::v1::StatefulSet => "apps", "v1", "StatefulSet";
        api::apps::v1::DaemonSet => "apps", "v1", "DaemonSet";
        api::policy::v1::PodDisruptionBudget => "policy", "v1", "PodDisruptionBudget";
        api::policy::v1::Eviction => "policy", "v1", "Eviction";
        api::networking::v1::NetworkPolicy => "networking.k8s.io", "v1", "NetworkPolicy";
        api::coordination::v1::Lease => "coordination.k8s.io", "v1", "Lease";
        api::events::v1::Event => "events.k8s.io", "v1", "Event";
        api::authorization::v1::SelfSubjectAccessReview => "authorization.k8s.io", "v1", "SelfSubjectAccessReview";
        api::authorization::v1::SubjectAccessReview => "authorization.k8s.io", "v1", "SubjectAccessReview";
        api::authorization::v1::LocalSubjectAccessReview => "authorization.k8s.io", "v1", "LocalSubjectAccessReview";
        api::authentication::v1::SelfSubjectReview => "authentication.k8s.io", "v1", "SelfSubjectReview";
        api::authentication::v1::TokenRequest => "authentication.k8s.io", "v1", "TokenRequest";
        api::rbac::v1::ClusterRole => "rbac.authorization.k8s.io", "v1", "ClusterRole";
        api::rbac::v1::ClusterRoleBinding => "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding";
        api::rbac::v1::Role => "rbac.authorization.k8s.io", "v1", "Role";
        api::rbac::v1::RoleBinding => "rbac.authorization.k8s.io", "v1", "RoleBinding";
        apiextensions::CustomResourceDefinition => "apiextensions.k8s.io", "v1", "CustomResourceDefinition";
        api::autoscaling::v1::Scale => "autoscaling", "v1", "Scale";
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Status => "", "v1", "Status";
    }
    let mut definitions = generator.take_definitions(true);
    for ((group, version, kind), name) in &roots {
        if let Some(Value::Object(d)) = definitions.get_mut(name) {
            d.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": group, "version": version, "kind": kind}]),
            );
        }
    }
    Builtin { definitions, roots }
}

fn v2_builtin() -> &'static Builtin {
    static V2: OnceLock<Builtin> = OnceLock::new();
    V2.get_or_init(|| {
        let mut settings = SchemaSettings::draft07();
        settings.meta_schema = None;
        builtin(settings)
    })
}

fn v3_builtin() -> &'static Builtin {
    static V3: OnceLock<Builtin> = OnceLock::new();
    V3.get_or_init(|| {
        let mut settings = SchemaSettings::openapi3();
        settings.meta_schema = None;
        builtin(settings)
    })
}

/// `dev.disasterpiece.v1alpha1.Scenario`: a custom kind's definition name, as the API server
/// makes it (the group reversed).
fn custom_name(ty: &ResourceType) -> String {
    let mut parts: Vec<&str> = ty.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{}", parts.join("."), ty.version, ty.kind)
}

/// The definition of a custom kind: its CRD's schema with `apiVersion`, `kind`, `metadata`.
fn custom_definition(ty: &ResourceType, refs: &str) -> Value {
    let mut schema = ty.schema.clone().unwrap_or_else(|| json!({"type": "object"}));
    if let Some(object) = schema.as_object_mut() {
        let properties = object.entry("properties").or_insert_with(|| json!({}));
        properties["apiVersion"] = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."});
        properties["kind"] = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."});
        properties["metadata"] = json!({"$ref": format!("{refs}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")});
        object.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": ty.group, "version": ty.version, "kind": ty.kind}]),
        );
    }
    schema
}

/// The definition name of a served type, when there is one.
fn definition_of(builtin: &Builtin, ty: &ResourceType) -> Option<String> {
    if ty.custom {
        return Some(custom_name(ty));
    }
    builtin
        .roots
        .get(&(ty.group.clone(), ty.version.clone(), ty.kind.clone()))
        .cloned()
}

/// Which OpenAPI a document is.
#[derive(Clone, Copy, PartialEq)]
enum Flavour {
    V2,
    V3,
}

impl Flavour {
    fn refs(self) -> &'static str {
        match self {
            Flavour::V2 => "#/definitions/",
            Flavour::V3 => "#/components/schemas/",
        }
    }

    fn parameter(self, name: &str, location: &str, required: bool, description: &str) -> Value {
        match self {
            Flavour::V2 => {
                json!({"name": name, "in": location, "required": required, "type": "string", "uniqueItems": true, "description": description})
            }
            Flavour::V3 => {
                json!({"name": name, "in": location, "required": required, "description": description, "schema": {"type": "string", "uniqueItems": true}})
            }
        }
    }

    fn response(self, definition: &str) -> Value {
        let schema = json!({"$ref": format!("{}{definition}", self.refs())});
        match self {
            Flavour::V2 => {
                json!({"200": {"description": "OK", "schema": schema}, "401": {"description": "Unauthorized"}})
            }
            Flavour::V3 => {
                json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}, "401": {"description": "Unauthorized"}})
            }
        }
    }
}

const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn (the default), Strict.";

/// The paths of one served type: collection, item and subresources, each operation with
/// the `x-kubernetes-group-version-kind` and `x-kubernetes-action` kubectl looks for.
fn paths_of(ty: &ResourceType, definition: &str, flavour: Flavour, paths: &mut Map<String, Value>) {
    let prefix = if ty.group.is_empty() {
        format!("/api/{}", ty.version)
    } else {
        format!("/apis/{}/{}", ty.group, ty.version)
    };
    let collection = if ty.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", ty.plural)
    } else {
        format!("{prefix}/{}", ty.plural)
    };
    let gvk = json!({"group": ty.group, "version": ty.version, "kind": ty.kind});
    let mut common = vec![flavour.parameter(
        "pretty",
        "query",
        false,
        "If 'true', then the output is pretty printed.",
    )];
    if ty.namespaced {
        common.push(flavour.parameter(
            "namespace",
            "path",
            true,
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let operation = |action: &str, verb: &str, extra: Vec<Value>, responds: &str| {
        let mut parameters = extra;
        if matches!(verb, "post" | "put" | "patch") {
            parameters.push(flavour.parameter(
                "dryRun",
                "query",
                false,
                "When present, indicates that modifications should not be persisted.",
            ));
            parameters.push(flavour.parameter(
                "fieldManager",
                "query",
                false,
                "fieldManager is a name associated with the actor or entity that is making these changes.",
            ));
            parameters.push(flavour.parameter("fieldValidation", "query", false, FIELD_VALIDATION));
        }
        if verb == "patch" {
            parameters.push(flavour.parameter("force", "query", false, "Force is going to \"force\" Apply requests."));
        }
        let mut op = json!({
            "operationId": format!("{action}{}", ty.kind),
            "parameters": parameters,
            "responses": flavour.response(responds),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        });
        if matches!(verb, "post" | "put" | "patch") {
            let types: &[&str] = if verb == "patch" {
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                    "application/apply-patch+yaml",
                ]
            } else {
                &["*/*"]
            };
            match flavour {
                Flavour::V2 => {
                    op["consumes"] = json!(types);
                    op["parameters"].as_array_mut().expect("a list").push(json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": format!("{}{definition}", flavour.refs())}}));
                }
                Flavour::V3 => {
                    let content: Map<String, Value> = types
                        .iter()
                        .map(|t| {
                            (
                                (*t).to_owned(),
                                json!({"schema": {"$ref": format!("{}{definition}", flavour.refs())}}),
                            )
                        })
                        .collect();
                    op["requestBody"] = json!({"content": content, "required": true});
                }
            }
        }
        op
    };
    let with_common = |mut item: Value| {
        item["parameters"] = json!(common);
        item
    };
    if !ty.create_only {
        let mut item_parameters = common.clone();
        item_parameters.push(flavour.parameter("name", "path", true, &format!("name of the {}", ty.kind)));
        let item = json!({
            "get": operation("get", "get", Vec::new(), definition),
            "put": operation("put", "put", Vec::new(), definition),
            "patch": operation("patch", "patch", Vec::new(), definition),
            "delete": operation("delete", "delete", Vec::new(), "io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
            "parameters": item_parameters.clone(),
        });
        paths.insert(format!("{collection}/{{name}}"), item);
        for sub in &ty.subresources {
            let (subject, verbs): (&str, &[&str]) = match sub.as_str() {
                "eviction" => ("io.k8s.api.policy.v1.Eviction", &["post"]),
                "token" => ("io.k8s.api.authentication.v1.TokenRequest", &["post"]),
                "scale" => ("io.k8s.api.autoscaling.v1.Scale", &["get", "put", "patch"]),
                "finalize" => (definition, &["put"]),
                _ => (definition, &["get", "put", "patch"]),
            };
            let mut path = json!({"parameters": item_parameters.clone()});
            for verb in verbs {
                let action = if *verb == "post" { "post" } else { verb };
                path[*verb] = operation(action, verb, Vec::new(), subject);
            }
            paths.insert(format!("{collection}/{{name}}/{sub}"), path);
        }
    }
    let mut list = with_common(json!({"post": operation("post", "post", Vec::new(), definition)}));
    if !ty.create_only {
        list["get"] = operation("list", "get", Vec::new(), definition);
        list["delete"] = operation(
            "deletecollection",
            "delete",
            Vec::new(),
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        );
    }
    paths.insert(collection, list);
}

/// The definitions `roots` refer to, directly or not.
fn reachable(all: &Map<String, Value>, roots: impl IntoIterator<Item = String>, refs: &str) -> BTreeSet<String> {
    fn collect(value: &Value, refs: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref")
                    && let Some(name) = r.strip_prefix(refs)
                {
                    out.push(name.to_owned());
                }
                map.values().for_each(|v| collect(v, refs, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, refs, out)),
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut queue: Vec<String> = roots.into_iter().collect();
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(d) = all.get(&name) {
            collect(d, refs, &mut queue);
        }
    }
    seen
}

/// A document over `types`: their paths and every definition they need.
fn document(types: &[&ResourceType], flavour: Flavour) -> (Map<String, Value>, Map<String, Value>) {
    let builtin = match flavour {
        Flavour::V2 => v2_builtin(),
        Flavour::V3 => v3_builtin(),
    };
    let mut all = builtin.definitions.clone();
    let mut paths = Map::new();
    let mut roots = vec![
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status".to_owned(),
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".to_owned(),
    ];
    for ty in types {
        let Some(definition) = definition_of(builtin, ty) else {
            continue;
        };
        if ty.custom {
            all.insert(definition.clone(), custom_definition(ty, flavour.refs()));
        }
        paths_of(ty, &definition, flavour, &mut paths);
        roots.push(definition);
        for sub in &ty.subresources {
            match sub.as_str() {
                "eviction" => roots.push("io.k8s.api.policy.v1.Eviction".into()),
                "scale" => roots.push("io.k8s.api.autoscaling.v1.Scale".into()),
                "token" => roots.push("io.k8s.api.authentication.v1.TokenRequest".into()),
                _ => {}
            }
        }
    }
    let needed = reachable(&all, roots, flavour.refs());
    let definitions: Map<String, Value> = all.into_iter().filter(|(name, _)| needed.contains(name)).collect();
    (paths, definitions)
}

/// `/openapi/v2`: every served type in one Swagger 2.0 document.
pub fn v2(types: &[ResourceType], version: &str) -> Value {
    let all: Vec<&ResourceType> = types.iter().collect();
    let (paths, definitions) = document(&all, Flavour::V2);
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": version}, "paths": paths, "definitions": definitions})
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`: one group/version's document.
pub fn v3(types: &[ResourceType], group: &str, version: &str, server_version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let (paths, schemas) = document(&served, Flavour::V3);
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": server_version},
        "paths": paths, "components": {"schemas": schemas}}),
    )
}

/// `/openapi/v3`: where each group/version's document is, with a hash of its content so a
/// client's cache notices a change (a CRD added or changed).
pub fn v3_index(types: &[ResourceType], server_version: &str) -> Value {
    let mut versions: Vec<(&str, &str)> = types.iter().map(|t| (t.group.as_str(), t.version.as_str())).collect();
    versions.sort();
    versions.dedup();
    let mut paths = Map::new();
    for (group, version) in versions {
        let key = if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for t in types.iter().filter(|t| t.group == group && t.version == version) {
            format!("{t:?}").hash(&mut hasher);
        }
        server_version.hash(&mut hasher);
        let hash = format!("{:016X}", hasher.finish());
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

/// The fields of `object` its kind's schema does not know, as the API server names them for
/// `fieldValidation` (`spec.replicass`, `spec.template.spec.containers[0].imag`).
pub fn unknown_fields(ty: &ResourceType, object: &Value) -> Vec<String> {
    let builtin = v3_builtin();
    let (schema, definitions) = if ty.custom {
        if ty.schema.is_none() {
            return Vec::new();
        }
        (custom_definition(ty, Flavour::V3.refs()), &builtin.definitions)
    } else {
        let Some(name) = definition_of(builtin, ty) else {
            return Vec::new();
        };
        let Some(schema) = builtin.definitions.get(&name) else {
            return Vec::new();
        };
        (schema.clone(), &builtin.definitions)
    };
    let mut out = Vec::new();
    walk_unknown(&schema, definitions, object, "", &mut out);
    out
}

fn walk_unknown(schema: &Value, definitions: &Map<String, Value>, value: &Value, path: &str, out: &mut Vec<String>) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => match r.strip_prefix(Flavour::V3.refs()).and_then(|n| definitions.get(n)) {
            Some(d) => d,
            None => return,
        },
        None => schema,
    };
    // `allOf: [{$ref}]`, as schemars wraps a described reference.
    if let Some(Value::Array(all)) = schema.get("allOf") {
        for s in all {
            walk_unknown(s, definitions, value, path, out);
        }
        return;
    }
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (key, v) in map {
                    let here = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match properties.get(key) {
                        Some(s) => walk_unknown(s, definitions, v, &here, out),
                        None => out.push(here),
                    }
                }
            } else if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (key, v) in map {
                    walk_unknown(additional, definitions, v, &format!("{path}.{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk_unknown(item_schema, definitions, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_describe_the_built_in_kinds_with_their_operations() {
        let types = super::super::resources::builtin();
        let v2 = v2(&types, "v1.34.0");
        assert_eq!(v2["swagger"], "2.0");
        assert!(
            v2.pointer("/definitions/io.k8s.api.core.v1.Pod/properties/spec")
                .is_some()
        );
        let patch = &v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let apps = v3(&types, "apps", "v1", "v1.34.0").expect("apps/v1");
        let deployment = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
        // Only what apps/v1 needs: no Node in its document.
        assert!(apps["components"]["schemas"].get("io.k8s.api.core.v1.Node").is_none());
        assert!(v3(&types, "nope", "v1", "v1.34.0").is_none());
    }

    #[test]
    fn unknown_fields_are_named_by_their_path() {
        let types = super::super::resources::builtin();
        let deployments = types.iter().find(|t| t.kind == "Deployment").unwrap();
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"any": "x"}},
            "spec": {"replicass": 2, "template": {"spec": {"containers": [{"name": "a", "imag": "x", "resources": {"limits": {"cpu": "1"}}}]}}}});
        assert_eq!(
            unknown_fields(deployments, &object),
            vec!["spec.replicass", "spec.template.spec.containers[0].imag"]
        );
    }
}
