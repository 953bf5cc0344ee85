//! Answers in the OCI distribution error format, `{"errors":[{"code":..,"message":..}]}`, with the
//! headers registries send (`Docker-Distribution-API-Version`, and the `Basic` challenge on 401 so
//! docker, containerd and skopeo send credentials).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `Docker-Distribution-API-Version`.
pub(crate) const API_VERSION_HEADER: &str = "docker-distribution-api-version";

/// A registry error response.
pub(crate) fn registry_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "code": code, "message": message, "detail": null }]
    });
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"windlass\""),
        );
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_carries_the_basic_challenge() {
        let response = registry_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
        );
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"windlass\""
        );
    }
}
