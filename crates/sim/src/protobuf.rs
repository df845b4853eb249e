//! Request bodies in Kubernetes' protobuf encoding, which kubectl sends for built-in kinds
//! (`kubectl create configmap`, `create namespace`, `create token`, `auth can-i`, `auth
//! whoami`): the `k8s\0` envelope (`runtime.Unknown`), then the object, decoded to the JSON
//! the rest of the simulator speaks. Only the kinds below are known, each with its fields'
//! numbers from the Kubernetes `.proto` files; a body of another kind, or with a field this
//! table lacks, is refused rather than read wrong.

use base64::Engine;
use serde_json::{Map, Value, json};

/// How one field is encoded.
#[derive(Debug, Clone, Copy)]
enum F {
    Str,
    Int,
    Bool,
    /// Bytes, base64 in JSON.
    Bytes,
    Msg(&'static [Field]),
    RepStr,
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>`.
    MapBytes,
}

type Field = (u64, &'static str, F);

const OBJECT_META: &[Field] = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (5, "uid", F::Str),
    (6, "resourceVersion", F::Str),
    (11, "labels", F::MapStr),
    (12, "annotations", F::MapStr),
    (14, "finalizers", F::RepStr),
];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", F::Str),
    (2, "verb", F::Str),
    (3, "group", F::Str),
    (4, "version", F::Str),
    (5, "resource", F::Str),
    (6, "subresource", F::Str),
    (7, "name", F::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[(1, "path", F::Str), (2, "verb", F::Str)];
const ACCESS_REVIEW_SPEC: &[Field] = &[
    (1, "resourceAttributes", F::Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", F::Msg(NON_RESOURCE_ATTRIBUTES)),
];
const BOUND_OBJECT: &[Field] = &[
    (1, "kind", F::Str),
    (2, "apiVersion", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
];
const TOKEN_REQUEST_SPEC: &[Field] = &[
    (1, "audiences", F::RepStr),
    (3, "boundObjectRef", F::Msg(BOUND_OBJECT)),
    (4, "expirationSeconds", F::Int),
];

/// The fields of each kind this decoder reads, by `apiVersion` and `kind`.
fn schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    const CONFIG_MAP: &[Field] = &[
        (1, "metadata", F::Msg(OBJECT_META)),
        (2, "data", F::MapStr),
        (3, "binaryData", F::MapBytes),
        (4, "immutable", F::Bool),
    ];
    const NAMESPACE: &[Field] = &[
        (1, "metadata", F::Msg(OBJECT_META)),
        (2, "spec", F::Msg(&[(1, "finalizers", F::RepStr)])),
    ];
    const SERVICE_ACCOUNT: &[Field] = &[
        (1, "metadata", F::Msg(OBJECT_META)),
        (4, "automountServiceAccountToken", F::Bool),
    ];
    const SELF_ACCESS_REVIEW: &[Field] = &[
        (1, "metadata", F::Msg(OBJECT_META)),
        (2, "spec", F::Msg(ACCESS_REVIEW_SPEC)),
    ];
    const TOKEN_REQUEST: &[Field] = &[
        (1, "metadata", F::Msg(OBJECT_META)),
        (2, "spec", F::Msg(TOKEN_REQUEST_SPEC)),
    ];
    const SELF_REVIEW: &[Field] = &[(1, "metadata", F::Msg(OBJECT_META))];
    Some(match (api_version, kind) {
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => SELF_ACCESS_REVIEW,
        ("authentication.k8s.io/v1", "TokenRequest") => TOKEN_REQUEST,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => SELF_REVIEW,
        _ => return None,
    })
}

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum Unreadable {
    /// Not protobuf as Kubernetes frames it.
    Malformed(String),
    /// A kind or field the simulator does not decode: the client should send JSON.
    Unsupported(String),
}

/// The object a protobuf request body holds, as JSON.
pub fn decode(body: &[u8]) -> Result<Value, Unreadable> {
    let bad = |why: &str| Unreadable::Malformed(why.to_owned());
    let envelope = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| bad("a protobuf body starts with the magic bytes \"k8s\\x00\""))?;
    let mut type_meta = (String::new(), String::new());
    let mut raw: &[u8] = &[];
    for field in Reader(envelope) {
        match field.map_err(|e| bad(&e))? {
            (1, Wire::Len(bytes)) => {
                for f in Reader(bytes) {
                    match f.map_err(|e| bad(&e))? {
                        (1, Wire::Len(v)) => type_meta.0 = String::from_utf8_lossy(v).into_owned(),
                        (2, Wire::Len(v)) => type_meta.1 = String::from_utf8_lossy(v).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(bytes)) => raw = bytes,
            (3 | 4, Wire::Len([])) => {}
            (3, _) => {
                return Err(Unreadable::Unsupported(
                    "a protobuf body with a content encoding".into(),
                ));
            }
            _ => {}
        }
    }
    let (api_version, kind) = type_meta;
    let fields = schema(&api_version, &kind).ok_or_else(|| {
        Unreadable::Unsupported(format!(
            "the simulator does not read {kind} ({api_version}) in protobuf; send it as application/json"
        ))
    })?;
    let mut object = message(raw, fields, &kind)?;
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}

fn message(bytes: &[u8], fields: &[Field], within: &str) -> Result<Map<String, Value>, Unreadable> {
    let mut out = Map::new();
    for field in Reader(bytes) {
        let (number, wire) = field.map_err(Unreadable::Malformed)?;
        let Some((_, name, kind)) = fields.iter().find(|(n, ..)| *n == number) else {
            // Go writes every non-pointer field, empty or not (selfLink, creationTimestamp,
            // an empty status): an unknown field that holds nothing loses nothing.
            if is_zero(&wire) {
                continue;
            }
            return Err(Unreadable::Unsupported(format!(
                "the simulator does not read field {number} of {within} in protobuf; send it as application/json"
            )));
        };
        let wrong = || Unreadable::Malformed(format!("{within}.{name}: unexpected wire type"));
        let string = |b: &[u8]| json!(String::from_utf8_lossy(b));
        match (kind, wire) {
            (F::Str, Wire::Len(b)) => {
                out.insert((*name).into(), string(b));
            }
            (F::Bytes, Wire::Len(b)) => {
                out.insert(
                    (*name).into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(b)),
                );
            }
            (F::Int, Wire::Varint(v)) => {
                out.insert((*name).into(), json!(v as i64));
            }
            (F::Bool, Wire::Varint(v)) => {
                out.insert((*name).into(), json!(v != 0));
            }
            (F::Msg(inner), Wire::Len(b)) => {
                out.insert(
                    (*name).into(),
                    Value::Object(message(b, inner, &format!("{within}.{name}"))?),
                );
            }
            (F::RepStr, Wire::Len(b)) => {
                let list = out.entry(*name).or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    list.push(string(b));
                }
            }
            (F::MapStr | F::MapBytes, Wire::Len(b)) => {
                let entry = message(b, &[(1, "k", F::Str), (2, "v", F::Bytes)], within)?;
                let key = entry.get("k").and_then(Value::as_str).unwrap_or_default().to_owned();
                let encoded = entry.get("v").and_then(Value::as_str).unwrap_or_default();
                let value = match kind {
                    F::MapStr => {
                        let raw = base64::engine::general_purpose::STANDARD
                            .decode(encoded)
                            .unwrap_or_default();
                        json!(String::from_utf8_lossy(&raw))
                    }
                    _ => json!(encoded),
                };
                let map = out.entry(*name).or_insert_with(|| json!({}));
                map[key] = value;
            }
            _ => return Err(wrong()),
        }
    }
    Ok(out)
}

/// A zero number, or bytes that are empty or a message of nothing but zero fields.
fn is_zero(wire: &Wire<'_>) -> bool {
    match wire {
        Wire::Varint(v) => *v == 0,
        Wire::Len(bytes) => Reader(bytes).all(|f| f.is_ok_and(|(_, w)| is_zero(&w))),
        Wire::Fixed => false,
    }
}

/// One field's value on the wire.
enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
    Fixed,
}

/// The fields of one protobuf message, in order.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or("truncated varint")?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u64, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let mut read = || -> Result<(u64, Wire<'a>), String> {
            let key = self.varint()?;
            let wire = match key & 7 {
                0 => Wire::Varint(self.varint()?),
                1 | 5 => {
                    let n = if key & 7 == 1 { 8 } else { 4 };
                    if self.0.len() < n {
                        return Err("truncated fixed field".into());
                    }
                    self.0 = &self.0[n..];
                    Wire::Fixed
                }
                2 => {
                    let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                    if self.0.len() < len {
                        return Err("truncated field".into());
                    }
                    let (bytes, rest) = self.0.split_at(len);
                    self.0 = rest;
                    Wire::Len(bytes)
                }
                other => return Err(format!("wire type {other} is not supported")),
            };
            Ok((key >> 3, wire))
        };
        let item = read();
        if item.is_err() {
            self.0 = &[];
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
        [b"k8s\0".to_vec(), field(1, &type_meta), field(2, raw)].concat()
    }

    #[test]
    fn a_config_map_as_kubectl_create_sends_it() {
        let meta = [field(1, b"app-config"), field(3, b"shop")].concat();
        let entry = [field(1, b"mode"), field(2, b"fast")].concat();
        let raw = [field(1, &meta), field(2, &entry)].concat();
        let object = decode(&envelope("v1", "ConfigMap", &raw)).expect("decodes");
        assert_eq!(
            object,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "app-config", "namespace": "shop"}, "data": {"mode": "fast"}})
        );
    }

    #[test]
    fn an_access_review_and_its_varints() {
        let attributes = [field(1, b"shop"), field(2, b"delete"), field(5, b"pods")].concat();
        let raw = field(2, &field(1, &attributes));
        let object = decode(&envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", &raw)).expect("decodes");
        assert_eq!(
            object["spec"]["resourceAttributes"],
            json!({"namespace": "shop", "verb": "delete", "resource": "pods"})
        );
        let spec = [field(1, b"api"), vec![4 << 3, 0x90, 0x1c]].concat();
        let object = decode(&envelope("authentication.k8s.io/v1", "TokenRequest", &field(2, &spec))).expect("decodes");
        assert_eq!(object["spec"], json!({"audiences": ["api"], "expirationSeconds": 3600}));
    }

    #[test]
    fn what_it_cannot_read_it_refuses() {
        assert!(matches!(decode(b"{}"), Err(Unreadable::Malformed(_))));
        assert!(matches!(
            decode(&envelope("apps/v1", "Deployment", &[])),
            Err(Unreadable::Unsupported(m)) if m.contains("Deployment")
        ));
        // Go writes empty fields; an empty selfLink (4) and an empty status (3) are no loss.
        let raw = [
            field(1, &[field(1, b"a"), field(4, b"")].concat()),
            field(9, &[0x08, 0x00]),
        ]
        .concat();
        assert_eq!(
            decode(&envelope("v1", "ConfigMap", &raw)).expect("decodes")["metadata"],
            json!({"name": "a"})
        );
        // Field 13 of ObjectMeta (ownerReferences) is not in the table: refused, not dropped.
        let raw = field(1, &field(13, &field(1, b"x")));
        assert!(matches!(
            decode(&envelope("v1", "ConfigMap", &raw)),
            Err(Unreadable::Unsupported(m)) if m.contains("field 13 of ConfigMap.metadata")
        ));
        assert!(matches!(
            decode(&envelope("v1", "ConfigMap", &[0x0a, 0x05, 0x01])),
            Err(Unreadable::Malformed(_))
        ));
    }
}
