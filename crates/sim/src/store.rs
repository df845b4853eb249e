//! The simulator's storage: objects as JSON, one global resourceVersion, an event log for
//! watches, and the write paths with Kubernetes semantics (defaults, validation, optimistic
//! concurrency, subresources, graceful deletion, finalizers, dry runs, evictions).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::fields;
use super::resources::{ResourceType, builtin};
use disasterpiece_common::clock::Clock;
use disasterpiece_common::names::{is_dns_label, is_dns_subdomain};
use disasterpiece_common::selector::LabelSelector;

/// `(type key, namespace, name)`; namespace is empty for cluster-scoped objects.
pub type ObjKey = (String, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub type_key: String,
    pub namespace: String,
    pub event: EventType,
    pub object: Value,
    /// The object before the change, so label-selected watches can tell enter from leave.
    pub old: Option<Value>,
}

/// An error answer, rendered as a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(ty: &ResourceType, name: &str) -> Self {
        let mut e = ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", ty.qualified()));
        e.details = Some(details(ty, name));
        e
    }

    pub fn already_exists(ty: &ResourceType, name: &str) -> Self {
        let mut e = ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", ty.qualified()),
        );
        e.details = Some(details(ty, name));
        e
    }

    pub fn conflict(ty: &ResourceType, name: &str, why: &str) -> Self {
        let mut e = ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", ty.qualified()),
        );
        e.details = Some(details(ty, name));
        e
    }

    /// 422 with one cause per field: `Pod "x" is invalid: spec.containers: Required value`,
    /// `Deployment.apps "x" is invalid: …` (the kind qualified by its group).
    pub fn invalid(ty: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        let kind = if ty.group.is_empty() {
            ty.kind.clone()
        } else {
            format!("{}.{}", ty.kind, ty.group)
        };
        let mut e = ApiError::invalid_kind(&kind, &ty.group, name, causes);
        if let Some(details) = e.details.as_mut() {
            details["kind"] = json!(ty.kind);
        }
        e
    }

    /// [`ApiError::invalid`] for a kind the simulator does not store (`Scale.autoscaling`).
    pub fn invalid_kind(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        // The message names each distinct problem once; the causes keep every one.
        let mut text: Vec<String> = Vec::new();
        for c in &causes {
            let line = format!("{}: {}", c.field, c.message);
            if !text.contains(&line) {
                text.push(line);
            }
        }
        let message = if text.len() == 1 {
            format!("{kind} \"{name}\" is invalid: {}", text[0])
        } else {
            format!("{kind} \"{name}\" is invalid: [{}]", text.join(", "))
        };
        let mut e = ApiError::new(422, "Invalid", message);
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        let short = kind.split('.').next().unwrap_or(kind);
        e.details = Some(json!({"name": name, "group": group, "kind": short, "causes": causes}));
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "code": self.code,
        });
        // Like the API server, no reason where it has none (a bare 500).
        if !self.reason.is_empty() {
            status["reason"] = json!(self.reason);
        }
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

fn details(ty: &ResourceType, name: &str) -> Value {
    json!({"name": name, "group": ty.group, "kind": ty.plural})
}

/// One field problem of a 422 answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
}

fn required(field: &str) -> Cause {
    Cause {
        field: field.into(),
        reason: "FieldValueRequired",
        message: "Required value".into(),
    }
}

fn invalid_value(field: &str, value: &Value, why: &str) -> Cause {
    Cause {
        field: field.into(),
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {value}: {why}"),
    }
}

/// What Kubernetes' IsQualifiedName finds wrong with `value` (`[prefix/]name`), in its words;
/// an empty value is left to the caller's `Required`.
fn qualified_name_problems(value: &str) -> Vec<String> {
    const NAME_RULE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    if value.is_empty() {
        return Vec::new();
    }
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    let mut problems = Vec::new();
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        problems.push(format!("prefix part {DNS_SUBDOMAIN_RULE}"));
    }
    if name.is_empty() {
        problems.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        problems.push("name part must be no more than 63 characters".into());
    }
    if !label_shaped(name) {
        problems.push(NAME_RULE.into());
    }
    problems
}

/// Whether `s` is shaped as a label value (and the name part of a qualified name): empty, or
/// alphanumerics, `-`, `_` and `.`, starting and ending with an alphanumeric. Length aside.
fn label_shaped(s: &str) -> bool {
    let edges = |b: Option<u8>| b.is_none_or(|b| b.is_ascii_alphanumeric());
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && edges(s.bytes().next())
        && edges(s.bytes().last())
}

fn forbidden(field: &str, why: &str) -> Cause {
    Cause {
        field: field.into(),
        reason: "FieldValueForbidden",
        message: format!("Forbidden: {why}"),
    }
}

/// How a write is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Subresource {
    #[default]
    Main,
    Status,
    EphemeralContainers,
}

/// Who writes through the API, for the record of field ownership.
#[derive(Debug, Clone, PartialEq)]
pub struct Writer {
    pub manager: fields::Manager,
    /// For an apply: the fields its configuration names.
    pub applied: Option<std::collections::BTreeSet<fields::Path>>,
    /// `dryRun=All`: validated and admitted, not stored.
    pub dry_run: bool,
}

/// DELETE options.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

/// What DELETE did.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    /// Removed; the object as it was.
    Gone(Value),
    /// Marked for deletion (grace period or finalizers); the object as it is now.
    Pending(Value),
}

pub struct Store {
    pub rv: u64,
    pub types: Vec<ResourceType>,
    objects: BTreeMap<ObjKey, Value>,
    log: VecDeque<Arc<WatchEvent>>,
    log_cap: usize,
    pub events: broadcast::Sender<Arc<WatchEvent>>,
    rng: u64,
    /// When graceful pod deletions complete, by uid.
    pub deletion_deadlines: HashMap<String, Instant>,
    /// Tokens, and requests refused to everyone.
    pub auth: super::auth::Registry,
    /// The API server's clock: creation and deletion timestamps, conditions, container states.
    pub clock: Clock,
}

