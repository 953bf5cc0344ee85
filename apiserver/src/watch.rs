//! Watch: a newline-delimited JSON stream of `{type, object}` events (`ADDED`, `MODIFIED`,
//! `DELETED`, `BOOKMARK`, `ERROR`). Without a resourceVersion (or with `0`) the current objects
//! come first as `ADDED`; from a resourceVersion the recorded changes after it are replayed,
//! or, when it is older than the kept history, one `ERROR` event carries a 410 Expired status
//! (as the real server does). `sendInitialEvents=true` ends the initial events with a bookmark
//! annotated `k8s.io/initial-events-end`; `allowWatchBookmarks` adds periodic bookmarks;
//! `timeoutSeconds` ends the stream. Label and field selectors filter events by the object's
//! new state (an object leaving the selector is not reported as `DELETED`, unlike the real
//! server).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::catalog::ResourceType;
use crate::error::ApiError;
use crate::objects::State;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::Change;

struct Filter {
    group: String,
    resource: String,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, change: &Change) -> bool {
        change.key.group == self.group
            && change.key.resource == self.resource
            && self
                .namespace
                .as_deref()
                .is_none_or(|namespace| change.key.namespace == namespace)
            && self.labels.matches(&change.object)
            && self.fields.matches(&change.object)
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn bookmark(t: &ResourceType, revision: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": t.kind, "apiVersion": t.api_version(), "metadata": metadata}),
    )
}

/// Serves a watch request.
///
/// # Errors
///
/// 400 for a resourceVersion that is not a number.
pub async fn serve(
    shared: &Arc<Shared>,
    t: &ResourceType,
    namespace: Option<&str>,
    labels: LabelSelector,
    fields: FieldSelector,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let filter = Filter {
        group: t.group.clone(),
        resource: t.plural.clone(),
        namespace: namespace.map(str::to_owned),
        labels,
        fields,
    };
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true" || v == "1");
    let send_initial = query.get("sendInitialEvents").map(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let requested = query.get("resourceVersion").cloned().unwrap_or_default();
    let mut first: Vec<Bytes> = Vec::new();
    let (mut receiver, mut last_revision) = {
        let state = shared.state.lock().expect("server state lock");
        let revision = state.store.revision();
        let from_scratch = requested.is_empty() || requested == "0" || send_initial == Some(true);
        if from_scratch {
            if send_initial != Some(false) {
                for (_, object) in state.store.list(&t.group, &t.plural, namespace) {
                    if filter.labels.matches(object) && filter.fields.matches(object) {
                        first.push(line("ADDED", &State::present(t, object)));
                    }
                }
            }
            if send_initial == Some(true) {
                first.push(bookmark(t, revision, true));
            }
            (state.store.subscribe(), revision)
        } else {
            let since: u64 = requested.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "resourceVersion {requested:?} is not a valid resource version"
                ))
            })?;
            if since < state.store.compacted() {
                let status = ApiError::expired(format!(
                    "too old resource version: {since} ({})",
                    state.store.compacted()
                ))
                .status();
                let body = line("ERROR", &status);
                return Ok(ndjson(Body::from(body)));
            }
            if since > revision {
                // The real server waits a few seconds for the revision, then gives up; no write
                // here ever reaches a revision a client made up, so it gives up at once.
                let status = ApiError::resource_version_too_large(since, revision).status();
                return Ok(ndjson(Body::from(line("ERROR", &status))));
            }
            let (past, receiver) = state.store.changes_since(since);
            for change in past.iter().filter(|change| filter.matches(change)) {
                first.push(line(
                    change.kind.as_str(),
                    &State::present(t, &change.object),
                ));
            }
            let last = past.last().map_or(since, |change| change.revision);
            (receiver, last.max(since))
        }
    };
    let (sender, body_receiver) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let t = t.clone();
    let bookmark_interval = shared.bookmark_interval;
    tokio::spawn(async move {
        for chunk in first {
            if sender.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmark_interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = &mut deadline => return,
                _ = ticker.tick(), if bookmarks => {
                    if sender.send(Ok(bookmark(&t, last_revision, false))).await.is_err() {
                        return;
                    }
                }
                change = receiver.recv() => match change {
                    Ok(change) => {
                        if change.revision <= last_revision {
                            continue;
                        }
                        last_revision = change.revision;
                        if filter.matches(&change) {
                            let chunk = line(change.kind.as_str(), &State::present(&t, &change.object));
                            if sender.send(Ok(chunk)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                () = sender.closed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(body_receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Ok(ndjson(Body::from_stream(stream)))
}

fn ndjson(body: Body) -> Response {
    (
        axum::http::StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
