//! HTTP endpoints in Mesos' shapes: `/master/state` (also `/state`,
//! `/master/state.json`), `/master/frameworks`, `/master/slaves`,
//! `/metrics/snapshot`, Prometheus `/metrics`, `/health`, `/version`,
//! `POST /master/teardown`, `/master/redirect`.
//!
//! On a standby, `/master/state` says who leads, the metrics say
//! `master/elected: 0`, and the other API paths answer 307 to the leader.

use std::collections::HashMap;

use agora_common::build;
use axum::extract::{Form, OriginalUri, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{Leadership, MasterClient};
use crate::actor::Command;
use crate::metrics::prometheus_text;

/// The HTTP routes.
pub fn router(leadership: Leadership) -> Router {
    Router::new()
        .route("/master/state", get(state))
        .route("/master/state.json", get(state))
        .route("/state", get(state))
        .route("/state.json", get(state))
        .route("/master/frameworks", get(frameworks))
        .route("/frameworks", get(frameworks))
        .route("/master/slaves", get(slaves))
        .route("/slaves", get(slaves))
        .route("/metrics/snapshot", get(metrics_snapshot))
        .route("/metrics", get(metrics_prometheus))
        .route("/health", get(health))
        .route("/master/health", get(health))
        .route("/version", get(version))
        .route("/master/teardown", post(teardown))
        .route("/teardown", post(teardown))
        .route("/master/redirect", get(redirect))
        .route("/redirect", get(redirect))
        .with_state(leadership)
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the master is shutting down",
    )
        .into_response()
}

/// 307 to the same path on the leader (503 when no leader is known).
async fn to_leader(leadership: &Leadership, uri: &axum::http::Uri) -> Response {
    match leadership.leader_address().await {
        Some(leader) => {
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, format!("http://{leader}{path}"))],
            )
                .into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no leading master is known",
        )
            .into_response(),
    }
}

/// The actor while leading, else the redirect a standby answers with.
async fn leader_or_redirect(
    leadership: &Leadership,
    uri: &axum::http::Uri,
) -> Result<MasterClient, Response> {
    match leadership.client() {
        Some(client) => Ok(client),
        None => Err(to_leader(leadership, uri).await),
    }
}

/// What a standby says about itself and the leader.
async fn standby_state(leadership: &Leadership) -> Value {
    let info = leadership.info();
    let leader = leadership.leader_address().await;
    let mut state = json!({
        "version": build::MESOS_API_VERSION,
        "git_sha": build::git_sha(),
        "git_tag": build::git_tag(),
        "id": info.id,
        "pid": info.pid,
        "hostname": info.hostname,
        "activated_slaves": 0,
        "deactivated_slaves": 0,
        "unreachable_slaves": 0,
        "slaves": [],
        "frameworks": [],
        "completed_frameworks": [],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    });
    if let Some(leader) = leader {
        let (ip, port) = leader.rsplit_once(':').unwrap_or((leader.as_str(), ""));
        state["leader"] = json!(format!("master@{leader}"));
        state["leader_info"] = json!({
            "pid": format!("master@{leader}"),
            "address": {"ip": ip, "port": port.parse::<u16>().unwrap_or(0)},
        });
    }
    state
}

async fn redirect(State(leadership): State<Leadership>) -> Response {
    to_leader(&leadership, &axum::http::Uri::from_static("/")).await
}

async fn state_value(master: &MasterClient) -> Result<Value, Response> {
    master
        .ask(|reply| Command::State { reply })
        .await
        .map_err(|_| unavailable())
}

async fn state(State(leadership): State<Leadership>) -> Response {
    let Some(master) = leadership.client() else {
        return Json(standby_state(&leadership).await).into_response();
    };
    match state_value(&master).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn frameworks(
    State(leadership): State<Leadership>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let master = match leader_or_redirect(&leadership, &uri).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    match state_value(&master).await {
        Ok(mut v) => Json(json!({
            "frameworks": v["frameworks"].take(),
            "completed_frameworks": v["completed_frameworks"].take(),
            "unregistered_frameworks": [],
        }))
        .into_response(),
        Err(r) => r,
    }
}

async fn slaves(State(leadership): State<Leadership>, OriginalUri(uri): OriginalUri) -> Response {
    let master = match leader_or_redirect(&leadership, &uri).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    match state_value(&master).await {
        Ok(mut v) => Json(json!({
            "slaves": v["slaves"].take(),
            "recovered_slaves": [],
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// The metrics: the actor's while leading, `master/elected: 0` otherwise.
async fn metrics(leadership: &Leadership) -> Result<Vec<(String, f64)>, Response> {
    match leadership.client() {
        Some(master) => master
            .ask(|reply| Command::Metrics { reply })
            .await
            .map_err(|_| unavailable()),
        None => Ok(vec![("master/elected".to_string(), 0.0)]),
    }
}

async fn metrics_snapshot(State(leadership): State<Leadership>) -> Response {
    match metrics(&leadership).await {
        Ok(metrics) => {
            let map: serde_json::Map<String, Value> =
                metrics.into_iter().map(|(k, v)| (k, json!(v))).collect();
            Json(Value::Object(map)).into_response()
        }
        Err(_) => unavailable(),
    }
}

async fn metrics_prometheus(State(leadership): State<Leadership>) -> Response {
    match metrics(&leadership).await {
        Ok(metrics) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            prometheus_text(&metrics),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn health() -> StatusCode {
    StatusCode::OK
}

/// Mesos' `/version`: the Mesos API level, and Agora's own version and
/// commit as its tag and sha.
async fn version() -> Json<Value> {
    Json(json!({
        "version": build::MESOS_API_VERSION,
        "git_sha": build::git_sha(),
        "git_tag": build::git_tag(),
        "build_date": "",
        "build_time": 0,
        "build_user": "",
    }))
}

async fn teardown(
    State(leadership): State<Leadership>,
    OriginalUri(uri): OriginalUri,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let master = match leader_or_redirect(&leadership, &uri).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(framework_id) = form.get("frameworkId").filter(|v| !v.is_empty()).cloned() else {
        return (
            StatusCode::BAD_REQUEST,
            "Missing 'frameworkId' query parameter in the request body",
        )
            .into_response();
    };
    match master
        .ask(|reply| Command::Teardown {
            framework_id,
            reply,
        })
        .await
    {
        Ok(true) => StatusCode::OK.into_response(),
        Ok(false) => (
            StatusCode::BAD_REQUEST,
            "No framework found with specified ID",
        )
            .into_response(),
        Err(_) => unavailable(),
    }
}
