//! The write path shared by every verb: namespace admission, validation of names, server-set
//! metadata (`uid`, `resourceVersion`, `creationTimestamp`, `generation` bumped only when
//! something outside `metadata` and `status` changes), defaulting of a few built-in fields,
//! pruning and defaulting of custom resources by their schema (undeclared fields handled as
//! `fieldValidation` says), immutable fields (422), managedFields, no-op detection (an unchanged
//! object keeps its resourceVersion), finalizers and deletion, dry runs, and the CRD lifecycle
//! (a CRD's resources are served once it is Established).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::catalog::{Catalog, ResourceType};
use crate::error::ApiError;
use crate::managed::{self, Identity, ManagedEntry, Operation};
use crate::patch_refusal::{PatchMechanism, invalid_patch, json_kind, wrong_type};
use crate::store::{ObjectKey, Store};

/// Server behaviour that tests choose.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// How long after creation a CRD becomes Established (its resources served).
    pub crd_established_delay: Duration,
    /// Whether Terminating namespaces are emptied and removed (off: they stay Terminating, as
    /// with envtest, which runs no controllers).
    pub namespace_controller: bool,
    /// Whether deleting an owner deletes its dependents (ownerReferences) and honours
    /// Foreground/Orphan finalizers (off: those finalizers stay, as with envtest).
    pub garbage_collector: bool,
}

/// Everything the server holds.
pub struct State {
    /// The served types.
    pub catalog: Catalog,
    /// The objects.
    pub store: Store,
    /// Chosen behaviour.
    pub behaviour: Behaviour,
    /// CRDs waiting to become Established, with their deadline.
    pub pending_crds: Vec<(String, Instant)>,
    next_cluster_ip: u32,
}

/// Who writes and how.
#[derive(Clone, Debug, Default)]
pub struct WriteContext {
    /// The field manager.
    pub manager: String,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `force=true` (apply).
    pub force: bool,
    /// `""` or `status`.
    pub subresource: String,
    /// What to do with fields a custom resource's schema does not declare (`fieldValidation`).
    pub field_validation: FieldValidation,
    /// The warnings the answer carries (`Warning` headers), such as the unknown fields dropped
    /// under `fieldValidation=Warn`.
    pub warnings: std::cell::RefCell<Vec<String>>,
}

/// The `fieldValidation` of a write: what happens to fields a custom resource's schema does not
/// declare (they are pruned in any case).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Dropped silently.
    Ignore,
    /// Dropped with a warning each (the real server's default).
    #[default]
    Warn,
    /// The write is refused (400).
    Strict,
}

impl FieldValidation {
    /// The directive a `fieldValidation` query value names; any other value is the default
    /// (`Warn`).
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("Ignore") => Self::Ignore,
            Some("Strict") => Self::Strict,
            _ => Self::Warn,
        }
    }
}

/// Where the object being decoded came from, which decides how the real server words its
/// refusal: a create or update body that fails to decode names the kind it cannot be handled as
/// (400); a patched object is refused as an invalid `patch` (422, [`crate::patch_refusal`]); a
/// server-side apply's configuration by structured-merge-diff.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Decoded<'a> {
    /// The body of a create or update.
    Body,
    /// The object a merge, JSON or strategic merge patch produced.
    Patched(PatchMechanism<'a>),
    /// The configuration of a server-side apply.
    Applied,
}

/// The current time as the API server writes it.
pub fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A random UUID (version 4).
pub fn new_uid() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The finalizer that holds a CRD being deleted until its custom resources are gone.
pub const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn is_dns_label(name: &str) -> bool {
    is_dns_subdomain(name) && name.len() <= 63 && !name.contains('.')
}

/// The object without the fields the server owns outright, for comparisons.
fn without_server_fields(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.shift_remove("resourceVersion");
    }
    copy
}

/// What decides whether `generation` moves: everything but `metadata` and `status`, with the
/// real strategies' exceptions — a Deployment's annotations count too (its `PrepareForUpdate`),
/// and a custom resource whose version has no status subresource counts `status` as well.
fn spec_part(t: &ResourceType, object: &Value) -> Value {
    let mut copy = object.clone();
    let status_counts = t.crd.is_some() && !t.status_subresource;
    let annotations_count = t.group == "apps" && t.kind == "Deployment";
    if let Some(map) = copy.as_object_mut() {
        let annotations = map
            .get("metadata")
            .and_then(|metadata| metadata.get("annotations"))
            .cloned();
        for field in ["metadata", "apiVersion", "kind"] {
            map.shift_remove(field);
        }
        if !status_counts {
            map.shift_remove("status");
        }
        if annotations_count {
            map.insert("annotations".into(), annotations.unwrap_or(Value::Null));
        }
    }
    copy
}

/// The namespaces the NamespaceLifecycle admission plugin refuses to delete.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

fn invalid(t: &ResourceType, name: &str, field: &str, reason: &str, detail: String) -> ApiError {
    ApiError::invalid(
        &t.kind,
        &t.group,
        name,
        &[(field.to_owned(), reason.to_owned(), detail)],
    )
}

fn immutable(t: &ResourceType, name: &str, field: &str, value: &Value) -> ApiError {
    invalid(
        t,
        name,
        field,
        "FieldValueInvalid",
        format!("Invalid value: {value}: field is immutable"),
    )
}

/// 422 for a patch or apply whose object names another uid than the stored one: nothing makes
/// the uid a precondition there, so the registry's metadata validation refuses the change.
fn refuse_changed_uid(
    t: &ResourceType,
    name: &str,
    patched: &Value,
    live: &Value,
) -> Result<(), ApiError> {
    let uid = text(patched, "/metadata/uid");
    if uid.is_empty() || uid == text(live, "/metadata/uid") {
        return Ok(());
    }
    Err(immutable(t, name, "metadata.uid", &json!(uid)))
}

/// 409 for an update whose body names another uid than the stored object's, worded as etcd
/// storage's failed precondition (`StorageError: invalid object`) under its key
/// (`/registry/<resource>/<namespace>/<name>`; a custom resource's under its group).
fn uid_precondition_failed(
    t: &ResourceType,
    namespace: &str,
    name: &str,
    wanted: &str,
    live: &Value,
) -> ApiError {
    let resource = match (t.group.as_str(), t.plural.as_str()) {
        ("", "services") => "services/specs".to_owned(),
        ("", "nodes") => "minions".to_owned(),
        (group, plural) if t.crd.is_some() => format!("{group}/{plural}"),
        (_, plural) => plural.to_owned(),
    };
    let key = if namespace.is_empty() {
        format!("/registry/{resource}/{name}")
    } else {
        format!("/registry/{resource}/{namespace}/{name}")
    };
    ApiError::conflict(
        &t.plural,
        &t.group,
        name,
        &format!(
            "StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: {wanted}, UID in object meta: {}",
            text(live, "/metadata/uid")
        ),
    )
}

impl State {
    /// An empty server with the built-in types and the usual namespaces.
    pub fn new(behaviour: Behaviour, history_limit: usize, namespaces: &[String]) -> Self {
        let mut state = Self {
            catalog: Catalog::builtin(),
            store: Store::new(history_limit),
            behaviour,
            pending_crds: Vec::new(),
            next_cluster_ip: 1,
        };
        for namespace in namespaces {
            let t = state
                .catalog
                .find("", "v1", "namespaces")
                .cloned()
                .expect("namespaces are built in");
            let body =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
            let context = WriteContext {
                manager: "kube-apiserver".to_owned(),
                ..WriteContext::default()
            };
            state
                .create(&t, "", body, &context)
                .expect("the initial namespaces are valid");
        }
        state
    }

