//! Decoding the protobuf bodies kubectl sends (Namespace, ConfigMap, Deployment, Service, and
//! `auth can-i`'s SelfSubjectAccessReview) into JSON. Decoding only; it must not touch the store.

use serde_json::{Map, Value, json};

use super::error::ApiError;

/// What a field's bytes mean, from the types' `generated.proto`.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    /// A non-pointer integer: zero means unset (Go's `omitempty`).
    Int,
    /// A pointer integer: zero is a value (`replicas: 0`).
    IntKeep,
    Bool,
    Msg(&'static [Field]),
    RepStr,
    RepMsg(&'static [Field]),
    /// `map<string, string>`.
    Map,
    /// `map<string, bytes>`, base64 in JSON.
    MapBytes,
    /// `map<string, Quantity>`; a Quantity is `{ string string = 1 }`.
    MapQuantity,
    IntOrString,
}

struct Field(u32, &'static str, Kind);

const OBJECT_META: &[Field] = &[
    Field(1, "name", Kind::Str),
    Field(2, "generateName", Kind::Str),
    Field(3, "namespace", Kind::Str),
    Field(11, "labels", Kind::Map),
    Field(12, "annotations", Kind::Map),
    Field(14, "finalizers", Kind::RepStr),
];
const SELECTOR_REQUIREMENT: &[Field] = &[
    Field(1, "key", Kind::Str),
    Field(2, "operator", Kind::Str),
    Field(3, "values", Kind::RepStr),
];
const LABEL_SELECTOR: &[Field] = &[
    Field(1, "matchLabels", Kind::Map),
    Field(2, "matchExpressions", Kind::RepMsg(SELECTOR_REQUIREMENT)),
];
const CONTAINER_PORT: &[Field] = &[
    Field(1, "name", Kind::Str),
    Field(2, "hostPort", Kind::Int),
    Field(3, "containerPort", Kind::Int),
    Field(4, "protocol", Kind::Str),
    Field(5, "hostIP", Kind::Str),
];
const ENV_VAR: &[Field] = &[Field(1, "name", Kind::Str), Field(2, "value", Kind::Str)];
const RESOURCES: &[Field] = &[
    Field(1, "limits", Kind::MapQuantity),
    Field(2, "requests", Kind::MapQuantity),
];
const CONTAINER: &[Field] = &[
    Field(1, "name", Kind::Str),
    Field(2, "image", Kind::Str),
    Field(3, "command", Kind::RepStr),
    Field(4, "args", Kind::RepStr),
    Field(5, "workingDir", Kind::Str),
    Field(6, "ports", Kind::RepMsg(CONTAINER_PORT)),
    Field(7, "env", Kind::RepMsg(ENV_VAR)),
    Field(8, "resources", Kind::Msg(RESOURCES)),
    Field(13, "terminationMessagePath", Kind::Str),
    Field(14, "imagePullPolicy", Kind::Str),
    Field(20, "terminationMessagePolicy", Kind::Str),
];
const POD_SPEC: &[Field] = &[
    Field(2, "containers", Kind::RepMsg(CONTAINER)),
    Field(3, "restartPolicy", Kind::Str),
    Field(4, "terminationGracePeriodSeconds", Kind::IntKeep),
    Field(6, "dnsPolicy", Kind::Str),
    Field(7, "nodeSelector", Kind::Map),
    Field(8, "serviceAccountName", Kind::Str),
    Field(10, "nodeName", Kind::Str),
    Field(19, "schedulerName", Kind::Str),
    Field(20, "initContainers", Kind::RepMsg(CONTAINER)),
];
const POD_TEMPLATE: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(2, "spec", Kind::Msg(POD_SPEC)),
];
const ROLLING_UPDATE: &[Field] = &[
    Field(1, "maxUnavailable", Kind::IntOrString),
    Field(2, "maxSurge", Kind::IntOrString),
];
const STRATEGY: &[Field] = &[
    Field(1, "type", Kind::Str),
    Field(2, "rollingUpdate", Kind::Msg(ROLLING_UPDATE)),
];
const DEPLOYMENT_SPEC: &[Field] = &[
    Field(1, "replicas", Kind::IntKeep),
    Field(2, "selector", Kind::Msg(LABEL_SELECTOR)),
    Field(3, "template", Kind::Msg(POD_TEMPLATE)),
    Field(4, "strategy", Kind::Msg(STRATEGY)),
    Field(5, "minReadySeconds", Kind::Int),
    Field(6, "revisionHistoryLimit", Kind::IntKeep),
    Field(7, "paused", Kind::Bool),
    Field(9, "progressDeadlineSeconds", Kind::IntKeep),
];
const SERVICE_PORT: &[Field] = &[
    Field(1, "name", Kind::Str),
    Field(2, "protocol", Kind::Str),
    Field(3, "port", Kind::Int),
    Field(4, "targetPort", Kind::IntOrString),
    Field(5, "nodePort", Kind::Int),
    Field(6, "appProtocol", Kind::Str),
];
const SERVICE_SPEC: &[Field] = &[
    Field(1, "ports", Kind::RepMsg(SERVICE_PORT)),
    Field(2, "selector", Kind::Map),
    Field(3, "clusterIP", Kind::Str),
    Field(4, "type", Kind::Str),
    Field(5, "externalIPs", Kind::RepStr),
    Field(7, "sessionAffinity", Kind::Str),
    Field(8, "loadBalancerIP", Kind::Str),
    Field(10, "externalName", Kind::Str),
];
const NAMESPACE_SPEC: &[Field] = &[Field(1, "finalizers", Kind::RepStr)];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    Field(1, "namespace", Kind::Str),
    Field(2, "verb", Kind::Str),
    Field(3, "group", Kind::Str),
    Field(4, "version", Kind::Str),
    Field(5, "resource", Kind::Str),
    Field(6, "subresource", Kind::Str),
    Field(7, "name", Kind::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] =
    &[Field(1, "path", Kind::Str), Field(2, "verb", Kind::Str)];
const SELF_SUBJECT_ACCESS_REVIEW_SPEC: &[Field] = &[
    Field(1, "resourceAttributes", Kind::Msg(RESOURCE_ATTRIBUTES)),
    Field(
        2,
        "nonResourceAttributes",
        Kind::Msg(NON_RESOURCE_ATTRIBUTES),
    ),
];

fn top_level(kind: &str) -> Option<&'static [Field]> {
    const NAMESPACE: &[Field] = &[
        Field(1, "metadata", Kind::Msg(OBJECT_META)),
        Field(2, "spec", Kind::Msg(NAMESPACE_SPEC)),
    ];
    const CONFIG_MAP: &[Field] = &[
        Field(1, "metadata", Kind::Msg(OBJECT_META)),
        Field(2, "data", Kind::Map),
        Field(3, "binaryData", Kind::MapBytes),
        Field(4, "immutable", Kind::Bool),
    ];
    const DEPLOYMENT: &[Field] = &[
        Field(1, "metadata", Kind::Msg(OBJECT_META)),
        Field(2, "spec", Kind::Msg(DEPLOYMENT_SPEC)),
    ];
    const SERVICE: &[Field] = &[
        Field(1, "metadata", Kind::Msg(OBJECT_META)),
        Field(2, "spec", Kind::Msg(SERVICE_SPEC)),
    ];
    const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
        Field(1, "metadata", Kind::Msg(OBJECT_META)),
        Field(2, "spec", Kind::Msg(SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
    ];
    match kind {
        "Namespace" => Some(NAMESPACE),
        "SelfSubjectAccessReview" => Some(SELF_SUBJECT_ACCESS_REVIEW),
        "ConfigMap" => Some(CONFIG_MAP),
        "Deployment" => Some(DEPLOYMENT),
        "Service" => Some(SERVICE),
        _ => None,
    }
}

fn malformed() -> ApiError {
    ApiError::BadRequest("the protobuf body of the request is malformed".into())
}

/// One decoded field: its number and payload.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let (&byte, rest) = self.buf.split_first().ok_or_else(malformed)?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ApiError> {
        if n > self.buf.len() {
            return Err(malformed());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next(&mut self) -> Result<Option<(u32, Wire<'a>)>, ApiError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3).map_err(|_| malformed())?;
        let wire = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| malformed())?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            _ => return Err(malformed()),
        };
        Ok(Some((number, wire)))
    }
}

