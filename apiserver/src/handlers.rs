//! HTTP in and out: parses the request path into a route (discovery, OpenAPI, or a resource
//! with optional namespace, name and subresource), works out the verb, applies injected faults,
//! decodes the body by content type (JSON, YAML, the four patch types), calls the write path,
//! and records the request in the log.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::catalog::ResourceType;
use crate::discovery;
use crate::error::ApiError;
use crate::faults::{self, Injected};
use crate::objects::{DeleteOptions, FieldValidation, WriteContext};
use crate::patch;
use crate::patch_refusal::PatchMechanism;
use crate::requests::RequestRecord;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::table;
use crate::watch;

/// What a path names.
#[derive(Debug, Clone, PartialEq)]
enum Route {
    Version,
    Health,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String, String),
    OpenApiRoot,
    OpenApi(String, String),
    Resource {
        group: String,
        version: String,
        namespace: Option<String>,
        resource: String,
        name: Option<String>,
        subresource: Option<String>,
    },
    Unknown,
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let (namespace, rest) = match rest {
        ["namespaces", namespace, third, ..]
            if !(rest.len() == 3 && ["status", "finalize"].contains(third)) =>
        {
            (Some((*namespace).to_owned()), &rest[2..])
        }
        _ => (None, rest),
    };
    if rest.is_empty() || rest.len() > 3 {
        return Route::Unknown;
    }
    Route::Resource {
        group: group.to_owned(),
        version: version.to_owned(),
        namespace,
        resource: rest[0].to_owned(),
        name: rest.get(1).map(|s| (*s).to_owned()),
        subresource: rest.get(2).map(|s| (*s).to_owned()),
    }
}

fn route(path: &str) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz"] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["api", "v1"] => Route::Resources(String::new(), "v1".to_owned()),
        ["api", "v1", rest @ ..] => resource_route("", "v1", rest),
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group((*group).to_owned()),
        ["apis", group, version] => Route::Resources((*group).to_owned(), (*version).to_owned()),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", "v1"] => Route::OpenApi(String::new(), "v1".to_owned()),
        ["openapi", "v3", "apis", group, version] => {
            Route::OpenApi((*group).to_owned(), (*version).to_owned())
        }
        _ => Route::Unknown,
    }
}