    /// The key of an object of `t`.
    pub fn key(t: &ResourceType, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: t.group.clone(),
            resource: t.plural.clone(),
            namespace: if t.namespaced {
                namespace.to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }

    /// The object as served at `t`'s version.
    pub fn present(t: &ResourceType, object: &Value) -> Value {
        let mut out = object.clone();
        out["apiVersion"] = json!(t.api_version());
        out["kind"] = json!(t.kind);
        out
    }

    /// GET.
    ///
    /// # Errors
    ///
    /// 404 when there is no such object.
    pub fn get(&self, t: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.store
            .get(&Self::key(t, namespace, name))
            .map(|object| Self::present(t, object))
            .ok_or_else(|| ApiError::not_found(&t.plural, &t.group, name))
    }

    fn check_namespace(
        &self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        if !t.namespaced {
            return Ok(());
        }
        if namespace.is_empty() {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource: a namespace is required",
            ));
        }
        let key = ObjectKey {
            group: String::new(),
            resource: "namespaces".to_owned(),
            namespace: String::new(),
            name: namespace.to_owned(),
        };
        match self.store.get(&key) {
            None => Err(ApiError::not_found("namespaces", "", namespace)),
            Some(ns) if text(ns, "/status/phase") == "Terminating" => {
                let mut error = ApiError::forbidden(format!(
                    "{} {name:?} is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    crate::error::qualified(&t.plural, &t.group)
                ));
                let mut details = json!({
                    "name": name, "group": t.group, "kind": t.plural,
                    "causes": [{"reason": "NamespaceTerminating",
                                "message": format!("namespace {namespace} is being terminated"),
                                "field": "metadata.namespace"}]
                });
                // The real server leaves an empty group out (`omitempty`).
                if t.group.is_empty()
                    && let Some(details) = details.as_object_mut()
                {
                    details.remove("group");
                }
                error.details = Some(Box::new(details));
                Err(error)
            }
            Some(_) => Ok(()),
        }
    }

    fn validate_name(t: &ResourceType, name: &str) -> Result<(), ApiError> {
        let label_only = t.group.is_empty() && (t.plural == "namespaces" || t.plural == "services");
        let valid = if label_only {
            is_dns_label(name)
        } else {
            is_dns_subdomain(name)
        };
        if valid {
            return Ok(());
        }
        let rule = if label_only {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
        } else {
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        };
        Err(invalid(
            t,
            name,
            "metadata.name",
            "FieldValueInvalid",
            format!("Invalid value: {name:?}: {rule}"),
        ))
    }

    /// Checks apiVersion, kind and namespace of a request body against the URL and fills them.
    fn check_body(
        t: &ResourceType,
        namespace: &str,
        body: &mut Value,
        decoded: Decoded,
    ) -> Result<(), ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body is not a JSON or YAML object",
            ));
        }
        let api_version = text(body, "/apiVersion").to_owned();
        if !api_version.is_empty() && api_version != t.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                t.api_version()
            )));
        }
        let kind = text(body, "/kind").to_owned();
        if !kind.is_empty() && kind != t.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                t.kind
            )));
        }
        body["apiVersion"] = json!(t.api_version());
        body["kind"] = json!(t.kind);
        let metadata = metadata_mut(body);
        if t.namespaced {
            match metadata.get("namespace").and_then(Value::as_str) {
                Some(given) if !given.is_empty() && given != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    metadata.insert("namespace".into(), json!(namespace));
                }
            }
        } else {
            metadata.shift_remove("namespace");
        }
        Self::check_string_maps(t, body, decoded)
    }

    /// The maps a real server decodes into Go `map[string]string` (labels, annotations, a
    /// ConfigMap's `data`, a Secret's `stringData`) or `map[string][]byte` (a ConfigMap's
    /// `binaryData`, a Secret's `data`): a value that is not a string is refused as the real
    /// server refuses it — a body or a patched object by its decoder (400), a server-side apply
    /// by structured-merge-diff (500, `failed to create typed patch object`). A null in a body
    /// or a patched object decodes as `""`, as Go's decoder leaves a map entry it cannot fill.
    fn check_string_maps(
        t: &ResourceType,
        body: &mut Value,
        decoded: Decoded,
    ) -> Result<(), ApiError> {
        let namespace = text(body, "/metadata/namespace").to_owned();
        let name = text(body, "/metadata/name").to_owned();
        let mut maps = vec![
            ("/metadata/labels", "ObjectMeta.metadata.labels", "string"),
            (
                "/metadata/annotations",
                "ObjectMeta.metadata.annotations",
                "string",
            ),
        ];
        match (t.group.as_str(), t.kind.as_str()) {
            ("", "ConfigMap") => maps.extend([
                ("/data", "ConfigMap.data", "string"),
                ("/binaryData", "ConfigMap.binaryData", "[]uint8"),
            ]),
            ("", "Secret") => maps.extend([
                ("/data", "Secret.data", "[]uint8"),
                ("/stringData", "Secret.stringData", "string"),
            ]),
            _ => {}
        }
        for (pointer, field, go_type) in maps {
            let Some(map) = body.pointer_mut(pointer).and_then(Value::as_object_mut) else {
                continue;
            };
            let mut wrong = None;
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(_) => {}
                    Value::Null if decoded == Decoded::Applied => {}
                    Value::Null => *value = json!(""),
                    _ => {
                        wrong = Some((key.clone(), value.clone()));
                        break;
                    }
                }
            }
            let Some((key, value)) = wrong else {
                continue;
            };
            return Err(match decoded {
                Decoded::Body => ApiError::bad_request(format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: json: cannot unmarshal {wrong} into Go struct field {field} of type {go_type}",
                    kind = t.kind,
                    version = t.version,
                    wrong = json_kind(&value),
                )),
                Decoded::Patched(how) => {
                    invalid_patch(how, body, &wrong_type(how, &value, field, go_type))
                }
                Decoded::Applied => ApiError::server_error(
                    500,
                    format!(
                        "failed to create typed patch object ({namespace}/{name}; {api_version}, Kind={kind}): {path}.{key}: expected string, got &value.valueUnstructured{{Value:{value}}}",
                        api_version = t.api_version(),
                        kind = t.kind,
                        path = pointer.replace('/', "."),
                    ),
                ),
            });
        }
        Ok(())
    }

    fn identity(t: &ResourceType, context: &WriteContext, operation: Operation) -> Identity {
        Identity {
            manager: context.manager.clone(),
            operation,
            api_version: t.api_version(),
            subresource: context.subresource.clone(),
        }
    }

    fn ignored(
        t: &ResourceType,
        context: &WriteContext,
        object: &Value,
    ) -> crate::fieldset::FieldSet {
        managed::ignored_fields(&context.subresource, t.status_subresource, object)
    }

    /// POST.
    ///
    /// # Errors
    ///
    /// 400 for a body that does not match the URL, 404/403 for a missing or terminating
    /// namespace, 409 AlreadyExists, 422 for an invalid name, 500 for a resourceVersion set
    /// (outside a dry run).
    pub fn create(
        &mut self,
        t: &ResourceType,
        namespace: &str,
        mut body: Value,
        context: &WriteContext,
    ) -> Result<Arc<Value>, ApiError> {
        Self::check_body(t, namespace, &mut body, Decoded::Body)?;
        Self::conform_to_schema(t, &mut body, context, Decoded::Body)?;
        let metadata = metadata_mut(&mut body);
        let mut name = metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if name.is_empty() {
            let prefix = metadata
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if prefix.is_empty() {
                return Err(invalid(
                    t,
                    "",
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required".into(),
                ));
            }
            name = format!("{prefix}{}", random_suffix());
            metadata.insert("name".into(), json!(name));
        }
        // A resourceVersion the storage versioner can read (a number above 0) is refused by
        // etcd storage's create, a plain error the server answers 500 without a reason. A dry
        // run never reaches that storage, and other values are dropped like the fields below.
        let sets_resource_version = metadata
            .get("resourceVersion")
            .and_then(Value::as_str)
            .and_then(|version| version.parse::<u64>().ok())
            .is_some_and(|version| version > 0);
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
        ] {
            metadata.shift_remove(field);
        }
        Self::validate_name(t, &name)?;
        self.check_namespace(t, namespace, &name)?;
        if sets_resource_version && !context.dry_run {
            return Err(ApiError::custom(
                500,
                "",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let key = Self::key(t, namespace, &name);
        if self.store.get(&key).is_some() {
            return Err(ApiError::already_exists(&t.plural, &t.group, &name));
        }
        let given = match managed::requested(&body) {
            managed::Requested::Replace(entries) => entries,
            managed::Requested::Live | managed::Requested::Reset => Vec::new(),
        };
        strip_managed_fields(&mut body);
        if t.status_subresource
            && let Some(map) = body.as_object_mut()
        {
            map.shift_remove("status");
        }
        self.apply_defaults(t, None, &mut body);
        let ignored = Self::ignored(t, context, &body);
        let managers = if given.is_empty() {
            managed::update(
                None,
                &body,
                &t.schema,
                Vec::new(),
                &Self::identity(t, context, Operation::Update),
                &ignored,
                &now(),
            )
        } else {
            given
        };
        self.commit(t, key, None, body, managers, context)
    }

    /// PUT (also of `/status`).
    ///
    /// # Errors
    ///
    /// 404 when missing, 409 on a stale resourceVersion or a uid other than the stored one's,
    /// 422 for immutable fields.
    pub fn update(
        &mut self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
        mut body: Value,
        context: &WriteContext,
    ) -> Result<Arc<Value>, ApiError> {
        Self::check_body(t, namespace, &mut body, Decoded::Body)?;
        Self::conform_to_schema(t, &mut body, context, Decoded::Body)?;
        let body_name = text(&body, "/metadata/name").to_owned();
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let key = Self::key(t, namespace, name);
        let live = self
            .store
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.plural, &t.group, name))?;
        // A uid in the body is a precondition of the update (the registry's
        // `UpdatedObjectInfo.Preconditions`), checked against the stored object first.
        let body_uid = text(&body, "/metadata/uid");
        if !body_uid.is_empty() && body_uid != text(&live, "/metadata/uid") {
            return Err(uid_precondition_failed(t, namespace, name, body_uid, &live));
        }
        let wanted_version = text(&body, "/metadata/resourceVersion").to_owned();
        // Custom resources do not allow an unconditional update (built-in types do).
        if wanted_version.is_empty() && t.crd.is_some() {
            return Err(invalid(
                t,
                name,
                "metadata.resourceVersion",
                "FieldValueInvalid",
                "Invalid value: 0x0: must be specified for an update".into(),
            ));
        }
        if !wanted_version.is_empty() && wanted_version != text(&live, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(
                &t.plural,
                &t.group,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        self.write_update(t, key, live, body, context)
    }

    /// PATCH with a merge, JSON or strategic patch already applied to the live object.
    ///
    /// # Errors
    ///
    /// As for `update`, except that a changed uid is a 422 (immutable field), not a 409.
    pub fn patch_live(
        &mut self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
        how: PatchMechanism<'_>,
        patch: impl FnOnce(&Value) -> Result<Value, ApiError>,
        context: &WriteContext,
    ) -> Result<Arc<Value>, ApiError> {
        let key = Self::key(t, namespace, name);
        let live = self
            .store
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.plural, &t.group, name))?;
        let mut body = patch(&Self::present(t, &live))?;
        Self::check_body(t, namespace, &mut body, Decoded::Patched(how))?;
        Self::conform_to_schema(t, &mut body, context, Decoded::Patched(how))?;
        if text(&body, "/metadata/name") != name {
            return Err(ApiError::bad_request(
                "metadata.name cannot be changed by a patch",
            ));
        }
        let wanted_version = text(&body, "/metadata/resourceVersion").to_owned();
        if !wanted_version.is_empty() && wanted_version != text(&live, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(
                &t.plural,
                &t.group,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        // A patch carries no precondition: a uid it changes fails validation as immutable.
        refuse_changed_uid(t, name, &body, &live)?;
        self.write_update(t, key, live, body, context)
    }

    fn write_update(
        &mut self,
        t: &ResourceType,
        key: ObjectKey,
        live: Value,
        mut body: Value,
        context: &WriteContext,
    ) -> Result<Arc<Value>, ApiError> {
        let requested = managed::requested(&body);
        strip_managed_fields(&mut body);
        let live_managers = managed::decode(&live).unwrap_or_default();
        let mut live_bare = live.clone();
        strip_managed_fields(&mut live_bare);
        let mut new = self.reset_for_subresource(t, &live_bare, body, context);
        carry_server_metadata(&live_bare, &mut new);
        self.apply_defaults(t, Some(&live_bare), &mut new);
        // A subresource's writes never set managedFields (the real server ignores them there).
        let base = match requested {
            _ if !context.subresource.is_empty() => live_managers,
            managed::Requested::Live => live_managers,
            managed::Requested::Reset => Vec::new(),
            managed::Requested::Replace(entries) => entries,
        };
        let ignored = Self::ignored(t, context, &new);
        let managers = managed::update(
            Some(&live_bare),
            &new,
            &t.schema,
            base,
            &Self::identity(t, context, Operation::Update),
            &ignored,
            &now(),
        );
        self.commit(t, key, Some(live), new, managers, context)
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply (creates when missing).
    ///
    /// # Errors
    ///
    /// 409 with `FieldManagerConflict` causes, 400 for managedFields in the config, 409 for a
    /// uid in a configuration that creates the object, 422 for one that changes it, plus the
    /// errors of `create` and `update`.
    pub fn apply(
        &mut self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
        mut config: Value,
        context: &WriteContext,
    ) -> Result<Arc<Value>, ApiError> {
        if text(&config, "/apiVersion").is_empty() || text(&config, "/kind").is_empty() {
            return Err(ApiError::bad_request(
                "apiVersion and kind must be set in an apply configuration",
            ));
        }
        Self::check_body(t, namespace, &mut config, Decoded::Applied)?;
        let config_name = text(&config, "/metadata/name").to_owned();
        if config_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({config_name}) does not match the name on the URL ({name})"
            )));
        }
        // Structured-merge-diff cannot type a configuration with fields the CRD's schema does
        // not declare: the real server refuses it (a 500 without a reason) rather than prune.
        // Nor one whose associative lists hold two items of one key, or an item without its
        // key (a duplicate env name, a container port without its key): 500 as well.
        let mut problems: Vec<String> = t
            .openapi_schema
            .as_ref()
            .map(|schema| crate::structural::undeclared_in_apply(&config, schema))
            .unwrap_or_default()
            .into_iter()
            .map(|path| format!("{path}: field not declared in schema"))
            .collect();
        problems.extend(crate::typed::config_problems(&config, &t.schema));
        if !problems.is_empty() {
            return Err(ApiError::custom(
                500,
                "",
                crate::structural::apply_refusal_message(
                    text(&config, "/metadata/namespace"),
                    name,
                    &t.api_version(),
                    &t.kind,
                    &problems,
                ),
            ));
        }
        if config
            .pointer("/metadata/managedFields")
            .is_some_and(|fields| {
                !fields.is_null() && fields.as_array().is_none_or(|items| !items.is_empty())
            })
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let key = Self::key(t, namespace, name);
        let live = self.store.get(&key).cloned();
        let wanted_version = text(&config, "/metadata/resourceVersion").to_owned();
        if let Some(live) = &live
            && !wanted_version.is_empty()
            && wanted_version != text(live, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(
                &t.plural,
                &t.group,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        match &live {
            Some(live) => refuse_changed_uid(t, name, &config, live)?,
            None if !text(&config, "/metadata/uid").is_empty() => {
                return Err(ApiError::conflict(
                    &t.plural,
                    &t.group,
                    name,
                    &format!(
                        "uid mismatch: the provided object specified uid {}, and no existing object was found",
                        text(&config, "/metadata/uid")
                    ),
                ));
            }
            None => {}
        }
        strip_managed_fields(&mut config);
        if let Some(metadata) = config.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                metadata.shift_remove(field);
            }
        }
        let config = match (&live, context.subresource.as_str()) {
            (_, "status") => json!({
                "apiVersion": config["apiVersion"], "kind": config["kind"],
                "metadata": {"name": name, "namespace": config.pointer("/metadata/namespace").cloned().unwrap_or(Value::Null)},
                "status": config.get("status").cloned().unwrap_or(json!({})),
            }),
            _ if t.status_subresource => {
                let mut config = config;
                if let Some(map) = config.as_object_mut() {
                    map.shift_remove("status");
                }
                config
            }
            _ => config,
        };
        let mut config = config;
        if !t.namespaced
            && let Some(metadata) = config.get_mut("metadata").and_then(Value::as_object_mut)
        {
            metadata.shift_remove("namespace");
        }
        match live {
            None => {
                if context.subresource == "status" {
                    return Err(ApiError::not_found(&t.plural, &t.group, name));
                }
                Self::validate_name(t, name)?;
                self.check_namespace(t, namespace, name)?;
                let ignored = Self::ignored(t, context, &config);
                let identity = Self::identity(t, context, Operation::Apply);
                let outcome = managed::apply(
                    None,
                    &config,
                    &t.schema,
                    Vec::new(),
                    &identity,
                    context.force,
                    &ignored,
                    &now(),
                )
                .map_err(conflict_error)?;
                let mut object = outcome.object;
                self.apply_defaults(t, None, &mut object);
                self.commit(t, key, None, object, outcome.managers, context)
            }
            Some(live) => {
                let mut managers = managed::decode(&live).unwrap_or_default();
                let mut live_bare = live.clone();
                strip_managed_fields(&mut live_bare);
                let ignored = Self::ignored(t, context, &live_bare);
                if managers.is_empty() {
                    managers.push(ManagedEntry {
                        manager: "before-first-apply".to_owned(),
                        operation: Operation::Update,
                        api_version: t.api_version(),
                        time: now(),
                        subresource: String::new(),
                        fields: crate::typed::fields_of(&live_bare, &t.schema)
                            .recursive_difference(&ignored),
                    });
                }
                let identity = Self::identity(t, context, Operation::Apply);
                let outcome = managed::apply(
                    Some(&live_bare),
                    &config,
                    &t.schema,
                    managers,
                    &identity,
                    context.force,
                    &ignored,
                    &now(),
                )
                .map_err(conflict_error)?;
                let mut object = outcome.object;
                carry_server_metadata(&live_bare, &mut object);
                if context.manager == "kubectl"
                    && live_bare.pointer(LAST_APPLIED_POINTER).is_some()
                    && let Some(annotations) = object
                        .pointer_mut("/metadata/annotations")
                        .and_then(Value::as_object_mut)
                {
                    annotations.insert(LAST_APPLIED.into(), json!(config.to_string()));
                }
                self.apply_defaults(t, Some(&live_bare), &mut object);
                self.commit(t, key, Some(live), object, outcome.managers, context)
            }
        }
    }

    /// For `/status` writes: the live object with the new status; for main-resource writes of
    /// a type with a status subresource: the new object with the live status.
    fn reset_for_subresource(
        &self,
        t: &ResourceType,
        live: &Value,
        mut new: Value,
        context: &WriteContext,
    ) -> Value {
        if context.subresource == "status" {
            let mut out = live.clone();
            out["status"] = new.get("status").cloned().unwrap_or(json!({}));
            return out;
        }
        if t.status_subresource
            && let Some(map) = new.as_object_mut()
        {
            match live.get("status") {
                Some(status) => {
                    map.insert("status".into(), status.clone());
                }
                None => {
                    map.shift_remove("status");
                }
            }
        }
        new
    }

    /// Prunes and defaults a custom resource's decoded body by its version's schema, and
    /// handles the undeclared fields it drops as the write's `fieldValidation` says: nothing
    /// for `Ignore`, an `unknown field "<path>"` warning each for `Warn`, and for `Strict` the
    /// real server's 400 (`strict decoding error: unknown field "<path>"`, after
    /// `<Kind> in version "<v>" cannot be handled as a <Kind>: ` for a create or update body).
    fn conform_to_schema(
        t: &ResourceType,
        body: &mut Value,
        context: &WriteContext,
        decoded: Decoded,
    ) -> Result<(), ApiError> {
        let Some(schema) = &t.openapi_schema else {
            return Ok(());
        };
        // A patch is refused with the object it produced, undeclared fields included.
        let patched = match decoded {
            Decoded::Patched(_) if context.field_validation == FieldValidation::Strict => {
                Some(body.clone())
            }
            _ => None,
        };
        let unknown: Vec<String> = crate::structural::prune(body, schema)
            .into_iter()
            .map(|path| format!("unknown field {path:?}"))
            .collect();
        crate::structural::default(body, schema);
        if unknown.is_empty() {
            return Ok(());
        }
        match context.field_validation {
            FieldValidation::Ignore => Ok(()),
            FieldValidation::Warn => {
                context.warnings.borrow_mut().extend(unknown);
                Ok(())
            }
            FieldValidation::Strict => {
                let error = format!("strict decoding error: {}", unknown.join(", "));
                Err(match decoded {
                    Decoded::Body => ApiError::bad_request(format!(
                        "{kind} in version {version:?} cannot be handled as a {kind}: {error}",
                        kind = t.kind,
                        version = t.version,
                    )),
                    Decoded::Patched(how) => {
                        invalid_patch(how, patched.as_ref().unwrap_or(body), &error)
                    }
                    Decoded::Applied => ApiError::bad_request(error),
                })
            }
        }
    }

    /// Fills a few defaults the real API server sets, so objects read back look like real ones;
    /// a custom resource is pruned and defaulted by its version's schema
    /// ([`crate::structural`]).
    fn apply_defaults(&mut self, t: &ResourceType, live: Option<&Value>, object: &mut Value) {
        if let Some(schema) = &t.openapi_schema {
            crate::structural::prune(object, schema);
            crate::structural::default(object, schema);
        }
        match (t.group.as_str(), t.kind.as_str()) {
            ("", "Namespace") => {
                if object.pointer("/spec/finalizers").is_none() {
                    object["spec"] = json!({"finalizers": ["kubernetes"]});
                }
                if object.pointer("/status/phase").is_none() {
                    object["status"] = json!({"phase": "Active"});
                }
                let name = text(object, "/metadata/name").to_owned();
                let metadata = metadata_mut(object);
                if !metadata.get("labels").is_some_and(Value::is_object) {
                    metadata.insert("labels".into(), json!({}));
                }
                metadata["labels"]["kubernetes.io/metadata.name"] = json!(name);
            }
            ("", "Service") => {
                if !object.get("spec").is_some_and(Value::is_object) {
                    object["spec"] = json!({});
                }
                let live_ip = live
                    .and_then(|live| live.pointer("/spec/clusterIP"))
                    .cloned();
                let spec = object["spec"].as_object_mut().expect("spec is an object");
                if !spec.contains_key("type") {
                    spec.insert("type".into(), json!("ClusterIP"));
                }
                let external = spec.get("type").and_then(Value::as_str) == Some("ExternalName");
                if !external
                    && spec
                        .get("clusterIP")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                {
                    let ip = live_ip.unwrap_or_else(|| {
                        let n = self.next_cluster_ip;
                        self.next_cluster_ip += 1;
                        json!(format!("10.96.{}.{}", n / 250, n % 250 + 1))
                    });
                    spec.insert("clusterIP".into(), ip.clone());
                    spec.insert("clusterIPs".into(), json!([ip]));
                }
                spec.entry("sessionAffinity").or_insert(json!("None"));
                if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                    for port in ports {
                        if let Some(port) = port.as_object_mut() {
                            port.entry("protocol").or_insert(json!("TCP"));
                            if let Some(number) = port.get("port").cloned() {
                                port.entry("targetPort").or_insert(number);
                            }
                        }
                    }
                }
            }
            ("", "Secret") => merge_string_data(object),
            ("apps", "Deployment") => {
                if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.entry("replicas").or_insert(json!(1));
                    spec.entry("revisionHistoryLimit").or_insert(json!(10));
                    spec.entry("progressDeadlineSeconds").or_insert(json!(600));
                    spec.entry("strategy").or_insert(json!({
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                    }));
                }
                default_pod_template(object.pointer_mut("/spec/template/spec"));
            }
            ("apps", "StatefulSet" | "DaemonSet" | "ReplicaSet") | ("batch", "Job") => {
                if t.kind == "StatefulSet"
                    && let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut)
                {
                    spec.entry("replicas").or_insert(json!(1));
                }
                default_pod_template(object.pointer_mut("/spec/template/spec"));
            }
            _ => {}
        }
    }

    fn check_immutable(t: &ResourceType, old: &Value, new: &Value) -> Result<(), ApiError> {
        let name = text(new, "/metadata/name");
        let changed = |pointer: &str| old.pointer(pointer) != new.pointer(pointer);
        let new_value = |pointer: &str| new.pointer(pointer).cloned().unwrap_or(Value::Null);
        let forbidden = |field: &str| {
            invalid(
                t,
                name,
                field,
                "FieldValueForbidden",
                "Forbidden: field is immutable when `immutable` is set".into(),
            )
        };
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            let old_finalizers = old.pointer("/metadata/finalizers");
            let added: Vec<&str> = new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|finalizer| {
                    !old_finalizers
                        .and_then(Value::as_array)
                        .is_some_and(|old| old.iter().any(|kept| kept == finalizer))
                })
                .collect();
            if !added.is_empty() {
                let mut added: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
                added.sort();
                added.dedup();
                return Err(invalid(
                    t,
                    name,
                    "metadata.finalizers",
                    "FieldValueForbidden",
                    format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                        added.join(", ")
                    ),
                ));
            }
        }
        match (t.group.as_str(), t.kind.as_str()) {
            ("", "Secret")
                if old.get("type").and_then(Value::as_str).unwrap_or("Opaque")
                    != new.get("type").and_then(Value::as_str).unwrap_or("Opaque") =>
            {
                return Err(immutable(t, name, "type", &new_value("/type")));
            }
            ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding")
                if changed("/roleRef") =>
            {
                let role_ref =
                    |field: &str| format!("{:?}", text(new, &format!("/roleRef/{field}")));
                return Err(invalid(
                    t,
                    name,
                    "roleRef",
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}: cannot change roleRef",
                        role_ref("apiGroup"),
                        role_ref("kind"),
                        role_ref("name")
                    ),
                ));
            }
            ("apps", "StatefulSet") => {
                let fixed = |object: &Value| {
                    let mut spec = object.get("spec").cloned().unwrap_or(Value::Null);
                    if let Some(spec) = spec.as_object_mut() {
                        for field in [
                            "replicas",
                            "ordinals",
                            "template",
                            "updateStrategy",
                            "persistentVolumeClaimRetentionPolicy",
                            "minReadySeconds",
                        ] {
                            spec.shift_remove(field);
                        }
                    }
                    spec
                };
                if fixed(old) != fixed(new) {
                    return Err(invalid(
                        t,
                        name,
                        "spec",
                        "FieldValueForbidden",
                        "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".into(),
                    ));
                }
            }
            ("", "PersistentVolumeClaim") => {
                let fixed = |object: &Value, volume_name: Option<&Value>| {
                    let mut spec = object.get("spec").cloned().unwrap_or(Value::Null);
                    if let Some(spec) = spec.as_object_mut() {
                        spec.shift_remove("volumeAttributesClassName");
                        if let Some(resources) =
                            spec.get_mut("resources").and_then(Value::as_object_mut)
                        {
                            resources.shift_remove("requests");
                        }
                        // Binding sets volumeName once (the real validation allows it).
                        if let Some(volume_name) = volume_name {
                            spec.insert("volumeName".into(), volume_name.clone());
                        }
                    }
                    spec
                };
                let unbound = text(old, "/spec/volumeName").is_empty();
                let old_name = old
                    .pointer("/spec/volumeName")
                    .cloned()
                    .unwrap_or(json!(""));
                let spec_without = |object: &Value| fixed(object, unbound.then_some(&old_name));
                if spec_without(old) != spec_without(new) {
                    return Err(invalid(
                        t,
                        name,
                        "spec",
                        "FieldValueForbidden",
                        "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims".into(),
                    ));
                }
            }
            ("", "Secret" | "ConfigMap") if old.get("immutable") == Some(&json!(true)) => {
                for field in ["data", "binaryData", "stringData"] {
                    if changed(&format!("/{field}")) {
                        return Err(forbidden(field));
                    }
                }
                if new.get("immutable") != Some(&json!(true)) {
                    return Err(forbidden("immutable"));
                }
            }
            ("", "Service")
                if old.pointer("/spec/clusterIP").is_some()
                    && new.pointer("/spec/clusterIP").is_some()
                    && changed("/spec/clusterIP") =>
            {
                return Err(immutable(
                    t,
                    name,
                    "spec.clusterIP",
                    &new_value("/spec/clusterIP"),
                ));
            }
            ("apps", "Deployment" | "DaemonSet" | "ReplicaSet") if changed("/spec/selector") => {
                return Err(immutable(
                    t,
                    name,
                    "spec.selector",
                    &new_value("/spec/selector"),
                ));
            }
            ("batch", "Job") => {
                for (pointer, field) in [
                    ("/spec/selector", "spec.selector"),
                    ("/spec/template", "spec.template"),
                ] {
                    if changed(pointer) {
                        return Err(immutable(t, name, field, &new_value(pointer)));
                    }
                }
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") if changed("/spec/scope") => {
                return Err(immutable(t, name, "spec.scope", &new_value("/spec/scope")));
            }
            _ => {}
        }
        Ok(())
    }

    /// Validates, stamps metadata and stores (unless a dry run or a no-op).
    fn commit(
        &mut self,
        t: &ResourceType,
        key: ObjectKey,
        old: Option<Value>,
        mut new: Value,
        managers: Vec<ManagedEntry>,
        context: &WriteContext,
    ) -> Result<Arc<Value>, ApiError> {
        if let Some(old) = &old {
            Self::check_immutable(t, old, &new)?;
        }
        let metadata = metadata_mut(&mut new);
        if managers.is_empty() {
            metadata.shift_remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), managed::encode(&managers));
        }
        match &old {
            None => {
                metadata.insert("uid".into(), json!(new_uid()));
                metadata.insert("creationTimestamp".into(), json!(now()));
                if t.tracks_generation {
                    metadata.insert("generation".into(), json!(1));
                }
            }
            Some(old) => {
                if t.tracks_generation {
                    let generation = old
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    let bumped = if spec_part(t, old) != spec_part(t, &new) {
                        generation + 1
                    } else {
                        generation
                    };
                    metadata_mut(&mut new).insert("generation".into(), json!(bumped));
                }
                if without_server_fields(old) == without_server_fields(&new) {
                    return Ok(Arc::new(Self::present(t, old)));
                }
            }
        }
        let finalizers_empty = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        let spec_finalizers_empty = new
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
            || !(t.group.is_empty() && t.kind == "Namespace");
        let finalizers_empty = finalizers_empty && spec_finalizers_empty;
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        if context.dry_run {
            if old.is_none() {
                metadata_mut(&mut new).shift_remove("resourceVersion");
            }
            return Ok(Arc::new(Self::present(t, &new)));
        }
        let revision = self.store.next_revision();
        metadata_mut(&mut new).insert("resourceVersion".into(), json!(revision.to_string()));
        if deleting && finalizers_empty && old.is_some() {
            self.finish_delete(t, &key, new.clone(), revision);
            return Ok(Arc::new(Self::present(t, &new)));
        }
        // Stored as it is presented, so that the answer is the stored object itself, not a copy.
        new["apiVersion"] = json!(t.api_version());
        new["kind"] = json!(t.kind);
        let new = Arc::new(new);
        let new_crd = (t.group == "apiextensions.k8s.io"
            && t.kind == "CustomResourceDefinition"
            && old.is_none())
        .then(|| key.name.clone());
        // An Established CRD's update is served at once: versions, schemas, `served` flags; its
        // storage version joins `status.storedVersions`.
        let updated_crd = t.group == "apiextensions.k8s.io"
            && t.kind == "CustomResourceDefinition"
            && old.is_some()
            && is_established(&new);
        let new = if updated_crd {
            let mut crd = Arc::unwrap_or_clone(new);
            record_storage_version(&mut crd);
            self.catalog.add_crd(&crd);
            Arc::new(crd)
        } else {
            new
        };
        // Shared by the store, its watch history and the answer.
        self.store.put_shared(key, new.clone(), revision);
        if let Some(name) = new_crd {
            self.schedule_crd(&name);
        }
        Ok(new)
    }

    fn finish_delete(&mut self, t: &ResourceType, key: &ObjectKey, last: Value, revision: u64) {
        self.store.remove(key, last.clone(), revision);
        if t.group == "apiextensions.k8s.io" && t.kind == "CustomResourceDefinition" {
            let group = text(&last, "/spec/group").to_owned();
            let plural = text(&last, "/spec/names/plural").to_owned();
            self.catalog.remove_crd(&key.name);
            self.pending_crds.retain(|(name, _)| *name != key.name);
            for custom in self.store.keys() {
                if custom.group == group && custom.resource == plural {
                    let object = self.store.get(&custom).cloned().unwrap_or(Value::Null);
                    let revision = self.store.next_revision();
                    let mut object = object;
                    metadata_mut(&mut object)
                        .insert("resourceVersion".into(), json!(revision.to_string()));
                    self.store.remove(&custom, object, revision);
                }
            }
        }
        if self.behaviour.garbage_collector {
            let uid = text(&last, "/metadata/uid").to_owned();
            self.collect_dependents(&uid);
        }
    }

    fn collect_dependents(&mut self, owner_uid: &str) {
        if owner_uid.is_empty() {
            return;
        }
        for key in self.store.keys() {
            let Some(object) = self.store.get(&key) else {
                continue;
            };
            let owned = object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|owners| owners.iter().any(|owner| text(owner, "/uid") == owner_uid));
            if !owned {
                continue;
            }
            let Some(t) = self.type_of_key(&key) else {
                continue;
            };
            let _ = self.delete(
                &t,
                &key.namespace,
                &key.name,
                &DeleteOptions::default(),
                &WriteContext::default(),
            );
        }
    }

    /// Whether an object naming `owner_uid` with `blockOwnerDeletion: true` is still stored.
    fn blocking_dependents(&self, owner_uid: &str) -> bool {
        self.store.keys().iter().any(|key| {
            self.store.get(key).is_some_and(|object| {
                object
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|owners| {
                        owners.iter().any(|owner| {
                            text(owner, "/uid") == owner_uid
                                && owner.get("blockOwnerDeletion") == Some(&json!(true))
                        })
                    })
            })
        })
    }

    fn type_of_key(&self, key: &ObjectKey) -> Option<ResourceType> {
        self.catalog
            .types()
            .iter()
            .find(|t| t.group == key.group && t.plural == key.resource)
            .cloned()
    }

    /// DELETE: removes the object at once, or (finalizers, Namespaces) marks it with
    /// `deletionTimestamp` (and, when it tracks one, a bumped `generation`). A dry run answers
    /// the same without storing anything.
    ///
    /// # Errors
    ///
    /// 404 when missing, 409 when a precondition fails, 403 for the namespaces `default`,
    /// `kube-system` and `kube-public`.
    pub fn delete(
        &mut self,
        t: &ResourceType,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
        context: &WriteContext,
    ) -> Result<Deleted, ApiError> {
        let key = Self::key(t, namespace, name);
        let live = self
            .store
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.plural, &t.group, name))?;
        if let Some(uid) = &options.uid
            && uid != text(&live, "/metadata/uid")
        {
            return Err(ApiError::conflict(
                &t.plural,
                &t.group,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    text(&live, "/metadata/uid")
                ),
            ));
        }
        if let Some(version) = &options.resource_version
            && version != text(&live, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(
                &t.plural,
                &t.group,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {version}, ResourceVersion in object meta: {}",
                    text(&live, "/metadata/resourceVersion")
                ),
            ));
        }
        // The NamespaceLifecycle admission plugin keeps its immortal namespaces, dry run or not.
        if t.group.is_empty() && t.kind == "Namespace" && IMMORTAL_NAMESPACES.contains(&name) {
            let mut error = ApiError::forbidden(format!(
                "namespaces {name:?} is forbidden: this namespace may not be deleted"
            ));
            error.details = Some(Box::new(json!({"name": name, "kind": "namespaces"})));
            return Err(error);
        }
        let mut object = live.clone();
        let mut finalizers: Vec<Value> = object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let is_namespace = t.group.is_empty() && t.kind == "Namespace";
        if live.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Deleted {
                object: Self::present(t, &live),
                removed: false,
            });
        }
        match options.propagation_policy.as_deref() {
            Some("Foreground") => finalizers.push(json!("foregroundDeletion")),
            Some("Orphan") => finalizers.push(json!("orphan")),
            _ => {}
        }
        // A CRD goes once its custom resources have: they are deleted (each as its own
        // finalizers allow), and the CRD stays Terminating, held by this finalizer, until the
        // last is gone ([`State::finalize_crds`]).
        let is_crd = t.group == "apiextensions.k8s.io" && t.kind == "CustomResourceDefinition";
        if is_crd && !context.dry_run && !self.custom_resources_of(&live).is_empty() {
            finalizers.push(json!(CRD_CLEANUP_FINALIZER));
        }
        let keeps = !finalizers.is_empty() || is_namespace;
        if !keeps {
            if !context.dry_run {
                let revision = self.store.next_revision();
                metadata_mut(&mut object)
                    .insert("resourceVersion".into(), json!(revision.to_string()));
                self.finish_delete(t, &key, object.clone(), revision);
            }
            return Ok(Deleted {
                object: Self::present(t, &object),
                removed: true,
            });
        }
        let metadata = metadata_mut(&mut object);
        metadata.insert("deletionTimestamp".into(), json!(now()));
        metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
        if !finalizers.is_empty() {
            metadata.insert("finalizers".into(), Value::Array(finalizers));
        }
        if let Some(generation) = metadata.get("generation").and_then(Value::as_i64)
            && generation > 0
        {
            metadata.insert("generation".into(), json!(generation + 1));
        }
        if is_namespace {
            object["status"] = json!({"phase": "Terminating"});
        }
        if is_crd
            && let Some(conditions) = object
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
        {
            conditions.push(json!({"type": "Terminating", "status": "True",
                "reason": "InstanceDeletionInProgress",
                "message": "CustomResource deletion is in progress",
                "lastTransitionTime": now()}));
        }
        if !context.dry_run {
            let revision = self.store.next_revision();
            metadata_mut(&mut object).insert("resourceVersion".into(), json!(revision.to_string()));
            self.store.put(key, object.clone(), revision);
            if is_crd {
                self.delete_custom_resources(&live);
            }
        }
        Ok(Deleted {
            object: Self::present(t, &object),
            removed: false,
        })
    }

    /// Runs the optional controllers and promotes CRDs whose delay passed; returns whether
    /// anything changed.
    pub fn tick(&mut self, now_instant: Instant) -> bool {
        let mut changed = false;
        let due: Vec<String> = self
            .pending_crds
            .iter()
            .filter(|(_, deadline)| *deadline <= now_instant)
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            self.pending_crds.retain(|(pending, _)| *pending != name);
            self.establish_crd(&name);
            changed = true;
        }
        changed |= self.finalize_crds();
        if self.behaviour.namespace_controller {
            changed |= self.finalize_namespaces();
        }
        if self.behaviour.garbage_collector {
            changed |= self.finish_foreground_and_orphan();
        }
        changed
    }

    fn schedule_crd(&mut self, name: &str) {
        let delay = self.behaviour.crd_established_delay;
        if delay.is_zero() {
            self.establish_crd(name);
        } else {
            self.pending_crds
                .push((name.to_owned(), Instant::now() + delay));
        }
    }

    /// Marks a CRD NamesAccepted and Established and serves its resources.
    pub fn establish_crd(&mut self, name: &str) {
        let key = ObjectKey {
            group: "apiextensions.k8s.io".to_owned(),
            resource: "customresourcedefinitions".to_owned(),
            namespace: String::new(),
            name: name.to_owned(),
        };
        let Some(mut crd) = self.store.get(&key).cloned() else {
            return;
        };
        let stamp = now();
        let storage = storage_version_name(&crd)
            .or_else(|| crd.pointer("/spec/versions/0/name"))
            .cloned()
            .unwrap_or(json!("v1"));
        crd["status"] = json!({
            "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": stamp},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": stamp}
            ],
            "storedVersions": [storage]
        });
        self.catalog.add_crd(&crd);
        let revision = self.store.next_revision();
        metadata_mut(&mut crd).insert("resourceVersion".into(), json!(revision.to_string()));
        self.store.put(key, crd, revision);
    }

    /// The custom resources of the CRD `crd`, in every namespace.
    fn custom_resources_of(&self, crd: &Value) -> Vec<ObjectKey> {
        let group = text(crd, "/spec/group");
        let plural = text(crd, "/spec/names/plural");
        self.store
            .keys()
            .into_iter()
            .filter(|key| key.group == group && key.resource == plural)
            .collect()
    }

    /// Deletes each custom resource of the CRD `crd` not being deleted yet (at once, or marked
    /// as its finalizers ask).
    fn delete_custom_resources(&mut self, crd: &Value) {
        for custom in self.custom_resources_of(crd) {
            let Some(t) = self.type_of_key(&custom) else {
                continue;
            };
            if self
                .store
                .get(&custom)
                .is_some_and(|object| object.pointer("/metadata/deletionTimestamp").is_none())
            {
                let _ = self.delete(
                    &t,
                    &custom.namespace,
                    &custom.name,
                    &DeleteOptions::default(),
                    &WriteContext::default(),
                );
            }
        }
    }

    /// The CRD controller's cleanup: a CRD being deleted whose custom resources are all gone
    /// loses [`CRD_CLEANUP_FINALIZER`], and goes when no other finalizer holds it. Returns
    /// whether anything changed.
    fn finalize_crds(&mut self) -> bool {
        let terminating: Vec<(ObjectKey, Value)> = self
            .store
            .list("apiextensions.k8s.io", "customresourcedefinitions", None)
            .into_iter()
            .filter(|(_, crd)| crd.pointer("/metadata/deletionTimestamp").is_some())
            .map(|(key, crd)| (key.clone(), crd.clone()))
            .collect();
        let Some(crd_type) = self
            .catalog
            .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .cloned()
        else {
            return false;
        };
        let mut changed = false;
        for (key, mut crd) in terminating {
            let held = crd
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|finalizers| finalizers.contains(&json!(CRD_CLEANUP_FINALIZER)));
            if !held || !self.custom_resources_of(&crd).is_empty() {
                continue;
            }
            let metadata = metadata_mut(&mut crd);
            let left: Vec<Value> = metadata
                .get("finalizers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|finalizer| **finalizer != json!(CRD_CLEANUP_FINALIZER))
                .cloned()
                .collect();
            let revision = self.store.next_revision();
            metadata.insert("resourceVersion".into(), json!(revision.to_string()));
            if left.is_empty() {
                metadata.remove("finalizers");
                self.finish_delete(&crd_type, &key, crd, revision);
            } else {
                metadata.insert("finalizers".into(), Value::Array(left));
                self.store.put(key, crd, revision);
            }
            changed = true;
        }
        changed
    }

    fn finalize_namespaces(&mut self) -> bool {
        let mut changed = false;
        let namespaces: Vec<(ObjectKey, Value)> = self
            .store
            .list("", "namespaces", None)
            .into_iter()
            .filter(|(_, ns)| text(ns, "/status/phase") == "Terminating")
            .map(|(key, ns)| (key.clone(), ns.clone()))
            .collect();
        let Some(namespace_type) = self.catalog.find("", "v1", "namespaces").cloned() else {
            return false;
        };
        for (key, mut namespace) in namespaces {
            let contents = self.store.in_namespace(&key.name);
            for content in &contents {
                if let Some(t) = self.type_of_key(content)
                    && self
                        .store
                        .get(content)
                        .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_none())
                {
                    let _ = self.delete(
                        &t,
                        &content.namespace,
                        &content.name,
                        &DeleteOptions::default(),
                        &WriteContext::default(),
                    );
                    changed = true;
                }
            }
            if self.store.in_namespace(&key.name).is_empty() {
                namespace["spec"] = json!({"finalizers": []});
                let finalizers_empty = namespace
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
                let revision = self.store.next_revision();
                metadata_mut(&mut namespace)
                    .insert("resourceVersion".into(), json!(revision.to_string()));
                if finalizers_empty {
                    self.finish_delete(&namespace_type, &key, namespace, revision);
                } else {
                    self.store.put(key, namespace, revision);
                }
                changed = true;
            }
        }
        changed
    }

    fn finish_foreground_and_orphan(&mut self) -> bool {
        let mut changed = false;
        for key in self.store.keys() {
            let Some(object) = self.store.get(&key).cloned() else {
                continue;
            };
            if object.pointer("/metadata/deletionTimestamp").is_none() {
                continue;
            }
            let finalizers: Vec<Value> = object
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let gc_finalizers = [json!("foregroundDeletion"), json!("orphan")];
            if !finalizers.iter().any(|f| gc_finalizers.contains(f)) {
                continue;
            }
            let uid = text(&object, "/metadata/uid").to_owned();
            if finalizers.contains(&json!("orphan")) {
                self.orphan_dependents(&uid);
            } else {
                self.collect_dependents(&uid);
                // The owner stays (foregroundDeletion) while a dependent that blocks its
                // deletion is still there, held by a finalizer of its own.
                if self.blocking_dependents(&uid) {
                    continue;
                }
            }
            let remaining: Vec<Value> = finalizers
                .into_iter()
                .filter(|f| !gc_finalizers.contains(f))
                .collect();
            let Some(t) = self.type_of_key(&key) else {
                continue;
            };
            let mut object = object;
            metadata_mut(&mut object).insert("finalizers".into(), Value::Array(remaining.clone()));
            let revision = self.store.next_revision();
            metadata_mut(&mut object).insert("resourceVersion".into(), json!(revision.to_string()));
            if remaining.is_empty() {
                self.finish_delete(&t, &key, object, revision);
            } else {
                self.store.put(key, object, revision);
            }
            changed = true;
        }
        changed
    }

    fn orphan_dependents(&mut self, owner_uid: &str) {
        for key in self.store.keys() {
            let Some(mut object) = self.store.get(&key).cloned() else {
                continue;
            };
            let Some(owners) = object
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            let before = owners.len();
            owners.retain(|owner| text(owner, "/uid") != owner_uid);
            if owners.len() != before {
                let emptied = owners.is_empty();
                let revision = self.store.next_revision();
                let metadata = metadata_mut(&mut object);
                // An empty list is left out, as the real server stores it (`omitempty`).
                if emptied {
                    metadata.shift_remove("ownerReferences");
                }
                metadata.insert("resourceVersion".into(), json!(revision.to_string()));
                self.store.put(key, object, revision);
            }
        }
    }
}

