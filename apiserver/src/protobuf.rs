//! Protobuf request bodies, for the clients that write with client-go's typed clients: Helm 4
//! stores its releases as `core/v1` Secrets (or ConfigMaps with `HELM_DRIVER=configmap`) and
//! sends them as `application/vnd.kubernetes.protobuf`. A body is the 4-byte magic `k8s\0` and a
//! `runtime.Unknown` (`typeMeta`, `raw`, `contentEncoding`, `contentType`) whose `raw` is the
//! object's generated protobuf. Only the messages those writes need are read here, with the
//! field numbers of `k8s.io/api/core/v1/generated.proto` and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`; each is turned into the JSON object
//! the rest of the server works on. Unknown fields are skipped; a body of any other kind is
//! refused (415) by the caller.
//!
//! The wire format is read by hand (`Fields`: varints, length-delimited fields, fixed 32- and
//! 64-bit fields skipped) rather than with a protobuf crate: the messages are few and flat, and
//! a derive-based crate would change the feature set of the proc-macro stack every other crate
//! of the workspace is built with.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// The magic that opens every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// One field's value on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 2: bytes, a string, an embedded message or a packed list.
    Bytes(&'a [u8]),
    /// Wire types 1 and 5, which no field read here uses.
    Fixed,
}

/// The fields of one message, in order, as `(field number, value)`.
struct Fields<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Fields<'a> {
    fn of(bytes: &'a [u8]) -> Fields<'a> {
        Fields { bytes, position: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.position)
                .ok_or("a varint runs past the end of the message")?;
            self.position += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint is longer than ten bytes".into())
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], String> {
        let end = self
            .position
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len())
            .ok_or("a field runs past the end of the message")?;
        let taken = &self.bytes[self.position..end];
        self.position = end;
        Ok(taken)
    }

    /// The next field, or `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u64, Wire<'a>)>, String> {
        if self.position >= self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let length = usize::try_from(self.varint()?)
                    .map_err(|_| "a field length does not fit in memory")?;
                Wire::Bytes(self.take(length)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            other => return Err(format!("wire type {other} is not supported")),
        };
        Ok(Some((number, wire)))
    }

    /// Every field, in order.
    fn all(bytes: &'a [u8]) -> Result<Vec<(u64, Wire<'a>)>, String> {
        let mut fields = Fields::of(bytes);
        let mut all = Vec::new();
        while let Some(field) = fields.next_field()? {
            all.push(field);
        }
        Ok(all)
    }
}

/// Inserts string field `wire` under `key`, unless it is empty (proto3 leaves defaults out).
fn insert_text(value: &mut Map<String, Value>, key: &str, wire: Wire<'_>) -> Result<(), String> {
    let field = text(wire)?;
    if !field.is_empty() {
        value.insert(key.into(), json!(field));
    }
    Ok(())
}

fn text(wire: Wire<'_>) -> Result<String, String> {
    match wire {
        Wire::Bytes(bytes) => {
            String::from_utf8(bytes.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
        }
        _ => Err("a string field has the wrong wire type".into()),
    }
}

fn bytes(wire: Wire<'_>) -> Result<&[u8], String> {
    match wire {
        Wire::Bytes(bytes) => Ok(bytes),
        _ => Err("a bytes or message field has the wrong wire type".into()),
    }
}

fn varint(wire: Wire<'_>) -> Result<u64, String> {
    match wire {
        Wire::Varint(value) => Ok(value),
        _ => Err("a number field has the wrong wire type".into()),
    }
}

/// One `map<string, string|bytes>` entry (key = 1, value = 2) into `map`, the value as a string
/// or, for bytes, base64 as JSON carries it.
fn map_entry(entry: &[u8], map: &mut Map<String, Value>, base64: bool) -> Result<(), String> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (number, wire) in Fields::all(entry)? {
        match number {
            1 => key = text(wire)?,
            2 if base64 => value = json!(STANDARD.encode(bytes(wire)?)),
            2 => value = json!(text(wire)?),
            _ => {}
        }
    }
    map.insert(key, value);
    Ok(())
}

