//! The status API on `--listen` (axum): `/healthz`, `/readyz`, `/metrics` (Prometheus text), the
//! JSON API (`/api/installs`, `/api/installs/{id}`, `/api/installs/{id}/events`,
//! `/api/installs/{a}/diff/{b}`, `/api/releases`) and the web console's pages (`console.rs`).
//! Everything is read-only except `POST /api/releases/{digest}/reinstall`, which needs the token
//! from `--api-token-file` as `Authorization: Bearer TOKEN` and is refused when none was given.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use windlass_state::SecretString;

use crate::daemon::{ReleaseView, Shared};
use crate::reads::{self, ReadError};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The daemon.
    pub shared: Arc<Shared>,
    /// The token state-changing requests must send; `None`: the API is read-only.
    pub token: Option<Arc<SecretString>>,
}

/// The router: API, metrics, probes and console.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/installs", get(installs))
        .route("/api/installs/{id}", get(install))
        .route("/api/installs/{id}/events", get(events))
        .route("/api/installs/{from}/diff/{to}", get(diff))
        .route("/api/releases", get(releases))
        .route("/api/releases/{digest}/reinstall", post(reinstall))
        .merge(crate::console::routes())
        .with_state(state)
}

/// A JSON error body with a status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Body {
        error: String,
    }
    (
        status,
        Json(Body {
            error: message.into(),
        }),
    )
        .into_response()
}

fn read_error(problem: ReadError) -> Response {
    match problem {
        ReadError::NotFound(_) => error(StatusCode::NOT_FOUND, problem.to_string()),
        ReadError::State(_) => error(StatusCode::INTERNAL_SERVER_ERROR, problem.to_string()),
    }
}

/// Runs a read of the state directory on a blocking thread.
pub async fn blocking<T: Send + 'static>(
    state: &ApiState,
    read: impl FnOnce(&Shared) -> Result<T, ReadError> + Send + 'static,
) -> Result<T, ReadError> {
    let shared = state.shared.clone();
    tokio::task::spawn_blocking(move || read(&shared))
        .await
        .map_err(|join| ReadError::State(join.to_string()))?
}

async fn readyz(State(state): State<ApiState>) -> Response {
    if state.shared.ready.load(Ordering::Acquire) {
        "ready\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the first scan has not finished\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.shared.metrics.render(),
    )
        .into_response()
}

async fn installs(State(state): State<ApiState>) -> Response {
    match blocking(&state, |shared| reads::installs(&shared.state)).await {
        Ok(rows) => Json(rows).into_response(),
        Err(problem) => read_error(problem),
    }
}

async fn install(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match blocking(&state, move |shared| reads::install(&shared.state, &id)).await {
        Ok(install) => Json(install).into_response(),
        Err(problem) => read_error(problem),
    }
}

/// One event as `windlass events --json` prints it.
#[derive(Serialize)]
struct EventView {
    seq: u64,
    global_seq: u64,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u32,
    recorded_at: String,
    actor: String,
    payload: serde_json::Value,
    prev_hash: String,
}

async fn events(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match blocking(&state, move |shared| reads::events(&shared.state, &id)).await {
        Ok(events) => Json(
            events
                .into_iter()
                .map(|event| EventView {
                    seq: event.install_seq,
                    global_seq: event.global_seq,
                    event_type: event.event_type,
                    schema_version: event.schema_version,
                    recorded_at: event.recorded_at,
                    actor: event.actor,
                    payload: event.payload,
                    prev_hash: event.prev_hash,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(problem) => read_error(problem),
    }
}

async fn diff(State(state): State<ApiState>, Path((from, to)): Path<(String, String)>) -> Response {
    match blocking(&state, move |shared| reads::diff(&shared.state, &from, &to)).await {
        Ok(diff) => Json(diff).into_response(),
        Err(problem) => read_error(problem),
    }
}

/// `/api/releases`: what the watcher sees and what the log says was taken.
#[derive(Serialize)]
struct ReleasesView {
    watched: String,
    quiet_period_ms: u64,
    releases: Vec<ReleaseView>,
    taken: Vec<TakenView>,
}

/// A release digest the log records as taken.
#[derive(Serialize)]
struct TakenView {
    digest: String,
    name: String,
    version: Option<String>,
    taken: usize,
    install_id: String,
    result: Option<crate::events::ReleaseResult>,
    error: Option<String>,
}

async fn releases(State(state): State<ApiState>) -> Response {
    let shared = &state.shared;
    let releases = shared
        .releases
        .read()
        .map(|releases| releases.clone())
        .unwrap_or_default();
    let taken = shared
        .ledger
        .read()
        .map(|ledger| {
            ledger
                .releases
                .iter()
                .filter_map(|(digest, record)| {
                    let (last, _) = record.detections.last()?;
                    let finish = record
                        .last_finish()
                        .filter(|_| record.unfinished().is_none());
                    Some(TakenView {
                        digest: digest.clone(),
                        name: last.name.clone(),
                        version: last.version.clone(),
                        taken: record.detections.len(),
                        install_id: finish
                            .map(|finish| finish.install_id.clone())
                            .unwrap_or_else(|| last.install_id.clone()),
                        result: finish.map(|finish| finish.result),
                        error: finish.and_then(|finish| finish.error.clone()),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Json(ReleasesView {
        watched: shared.config.dir.display().to_string(),
        quiet_period_ms: shared.config.quiet_period.as_millis() as u64,
        releases,
        taken,
    })
    .into_response()
}

/// `None` when `headers` carry the token, else the refusal.
fn refusal(state: &ApiState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &state.token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "the API is read-only: start windlass watch with --api-token-file to allow this",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = token.expose().as_bytes();
    let given = given.as_bytes();
    // Compared without stopping at the first difference.
    let mut difference = u8::from(expected.len() != given.len());
    for (index, byte) in expected.iter().enumerate() {
        difference |= byte ^ given.get(index).copied().unwrap_or(0);
    }
    (difference != 0).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token (Authorization: Bearer TOKEN)",
        )
    })
}

async fn reinstall(
    State(state): State<ApiState>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&state, &headers) {
        return refused;
    }
    if state.shared.request_reinstall(&digest) {
        (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "digest": digest, "queued": true })),
        )
            .into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("no release with digest {digest} was ever taken"),
        )
    }
}

/// Serves the router on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: ApiState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}
