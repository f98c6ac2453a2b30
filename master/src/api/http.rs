//! HTTP endpoints in Mesos' shapes: `/master/state` (also `/state`,
//! `/master/state.json`), `/master/frameworks`, `/master/slaves`,
//! `/metrics/snapshot`, Prometheus `/metrics`, `/health`, `/version`,
//! `POST /master/teardown`.

use std::collections::HashMap;

use axum::extract::{Form, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::MasterClient;
use crate::actor::Command;
use crate::metrics::prometheus_text;

/// The HTTP routes.
pub fn router(master: MasterClient) -> Router {
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
        .with_state(master)
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the master is shutting down",
    )
        .into_response()
}

async fn state_value(master: &MasterClient) -> Result<Value, Response> {
    master
        .ask(|reply| Command::State { reply })
        .await
        .map_err(|_| unavailable())
}

async fn state(State(master): State<MasterClient>) -> Response {
    match state_value(&master).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn frameworks(State(master): State<MasterClient>) -> Response {
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

async fn slaves(State(master): State<MasterClient>) -> Response {
    match state_value(&master).await {
        Ok(mut v) => Json(json!({
            "slaves": v["slaves"].take(),
            "recovered_slaves": [],
        }))
        .into_response(),
        Err(r) => r,
    }
}

async fn metrics_snapshot(State(master): State<MasterClient>) -> Response {
    match master.ask(|reply| Command::Metrics { reply }).await {
        Ok(metrics) => {
            let map: serde_json::Map<String, Value> =
                metrics.into_iter().map(|(k, v)| (k, json!(v))).collect();
            Json(Value::Object(map)).into_response()
        }
        Err(_) => unavailable(),
    }
}

async fn metrics_prometheus(State(master): State<MasterClient>) -> Response {
    match master.ask(|reply| Command::Metrics { reply }).await {
        Ok(metrics) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            prometheus_text(&metrics),
        )
            .into_response(),
        Err(_) => unavailable(),
    }
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn version() -> Json<Value> {
    Json(json!({
        "version": agora_common::VERSION,
        "git_sha": option_env!("AGORA_GIT_SHA").unwrap_or(""),
        "build_date": "",
        "build_user": "",
    }))
}

async fn teardown(
    State(master): State<MasterClient>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
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