/// A time as the API server writes it (`metav1.Time`: seconds, `Z`).
pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `Value::pointer` without its allocations (it copies every segment to unescape it): the
/// world reads a few fields of every object on every pass, so this is the hot path.
pub fn at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.contains('~') {
        return v.pointer(pointer);
    }
    let mut current = v;
    for segment in pointer.split('/').skip(1) {
        current = match current {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

pub fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    at(v, pointer).and_then(Value::as_str).unwrap_or_default()
}

/// A pod that serves: Ready and not being deleted.
pub fn pod_is_healthy(pod: &Value) -> bool {
    at(pod, "/metadata/deletionTimestamp").is_none()
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

impl Store {
    pub fn new(log_cap: usize, clock: Clock) -> Self {
        let (events, _) = broadcast::channel(1 << 16);
        let seed = disasterpiece_common::random::u64();
        Store {
            rv: 1,
            types: builtin(),
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            log_cap: log_cap.max(1),
            events,
            rng: seed | 1,
            deletion_deadlines: HashMap::new(),
            auth: super::auth::Registry::new(),
            clock,
        }
    }

    /// The API server's time now, as it writes it.
    pub fn now_rfc3339(&self) -> String {
        rfc3339(self.clock.now())
    }

    /// A pseudo-random number (SplitMix64); names and uids need no cryptographic quality.
    pub fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Five characters as in generated Kubernetes names (`checkout-7d4b9-x2k4p`).
    pub fn random_suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| ALPHABET[(self.random() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    pub fn uid(&mut self) -> String {
        let (a, b) = (self.random(), self.random());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    pub fn type_by_key(&self, key: &str) -> Option<ResourceType> {
        self.types.iter().find(|t| t.key() == key).cloned()
    }

    /// Forgets the change history, as a real API server's watch cache holds none from before
    /// it started: the seeded world is old news, and a watch from before now gets 410.
    pub fn compact_history(&mut self) {
        self.log.clear();
    }

    /// The oldest resourceVersion a watch can still resume from.
    pub fn oldest_resumable(&self) -> u64 {
        self.log.front().map_or(self.rv, |e| e.rv - 1)
    }

    /// The events after `rv`, oldest first; `None` when some have been compacted away.
    pub fn events_since(&self, rv: u64) -> Option<Vec<Arc<WatchEvent>>> {
        if rv < self.oldest_resumable() {
            return None;
        }
        Some(self.log.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    pub fn get(&self, type_key: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(type_key.to_owned(), namespace.to_owned(), name.to_owned()))
    }

    /// Every object of a type, in one namespace or all, ordered by namespace and name.
    pub fn list<'a>(&'a self, type_key: &'a str, namespace: Option<&'a str>) -> impl Iterator<Item = &'a Value> + 'a {
        let start = (
            type_key.to_owned(),
            namespace.unwrap_or_default().to_owned(),
            String::new(),
        );
        self.objects
            .range(start..)
            .take_while(move |((t, ns, _), _)| t == type_key && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
    }

    /// Objects whose ownerReferences name `uid`.
    pub fn owned_by<'a>(
        &'a self,
        type_key: &'a str,
        namespace: &'a str,
        uid: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.list(type_key, Some(namespace)).filter(move |o| {
            at(o, "/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
    }

    /// Stores a change, bumps the resourceVersion, logs and broadcasts the event.
    fn commit(&mut self, key: ObjKey, object: Option<Value>, event: EventType, old: Option<Value>) -> Value {
        self.rv += 1;
        let rv = self.rv;
        let mut stored = match object {
            Some(o) => o,
            None => old.clone().unwrap_or(Value::Null),
        };
        stored["metadata"]["resourceVersion"] = json!(rv.to_string());
        match event {
            EventType::Deleted => {
                self.objects.remove(&key);
            }
            _ => {
                self.objects.insert(key.clone(), stored.clone());
            }
        }
        let entry = Arc::new(WatchEvent {
            rv,
            type_key: key.0,
            namespace: key.1,
            event,
            object: stored.clone(),
            old,
        });
        if self.log.len() >= self.log_cap {
            self.log.pop_front();
        }
        self.log.push_back(entry.clone());
        let _ = self.events.send(entry);
        stored
    }

    /// Writes an object as a controller does: no validation, no subresource rules.
    pub fn put_internal(&mut self, ty: &ResourceType, object: Value) -> Value {
        let key = (
            ty.key(),
            text(&object, "/metadata/namespace").to_owned(),
            text(&object, "/metadata/name").to_owned(),
        );
        let old = self.objects.get(&key).cloned();
        if old.as_ref().is_some_and(|o| same_but_version(o, &object)) {
            return old.unwrap_or_default();
        }
        let event = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.commit(key, Some(object), event, old)
    }

    /// Creates an object as a controller does: fills in metadata and the API server's
    /// defaults (so later updates compare like with like), no validation.
    pub fn create_internal(&mut self, ty: &ResourceType, mut object: Value) -> Value {
        self.fill_metadata(ty, &mut object);
        default_object(ty, &mut object);
        self.put_internal(ty, object)
    }

    /// Removes an object at once, as the garbage collector or kubelet finishing does.
    pub fn remove_internal(&mut self, type_key: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (type_key.to_owned(), namespace.to_owned(), name.to_owned());
        let old = self.objects.get(&key).cloned()?;
        if let Some(uid) = at(&old, "/metadata/uid").and_then(Value::as_str) {
            self.deletion_deadlines.remove(uid);
        }
        Some(self.commit(key, None, EventType::Deleted, Some(old)))
    }

    fn fill_metadata(&mut self, ty: &ResourceType, object: &mut Value) {
        if !object.is_object() {
            *object = json!({});
        }
        object["apiVersion"] = json!(ty.api_version());
        object["kind"] = json!(ty.kind);
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        let uid = self.uid();
        let meta = &mut object["metadata"];
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = json!(self.now_rfc3339());
        if let Value::Object(m) = meta {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        if object.get("spec").is_some() {
            object["metadata"]["generation"] = json!(1);
        }
    }

    /// POST: create. `namespace` is empty for cluster-scoped types.
    pub fn create(
        &mut self,
        ty: &ResourceType,
        namespace: &str,
        mut object: Value,
        by: &Writer,
    ) -> Result<Value, ApiError> {
        let dry_run = by.dry_run;
        if !object.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        if ty.namespaced {
            let body_ns = text(&object, "/metadata/namespace");
            if !body_ns.is_empty() && body_ns != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            self.check_namespace_writable(namespace)?;
            object["metadata"]["namespace"] = json!(namespace);
        } else if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("namespace");
        }
        let mut name = text(&object, "/metadata/name").to_owned();
        if name.is_empty() && !ty.create_only {
            let prefix = text(&object, "/metadata/generateName").to_owned();
            if prefix.is_empty() {
                let cause = Cause {
                    field: "metadata.name".into(),
                    reason: "FieldValueRequired",
                    message: "Required value: name or generateName is required".into(),
                };
                return Err(ApiError::invalid(ty, "", vec![cause]));
            }
            name = format!("{prefix}{}", self.random_suffix(5));
            object["metadata"]["name"] = json!(name);
        }
        if !ty.create_only && self.get(&ty.key(), namespace, &name).is_some() {
            return Err(ApiError::already_exists(ty, &name));
        }
        self.fill_metadata(ty, &mut object);
        if let Some(m) = object["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        if ty.has("status") && ty.kind != "Namespace" && ty.kind != "Node" {
            // The status of a new object is the controllers' to write.
            if let Some(m) = object.as_object_mut() {
                m.remove("status");
            }
        }
        default_object(ty, &mut object);
        if let Some(schema) = &ty.schema {
            super::schema::prune_object(schema, &mut object);
        }
        let causes = validate(ty, &object, None);
        if !causes.is_empty() {
            return Err(ApiError::invalid(ty, &name, causes));
        }
        // Admission after validation, dry runs included, as the API server orders them.
        if ty.kind == "Pod" {
            self.admit_new_pod(namespace, &object)?;
        }
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("managedFields");
        }
        let now = self.now_rfc3339();
        fields::record(
            None,
            &mut object,
            &by.manager,
            by.applied.as_ref(),
            &ty.api_version(),
            &now,
        );
        if dry_run {
            return Ok(object);
        }
        let stored = self.put_internal(ty, object);
        if ty.kind == "CustomResourceDefinition" {
            self.register_crd(&stored);
        }
        if ty.kind == "Namespace" {
            // The ServiceAccount controller does this within moments; here it is at once, so
            // a pod created right after its namespace does not race it.
            self.ensure_default_service_account(&name);
        }
        Ok(stored)
    }

    fn check_namespace_writable(&self, namespace: &str) -> Result<(), ApiError> {
        let ns_type = self.type_by_key("/namespaces").expect("namespaces is built in");
        let ns = self
            .get("/namespaces", "", namespace)
            .ok_or_else(|| ApiError::not_found(&ns_type, namespace))?;
        if at(ns, "/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!("unable to create new content in namespace {namespace} because it is being terminated"),
            ));
        }
        Ok(())
    }

    fn register_crd(&mut self, crd: &Value) {
        for ty in ResourceType::from_crd(crd) {
            if !self
                .types
                .iter()
                .any(|t| t.group == ty.group && t.version == ty.version && t.plural == ty.plural)
            {
                self.types.push(ty);
            }
        }
        let mut established = crd.clone();
        established["status"] = json!({
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": self.now_rfc3339()},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "lastTransitionTime": self.now_rfc3339()},
            ],
            "acceptedNames": crd["spec"]["names"],
            "storedVersions": crd["spec"]["versions"].as_array().map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
        });
        let ty = self
            .type_by_key("apiextensions.k8s.io/customresourcedefinitions")
            .expect("built in");
        self.put_internal(&ty, established);
    }

    /// PUT (and the second half of PATCH): replace the object, through a subresource or not.
    pub fn update(
        &mut self,
        ty: &ResourceType,
        namespace: &str,
        name: &str,
        mut new: Value,
        sub: Subresource,
        by: &Writer,
    ) -> Result<Value, ApiError> {
        let dry_run = by.dry_run;
        let Some(old) = self.get(&ty.key(), namespace, name).cloned() else {
            return Err(ApiError::not_found(ty, name));
        };
        if !new.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let body_name = text(&new, "/metadata/name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let sent_rv = text(&new, "/metadata/resourceVersion");
        if !sent_rv.is_empty() && sent_rv != text(&old, "/metadata/resourceVersion") {
            return Err(ApiError::conflict(
                ty,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let mut result = match sub {
            Subresource::Status => {
                let mut r = old.clone();
                r["status"] = new.get("status").cloned().unwrap_or(Value::Null);
                r
            }
            Subresource::EphemeralContainers => {
                let causes = check_ephemeral_change(&old, &new);
                if !causes.is_empty() {
                    return Err(ApiError::invalid(ty, name, causes));
                }
                self.admit_pod_security(namespace, name, &old, &new)?;
                let mut r = old.clone();
                r["spec"]["ephemeralContainers"] = at(&new, "/spec/ephemeralContainers").cloned().unwrap_or(json!([]));
                r
            }
            Subresource::Main => {
                // What the server owns survives any update.
                for field in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old["metadata"].get(field) {
                        Some(v) => new["metadata"][field] = v.clone(),
                        None => {
                            if let Some(m) = new["metadata"].as_object_mut() {
                                m.remove(field);
                            }
                        }
                    }
                }
                new["metadata"]["name"] = json!(name);
                if ty.namespaced {
                    new["metadata"]["namespace"] = json!(namespace);
                }
                new["apiVersion"] = json!(ty.api_version());
                new["kind"] = json!(ty.kind);
                if ty.has("status") {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                if ty.kind == "Pod" && at(&old, "/spec/ephemeralContainers") != at(&new, "/spec/ephemeralContainers") {
                    // A pod update cannot change them: the general refusal of pod updates.
                    let cause = forbidden("spec", POD_UPDATE_RULE);
                    return Err(ApiError::invalid(ty, name, vec![cause]));
                }
                default_object(ty, &mut new);
                if old.get("spec") != new.get("spec") && new.get("spec").is_some() {
                    let generation = at(&old, "/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
                    new["metadata"]["generation"] = json!(generation + 1);
                }
                new
            }
        };
        if let Some(m) = result["metadata"].as_object_mut() {
            m.insert("resourceVersion".into(), old["metadata"]["resourceVersion"].clone());
        }
        if let Some(schema) = &ty.schema {
            super::schema::prune_object(schema, &mut result);
        }
        let causes = validate(ty, &result, Some(&old));
        if !causes.is_empty() {
            return Err(ApiError::invalid(ty, name, causes));
        }
        // Field ownership is the server's: the managers' record carries over, and a write
        // that changes nothing changes no record.
        match old.pointer("/metadata/managedFields") {
            Some(m) => result["metadata"]["managedFields"] = m.clone(),
            None => {
                if let Some(meta) = result["metadata"].as_object_mut() {
                    meta.remove("managedFields");
                }
            }
        }
        if result != old {
            let now = self.now_rfc3339();
            fields::record(
                Some(&old),
                &mut result,
                &by.manager,
                by.applied.as_ref(),
                &ty.api_version(),
                &now,
            );
        }
        if dry_run {
            return Ok(result);
        }
        // The last finalizer removed from an object being deleted: it goes now.
        let finalizers_done = result
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if at(&result, "/metadata/deletionTimestamp").is_some()
            && finalizers_done
            && ty.kind != "Pod"
            && ty.kind != "Namespace"
        {
            self.put_internal(ty, result);
            return Ok(self.remove_internal(&ty.key(), namespace, name).unwrap_or_default());
        }
        if result == old {
            return Ok(old);
        }
        result["metadata"]["resourceVersion"] = json!("");
        Ok(self.put_internal(ty, result))
    }

    /// DELETE of one object.
    pub fn delete(
        &mut self,
        ty: &ResourceType,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let Some(old) = self.get(&ty.key(), namespace, name).cloned() else {
            return Err(ApiError::not_found(ty, name));
        };
        if let Some(uid) = &opts.precondition_uid {
            let actual = text(&old, "/metadata/uid");
            if uid != actual {
                let why = format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}");
                return Err(ApiError::conflict(ty, name, &why));
            }
        }
        if let Some(rv) = &opts.precondition_rv {
            let actual = text(&old, "/metadata/resourceVersion");
            if rv != actual {
                let why = format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                );
                return Err(ApiError::conflict(ty, name, &why));
            }
        }
        let mut marked = old.clone();
        match opts.propagation.as_deref() {
            None | Some("Background") => {}
            Some(policy @ ("Foreground" | "Orphan")) => {
                let finalizer = if policy == "Foreground" {
                    "foregroundDeletion"
                } else {
                    "orphan"
                };
                let list = marked["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
                if !list.iter().any(|f| f == finalizer) {
                    let mut list = list;
                    list.push(json!(finalizer));
                    marked["metadata"]["finalizers"] = json!(list);
                }
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unsupported propagationPolicy {other:?}; use Background, Foreground or Orphan"
                )));
            }
        }
        let grace = if ty.kind == "Pod" {
            let default = old
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            let unscheduled = text(&old, "/spec/nodeName").is_empty();
            if unscheduled {
                0
            } else {
                opts.grace_period_seconds.unwrap_or(default).max(0)
            }
        } else {
            0
        };
        let has_finalizers = marked
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let waits = has_finalizers || grace > 0 || ty.kind == "Namespace";
        if opts.dry_run {
            if !waits {
                return Ok(Deleted::Gone(old));
            }
            // What the object would look like, marked, without marking it.
            if at(&old, "/metadata/deletionTimestamp").is_none() {
                let when = self.clock.now() + chrono::Duration::seconds(grace);
                marked["metadata"]["deletionTimestamp"] = json!(rfc3339(when));
                marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            }
            return Ok(Deleted::Pending(marked));
        }
        if !waits {
            let gone = self.remove_internal(&ty.key(), namespace, name).unwrap_or(old);
            return Ok(Deleted::Gone(gone));
        }
        let uid = text(&old, "/metadata/uid").to_owned();
        let deadline = Instant::now() + std::time::Duration::from_secs(grace as u64);
        let already = at(&old, "/metadata/deletionTimestamp").is_some();
        // A second DELETE may shorten the grace period, never lengthen it.
        let sooner = self.deletion_deadlines.get(&uid).is_none_or(|d| deadline < *d);
        if !already || sooner {
            let when = self.clock.now() + chrono::Duration::seconds(grace);
            marked["metadata"]["deletionTimestamp"] = json!(rfc3339(when));
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            if ty.kind == "Pod" && sooner {
                self.deletion_deadlines.insert(uid, deadline);
            }
        }
        if ty.kind == "Namespace" {
            marked["status"]["phase"] = json!("Terminating");
        }
        Ok(Deleted::Pending(self.put_internal(ty, marked)))
    }

    /// The PodDisruptionBudget arithmetic for one PDB: (expected, healthy, desired, allowed).
    pub fn pdb_numbers(&self, pdb: &Value) -> (i64, i64, i64, i64) {
        let namespace = text(pdb, "/metadata/namespace");
        let selector = at(pdb, "/spec/selector").map(LabelSelector::from_object);
        let Some(Ok(selector)) = selector else {
            return (0, 0, 0, 0);
        };
        let pods: Vec<&Value> = self
            .list("/pods", Some(namespace))
            .filter(|p| selector.matches_object(p) && at(p, "/metadata/deletionTimestamp").is_none())
            .collect();
        let expected = pods.len() as i64;
        let healthy = pods.iter().filter(|p| pod_is_healthy(p)).count() as i64;
        let resolve = |v: &Value| -> Option<i64> {
            match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s
                    .strip_suffix('%')
                    .and_then(|p| p.parse::<i64>().ok())
                    .map(|p| (p * expected + 99) / 100),
                _ => None,
            }
        };
        let desired = if let Some(min) = at(pdb, "/spec/minAvailable").and_then(resolve) {
            min
        } else if let Some(max) = at(pdb, "/spec/maxUnavailable").and_then(resolve) {
            (expected - max).max(0)
        } else {
            expected
        };
        (expected, healthy, desired, (healthy - desired).max(0))
    }

    /// POST pods/NAME/eviction: delete the pod unless a PodDisruptionBudget forbids it (429).
    pub fn evict(&mut self, namespace: &str, name: &str, body: &Value, dry_run: bool) -> Result<Value, ApiError> {
        let pods = self.type_by_key("/pods").expect("built in");
        let Some(pod) = self.get("/pods", namespace, name).cloned() else {
            return Err(ApiError::not_found(&pods, name));
        };
        let mut opts = DeleteOptions {
            grace_period_seconds: body
                .pointer("/deleteOptions/gracePeriodSeconds")
                .and_then(Value::as_i64),
            dry_run,
            ..DeleteOptions::default()
        };
        opts.precondition_uid = body
            .pointer("/deleteOptions/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if at(body, "/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|n| n != name)
        {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let success = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
        if at(&pod, "/metadata/deletionTimestamp").is_some() {
            return Ok(success); // already terminating: nothing to protect
        }
        let budgets: Vec<Value> = self
            .list("policy/poddisruptionbudgets", Some(namespace))
            .filter(|pdb| {
                at(pdb, "/spec/selector")
                    .map(LabelSelector::from_object)
                    .is_some_and(|s| s.is_ok_and(|s| !s.is_empty() && s.matches_object(&pod)))
            })
            .cloned()
            .collect();
        if budgets.len() > 1 {
            return Err(ApiError::new(
                500,
                "",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some(pdb) = budgets.first() {
            let (_, healthy, desired, allowed) = self.pdb_numbers(pdb);
            if pod_is_healthy(&pod) && allowed < 1 {
                let pdb_name = text(pdb, "/metadata/name");
                let mut e = ApiError::new(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                );
                e.details = Some(json!({"causes": [{
                    "reason": "DisruptionBudget",
                    "message": format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"),
                }]}));
                return Err(e);
            }
        }
        self.delete(&pods, namespace, name, &opts)?;
        Ok(success)
    }

    /// Every object, for the world's passes.
    pub fn all_of<'a>(&'a self, type_key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.list(type_key, None)
    }
}

/// Equal but for resourceVersion: a write that changes nothing is not an event.
fn same_but_version(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
}

/// The capabilities PodSecurity `baseline` lets a container add.
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

impl Store {
    /// PodSecurity admission for new ephemeral containers, as the namespace's
    /// `pod-security.kubernetes.io/enforce` label asks (`baseline` or `restricted`), with the
    /// API server's wording. It runs for dry runs too, which is how `plan` learns it.
    fn admit_pod_security(&self, namespace: &str, name: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
        let Some(level) = self.enforced_pod_security(namespace) else {
            return Ok(());
        };
        let existing: Vec<&Value> = old
            .pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|c| &c["name"]).collect())
            .unwrap_or_default();
        let added: Vec<&Value> = new
            .pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| !existing.contains(&&c["name"]))
            .collect();
        let pod_context = old.pointer("/spec/securityContext").cloned().unwrap_or(json!({}));
        pod_security_verdict(level, name, &pod_context, &added)
    }

    /// PodSecurity admission for a new pod: its containers and init containers. The API's
    /// create and the world's workload controllers both go through it.
    /// A namespace's `default` ServiceAccount, as the controller-manager creates it.
    pub fn ensure_default_service_account(&mut self, namespace: &str) {
        if self.get("/serviceaccounts", namespace, "default").is_none()
            && self
                .get("/namespaces", "", namespace)
                .is_some_and(|n| at(n, "/metadata/deletionTimestamp").is_none())
        {
            let ty = self.type_by_key("/serviceaccounts").expect("built-in type");
            self.create_internal(
                &ty,
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}}),
            );
        }
    }

    /// Admission of a new pod: the ServiceAccount plugin (the pod's account must exist), then
    /// PodSecurity.
    pub fn admit_new_pod(&self, namespace: &str, pod: &Value) -> Result<(), ApiError> {
        let account = text(pod, "/spec/serviceAccountName");
        if !account.is_empty() && self.get("/serviceaccounts", namespace, account).is_none() {
            let ty = self.type_by_key("/pods").expect("built-in type");
            let name = text(pod, "/metadata/name");
            let mut e = ApiError::new(
                403,
                "Forbidden",
                format!(
                    "pods \"{name}\" is forbidden: error looking up service account {namespace}/{account}: serviceaccount \"{account}\" not found"
                ),
            );
            e.details = Some(details(&ty, name));
            return Err(e);
        }
        let Some(level) = self.enforced_pod_security(namespace) else {
            return Ok(());
        };
        let containers: Vec<&Value> = ["/spec/initContainers", "/spec/containers"]
            .into_iter()
            .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
            .flatten()
            .collect();
        let pod_context = pod.pointer("/spec/securityContext").cloned().unwrap_or(json!({}));
        pod_security_verdict(level, text(pod, "/metadata/name"), &pod_context, &containers)
    }

    /// The level a namespace enforces, when it is `baseline` or `restricted`.
    fn enforced_pod_security(&self, namespace: &str) -> Option<&'static str> {
        let label = self
            .get("/namespaces", "", namespace)
            .and_then(|ns| at(ns, "/metadata/labels/pod-security.kubernetes.io~1enforce"))
            .and_then(Value::as_str);
        match label {
            Some("baseline") => Some("baseline"),
            Some("restricted") => Some("restricted"),
            _ => None,
        }
    }
}