fn query_map(query: Option<&str>) -> HashMap<String, String> {
    let Some(query) = query else {
        return HashMap::new();
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(key), decode_component(value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' => match bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    index += 2;
                }
                None => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_true(query: &HashMap<String, String>, name: &str) -> bool {
    query
        .get(name)
        .is_some_and(|value| value == "true" || value == "1")
}

fn json_response(code: u16, value: &Value) -> Response {
    let status = axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK);
    // `to_vec` writes straight into the buffer (`to_string` goes through `fmt::Write`, several
    // times slower on a LIST of a thousand objects).
    let body = serde_json::to_vec(value).expect("a JSON value always serializes");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `response` with a `Warning: 299 - "<text>"` header for each of the write's warnings, as the
/// real server sends them (kubectl prints each as `Warning: <text>`).
fn with_warnings(mut response: Response, context: &WriteContext) -> Response {
    for warning in context.warnings.borrow().iter() {
        let quoted = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = header::HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// The default field manager: the User-Agent up to its first `/` (as the API server does).
fn manager_from(query: &HashMap<String, String>, user_agent: &str) -> String {
    match query.get("fieldManager") {
        Some(manager) if !manager.is_empty() => manager.clone(),
        _ => user_agent
            .split('/')
            .next()
            .unwrap_or("")
            .chars()
            .take(128)
            .collect(),
    }
}

/// Parses a JSON or YAML body.
fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the request has an empty body"));
    }
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        return Ok(value);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("the request body is neither JSON nor UTF-8 YAML"))?;
    serde_saphyr::from_str::<Value>(text).map_err(|error| {
        ApiError::bad_request(format!(
            "the request body does not parse as JSON or YAML: {error}"
        ))
    })
}

/// The one request handler.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = query_map(parts.uri.query());
    let header_text = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let user_agent = header_text(header::USER_AGENT);
    let accept = header_text(header::ACCEPT);
    let content_type = header_text(header::CONTENT_TYPE);
    let route = route(&path);
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        verb: "discovery".to_owned(),
        group: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        dry_run: query.get("dryRun").is_some_and(|v| v == "All"),
        field_manager: query.get("fieldManager").cloned().unwrap_or_default(),
        content_type: content_type.clone(),
        user_agent: user_agent.clone(),
        accept: accept.clone(),
        status: 0,
    };
    if let Route::Resource {
        group,
        namespace,
        resource,
        name,
        subresource,
        ..
    } = &route
    {
        record.group = group.clone();
        record.resource = resource.clone();
        record.namespace = namespace.clone().unwrap_or_default();
        record.name = name.clone().unwrap_or_default();
        record.subresource = subresource.clone().unwrap_or_default();
        record.verb = match (&parts.method, name.is_some()) {
            (&Method::GET, true) => "get",
            (&Method::GET, false) if is_true(&query, "watch") => "watch",
            (&Method::GET, false) => "list",
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, true) => "delete",
            (&Method::DELETE, false) => "deletecollection",
            _ => "unknown",
        }
        .to_owned();
    }
    // The body is read before faults are taken: a DELETE's `DeleteOptions` may ask for a dry
    // run (`dryRun: ["All"]`), which the record (and fault matching) must see.
    let bytes = axum::body::to_bytes(body, shared.body_limit).await;
    let decoded = bytes
        .as_ref()
        .ok()
        .filter(|_| !content_type.contains("cbor"))
        .map(|bytes| decoded_body(&parts.method, &route, &content_type, bytes));
    // A DELETE with a body takes its options from the body alone (the query's are not read),
    // as a real server does.
    if parts.method == Method::DELETE
        && let Some(Ok((body, _))) = &decoded
        && !body.is_empty()
    {
        record.dry_run = body_asks_dry_run(body);
    }
    let injected = {
        let mut faults = shared.faults.lock().expect("fault list lock");
        faults::take(&mut faults, &record)
    };
    let (injected, injected_after) = match injected {
        Some(Injected::DelayAnswer(duration)) => (None, Some(Injected::DelayAnswer(duration))),
        other => (other, None),
    };
    let response = match injected {
        Some(Injected::Fail(error)) => error.into_response(),
        other => {
            if let Some(Injected::Delay(duration)) = other {
                tokio::time::sleep(duration).await;
            }
            match (bytes, decoded) {
                (Err(_), _) => ApiError::too_large(format!(
                    "the request body is larger than {} bytes",
                    shared.body_limit
                ))
                .into_response(),
                (Ok(_), None) => ApiError::unsupported_media_type(&content_type).into_response(),
                (Ok(_), Some(Err(error))) => error.into_response(),
                (Ok(_), Some(Ok((body, content_type)))) => {
                    let request = Incoming {
                        method: parts.method.clone(),
                        route: route.clone(),
                        query,
                        accept,
                        content_type,
                        user_agent,
                        body,
                    };
                    match dispatch(&shared, request, &record).await {
                        Ok(response) => response,
                        Err(error) => error.into_response(),
                    }
                }
            }
        }
    };
    record.status = response.status().as_u16();
    shared.log.lock().expect("request log lock").record(record);
    if let Some(Injected::DelayAnswer(duration)) = injected_after {
        tokio::time::sleep(duration).await;
    }
    response
}

/// Whether a DELETE's body (`DeleteOptions`, JSON or YAML) asks for a dry run:
/// 422 for a `dryRun` value other than `All` (the only one Kubernetes knows; `?dryRun=true`
/// is not a dry run, and a real server refuses it rather than writing): in the query, or for
/// a DELETE with a body, in its `DeleteOptions`.
fn refuse_unsupported_dry_run(request: &Incoming) -> Result<(), ApiError> {
    let options_kind = match request.method {
        Method::POST => "CreateOptions",
        Method::PUT => "UpdateOptions",
        Method::PATCH => "PatchOptions",
        Method::DELETE => "DeleteOptions",
        _ => return Ok(()),
    };
    let values: Vec<String> = if request.method == Method::DELETE && !request.body.is_empty() {
        parse_body(&request.body)
            .ok()
            .and_then(|options| options.get("dryRun").cloned())
            .and_then(|values| serde_json::from_value(values).ok())
            .unwrap_or_default()
    } else {
        request.query.get("dryRun").cloned().into_iter().collect()
    };
    if values.iter().all(|value| value == "All") {
        return Ok(());
    }
    Err(ApiError::invalid(
        options_kind,
        "meta.k8s.io",
        "",
        &[(
            "dryRun".to_owned(),
            "FieldValueNotSupported".to_owned(),
            format!("Unsupported value: {values:?}: supported values: \"All\""),
        )],
    ))
}