/// Whether a CRD's status says Established.
fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|condition| {
                text(condition, "/type") == "Established" && text(condition, "/status") == "True"
            })
        })
}

/// Adds a CRD's storage version to `status.storedVersions` when it is not there yet.
fn record_storage_version(crd: &mut Value) {
    let Some(storage) = storage_version_name(crd).cloned() else {
        return;
    };
    if !crd.get("status").is_some_and(Value::is_object) {
        crd["status"] = json!({});
    }
    let status = crd["status"]
        .as_object_mut()
        .expect("status was just made an object");
    let stored = status.entry("storedVersions").or_insert(json!([]));
    if !stored.is_array() {
        *stored = json!([]);
    }
    let stored = stored
        .as_array_mut()
        .expect("storedVersions was just made a list");
    if !stored.contains(&storage) {
        stored.push(storage);
    }
}

/// The `name` of the CRD's version marked `storage: true`, if any.
fn storage_version_name(crd: &Value) -> Option<&Value> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|version| version.get("storage").and_then(Value::as_bool) == Some(true))?
        .get("name")
}

/// What a DELETE did.
#[derive(Clone, Debug)]
pub struct Deleted {
    /// The object as it was removed, or as it stays while finalizers keep it.
    pub object: Value,
    /// Whether it is gone (false: it stays with `deletionTimestamp` until its finalizers go).
    pub removed: bool,
}

