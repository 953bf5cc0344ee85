//! API errors as the Kubernetes API server reports them: a `Status` object
//! (`{kind: Status, apiVersion: v1, status: Failure, message, reason, code, details}`) with the
//! matching HTTP status, and `Retry-After` on 429. kube-rs parses these into `ErrorResponse`,
//! kubectl prints `Error from server (<reason>): <message>`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// A failed API request.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status code.
    pub code: u16,
    /// The `reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    /// The human-readable message.
    pub message: String,
    /// `details` (name, group, kind, causes), if any.
    pub details: Option<Box<Value>>,
    /// Seconds for `Retry-After`, if any.
    pub retry_after: Option<u64>,
}

/// What a resource is called in messages: its plural, with the group when there is one
/// (`deployments.apps`).
pub fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

fn details(name: &str, group: &str, kind: &str) -> Value {
    let mut map = Map::new();
    if !name.is_empty() {
        map.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        map.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        map.insert("kind".into(), json!(kind));
    }
    Value::Object(map)
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 404 `<resource> "<name>" not found`.
    pub fn not_found(resource: &str, group: &str, name: &str) -> Self {
        let mut error = Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", qualified(resource, group)),
        );
        error.details = Some(Box::new(details(name, group, resource)));
        error
    }

    /// 404 for a path that names no resource.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 409 `<resource> "<name>" already exists`.
    pub fn already_exists(resource: &str, group: &str, name: &str) -> Self {
        let mut error = Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", qualified(resource, group)),
        );
        error.details = Some(Box::new(details(name, group, resource)));
        error
    }

    /// 409 Conflict with a message (stale resourceVersion, failed precondition).
    pub fn conflict(resource: &str, group: &str, name: &str, why: &str) -> Self {
        let mut error = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                qualified(resource, group)
            ),
        );
        error.details = Some(Box::new(details(name, group, resource)));
        error
    }

    /// 409 Conflict of server-side apply, with `FieldManagerConflict` causes.
    pub fn apply_conflict(message: String, causes: Vec<Value>) -> Self {
        let mut error = Self::new(409, "Conflict", message);
        error.details = Some(Box::new(json!({ "causes": causes })));
        error
    }

    /// 422 `<Kind>.<group> "<name>" is invalid: <field>: <detail>`, one cause per problem.
    pub fn invalid(
        kind: &str,
        group: &str,
        name: &str,
        problems: &[(String, String, String)],
    ) -> Self {
        let what = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let text: Vec<String> = problems
            .iter()
            .map(|(field, _, detail)| format!("{field}: {detail}"))
            .collect();
        let message = if text.len() == 1 {
            format!("{what} {name:?} is invalid: {}", text[0])
        } else {
            format!("{what} {name:?} is invalid: [{}]", text.join(", "))
        };
        let mut error = Self::new(422, "Invalid", message);
        let mut detail = details(name, group, kind);
        detail["causes"] = problems
            .iter()
            .map(|(field, reason, detail)| json!({"reason": reason, "message": detail, "field": field}))
            .collect();
        error.details = Some(Box::new(detail));
        error
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 410 Expired (a watch or continue token past the compaction window).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 504 Timeout for a watch or read from a resourceVersion the server has not reached:
    /// `Too large resource version: <asked>, current: <current>`, with the
    /// `ResourceVersionTooLarge` cause client-go's reflector recognizes.
    pub fn resource_version_too_large(asked: u64, current: u64) -> Self {
        let mut error = Self::new(
            504,
            "Timeout",
            format!("Too large resource version: {asked}, current: {current}"),
        );
        error.details = Some(Box::new(json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        })));
        error
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 415 UnsupportedMediaType for a protobuf body this server does not decode.
    pub fn unsupported_protobuf(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 429 TooManyRequests with `Retry-After`.
    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut error = Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        );
        error.details = Some(Box::new(json!({"retryAfterSeconds": retry_after})));
        error.retry_after = Some(retry_after);
        error
    }

    /// A 5xx (500 InternalError, 503 ServiceUnavailable, 504 Timeout, ...).
    pub fn server_error(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        Self::new(code, reason, message)
    }

    /// Any code and reason (fault injection).
    pub fn custom(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, reason, message)
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        // An error the real server has no reason for (a plain Go error) is served without one.
        if self.reason.is_empty()
            && let Some(fields) = status.as_object_mut()
        {
            fields.shift_remove("reason");
        }
        if let Some(details) = &self.details {
            status["details"] = (**details).clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            self.status().to_string(),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