fn pod_security_verdict(level: &str, name: &str, pod_context: &Value, containers: &[&Value]) -> Result<(), ApiError> {
    let violations = pod_security_violations(level, pod_context, containers);
    if violations.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        403,
        "Forbidden",
        format!(
            "pods \"{name}\" is forbidden: violates PodSecurity \"{level}:latest\": {}",
            violations.join(", ")
        ),
    ))
}

/// What the PodSecurity `level` forbids in `containers`, in the API server's words.
fn pod_security_violations(level: &str, pod_context: &Value, containers: &[&Value]) -> Vec<String> {
    let mut found: Vec<(&str, Vec<String>)> = Vec::new();
    let mut add = |check: &'static str, what: String| match found.iter_mut().find(|(c, _)| *c == check) {
        Some((_, list)) => list.push(what),
        None => found.push((check, vec![what])),
    };
    let restricted = level == "restricted";
    for container in containers {
        let name = container["name"].as_str().unwrap_or_default();
        let context = &container["securityContext"];
        if context["privileged"] == true {
            add(
                "privileged",
                format!("container \"{name}\" must not set securityContext.privileged=true"),
            );
        }
        let added: Vec<&str> = context
            .pointer("/capabilities/add")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let allowed: &[&str] = if restricted {
            &["NET_BIND_SERVICE"]
        } else {
            &BASELINE_CAPABILITIES
        };
        let refused: Vec<String> = added
            .iter()
            .filter(|c| !allowed.contains(c))
            .map(|c| format!("\"{c}\""))
            .collect();
        let check = if restricted {
            "unrestricted capabilities"
        } else {
            "non-default capabilities"
        };
        if restricted {
            let drops_all = context
                .pointer("/capabilities/drop")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|c| c == "ALL"));
            if !drops_all {
                add(
                    check,
                    format!("container \"{name}\" must set securityContext.capabilities.drop=[\"ALL\"]"),
                );
            }
        }
        if !refused.is_empty() {
            add(
                check,
                format!(
                    "container \"{name}\" must not include {} in securityContext.capabilities.add",
                    refused.join(", ")
                ),
            );
        }
        if !restricted {
            continue;
        }
        if context["allowPrivilegeEscalation"] != false {
            add(
                "allowPrivilegeEscalation != false",
                format!("container \"{name}\" must set securityContext.allowPrivilegeEscalation=false"),
            );
        }
        let either = |key: &str| {
            context
                .get(key)
                .filter(|v| !v.is_null())
                .or_else(|| pod_context.get(key).filter(|v| !v.is_null()))
                .cloned()
        };
        if either("runAsNonRoot") != Some(json!(true)) {
            add(
                "runAsNonRoot != true",
                format!("pod or container \"{name}\" must set securityContext.runAsNonRoot=true"),
            );
        }
        if either("runAsUser") == Some(json!(0)) {
            add("runAsUser=0", format!("container \"{name}\" must not set runAsUser=0"));
        }
        let seccomp = either("seccompProfile").and_then(|p| p["type"].as_str().map(str::to_owned));
        if !matches!(seccomp.as_deref(), Some("RuntimeDefault" | "Localhost")) {
            add(
                "seccompProfile",
                format!(
                    "pod or container \"{name}\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\""
                ),
            );
        }
    }
    // In the order of the checks' IDs (allowPrivilegeEscalation, capabilities_baseline,
    // capabilities_restricted, privileged, runAsNonRoot, runAsUser, seccompProfile_restricted),
    // as the API server lists them.
    let id = |check: &str| match check {
        "allowPrivilegeEscalation != false" => 0,
        "non-default capabilities" => 1,
        "unrestricted capabilities" => 2,
        "privileged" => 3,
        "runAsNonRoot != true" => 4,
        "runAsUser=0" => 5,
        _ => 6,
    };
    found.sort_by_key(|(check, _)| id(check));
    found
        .into_iter()
        .map(|(check, what)| format!("{check} ({})", what.join("; ")))
        .collect()
}

