//! The read-only web console, for the people who audit installs: server-rendered HTML with its
//! style inline (no script, no CDN, nothing fetched at run time). `/` lists the installs (status,
//! app) and what the watcher sees; `/installs/{id}` shows one install's stage timeline (durations,
//! errors), every image with its probe outcome, evidence and the rewrite it caused, the pull
//! secrets by name and namespace (never their content), and the applied objects with the app
//! state; `/installs/{a}/diff/{b}` shows the diff of two installs. Everything shown comes from the
//! log (facts are read as recorded JSON).

use std::fmt::Write;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;
use windlass_engine::{InstallState, StageStatus};

use crate::api::{ApiState, blocking};
use crate::reads::{self, ReadError};

/// The console's routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/diff", get(diff_form))
        .route("/installs/{id}", get(install_page))
        .route("/installs/{from}/diff/{to}", get(diff_page))
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2430;background:#fff}\
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #d6dbe3}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eceff3;vertical-align:top}\
th{background:#f4f6f9}code,pre{font-family:ui-monospace,monospace;font-size:.85rem}pre{background:#f6f8fa;padding:.5rem;overflow:auto}\
.completed{color:#17663a}.failed{color:#b3261e}.incomplete,.running,.pending{color:#8a5a00}\
.bar{background:#3b6fd4;height:.8rem;min-width:2px}.bar.failed{background:#b3261e}\
nav a{margin-right:1rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}";

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · windlass</title>\
<link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head><body>\
<nav><a href=\"/\">installs</a><a href=\"/api/releases\">releases (JSON)</a><a href=\"/metrics\">metrics</a></nav>{body}</body></html>",
        escape(title)
    ))
}