/// `dryRun: ["All"]`, as kubectl `delete --dry-run=server` and kube-rs send it.
fn body_asks_dry_run(body: &[u8]) -> bool {
    !body.is_empty()
        && parse_body(body).is_ok_and(|options| {
            options
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|values| values.iter().any(|value| value == "All"))
        })
}

/// The body and its media type as the handlers read them: a protobuf body of a kind
/// [`crate::protobuf`] decodes becomes its JSON form; any other protobuf body is refused (415).
fn decoded_body(
    method: &Method,
    route: &Route,
    content_type: &str,
    bytes: &[u8],
) -> Result<(Vec<u8>, String), ApiError> {
    if !content_type.contains("protobuf") || bytes.is_empty() {
        return Ok((bytes.to_vec(), content_type.to_owned()));
    }
    let refuse = |error: crate::protobuf::ProtobufError| {
        ApiError::unsupported_protobuf(format!("{error} (got {content_type:?})"))
    };
    let value = match (method, route) {
        (&Method::DELETE, Route::Resource { .. }) => {
            crate::protobuf::decode_delete_options(bytes).map_err(refuse)?
        }
        (
            &Method::POST | &Method::PUT,
            Route::Resource {
                group,
                resource,
                subresource: None,
                ..
            },
        ) if group.is_empty() && (resource == "secrets" || resource == "configmaps") => {
            let value = crate::protobuf::decode_object(bytes).map_err(refuse)?;
            let expected = if resource == "secrets" {
                "Secret"
            } else {
                "ConfigMap"
            };
            if value.get("kind").and_then(Value::as_str) != Some(expected) {
                return Err(ApiError::bad_request(format!(
                    "the protobuf body holds a {} but the request is for {resource}",
                    value.get("kind").and_then(Value::as_str).unwrap_or("")
                )));
            }
            value
        }
        _ => {
            return Err(ApiError::unsupported_protobuf(format!(
                "the test API server decodes protobuf bodies only for creates and updates of core/v1 secrets and configmaps, and DeleteOptions; send this request as application/json (got {content_type:?} for {method} {})",
                match route {
                    Route::Resource {
                        group, resource, ..
                    } if group.is_empty() => resource.clone(),
                    Route::Resource {
                        group, resource, ..
                    } => format!("{resource}.{group}"),
                    _ => "this path".to_owned(),
                }
            )));
        }
    };
    let body = serde_json::to_vec(&value)
        .map_err(|error| ApiError::bad_request(format!("the decoded body: {error}")))?;
    Ok((body, "application/json".to_owned()))
}

struct Incoming {
    method: Method,
    route: Route,
    query: HashMap<String, String>,
    accept: String,
    content_type: String,
    user_agent: String,
    body: Vec<u8>,
}

