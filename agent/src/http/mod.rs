//! The agent's HTTP endpoint (axum): `/state`, `/health`, `/version`,
//! `/metrics/snapshot`, `/monitor/statistics` (usage read through the
//! containerizer, from the tasks' cgroups), and the files API ([`files`]).
//!
//! Handlers only translate: each asks the agent actor for a [`Snapshot`]
//! through a [`StateQuery`] and renders it (see [`state`]). The listener is
//! bound by [`crate::start`] before anything else runs, so the caller learns
//! the address (port 0 in tests) and a taken port fails the start.

pub mod files;
pub mod state;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;

use agora_common::shutdown::Shutdown;

use crate::Containerizer;
pub use state::Snapshot;

/// A request for the agent's state, answered by the actor.
#[derive(Debug)]
pub struct StateQuery {
    /// Where the snapshot goes.
    pub reply: oneshot::Sender<Snapshot>,
}

#[derive(Clone)]
struct AppState {
    queries: mpsc::Sender<StateQuery>,
    /// Reads containers' resource usage for `/monitor/statistics`.
    containerizer: Arc<dyn Containerizer>,
}

impl AppState {
    async fn snapshot(&self) -> Result<Snapshot, Response> {
        let (reply, rx) = oneshot::channel();
        let unavailable =
            || (StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping").into_response();
        self.queries
            .send(StateQuery { reply })
            .await
            .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())
    }
}

/// The routes, answering from `queries` and serving files under `files`.
pub fn router(
    queries: mpsc::Sender<StateQuery>,
    containerizer: Arc<dyn Containerizer>,
    files: files::FilesRoot,
) -> Router {
    Router::new()
        .route("/state", get(get_state))
        .route("/state.json", get(get_state))
        .route("/slave(1)/state", get(get_state))
        .route("/slave(1)/state.json", get(get_state))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/slave(1)/health", get(|| async { StatusCode::OK }))
        .route(
            "/version",
            get(|| async {
                use agora_common::build;
                Json(json!({
                    "version": build::MESOS_API_VERSION,
                    "git_sha": build::git_sha(),
                    "git_tag": build::git_tag(),
                }))
            }),
        )
        .route("/metrics/snapshot", get(get_metrics))
        .route("/monitor/statistics", get(get_statistics))
        .route("/monitor/statistics.json", get(get_statistics))
        .with_state(AppState {
            queries,
            containerizer,
        })
        .merge(files::router(files))
}

async fn get_state(State(app): State<AppState>) -> Response {
    match app.snapshot().await {
        Ok(s) => Json(state::state_json(&s)).into_response(),
        Err(r) => r,
    }
}

async fn get_metrics(State(app): State<AppState>) -> Response {
    match app.snapshot().await {
        Ok(s) => Json(state::metrics_json(&s)).into_response(),
        Err(r) => r,
    }
}

/// How many containers' usage `/monitor/statistics` reads at once.
const USAGE_CONCURRENCY: usize = 16;

/// Mesos' `/monitor/statistics`: one entry per live task whose container
/// reports usage (cgroups; nothing under process-group isolation).
async fn get_statistics(State(app): State<AppState>) -> Response {
    let s = match app.snapshot().await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Several at a time: a Docker container's usage is a round trip to the
    // engine, and a busy agent has hundreds.
    let live: Vec<state::TaskView> = s.tasks.into_iter().filter(|t| t.live).collect();
    let containerizer = app.containerizer.clone();
    let read: Vec<Option<serde_json::Value>> = futures::stream::iter(live)
        .map(move |task| {
            let containerizer = containerizer.clone();
            async move {
                let stats = containerizer.usage(&task.container_id).await?;
                let now = agora_common::time::now_secs();
                Some(state::statistics_json(&task, &stats, now))
            }
        })
        .buffered(USAGE_CONCURRENCY)
        .collect()
        .await;
    let entries: Vec<serde_json::Value> = read.into_iter().flatten().collect();
    Json(entries).into_response()
}

/// Serves on `listener` until either signal fires; in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    queries: mpsc::Sender<StateQuery>,
    containerizer: Arc<dyn Containerizer>,
    files: files::FilesRoot,
    shutdown: Shutdown,
    stop: Shutdown,
) {
    let app = router(queries, containerizer, files);
    let stopped = async move {
        tokio::select! {
            _ = shutdown.fired() => {}
            _ = stop.fired() => {}
        }
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(error = %e, "http server failed");
    }
}