fn problem_page(problem: ReadError) -> Response {
    let status = match problem {
        ReadError::NotFound(_) => StatusCode::NOT_FOUND,
        ReadError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (
        status,
        page(
            "error",
            &format!(
                "<h1>error</h1><p id=\"error\">{}</p>",
                escape(&problem.to_string())
            ),
        ),
    )
        .into_response()
}

fn duration(milliseconds: Option<u64>) -> String {
    match milliseconds {
        Some(ms) if ms >= 1000 => format!("{:.2} s", ms as f64 / 1000.0),
        Some(ms) => format!("{ms} ms"),
        None => "-".into(),
    }
}

async fn index(State(state): State<ApiState>) -> Response {
    let installs = match blocking(&state, |shared| reads::installs(&shared.state)).await {
        Ok(installs) => installs,
        Err(problem) => return problem_page(problem),
    };
    let releases = state
        .shared
        .releases
        .read()
        .map(|releases| releases.clone())
        .unwrap_or_default();
    let mut body = String::from("<h1>Installs</h1>");
    body.push_str("<table id=\"installs\"><thead><tr><th>install</th><th>kind</th><th>app</th><th>status</th><th>release</th><th>started</th><th>duration</th></tr></thead><tbody>");
    for row in installs.iter().rev() {
        let _ = write!(
            body,
            "<tr><td><a href=\"/installs/{id}\">{id}</a></td><td class=\"kind\">{kind}</td><td>{app}</td><td class=\"{status}\">{status}</td><td><code>{release}</code></td><td>{started}</td><td>{duration}</td></tr>",
            id = escape(&row.install_id),
            kind = row.kind.as_str(),
            app = escape(&row.app_slug),
            status = escape(&row.status),
            release = escape(&row.release_dir),
            started = escape(&row.started_at),
            duration = duration(row.duration_ms),
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(
        "<h2>Compare two installs</h2><form action=\"/diff\" method=\"get\">\
<label>older <input name=\"from\" required></label> <label>newer <input name=\"to\" required></label> \
<button type=\"submit\">diff</button></form>",
    );
    let _ = write!(
        body,
        "<h2>Watched directory <code>{}</code></h2><table id=\"releases\"><thead><tr><th>name</th><th>kind</th><th>version</th><th>status</th><th>why</th></tr></thead><tbody>",
        escape(&state.shared.config.dir.display().to_string())
    );
    for release in &releases {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(&release.name),
            if release.kind == crate::events::ReleaseKind::Bundle {
                "bundle"
            } else {
                "directory"
            },
            escape(release.version.as_deref().unwrap_or("-")),
            escape(&release.status),
            escape(&release.status),
            escape(&release.reason),
        );
    }
    body.push_str("</tbody></table>");
    page("installs", &body).into_response()
}

#[derive(Deserialize)]
struct DiffForm {
    from: String,
    to: String,
}

async fn diff_form(Query(form): Query<DiffForm>) -> Redirect {
    let clean = |id: &str| {
        id.trim()
            .chars()
            .filter(|character| character.is_ascii_alphanumeric() || *character == '-')
            .collect::<String>()
    };
    Redirect::to(&format!(
        "/installs/{}/diff/{}",
        clean(&form.from),
        clean(&form.to)
    ))
}

/// The facts of `event_type` an install recorded, as recorded JSON.
fn facts<'a>(install: &'a InstallState, event_type: &'a str) -> impl Iterator<Item = &'a Value> {
    install
        .stages
        .iter()
        .flat_map(|stage| stage.fact_events.iter())
        .filter(move |event| event.event_type == event_type)
        .map(|event| &event.payload)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

async fn install_page(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let install = match blocking(&state, move |shared| reads::install(&shared.state, &id)).await {
        Ok(install) => install,
        Err(problem) => return problem_page(problem),
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Install <code id=\"install-id\">{id}</code> of {app}: <span id=\"install-status\" class=\"{status}\">{status}</span></h1>\
<dl><dt>kind</dt><dd id=\"install-kind\">{kind}</dd><dt>release</dt><dd><code>{release}</code></dd><dt>release digest</dt><dd><code>{digest}</code></dd>\
<dt>namespace</dt><dd>{namespace}</dd><dt>output</dt><dd><code>{out}</code></dd><dt>started</dt><dd>{started}</dd>\
<dt>duration</dt><dd>{duration}</dd><dt>resumed</dt><dd>{resumed} time(s)</dd><dt>upgrades</dt><dd>{upgrades}</dd></dl>\
<p><a href=\"/api/installs/{id}/events\">events (JSON)</a></p>",
        id = escape(&install.install_id),
        app = escape(&install.app_slug),
        kind = install.kind.as_str(),
        status = install.status.as_str(),
        release = escape(&install.release_dir),
        digest = escape(&install.release_digest),
        namespace = escape(&install.namespace),
        out = escape(&install.out),
        started = escape(&install.started_at),
        duration = duration(install.duration_ms),
        resumed = install.resumed,
        upgrades = match &install.upgrades {
            Some(previous) => format!(
                "<a href=\"/installs/{p}\">{p}</a> (<a id=\"diff-previous\" href=\"/installs/{p}/diff/{id}\">diff</a>)",
                p = escape(previous),
                id = escape(&install.install_id)
            ),
            None => "-".into(),
        },
    );

    // Stage timeline.
    let longest = install
        .stages
        .iter()
        .filter_map(|stage| stage.duration_ms)
        .max()
        .unwrap_or(1)
        .max(1);
    body.push_str("<h2>Stage timeline</h2><table id=\"timeline\"><thead><tr><th>stage</th><th>kind</th><th>status</th><th>attempts</th><th>duration</th><th></th><th>outcome or error</th></tr></thead><tbody>");
    for stage in &install.stages {
        let status = match stage.status {
            StageStatus::Pending => "pending",
            StageStatus::Running => "running",
            StageStatus::Completed => "completed",
            StageStatus::Failed => "failed",
        };
        let width = stage
            .duration_ms
            .map(|ms| (ms as f64 / longest as f64 * 100.0).max(0.5))
            .unwrap_or(0.0);
        let detail = match (&stage.summary, &stage.last_error) {
            (_, Some(error)) if stage.status == StageStatus::Failed => format!(
                "<span class=\"failed stage-error\">{} ({})</span>",
                escape(&error.message),
                escape(
                    &serde_json::to_value(error.class)
                        .map(|value| text(&value))
                        .unwrap_or_default()
                )
            ),
            (Some(summary), _) => escape(summary),
            (None, Some(error)) => format!(
                "<span class=\"stage-error\">earlier attempt: {}</span>",
                escape(&error.message)
            ),
            (None, None) => String::new(),
        };
        let _ = write!(
            body,
            "<tr data-stage=\"{name}\"><td>{name}</td><td>{kind}</td><td class=\"{status}\">{status}</td><td>{attempts}</td><td class=\"duration\">{duration}</td>\
<td style=\"width:30%\"><div class=\"bar {status}\" style=\"width:{width:.1}%\"></div></td><td>{detail}</td></tr>",
            name = escape(&stage.name),
            kind = escape(&stage.kind),
            attempts = stage.attempts,
            duration = duration(stage.duration_ms),
        );
    }
    body.push_str("</tbody></table>");
    if let Some(failure) = &install.failure {
        let _ = write!(
            body,
            "<p class=\"failed\" id=\"failure\">stage {} failed: {}</p>",
            escape(&failure.stage),
            escape(&failure.message)
        );
    }

    // Images with probe outcome, evidence and rewrite.
    // `OverridesPlanned` holds its plan's `entries` and `skipped` at the top level.
    let rewrites: Vec<&Value> = facts(&install, "OverridesPlanned")
        .flat_map(|plan| plan["entries"].as_array().into_iter().flatten())
        .collect();
    let skipped: Vec<&Value> = facts(&install, "OverridesPlanned")
        .flat_map(|plan| plan["skipped"].as_array().into_iter().flatten())
        .collect();
    body.push_str("<h2>Images</h2><table id=\"images\"><thead><tr><th>image</th><th>outcome</th><th>decision</th><th>why</th><th>evidence</th><th>rewrite</th></tr></thead><tbody>");
    for image in facts(&install, "ImagesProbed")
        .flat_map(|probed| probed["images"].as_array().into_iter().flatten())
    {
        let reference = text(&image["image"]);
        let rewrite = rewrites
            .iter()
            .find(|entry| entry["image"].as_str() == Some(reference.as_str()))
            .map(|entry| {
                format!(
                    "<code>{}</code> → <code>{}</code>",
                    escape(&text(&entry["name"])),
                    escape(&text(&entry["new_name"]))
                )
            })
            .or_else(|| {
                skipped
                    .iter()
                    .find(|entry| entry["image"].as_str() == Some(reference.as_str()))
                    .map(|entry| format!("none: {}", escape(&text(&entry["reason"]))))
            })
            .unwrap_or_else(|| "none".into());
        let evidence = &image["evidence"];
        let evidence = if evidence.is_null() {
            "-".to_string()
        } else {
            format!(
                "{} {}",
                escape(&text(&evidence["endpoint"])),
                escape(
                    &evidence["status_codes"]
                        .as_array()
                        .map(|codes| codes.iter().map(text).collect::<Vec<_>>().join(" "))
                        .unwrap_or_default()
                )
            )
        };
        let _ = write!(
            body,
            "<tr><td><code class=\"image\">{}</code></td><td class=\"outcome\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"rewrite\">{}</td></tr>",
            escape(&reference),
            escape(&text(&image["outcome"])),
            escape(&text(&image["decision"])),
            escape(&text(&image["reason"])),
            evidence,
            rewrite,
        );
    }
    body.push_str("</tbody></table>");

    // Pull secrets: names and namespaces, never content.
    body.push_str("<h2>Pull secrets</h2><table id=\"secrets\"><thead><tr><th>name</th><th>namespace</th><th>registries</th></tr></thead><tbody>");
    for secret in facts(&install, "SecretsProvisioned")
        .flat_map(|provisioned| provisioned["secrets"].as_array().into_iter().flatten())
    {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&text(&secret["name"])),
            escape(&text(&secret["namespace"])),
            escape(
                &secret["hosts"]
                    .as_array()
                    .map(|hosts| hosts.iter().map(text).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            ),
        );
    }
    body.push_str("</tbody></table>");

    // Applied objects and app state.
    body.push_str("<h2>Applied objects</h2>");
    let applied = windlass_apply::view::apply_view(
        install
            .stages
            .iter()
            .filter(|stage| stage.name == windlass_apply::stage::KIND)
            .flat_map(|stage| stage.fact_events.iter()),
    );
    match applied {
        None => body.push_str("<p id=\"applied-none\">nothing applied by this install</p>"),
        Some(view) => {
            let _ = write!(
                body,
                "<p>app state: <strong id=\"app-state\">{}</strong></p>",
                escape(
                    &view
                        .state()
                        .and_then(|state| serde_json::to_value(state).ok())
                        .map(|value| text(&value))
                        .unwrap_or_else(|| "unknown".into())
                )
            );
            body.push_str("<table id=\"applied\"><thead><tr><th>object</th><th>step</th><th>outcome</th><th>file</th></tr></thead><tbody>");
            for object in &view.objects {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                    escape(&object.key.to_string()),
                    escape(
                        &serde_json::to_value(object.step)
                            .map(|v| text(&v))
                            .unwrap_or_default()
                    ),
                    escape(
                        &serde_json::to_value(object.outcome)
                            .map(|v| text(&v))
                            .unwrap_or_default()
                    ),
                    escape(&object.file),
                );
            }
            body.push_str("</tbody></table>");
        }
    }
    let _ = write!(
        body,
        "<h2>Compare</h2><form action=\"/diff\" method=\"get\"><input type=\"hidden\" name=\"to\" value=\"{id}\">\
<label>older install <input name=\"from\" required></label> <button type=\"submit\">diff with this one</button></form>",
        id = escape(&install.install_id)
    );
    page(&format!("install {}", install.install_id), &body).into_response()
}

async fn diff_page(
    State(state): State<ApiState>,
    Path((from, to)): Path<(String, String)>,
) -> Response {
    let diff = match blocking(&state, move |shared| reads::diff(&shared.state, &from, &to)).await {
        Ok(diff) => diff,
        Err(problem) => return problem_page(problem),
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Diff <a href=\"/installs/{from}\">{from}</a> → <a href=\"/installs/{to}\">{to}</a></h1>\
<p id=\"diff-summary\">{summary}; upstream changed: {upstream}; options changed: {options}</p>",
        from = escape(&diff.from),
        to = escape(&diff.to),
        summary = escape(&diff.summary.line()),
        upstream = diff.upstream_changed,
        options = diff.options_changed,
    );
    body.push_str("<table id=\"changes\"><thead><tr><th>stage</th><th>change</th><th>subject</th><th>detail</th><th>because</th></tr></thead><tbody>");
    for change in &diff.changes {
        let _ = write!(
            body,
            "<tr class=\"{kind}\"><td>{stage}</td><td>{kind}</td><td><code>{subject}</code></td><td>{detail}{unified}</td><td>{because}</td></tr>",
            stage = escape(&change.stage),
            kind = escape(&change.kind),
            subject = escape(&change.subject),
            detail = escape(&change.detail),
            unified = change
                .unified_diff
                .as_deref()
                .map(|text| format!(
                    "<details><summary>unified diff</summary><pre>{}</pre></details>",
                    escape(text)
                ))
                .unwrap_or_default(),
            because = escape(change.attribution),
        );
    }
    body.push_str("</tbody></table>");
    page(&format!("diff {} → {}", diff.from, diff.to), &body).into_response()
}