async fn dispatch(
    shared: &Arc<Shared>,
    request: Incoming,
    record: &RequestRecord,
) -> Result<Response, ApiError> {
    let path_text = record.uri.clone();
    refuse_unsupported_dry_run(&request)?;
    let state_lock = || shared.state.lock().expect("server state lock");
    let route = request.route.clone();
    match &route {
        Route::Version => Ok(json_response(200, &discovery::version())),
        Route::Health => Ok((axum::http::StatusCode::OK, "ok").into_response()),
        Route::CoreVersions | Route::Groups => {
            let core = request.route == Route::CoreVersions;
            let state = state_lock();
            if let Some(version) = discovery::aggregated_version(&request.accept) {
                let body = discovery::aggregated(&state.catalog, core, version);
                return Ok((
                    axum::http::StatusCode::OK,
                    [(
                        header::CONTENT_TYPE,
                        discovery::aggregated_content_type(version),
                    )],
                    body.to_string(),
                )
                    .into_response());
            }
            Ok(json_response(
                200,
                &if core {
                    discovery::core_versions(&shared.address.to_string())
                } else {
                    discovery::group_list(&state.catalog)
                },
            ))
        }
        Route::Group(group) => discovery::group(&state_lock().catalog, group)
            .map(|body| json_response(200, &body))
            .ok_or_else(|| ApiError::no_route(&path_text)),
        Route::Resources(group, version) => {
            discovery::resource_list(&state_lock().catalog, group, version)
                .map(|body| json_response(200, &body))
                .ok_or_else(|| ApiError::no_route(&path_text))
        }
        Route::OpenApiRoot => Ok(json_response(
            200,
            &discovery::openapi_v3_root(&state_lock().catalog),
        )),
        Route::OpenApi(group, version) => {
            discovery::openapi_v3_group_version(&state_lock().catalog, group, version)
                .map(|body| json_response(200, &body))
                .ok_or_else(|| ApiError::no_route(&path_text))
        }
        Route::Unknown => Err(ApiError::no_route(&path_text)),
        Route::Resource {
            group,
            version,
            namespace,
            resource,
            name,
            subresource,
        } => {
            let t = state_lock()
                .catalog
                .find(group, version, resource)
                .cloned()
                .ok_or_else(|| ApiError::no_route(&path_text))?;
            let namespace = namespace.clone().unwrap_or_default();
            if !t.namespaced && !namespace.is_empty() {
                return Err(ApiError::no_route(&path_text));
            }
            let subresource = subresource.clone().unwrap_or_default();
            match subresource.as_str() {
                "" => {}
                "status" if t.status_subresource => {}
                "finalize" if t.group.is_empty() && t.kind == "Namespace" => {}
                _ => return Err(ApiError::no_route(&path_text)),
            }
            resource_request(
                shared,
                &t,
                &namespace,
                name.as_deref(),
                &subresource,
                request,
                record,
            )
            .await
        }
    }
}

fn list_options(
    query: &HashMap<String, String>,
    t: &ResourceType,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str), t)?;
    Ok((labels, fields))
}

