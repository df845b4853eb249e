//! The resource types the simulator serves, and the discovery documents that describe them.

use serde_json::{Value, json};

/// One resource type (`apps/v1 deployments`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// `status`, `scale`, `eviction`, `ephemeralcontainers`, `finalize`.
    pub subresources: Vec<String>,
    /// Types that cannot be listed or read, only created (`selfsubjectaccessreviews`).
    pub create_only: bool,
    /// A custom resource's `additionalPrinterColumns`, as its CRD states them.
    pub printer_columns: Vec<Value>,
    /// Served for a CustomResourceDefinition (no strategic merge patch, schema validation).
    pub custom: bool,
    /// A custom resource's structural schema (`openAPIV3Schema` of its version).
    pub schema: Option<Value>,
}

impl ResourceType {
    fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
            short_names: Vec::new(),
            subresources: Vec::new(),
            create_only: false,
            printer_columns: Vec::new(),
            custom: false,
            schema: None,
        }
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    fn sub(mut self, names: &[&str]) -> Self {
        self.subresources = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage identity: the same object whatever version it is read at.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// `pods` or `deployments.apps`, as the API server names resources in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has(&self, subresource: &str) -> bool {
        self.subresources.iter().any(|s| s == subresource)
    }

    /// A type from a CustomResourceDefinition object, one per served version.
    pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
        let spec = &crd["spec"];
        let names = &spec["names"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let versions = spec["versions"].as_array().cloned().unwrap_or_default();
        versions
            .iter()
            .filter(|v| v["served"].as_bool().unwrap_or(true))
            .map(|v| {
                let mut subresources = Vec::new();
                if v.pointer("/subresources/status").is_some() {
                    subresources.push("status".to_owned());
                }
                if v.pointer("/subresources/scale").is_some() {
                    subresources.push("scale".to_owned());
                }
                ResourceType {
                    group: text(&spec["group"]),
                    version: text(&v["name"]),
                    plural: text(&names["plural"]),
                    singular: names["singular"]
                        .as_str()
                        .map_or_else(|| text(&names["kind"]).to_lowercase(), str::to_owned),
                    kind: text(&names["kind"]),
                    namespaced: spec["scope"].as_str() != Some("Cluster"),
                    short_names: names["shortNames"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                        .unwrap_or_default(),
                    subresources,
                    create_only: false,
                    printer_columns: v["additionalPrinterColumns"].as_array().cloned().unwrap_or_default(),
                    custom: true,
                    schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                }
            })
            .collect()
    }
}

/// The built-in types.
pub fn builtin() -> Vec<ResourceType> {
    let review = |plural: &str, kind: &str, namespaced: bool| {
        let mut t = ResourceType::new("authorization.k8s.io", "v1", plural, kind, namespaced);
        t.create_only = true;
        t
    };
    const RBAC: &str = "rbac.authorization.k8s.io";
    vec![
        ResourceType::new("", "v1", "namespaces", "Namespace", false)
            .short(&["ns"])
            .sub(&["status", "finalize"]),
        ResourceType::new("", "v1", "nodes", "Node", false)
            .short(&["no"])
            .sub(&["status"]),
        ResourceType::new("", "v1", "pods", "Pod", true).short(&["po"]).sub(&[
            "status",
            "eviction",
            "ephemeralcontainers",
        ]),
        ResourceType::new("", "v1", "configmaps", "ConfigMap", true).short(&["cm"]),
        ResourceType::new("", "v1", "events", "Event", true).short(&["ev"]),
        ResourceType::new("", "v1", "services", "Service", true)
            .short(&["svc"])
            .sub(&["status"]),
        ResourceType::new("", "v1", "serviceaccounts", "ServiceAccount", true)
            .short(&["sa"])
            .sub(&["token"]),
        ResourceType::new("apps", "v1", "deployments", "Deployment", true)
            .short(&["deploy"])
            .sub(&["status", "scale"]),
        ResourceType::new("apps", "v1", "replicasets", "ReplicaSet", true)
            .short(&["rs"])
            .sub(&["status", "scale"]),
        ResourceType::new("apps", "v1", "statefulsets", "StatefulSet", true)
            .short(&["sts"])
            .sub(&["status", "scale"]),
        ResourceType::new("apps", "v1", "daemonsets", "DaemonSet", true)
            .short(&["ds"])
            .sub(&["status"]),
        ResourceType::new("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true)
            .short(&["pdb"])
            .sub(&["status"]),
        ResourceType::new("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true).short(&["netpol"]),
        ResourceType::new("coordination.k8s.io", "v1", "leases", "Lease", true),
        ResourceType::new("events.k8s.io", "v1", "events", "Event", true).short(&["ev"]),
        review("selfsubjectaccessreviews", "SelfSubjectAccessReview", false),
        {
            let mut whoami = review("selfsubjectreviews", "SelfSubjectReview", false);
            whoami.group = "authentication.k8s.io".into();
            whoami
        },
        review("subjectaccessreviews", "SubjectAccessReview", false),
        review("localsubjectaccessreviews", "LocalSubjectAccessReview", true),
        ResourceType::new(RBAC, "v1", "clusterroles", "ClusterRole", false),
        ResourceType::new(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", false),
        ResourceType::new(RBAC, "v1", "roles", "Role", true),
        ResourceType::new(RBAC, "v1", "rolebindings", "RoleBinding", true),
        ResourceType::new(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
        )
        .short(&["crd", "crds"])
        .sub(&["status"]),
    ]
}

/// `APIResourceList` for one group/version.
pub fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for t in types.iter().filter(|t| t.group == group && t.version == version) {
        let verbs: Vec<&str> = if t.create_only {
            vec!["create"]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        };
        let mut entry = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": verbs,
        });
        if !t.short_names.is_empty() {
            entry["shortNames"] = json!(t.short_names);
        }
        if matches!(
            t.kind.as_str(),
            "Pod" | "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet"
        ) {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        for sub in &t.subresources {
            let (kind, group_version, verbs) = match sub.as_str() {
                "eviction" => ("Eviction", Some(("policy", "v1")), vec!["create"]),
                "token" => ("TokenRequest", Some(("authentication.k8s.io", "v1")), vec!["create"]),
                "scale" => ("Scale", Some(("autoscaling", "v1")), vec!["get", "patch", "update"]),
                "finalize" => (t.kind.as_str(), None, vec!["update"]),
                _ => (t.kind.as_str(), None, vec!["get", "patch", "update"]),
            };
            let mut entry = json!({
                "name": format!("{}/{sub}", t.plural), "singularName": "", "namespaced": t.namespaced,
                "kind": kind, "verbs": verbs,
            });
            if let Some((g, v)) = group_version {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

/// `APIGroup` for one named group.
pub fn group(types: &[ResourceType], name: &str) -> Option<Value> {
    let mut versions: Vec<&str> = types
        .iter()
        .filter(|t| t.group == name)
        .map(|t| t.version.as_str())
        .collect();
    versions.dedup();
    let first = *versions.first()?;
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    Some(json!({
        "kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": versions,
        "preferredVersion": {"groupVersion": format!("{name}/{first}"), "version": first},
    }))
}

/// `APIGroupList` of every named group.
pub fn group_list(types: &[ResourceType]) -> Value {
    let mut names: Vec<&str> = types
        .iter()
        .filter(|t| !t.group.is_empty())
        .map(|t| t.group.as_str())
        .collect();
    names.sort();
    names.dedup();
    let groups: Vec<Value> = names.iter().filter_map(|n| group(types, n)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}