fn check_ephemeral_change(old: &Value, new: &Value) -> Vec<Cause> {
    let before = old
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let after = new
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut causes = Vec::new();
    for (i, container) in before.iter().enumerate() {
        match after.iter().find(|c| c["name"] == container["name"]) {
            None => causes.push(forbidden(
                &format!("spec.ephemeralContainers[{i}]"),
                "existing ephemeral containers may not be removed",
            )),
            Some(c) if c != container => causes.push(forbidden(
                &format!("spec.ephemeralContainers[{i}]"),
                "existing ephemeral containers may not be changed",
            )),
            Some(_) => {}
        }
    }
    let regular: Vec<&Value> = old
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| &c["name"])
        .collect();
    for (i, container) in after.iter().enumerate() {
        let field = format!("spec.ephemeralContainers[{i}]");
        if !is_dns_label(container["name"].as_str().unwrap_or_default()) {
            causes.push(invalid_value(
                &format!("{field}.name"),
                &container["name"],
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
            ));
        }
        if regular.contains(&&container["name"]) {
            causes.push(Cause {
                field: format!("{field}.name"),
                reason: "FieldValueDuplicate",
                message: format!("Duplicate value: {}", container["name"]),
            });
        }
        if container["image"].as_str().is_none_or(str::is_empty) {
            causes.push(required(&format!("{field}.image")));
        }
        if let Some(target) = container.get("targetContainerName").and_then(Value::as_str)
            && !regular.iter().any(|n| n.as_str() == Some(target))
        {
            causes.push(Cause {
                field: format!("{field}.targetContainerName"),
                reason: "FieldValueNotFound",
                message: format!("Not found: {target:?}"),
            });
        }
    }
    causes
}