async fn resource_request(
    shared: &Arc<Shared>,
    t: &ResourceType,
    namespace: &str,
    name: Option<&str>,
    subresource: &str,
    request: Incoming,
    record: &RequestRecord,
) -> Result<Response, ApiError> {
    let query = &request.query;
    let context = WriteContext {
        manager: manager_from(query, &request.user_agent),
        dry_run: record.dry_run,
        force: is_true(query, "force"),
        subresource: subresource.to_owned(),
        field_validation: FieldValidation::parse(query.get("fieldValidation").map(String::as_str)),
        warnings: Default::default(),
    };
    let wants_table = request.accept.contains("as=Table");
    let wants_metadata = metadata_only(&request.accept, name.is_none());
    // Bodies are parsed before the state is locked, and answers serialized after it is released,
    // so that concurrent requests only queue for the store itself.
    let body = match (&request.method, name) {
        (&Method::POST, None) | (&Method::PUT, Some(_)) | (&Method::PATCH, Some(_)) => {
            Some(parse_body(&request.body)?)
        }
        _ => None,
    };
    let mut state = shared.state.lock().expect("server state lock");
    match (&request.method, name) {
        (&Method::GET, Some(name)) => {
            let object = state.get(t, namespace, name)?;
            let revision = state.store.revision();
            drop(state);
            if wants_table {
                return Ok(json_response(
                    200,
                    &table::table(t, &[object], revision, None),
                ));
            }
            if wants_metadata {
                return Ok(json_response(
                    200,
                    &json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    }),
                ));
            }
            Ok(json_response(200, &object))
        }
        (&Method::GET, None) => {
            let (labels, fields) = list_options(query, t)?;
            let scope = if t.namespaced && !namespace.is_empty() {
                Some(namespace)
            } else {
                None
            };
            if is_true(query, "watch") {
                drop(state);
                return watch::serve(shared, t, scope, labels, fields, query).await;
            }
            let revision = state.store.revision();
            // Only the page served is copied out of the store.
            // Keyed (namespace, name), the store's order: a continue token names the last
            // served as `namespace/name`, compared as that pair (as a string, namespace `app-2`
            // would sort before `app/...` and a page would skip it).
            let mut items: Vec<((&str, &str), &Value)> = state
                .store
                .list(&t.group, &t.plural, scope)
                .into_iter()
                .filter(|(_, object)| labels.matches(object) && fields.matches(object))
                .map(|(key, object)| ((key.namespace.as_str(), key.name.as_str()), object))
                .collect();
            let mut token_revision = revision;
            if let Some(token) = query.get("continue").filter(|token| !token.is_empty()) {
                let (after, from_revision) = decode_continue(token)?;
                if from_revision < state.store.compacted() {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ));
                }
                token_revision = from_revision;
                let after = after.split_once('/').unwrap_or(("", after.as_str()));
                items.retain(|(key, _)| *key > after);
            }
            let limit = query
                .get("limit")
                .and_then(|limit| limit.parse::<usize>().ok())
                .filter(|limit| *limit > 0);
            // A continued page reports the revision of its first page (the token's).
            let mut metadata = json!({"resourceVersion": token_revision.to_string()});
            let selected = ["labelSelector", "fieldSelector"]
                .iter()
                .any(|name| query.get(*name).is_some_and(|value| !value.is_empty()));
            if let Some(limit) = limit
                && items.len() > limit
            {
                let remaining = items.len() - limit;
                items.truncate(limit);
                let last = items
                    .last()
                    .map(|((namespace, name), _)| format!("{namespace}/{name}"))
                    .unwrap_or_default();
                metadata["continue"] = json!(encode_continue(&last, token_revision));
                // Not known exactly under a selector: the real server leaves it out.
                if !selected {
                    metadata["remainingItemCount"] = json!(remaining);
                }
            }
            if wants_table {
                let objects: Vec<Value> = items
                    .into_iter()
                    .map(|(_, object)| crate::objects::State::present(t, object))
                    .collect();
                drop(state);
                let continue_token = metadata
                    .get("continue")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                return Ok(json_response(
                    200,
                    &table::table(t, &objects, token_revision, continue_token),
                ));
            }
            // Serialized from the store as it is, without copying each object first (the copies
            // were most of a large LIST's cost).
            let list = ListBody {
                t,
                metadata: &metadata,
                items: items.iter().map(|(_, object)| *object).collect(),
                metadata_only: wants_metadata,
            };
            let body = serde_json::to_vec(&list).expect("a JSON value always serializes");
            drop(state);
            Ok((
                axum::http::StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response())
        }
        (&Method::POST, None) => {
            let body = body.expect("parsed above");
            let created = state.create(t, namespace, body, &context)?;
            drop(state);
            Ok(with_warnings(json_response(201, &created), &context))
        }
        (&Method::PUT, Some(name)) => {
            let body = body.expect("parsed above");
            let updated = state.update(t, namespace, name, body, &context)?;
            drop(state);
            Ok(with_warnings(json_response(200, &updated), &context))
        }
        (&Method::PATCH, Some(name)) => {
            let media = request
                .content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
            let body = body.expect("parsed above");
            // PatchOptions are validated before the object is read, once the patch type is
            // known to be served: `force` belongs to apply alone, whatever its value.
            let served_non_apply = matches!(
                media.as_str(),
                "application/merge-patch+json" | "application/json-patch+json"
            ) || (media == "application/strategic-merge-patch+json"
                && t.crd.is_none());
            if served_non_apply && query.contains_key("force") {
                return Err(ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    &[(
                        "force".to_owned(),
                        "FieldValueForbidden".to_owned(),
                        "Forbidden: may not be specified for non-apply patch".to_owned(),
                    )],
                ));
            }
            // An apply that creates the object is answered 201 Created, as the real server does.
            let mut code = 200;
            let result = match media.as_str() {
                "application/apply-patch+yaml" | "application/apply-patch+json" => {
                    if context.manager.is_empty() || !query.contains_key("fieldManager") {
                        return Err(ApiError::invalid(
                            "PatchOptions",
                            "meta.k8s.io",
                            "",
                            &[(
                                "fieldManager".to_owned(),
                                "FieldValueRequired".to_owned(),
                                "Required value: is required for apply patch".to_owned(),
                            )],
                        ));
                    }
                    let key = crate::objects::State::key(t, namespace, name);
                    if state.store.get(&key).is_none() {
                        code = 201;
                    }
                    state.apply(t, namespace, name, body, &context)?
                }
                "application/merge-patch+json" => state.patch_live(
                    t,
                    namespace,
                    name,
                    PatchMechanism::Document,
                    |live| Ok(patch::merge_patch(live, &body)),
                    &context,
                )?,
                "application/json-patch+json" => state.patch_live(
                    t,
                    namespace,
                    name,
                    PatchMechanism::Document,
                    |live| patch::json_patch(live, &body),
                    &context,
                )?,
                "application/strategic-merge-patch+json" if t.crd.is_none() => {
                    let schema = t.schema.clone();
                    state.patch_live(
                        t,
                        namespace,
                        name,
                        PatchMechanism::Strategic(&body),
                        |live| Ok(patch::strategic_merge_patch(live, &body, &schema)),
                        &context,
                    )?
                }
                _ => return Err(ApiError::unsupported_media_type(&request.content_type)),
            };
            drop(state);
            Ok(with_warnings(json_response(code, &result), &context))
        }
        (&Method::DELETE, Some(name)) => {
            let options = delete_options(&request.body, query)?;
            let deleted = state.delete(t, namespace, name, &options, &context)?;
            drop(state);
            Ok(json_response(200, &deleted.answer(t)))
        }
        (&Method::DELETE, None) => {
            // As a real server routes it: a namespaced collection is deleted one namespace at a
            // time; across all namespaces only LIST and WATCH are served.
            if (t.namespaced && namespace.is_empty()) || !t.serves_deletecollection() {
                return Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource (delete the collection of {})",
                    t.plural
                )));
            }
            let options = delete_options(&request.body, query)?;
            let (labels, fields) = list_options(query, t)?;
            let scope = if t.namespaced && !namespace.is_empty() {
                Some(namespace)
            } else {
                None
            };
            let names: Vec<(String, String)> = state
                .store
                .list(&t.group, &t.plural, scope)
                .into_iter()
                .filter(|(_, object)| labels.matches(object) && fields.matches(object))
                .map(|(key, _)| (key.namespace.clone(), key.name.clone()))
                .collect();
            let mut items = Vec::new();
            for (object_namespace, object_name) in names {
                let deleted =
                    state.delete(t, &object_namespace, &object_name, &options, &context)?;
                items.push(deleted.object);
            }
            Ok(json_response(
                200,
                &json!({
                    "kind": format!("{}List", t.kind),
                    "apiVersion": t.api_version(),
                    "metadata": {"resourceVersion": state.store.revision().to_string()},
                    "items": items,
                }),
            ))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            request.method, record.uri
        ))),
    }
}