/// `(apiVersion, kind)` of a `runtime.TypeMeta`.
fn type_meta(message: &[u8]) -> Result<(String, String), String> {
    let mut api_version = String::new();
    let mut kind = String::new();
    for (number, wire) in Fields::all(message)? {
        match number {
            1 => api_version = text(wire)?,
            2 => kind = text(wire)?,
            _ => {}
        }
    }
    Ok((api_version, kind))
}

/// A `meta.v1.Time` as RFC 3339 in seconds, as Kubernetes prints it; `None` for the zero time Go
/// always sends.
fn time(message: &[u8]) -> Result<Option<Value>, String> {
    let mut seconds: i64 = 0;
    for (number, wire) in Fields::all(message)? {
        if number == 1 {
            seconds = varint(wire)? as i64;
        }
    }
    if seconds == 0 {
        return Ok(None);
    }
    let moment = time::OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| "a time is out of range".to_string())?;
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    Ok(moment.format(&format).ok().map(Value::String))
}
/// Why a protobuf body was not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0` or is not a `runtime.Unknown`.
    #[error("the protobuf body is not a Kubernetes protobuf envelope: {0}")]
    Envelope(String),
    /// The envelope holds a kind this server does not decode.
    #[error(
        "the test API server decodes protobuf bodies only for core/v1 Secret and ConfigMap (and DeleteOptions); send {kind} ({api_version}) as application/json"
    )]
    UnsupportedKind {
        /// `typeMeta.apiVersion`.
        api_version: String,
        /// `typeMeta.kind`.
        kind: String,
    },
    /// The object's bytes do not decode as its kind.
    #[error("the protobuf {kind} does not decode: {message}")]
    Object {
        /// The kind.
        kind: String,
        /// The decoder's message.
        message: String,
    },
}