/// Defaults the API server fills in.
fn default_object(ty: &ResourceType, object: &mut Value) {
    let set = |v: &mut Value, key: &str, default: Value| {
        if v.get(key).is_none_or(Value::is_null) {
            v[key] = default;
        }
    };
    // Every container port has a protocol (TCP unless said otherwise).
    let default_ports = |spec: &mut Value| {
        // (`get_mut`, not indexing: an index adds the field, as null, where it is absent.)
        for list in ["containers", "initContainers"] {
            for container in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                let ports = container.get_mut("ports").and_then(Value::as_array_mut);
                for port in ports.into_iter().flatten() {
                    if port.is_object() && port.get("protocol").is_none_or(Value::is_null) {
                        port["protocol"] = json!("TCP");
                    }
                }
            }
        }
    };
    match ty.kind.as_str() {
        "Pod" => {
            let spec = &mut object["spec"];
            default_ports(spec);
            set(spec, "restartPolicy", json!("Always"));
            set(spec, "terminationGracePeriodSeconds", json!(30));
            set(spec, "dnsPolicy", json!("ClusterFirst"));
            set(spec, "schedulerName", json!("default-scheduler"));
            set(spec, "serviceAccountName", json!("default"));
            let account = spec["serviceAccountName"].clone();
            set(spec, "serviceAccount", account);
            if at(object, "/status/phase").is_none() {
                object["status"]["phase"] = json!("Pending");
            }
        }
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            if object.pointer("/spec/template/spec").is_some() {
                default_ports(&mut object["spec"]["template"]["spec"]);
            }
            if ty.kind == "DaemonSet" {
                return;
            }
            set(&mut object["spec"], "replicas", json!(1));
            if ty.kind == "Deployment" {
                set(
                    &mut object["spec"],
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
                set(&mut object["spec"], "revisionHistoryLimit", json!(10));
                set(&mut object["spec"], "progressDeadlineSeconds", json!(600));
            }
            if ty.kind == "StatefulSet" {
                set(&mut object["spec"], "podManagementPolicy", json!("OrderedReady"));
            }
        }
        "Namespace" => {
            let name = text(object, "/metadata/name").to_owned();
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            if at(object, "/status/phase").is_none() {
                object["status"]["phase"] = json!("Active");
            }
        }
        _ => {}
    }
}