impl Deleted {
    /// The answer of the real API server: the object while it stays, and once gone the object
    /// itself only for the types whose registry returns it (pods, serviceaccounts,
    /// storageclasses); other types answer a `Status` of `Success` naming what went.
    pub fn answer(self, t: &ResourceType) -> Value {
        let returns_object = matches!(
            (t.group.as_str(), t.plural.as_str()),
            ("", "pods" | "serviceaccounts") | ("storage.k8s.io", "storageclasses")
        );
        if !self.removed || returns_object {
            return self.object;
        }
        let mut details = Map::new();
        details.insert("name".into(), json!(text(&self.object, "/metadata/name")));
        if !t.group.is_empty() {
            details.insert("group".into(), json!(t.group));
        }
        details.insert("kind".into(), json!(t.plural));
        details.insert("uid".into(), json!(text(&self.object, "/metadata/uid")));
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        })
    }
}

/// What a DELETE asks for.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `Foreground`, `Background` or `Orphan`.
    pub propagation_policy: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const LAST_APPLIED_POINTER: &str =
    "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration";

fn strip_managed_fields(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.shift_remove("managedFields");
    }
}

/// Copies the metadata only the server sets from the live object.
fn carry_server_metadata(live: &Value, new: &mut Value) {
    let metadata = metadata_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "resourceVersion",
    ] {
        match live.pointer(&format!("/metadata/{field}")) {
            Some(value) => {
                metadata.insert(field.into(), value.clone());
            }
            None => {
                metadata.shift_remove(field);
            }
        }
    }
}