fn utf8(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed())
}

/// A map entry message `{ key = 1; value = 2 }`, the value left raw.
fn map_entry(b: &[u8]) -> Result<(String, &[u8]), ApiError> {
    let mut r = Reader { buf: b };
    let (mut key, mut value): (String, &[u8]) = (String::new(), &[]);
    while let Some((n, w)) = r.next()? {
        match (n, w) {
            (1, Wire::Bytes(k)) => key = utf8(k)?,
            (2, Wire::Bytes(v)) => value = v,
            _ => {}
        }
    }
    Ok((key, value))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn decode_message(b: &[u8], schema: &'static [Field]) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let mut r = Reader { buf: b };
    while let Some((number, wire)) = r.next()? {
        let Some(Field(_, name, kind)) = schema.iter().find(|f| f.0 == number) else {
            continue;
        };
        let name = (*name).to_string();
        match (*kind, wire) {
            (Kind::Str, Wire::Bytes(s)) => {
                let s = utf8(s)?;
                if !s.is_empty() {
                    out.insert(name, json!(s));
                }
            }
            (Kind::Int, Wire::Varint(v)) if v != 0 => {
                out.insert(name, json!(v as i64));
            }
            (Kind::IntKeep, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Kind::Bool, Wire::Varint(v)) if v != 0 => {
                out.insert(name, json!(true));
            }
            (Kind::Msg(sub), Wire::Bytes(m)) => {
                let decoded = decode_message(m, sub)?;
                if !decoded.is_empty() {
                    out.insert(name, Value::Object(decoded));
                }
            }
            (Kind::RepStr, Wire::Bytes(s)) => {
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(json!(utf8(s)?));
                }
            }
            (Kind::RepMsg(sub), Wire::Bytes(m)) => {
                let item = Value::Object(decode_message(m, sub)?);
                let list = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = list.as_array_mut() {
                    a.push(item);
                }
            }
            (Kind::Map | Kind::MapBytes | Kind::MapQuantity, Wire::Bytes(entry)) => {
                let (key, raw) = map_entry(entry)?;
                let value = match *kind {
                    Kind::Map => json!(utf8(raw)?),
                    Kind::MapBytes => json!(base64(raw)),
                    _ => json!(map_entry(raw)?.0),
                };
                let map = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = map.as_object_mut() {
                    m.insert(key, value);
                }
            }
            (Kind::IntOrString, Wire::Bytes(m)) => {
                let mut r = Reader { buf: m };
                let (mut is_string, mut int, mut string) = (false, 0i64, String::new());
                while let Some((n, w)) = r.next()? {
                    match (n, w) {
                        (1, Wire::Varint(t)) => is_string = t == 1,
                        (2, Wire::Varint(v)) => int = v as i64,
                        (3, Wire::Bytes(s)) => string = utf8(s)?,
                        _ => {}
                    }
                }
                out.insert(name, if is_string { json!(string) } else { json!(int) });
            }
            // A wire type that does not fit the schema (a field this table gets wrong, or a
            // newer client): skip the field rather than refuse the object.
            _ => {}
        }
    }
    Ok(out)
}