/// The validation the simulator does: enough that bad objects are refused with a 422.
/// A label selector as the API server prints one in messages (Go's `%#v`):
/// `v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`.
fn go_label_selector(selector: &Value) -> String {
    let quote = |s: &str| Value::from(s).to_string();
    let labels = match selector["matchLabels"].as_object() {
        None => "map[string]string(nil)".to_owned(),
        Some(map) => {
            let mut pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", quote(k), quote(v.as_str().unwrap_or_default())))
                .collect();
            pairs.sort();
            format!("map[string]string{{{}}}", pairs.join(", "))
        }
    };
    let expressions = match selector["matchExpressions"].as_array() {
        None => "[]v1.LabelSelectorRequirement(nil)".to_owned(),
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    let values = match e["values"].as_array() {
                        None => "[]string(nil)".to_owned(),
                        Some(vs) => format!(
                            "[]string{{{}}}",
                            vs.iter()
                                .map(|v| quote(v.as_str().unwrap_or_default()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                        quote(e["key"].as_str().unwrap_or_default()),
                        quote(e["operator"].as_str().unwrap_or_default())
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{expressions}}}")
}

/// The API server's words for a pod update that changes what a pod update may not.
const POD_UPDATE_RULE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// The API server's words for names and label values that break their rules.
const DNS_SUBDOMAIN_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS_LABEL_RULE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// What a ConfigMap's values may add up to (etcd's limit on one object, less room for the rest).
pub const MAX_CONFIG_MAP_BYTES: usize = 1024 * 1024;

/// Why `name` is no port name (IANA_SVC_NAME), in the API server's words.
fn port_name_problems(name: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if name.len() > 15 {
        problems.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        problems.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if name.contains("--") {
        problems.push("must not contain consecutive hyphens");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        problems.push("must contain at least one letter (a-z)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        problems.push("must not begin or end with a hyphen");
    }
    problems
}

fn validate(ty: &ResourceType, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = text(object, "/metadata/name");
    // Reviews are not stored and need no name.
    let name_ok = ty.create_only
        || if ty.group == "rbac.authorization.k8s.io" {
            // RBAC names are path segments (`system:basic-user`).
            !name.is_empty() && !name.contains(['/', '%']) && name != "." && name != ".."
        } else if ty.kind == "Namespace" {
            is_dns_label(name)
        } else {
            is_dns_subdomain(name)
        };
    if !name_ok {
        let (limit, rule) = if ty.kind == "Namespace" {
            (63, DNS_LABEL_RULE)
        } else {
            (253, DNS_SUBDOMAIN_RULE)
        };
        if name.len() > limit {
            causes.push(invalid_value(
                "metadata.name",
                &json!(name),
                &format!("must be no more than {limit} characters"),
            ));
        } else {
            causes.push(invalid_value("metadata.name", &json!(name), rule));
        }
    }
    let mut label_causes = Vec::new();
    for value in object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|labels| labels.values())
    {
        let causes = &mut label_causes;
        let v = value.as_str().unwrap_or_default();
        if v.len() > 63 {
            causes.push(invalid_value(
                "metadata.labels",
                value,
                "must be no more than 63 characters",
            ));
        }
        if !value.is_string() || !label_shaped(v) {
            causes.push(invalid_value("metadata.labels", value, LABEL_VALUE_RULE));
        }
    }
    // A pod update validates its metadata in four passes (the pod, the update, the generic
    // object-meta update and the pod's own), and the API server lists each pass's causes;
    // its message names each once.
    let passes = if ty.kind == "Pod" && old.is_some() { 4 } else { 1 };
    for _ in 0..passes {
        causes.extend(label_causes.iter().cloned());
    }
    let containers =
        |pointer: &str, field: &str, causes: &mut Vec<Cause>| match at(object, pointer).and_then(Value::as_array) {
            Some(list) if !list.is_empty() => {
                for (i, c) in list.iter().enumerate() {
                    if !is_dns_label(c["name"].as_str().unwrap_or_default()) {
                        causes.push(required(&format!("{field}[{i}].name")));
                    }
                    if c["image"].as_str().is_none_or(str::is_empty) {
                        causes.push(required(&format!("{field}[{i}].image")));
                    }
                    for (j, port) in c["ports"].as_array().into_iter().flatten().enumerate() {
                        let at_port = format!("{field}[{i}].ports[{j}]");
                        if let Some(port_name) = port["name"].as_str() {
                            for why in port_name_problems(port_name) {
                                causes.push(invalid_value(&format!("{at_port}.name"), &port["name"], why));
                            }
                        }
                        if !port["containerPort"].as_i64().is_some_and(|p| (1..=65535).contains(&p)) {
                            causes.push(invalid_value(
                                &format!("{at_port}.containerPort"),
                                &port["containerPort"],
                                "must be between 1 and 65535, inclusive",
                            ));
                        }
                    }
                }
            }
            _ => causes.push(required(field)),
        };
    match ty.kind.as_str() {
        "Pod" => {
            containers("/spec/containers", "spec.containers", &mut causes);
            if let Some(old) = old {
                // Pods are immutable but for a few fields; the scheduler's binding is internal.
                // Defaults count as what was stored, whoever stored it.
                let mut old = old.clone();
                default_object(ty, &mut old);
                let old = &old;
                let strip = |v: &Value| {
                    let mut s = v["spec"].clone();
                    if let Some(m) = s.as_object_mut() {
                        for f in [
                            "ephemeralContainers",
                            "activeDeadlineSeconds",
                            "tolerations",
                            "nodeName",
                        ] {
                            m.remove(f);
                        }
                    }
                    for c in s["containers"].as_array_mut().into_iter().flatten() {
                        if let Some(m) = c.as_object_mut() {
                            m.remove("image");
                        }
                    }
                    s
                };
                if strip(old) != strip(object) {
                    causes.push(forbidden("spec", POD_UPDATE_RULE));
                }
            }
        }
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            containers(
                "/spec/template/spec/containers",
                "spec.template.spec.containers",
                &mut causes,
            );
            match at(object, "/spec/selector").map(LabelSelector::from_object) {
                None => causes.push(required("spec.selector")),
                Some(Err(e)) => causes.push(invalid_value("spec.selector", &object["spec"]["selector"], &e)),
                Some(Ok(selector)) => {
                    let template_labels = object
                        .pointer("/spec/template/metadata/labels")
                        .and_then(Value::as_object);
                    if selector.is_empty() || !selector.matches(template_labels) {
                        causes.push(invalid_value(
                            "spec.template.metadata.labels",
                            &object
                                .pointer("/spec/template/metadata/labels")
                                .cloned()
                                .unwrap_or(Value::Null),
                            "`selector` does not match template `labels`",
                        ));
                    }
                }
            }
            if let Some(old) = old
                && at(old, "/spec/selector") != at(object, "/spec/selector")
            {
                causes.push(Cause {
                    field: "spec.selector".into(),
                    reason: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: {}: field is immutable",
                        go_label_selector(&object["spec"]["selector"])
                    ),
                });
            }
            if object
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .is_some_and(|r| r < 0)
            {
                causes.push(invalid_value(
                    "spec.replicas",
                    &object["spec"]["replicas"],
                    "must be greater than or equal to 0",
                ));
            }
        }
        "PodDisruptionBudget"
            if at(object, "/spec/minAvailable").is_some() && at(object, "/spec/maxUnavailable").is_some() =>
        {
            causes.push(invalid_value(
                "spec",
                &Value::Null,
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        "NetworkPolicy" if at(object, "/spec/podSelector").is_none() => {
            causes.push(required("spec.podSelector"));
        }
        // An Event that has an `eventTime` (a "new" Event) must say who reported it and what
        // was done, as events.k8s.io does (Kubernetes' legacyValidateEvent for core/v1).
        "Event" if ty.group.is_empty() && at(object, "/eventTime").is_some_and(|t| !t.is_null()) => {
            let namespace = text(object, "/metadata/namespace");
            if text(object, "/involvedObject/namespace").is_empty() && !matches!(namespace, "default" | "kube-system") {
                causes.push(invalid_value(
                    "involvedObject.namespace",
                    &json!(""),
                    "does not match event.namespace",
                ));
            }
            let component = text(object, "/reportingComponent");
            if component.is_empty() {
                causes.push(required("reportingComponent"));
            }
            for why in qualified_name_problems(component) {
                causes.push(invalid_value("reportingComponent", &json!(component), &why));
            }
            for (field, limit) in [
                ("reportingInstance", 128),
                ("action", 128),
                ("reason", 128),
                ("message", 1024),
            ] {
                let value = text(object, &format!("/{field}"));
                if value.is_empty() && field != "message" {
                    causes.push(required(field));
                }
                if value.len() > limit {
                    causes.push(Cause {
                        field: field.into(),
                        reason: "FieldValueTooLong",
                        message: format!("Too long: must have at most {limit} bytes"),
                    });
                }
            }
        }
        "ConfigMap" => {
            // The values count (keys do not); binaryData as the bytes it decodes to.
            let text: usize = object["data"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, v)| v.as_str().map(str::len))
                .sum();
            let binary: usize = object["binaryData"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, v)| v.as_str().map(|b| b.trim_end_matches('=').len() * 3 / 4))
                .sum();
            if text + binary > MAX_CONFIG_MAP_BYTES {
                causes.push(Cause {
                    field: "[]".into(),
                    reason: "FieldValueTooLong",
                    message: format!("Too long: must have at most {MAX_CONFIG_MAP_BYTES} bytes"),
                });
            }
        }
        _ => {}
    }
    if let Some(schema) = &ty.schema {
        causes.extend(super::schema::validate_object(schema, object));
    }
    causes
}