/// A Secret's `stringData` written into `data` (each value base64-encoded, overwriting a key
/// `data` has too) and removed, as the real Secret conversion does ("StringData overwrites
/// Data"). A value that is not a string is left in `stringData` for the client to see.
fn merge_string_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(fields) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = fields.shift_remove("stringData") else {
        return;
    };
    if !fields.get("data").is_some_and(Value::is_object) {
        fields.insert("data".into(), json!({}));
    }
    let mut kept = Map::new();
    for (key, value) in string_data {
        match value.as_str() {
            Some(text) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                fields["data"][key.as_str()] = json!(encoded);
            }
            None => {
                kept.insert(key, value);
            }
        }
    }
    if !kept.is_empty() {
        fields.insert("stringData".into(), Value::Object(kept));
    }
}

fn default_pod_template(spec: Option<&mut Value>) {
    let Some(Value::Object(spec)) = spec else {
        return;
    };
    spec.entry("restartPolicy").or_insert(json!("Always"));
    spec.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    spec.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    spec.entry("securityContext").or_insert(json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for container in containers {
                let Some(container) = container.as_object_mut() else {
                    continue;
                };
                let image = container.get("image").and_then(Value::as_str).unwrap_or("");
                let latest = !image.contains(':') || image.ends_with(":latest");
                container
                    .entry("imagePullPolicy")
                    .or_insert(json!(if latest { "Always" } else { "IfNotPresent" }));
                container
                    .entry("terminationMessagePath")
                    .or_insert(json!("/dev/termination-log"));
                container
                    .entry("terminationMessagePolicy")
                    .or_insert(json!("File"));
                container.entry("resources").or_insert(json!({}));
                if let Some(Value::Array(ports)) = container.get_mut("ports") {
                    for port in ports {
                        if let Some(port) = port.as_object_mut() {
                            port.entry("protocol").or_insert(json!("TCP"));
                        }
                    }
                }
            }
        }
    }
}

fn conflict_error(conflicts: Vec<managed::Conflict>) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|conflict| {
            // `StatusCause.Type` is `reason` on the wire.
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", conflict.manager.describe()),
                "field": conflict.field,
            })
        })
        .collect();
    ApiError::apply_conflict(managed::conflict_message(&conflicts), causes)
}