/// Whether `accept` asks first for the metadata-only form of objects the real API server serves
/// (`application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1` for a LIST,
/// `...;as=PartialObjectMetadata;...` for a GET): the media ranges are taken in order, and the
/// first one this server answers decides (a plain JSON one, or `as=Table`, means whole objects).
fn metadata_only(accept: &str, list: bool) -> bool {
    let wanted = if list {
        "PartialObjectMetadataList"
    } else {
        "PartialObjectMetadata"
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !matches!(media, "application/json" | "application/*" | "*/*") {
            continue;
        }
        let parameters: HashMap<&str, &str> = parts
            .filter_map(|parameter| parameter.split_once('='))
            .map(|(name, value)| (name.trim(), value.trim()))
            .collect();
        match parameters.get("as") {
            None => return false,
            Some(&kind)
                if kind == wanted
                    && parameters.get("g") == Some(&"meta.k8s.io")
                    && matches!(parameters.get("v"), Some(&"v1" | &"v1beta1")) =>
            {
                return true;
            }
            Some(&"Table") => return false,
            // A form this server does not serve: the next range may be one it does.
            Some(_) => {}
        }
    }
    false
}

/// A LIST answer: `{"kind", "apiVersion", "metadata", "items"}`, each item as
/// [`crate::objects::State::present`] would give it, or only its metadata as a
/// `PartialObjectMetadata` (a `PartialObjectMetadataList`, as the real API server answers a
/// client that asks for it in `Accept`).
struct ListBody<'a> {
    t: &'a ResourceType,
    metadata: &'a Value,
    items: Vec<&'a Value>,
    metadata_only: bool,
}