/// Turns a protobuf request body (`k8s\0` + `runtime.Unknown`) into the JSON object it encodes.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(b"k8s\0").ok_or_else(malformed)?;
    let mut r = Reader { buf: envelope };
    let (mut api_version, mut kind, mut raw): (String, String, &[u8]) =
        (String::new(), String::new(), &[]);
    while let Some((n, w)) = r.next()? {
        match (n, w) {
            (1, Wire::Bytes(type_meta)) => {
                let mut t = Reader { buf: type_meta };
                while let Some((n, w)) = t.next()? {
                    match (n, w) {
                        (1, Wire::Bytes(v)) => api_version = utf8(v)?,
                        (2, Wire::Bytes(k)) => kind = utf8(k)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    let schema = top_level(&kind).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "the simulated API server decodes protobuf only for Namespace, ConfigMap, Deployment, Service and SelfSubjectAccessReview, not {kind:?}; send JSON or YAML"
        ))
    })?;
    let mut obj = decode_message(raw, schema)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: u32, wire: u8) -> u8 {
        ((n << 3) | u32::from(wire)) as u8
    }

    fn bytes_field(n: u32, b: &[u8]) -> Vec<u8> {
        let mut out = vec![tag(n, 2), b.len() as u8];
        out.extend_from_slice(b);
        out
    }

    fn envelope(kind: &str, api_version: &str, raw: &[u8]) -> Vec<u8> {
        let mut type_meta = bytes_field(1, api_version.as_bytes());
        type_meta.extend(bytes_field(2, kind.as_bytes()));
        let mut out = b"k8s\0".to_vec();
        out.extend(bytes_field(1, &type_meta));
        out.extend(bytes_field(2, raw));
        out
    }

    #[test]
    fn a_configmap_decodes_with_its_data() {
        let meta = bytes_field(1, b"flags");
        let mut entry = bytes_field(1, b"a");
        entry.extend(bytes_field(2, b"b"));
        let mut raw = bytes_field(1, &meta);
        raw.extend(bytes_field(2, &entry));
        let v = decode(&envelope("ConfigMap", "v1", &raw)).unwrap_or_default();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn a_deployment_keeps_zero_replicas_and_int_or_string_ports() {
        let mut spec = vec![tag(1, 0), 0];
        let mut ru = bytes_field(1, &[tag(1, 0), 1, tag(3, 2), 3, b'2', b'5', b'%']);
        ru = bytes_field(2, &ru);
        spec.extend(bytes_field(4, &ru));
        let raw = bytes_field(2, &spec);
        let v = decode(&envelope("Deployment", "apps/v1", &raw)).unwrap_or_default();
        assert_eq!(v["spec"]["replicas"], json!(0));
        assert_eq!(
            v["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            json!("25%")
        );
    }

    #[test]
    fn a_self_subject_access_review_decodes_with_its_resource_attributes() {
        let mut attrs = bytes_field(1, b"shop");
        attrs.extend(bytes_field(2, b"patch"));
        attrs.extend(bytes_field(5, b"deployments"));
        attrs.extend(bytes_field(6, b"scale"));
        let spec = bytes_field(1, &attrs);
        let raw = bytes_field(2, &spec);
        let v = decode(&envelope(
            "SelfSubjectAccessReview",
            "authorization.k8s.io/v1",
            &raw,
        ))
        .unwrap_or_default();
        assert_eq!(
            v["spec"]["resourceAttributes"],
            json!({"namespace": "shop", "verb": "patch", "resource": "deployments", "subresource": "scale"})
        );
    }

    #[test]
    fn truncated_or_foreign_bodies_are_errors_not_panics() {
        assert!(decode(b"k8s\0\x0a\xff").is_err());
        assert!(decode(b"not protobuf").is_err());
        assert!(decode(&envelope("Secret", "v1", &[])).is_err());
        let meta = bytes_field(1, b"x");
        let mut raw = bytes_field(1, &meta);
        raw.truncate(raw.len() - 1);
        assert!(decode(&envelope("ConfigMap", "v1", &raw)).is_err());
    }

    #[test]
    fn base64_pads_like_the_standard_encoding() {
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