/// Reads the envelope: `(apiVersion, kind, raw)`.
fn envelope(body: &[u8]) -> Result<(String, String, &[u8]), ProtobufError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ProtobufError::Envelope("it does not start with k8s\\0".into()))?;
    let mut kind = (String::new(), String::new());
    let mut raw: &[u8] = &[];
    for (number, wire) in Fields::all(rest).map_err(ProtobufError::Envelope)? {
        match number {
            1 => {
                kind = type_meta(bytes(wire).map_err(ProtobufError::Envelope)?)
                    .map_err(ProtobufError::Envelope)?
            }
            2 => raw = bytes(wire).map_err(ProtobufError::Envelope)?,
            3 => {
                let encoding = text(wire).map_err(ProtobufError::Envelope)?;
                if !encoding.is_empty() {
                    return Err(ProtobufError::Envelope(format!(
                        "contentEncoding {encoding:?} is not supported"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok((kind.0, kind.1, raw))
}

/// Decodes a protobuf object body (a create or an update) into the JSON object it stands for.
pub fn decode_object(body: &[u8]) -> Result<Value, ProtobufError> {
    let (api_version, kind, raw) = envelope(body)?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    let decoded = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => secret(raw, &mut object),
        ("v1", "ConfigMap") => config_map(raw, &mut object),
        _ => return Err(ProtobufError::UnsupportedKind { api_version, kind }),
    };
    decoded.map_err(|message| ProtobufError::Object {
        kind: kind.clone(),
        message,
    })?;
    Ok(Value::Object(object))
}

/// `core.v1.Secret`: metadata = 1, data = 2 (`map<string, bytes>`), type = 3, stringData = 4
/// (`map<string, string>`), immutable = 5.
fn secret(raw: &[u8], object: &mut Map<String, Value>) -> Result<(), String> {
    let mut data = Map::new();
    let mut string_data = Map::new();
    object.insert("metadata".into(), json!({}));
    for (number, wire) in Fields::all(raw)? {
        match number {
            1 => {
                object.insert("metadata".into(), metadata(bytes(wire)?)?);
            }
            2 => map_entry(bytes(wire)?, &mut data, true)?,
            3 => {
                let kind = text(wire)?;
                if !kind.is_empty() {
                    object.insert("type".into(), json!(kind));
                }
            }
            4 => map_entry(bytes(wire)?, &mut string_data, false)?,
            5 => {
                object.insert("immutable".into(), json!(varint(wire)? != 0));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        object.insert("data".into(), Value::Object(data));
    }
    if !string_data.is_empty() {
        object.insert("stringData".into(), Value::Object(string_data));
    }
    Ok(())
}

/// `core.v1.ConfigMap`: metadata = 1, data = 2 (`map<string, string>`), binaryData = 3
/// (`map<string, bytes>`), immutable = 4.
fn config_map(raw: &[u8], object: &mut Map<String, Value>) -> Result<(), String> {
    let mut data = Map::new();
    let mut binary_data = Map::new();
    object.insert("metadata".into(), json!({}));
    for (number, wire) in Fields::all(raw)? {
        match number {
            1 => {
                object.insert("metadata".into(), metadata(bytes(wire)?)?);
            }
            2 => map_entry(bytes(wire)?, &mut data, false)?,
            3 => map_entry(bytes(wire)?, &mut binary_data, true)?,
            4 => {
                object.insert("immutable".into(), json!(varint(wire)? != 0));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        object.insert("data".into(), Value::Object(data));
    }
    if !binary_data.is_empty() {
        object.insert("binaryData".into(), Value::Object(binary_data));
    }
    Ok(())
}

/// Decodes a protobuf `DeleteOptions` body into its JSON form: gracePeriodSeconds = 1,
/// preconditions = 2 {uid = 1, resourceVersion = 2}, orphanDependents = 3,
/// propagationPolicy = 4, dryRun = 5.
pub fn decode_delete_options(body: &[u8]) -> Result<Value, ProtobufError> {
    let (api_version, kind, raw) = envelope(body)?;
    if kind != "DeleteOptions" {
        return Err(ProtobufError::UnsupportedKind { api_version, kind });
    }
    let object_error = |message: String| ProtobufError::Object {
        kind: "DeleteOptions".into(),
        message,
    };
    let mut value = Map::new();
    let mut dry_run = Vec::new();
    for (number, wire) in Fields::all(raw).map_err(object_error)? {
        let decoded: Result<(), String> = (|| {
            match number {
                1 => {
                    value.insert("gracePeriodSeconds".into(), json!(varint(wire)? as i64));
                }
                2 => {
                    let mut preconditions = Map::new();
                    for (number, wire) in Fields::all(bytes(wire)?)? {
                        match number {
                            1 => {
                                preconditions.insert("uid".into(), json!(text(wire)?));
                            }
                            2 => {
                                preconditions.insert("resourceVersion".into(), json!(text(wire)?));
                            }
                            _ => {}
                        }
                    }
                    value.insert("preconditions".into(), Value::Object(preconditions));
                }
                3 => {
                    value.insert("orphanDependents".into(), json!(varint(wire)? != 0));
                }
                4 => {
                    let policy = text(wire)?;
                    if !policy.is_empty() {
                        value.insert("propagationPolicy".into(), json!(policy));
                    }
                }
                5 => dry_run.push(json!(text(wire)?)),
                _ => {}
            }
            Ok(())
        })();
        decoded.map_err(object_error)?;
    }
    if !dry_run.is_empty() {
        value.insert("dryRun".into(), Value::Array(dry_run));
    }
    Ok(Value::Object(value))
}

/// `meta.v1.ObjectMeta` as JSON (name = 1, generateName = 2, namespace = 3, uid = 5,
/// resourceVersion = 6, generation = 7, creationTimestamp = 8, labels = 11, annotations = 12,
/// ownerReferences = 13, finalizers = 14, managedFields = 17; `selfLink` and the deletion fields
/// are skipped): empty strings, zero numbers and empty collections left out, as Go's `omitempty`
/// leaves them out (the Go encoder always writes its non-pointer fields).
fn metadata(message: &[u8]) -> Result<Value, String> {
    let mut value = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut owners = Vec::new();
    let mut finalizers = Vec::new();
    let mut managed = Vec::new();
    for (number, wire) in Fields::all(message)? {
        let key = match number {
            1 => "name",
            2 => "generateName",
            3 => "namespace",
            5 => "uid",
            6 => "resourceVersion",
            _ => "",
        };
        if !key.is_empty() {
            insert_text(&mut value, key, wire)?;
            continue;
        }
        match number {
            7 => {
                let generation = varint(wire)? as i64;
                if generation != 0 {
                    value.insert("generation".into(), json!(generation));
                }
            }
            8 => {
                if let Some(created) = time(bytes(wire)?)? {
                    value.insert("creationTimestamp".into(), created);
                }
            }
            11 => map_entry(bytes(wire)?, &mut labels, false)?,
            12 => map_entry(bytes(wire)?, &mut annotations, false)?,
            13 => owners.push(owner_reference(bytes(wire)?)?),
            14 => finalizers.push(json!(text(wire)?)),
            17 => managed.push(managed_fields_entry(bytes(wire)?)?),
            _ => {}
        }
    }
    for (key, list) in [("labels", labels), ("annotations", annotations)] {
        if !list.is_empty() {
            value.insert(key.into(), Value::Object(list));
        }
    }
    for (key, list) in [
        ("ownerReferences", owners),
        ("finalizers", finalizers),
        ("managedFields", managed),
    ] {
        if !list.is_empty() {
            value.insert(key.into(), Value::Array(list));
        }
    }
    Ok(Value::Object(value))
}

/// `meta.v1.OwnerReference`: kind = 1, name = 3, uid = 4, apiVersion = 5, controller = 6,
/// blockOwnerDeletion = 7.
fn owner_reference(message: &[u8]) -> Result<Value, String> {
    let mut value = Map::new();
    for (number, wire) in Fields::all(message)? {
        match number {
            1 => value.insert("kind".into(), json!(text(wire)?)),
            3 => value.insert("name".into(), json!(text(wire)?)),
            4 => value.insert("uid".into(), json!(text(wire)?)),
            5 => value.insert("apiVersion".into(), json!(text(wire)?)),
            6 => value.insert("controller".into(), json!(varint(wire)? != 0)),
            7 => value.insert("blockOwnerDeletion".into(), json!(varint(wire)? != 0)),
            _ => None,
        };
    }
    Ok(Value::Object(value))
}

/// `meta.v1.ManagedFieldsEntry`: manager = 1, operation = 2, apiVersion = 3, time = 4,
/// fieldsType = 6, fieldsV1 = 7 {Raw = 1, JSON}, subresource = 8.
fn managed_fields_entry(message: &[u8]) -> Result<Value, String> {
    let mut value = Map::new();
    for (number, wire) in Fields::all(message)? {
        let key = match number {
            1 => "manager",
            2 => "operation",
            3 => "apiVersion",
            6 => "fieldsType",
            8 => "subresource",
            _ => "",
        };
        if !key.is_empty() {
            insert_text(&mut value, key, wire)?;
            continue;
        }
        match number {
            4 => {
                if let Some(time) = time(bytes(wire)?)? {
                    value.insert("time".into(), time);
                }
            }
            7 => {
                for (number, wire) in Fields::all(bytes(wire)?)? {
                    if number == 1
                        && let Ok(fields) = serde_json::from_slice::<Value>(bytes(wire)?)
                    {
                        value.insert("fieldsV1".into(), fields);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Value::Object(value))
}