/// One item of a `PartialObjectMetadataList`.
#[derive(serde::Serialize)]
struct PartialItem<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: &'a Value,
}

impl serde::Serialize for ListBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(4))?;
        if self.metadata_only {
            map.serialize_entry("kind", "PartialObjectMetadataList")?;
            map.serialize_entry("apiVersion", "meta.k8s.io/v1")?;
            map.serialize_entry("metadata", self.metadata)?;
            let empty = json!({});
            let items: Vec<PartialItem<'_>> = self
                .items
                .iter()
                .map(|object| PartialItem {
                    kind: "PartialObjectMetadata",
                    api_version: "meta.k8s.io/v1",
                    metadata: object.get("metadata").unwrap_or(&empty),
                })
                .collect();
            map.serialize_entry("items", &items)?;
            return map.end();
        }
        map.serialize_entry("kind", &format!("{}List", self.t.kind))?;
        map.serialize_entry("apiVersion", &self.t.api_version())?;
        map.serialize_entry("metadata", self.metadata)?;
        let items: Vec<Presented<'_>> = self
            .items
            .iter()
            .map(|object| Presented { t: self.t, object })
            .collect();
        map.serialize_entry("items", &items)?;
        map.end()
    }
}

/// A stored object served as an item of a LIST at its type's version, serialized in place: the
/// same fields in the same order as [`crate::objects::State::present`]'s copy (apiVersion and
/// kind replaced where they are, appended when missing) for a custom resource; without
/// apiVersion and kind for a built-in type, as the real API server lists them
/// (kubernetes/kubernetes#3030: it leaves them off the items of a typed list, and clients must
/// not count on them there).
struct Presented<'a> {
    t: &'a ResourceType,
    object: &'a Value,
}

impl serde::Serialize for Presented<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(fields) = self.object.as_object() else {
            return crate::objects::State::present(self.t, self.object).serialize(serializer);
        };
        let type_meta = self.t.crd.is_some();
        let api_version = self.t.api_version();
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in fields {
            match name.as_str() {
                "apiVersion" if type_meta => map.serialize_entry(name, &api_version)?,
                "kind" if type_meta => map.serialize_entry(name, &self.t.kind)?,
                "apiVersion" | "kind" => {}
                _ => map.serialize_entry(name, value)?,
            }
        }
        if type_meta && !fields.contains_key("apiVersion") {
            map.serialize_entry("apiVersion", &api_version)?;
        }
        if type_meta && !fields.contains_key("kind") {
            map.serialize_entry("kind", &self.t.kind)?;
        }
        map.end()
    }
}

fn delete_options(body: &[u8], query: &HashMap<String, String>) -> Result<DeleteOptions, ApiError> {
    // From the body when there is one, else from the query (never both, as a real server).
    let mut options = DeleteOptions {
        propagation_policy: if body.is_empty() {
            query.get("propagationPolicy").cloned()
        } else {
            None
        },
        ..DeleteOptions::default()
    };
    if !body.is_empty() {
        let value = parse_body(body)?;
        if let Some(policy) = value.get("propagationPolicy").and_then(Value::as_str) {
            options.propagation_policy = Some(policy.to_owned());
        }
        if value.get("orphanDependents") == Some(&json!(true)) {
            options.propagation_policy = Some("Orphan".to_owned());
        }
        if let Some(uid) = value.pointer("/preconditions/uid").and_then(Value::as_str) {
            options.uid = Some(uid.to_owned());
        }
        if let Some(version) = value
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            options.resource_version = Some(version.to_owned());
        }
    }
    if let Some(policy) = &options.propagation_policy
        && !["Foreground", "Background", "Orphan"].contains(&policy.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    Ok(options)
}

fn encode_continue(after: &str, revision: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"after": after, "rv": revision}).to_string())
}

fn decode_continue(token: &str) -> Result<(String, u64), ApiError> {
    let invalid = || ApiError::bad_request(format!("continue key {token:?} is not valid"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let after = value
        .get("after")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let revision = value
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)?;
    Ok((after.to_owned(), revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_media_range_served_decides_the_metadata_only_form() {
        let list = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        assert!(metadata_only(list, true));
        assert!(metadata_only(&format!("{list},application/json"), true));
        assert!(metadata_only(
            "application/json; as=PartialObjectMetadataList; g=meta.k8s.io; v=v1beta1",
            true
        ));
        // The GET form is another kind; a LIST asked as a GET's form is not served that way.
        assert!(!metadata_only(list, false));
        assert!(metadata_only(
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            false
        ));
        assert!(!metadata_only(
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            true
        ));
        // Plain JSON or a Table first: whole objects.
        assert!(!metadata_only(&format!("application/json,{list}"), true));
        assert!(!metadata_only(
            &format!("application/json;as=Table;g=meta.k8s.io;v=v1,{list}"),
            true
        ));
        // Another group or version is not this form; protobuf is not served at all.
        assert!(!metadata_only(
            "application/json;as=PartialObjectMetadataList;g=example.com;v=v1",
            true
        ));
        assert!(metadata_only(
            &format!(
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,{list}"
            ),
            true
        ));
        assert!(!metadata_only("", true));
    }

    #[test]
    fn paths_route_like_the_api_server() {
        assert_eq!(
            route("/api/v1/namespaces/demo/configmaps/a"),
            Route::Resource {
                group: String::new(),
                version: "v1".into(),
                namespace: Some("demo".into()),
                resource: "configmaps".into(),
                name: Some("a".into()),
                subresource: None
            }
        );
        assert_eq!(
            route("/api/v1/namespaces/demo/status"),
            Route::Resource {
                group: String::new(),
                version: "v1".into(),
                namespace: None,
                resource: "namespaces".into(),
                name: Some("demo".into()),
                subresource: Some("status".into())
            }
        );
        assert_eq!(
            route("/apis/apps/v1"),
            Route::Resources("apps".into(), "v1".into())
        );
        assert_eq!(decode_component("a%3Db+c"), "a=b c");
    }

    #[test]
    fn a_list_is_serialized_as_the_presented_copies_would_be() {
        let catalog = crate::catalog::Catalog::builtin();
        let t = catalog.find("apps", "v1", "deployments").unwrap();
        let items = [
            json!({"apiVersion": "apps/v1beta1", "kind": "Old", "metadata": {"name": "a"}, "spec": {"replicas": 1}}),
            json!({"metadata": {"name": "b"}, "status": {}}),
            json!({"metadata": {"name": "c"}, "kind": "Deployment"}),
        ];
        let metadata = json!({"resourceVersion": "7", "continue": "x"});
        let list = |t: &ResourceType| {
            serde_json::to_string(&ListBody {
                t,
                metadata: &metadata,
                items: items.iter().collect(),
                metadata_only: false,
            })
            .unwrap()
        };
        let expected = |t: &ResourceType, type_meta: bool| {
            let presented: Vec<Value> = items
                .iter()
                .map(|object| {
                    let mut presented = crate::objects::State::present(t, object);
                    if !type_meta {
                        let fields = presented.as_object_mut().unwrap();
                        fields.shift_remove("apiVersion");
                        fields.shift_remove("kind");
                    }
                    presented
                })
                .collect();
            json!({
                "kind": "DeploymentList",
                "apiVersion": "apps/v1",
                "metadata": metadata,
                "items": presented,
            })
            .to_string()
        };
        // Byte for byte: the same fields in the same order; a built-in type's items without
        // apiVersion and kind, a custom resource's with them.
        assert_eq!(list(t), expected(t, false));
        assert!(!list(t).contains("apps/v1beta1") && !list(t).contains("\"Old\""));
        let mut custom = t.clone();
        custom.crd = Some("deployments.apps".into());
        assert_eq!(list(&custom), expected(&custom, true));
    }
}
