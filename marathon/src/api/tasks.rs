//! `/v2/tasks`: every task, and killing many at once.

use serde_json::{json, Value};

use super::apps::kill_reply;
use super::{empty_reply, json_reply, ApiContext, Reply, Request};
use crate::core::read;
use crate::error::ApiError;
use crate::model::TaskStateExt;
use crate::model::{parse_json, Instance};

/// `GET /v2/tasks[?status=running]`: JSON, or Marathon's tab-separated text for `Accept: text/plain`.
pub(super) fn list(ctx: &ApiContext, req: &Request) -> Result<Reply, ApiError> {
    let mut wanted: Vec<String> = req.params("status");
    wanted.extend(req.params("status[]"));
    let wanted: Vec<String> = wanted
        .iter()
        .map(|s| format!("TASK_{}", s.to_ascii_uppercase()))
        .collect();
    let st = read(&ctx.state);
    let selected: Vec<&Instance> = st
        .instances
        .values()
        .filter(|i| wanted.is_empty() || wanted.iter().any(|w| w == i.state.as_str()))
        .collect();
    if wants_text(req) {
        return Ok(text_list(&st, &selected, None));
    }
    let tasks: Vec<Value> = selected
        .iter()
        .map(|i| super::render::task_json(i, st.root.app(&i.app_id).map(|a| &**a)))
        .collect();
    Ok(json_reply(200, &json!({ "tasks": tasks })))
}

/// Whether the client asks for Marathon's text form (`Accept: text/plain`,
/// JSON not asked for).
pub(super) fn wants_text(req: &Request) -> bool {
    req.headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/plain") && !a.contains("application/json"))
}

/// `app_safe_id<TAB>service port<TAB>host:port...` per app (all, or `only`)
/// and port, as Marathon's text form.
pub(super) fn text_list(
    st: &crate::core::State,
    instances: &[&Instance],
    only: Option<&crate::model::PathId>,
) -> Reply {
    let mut out = String::new();
    for app in st.root.apps.values() {
        if only.is_some_and(|id| *id != app.id) {
            continue;
        }
        let mine: Vec<&&Instance> = instances.iter().filter(|i| i.app_id == app.id).collect();
        for (n, service_port) in app.service_ports().iter().enumerate() {
            out.push_str(&format!("{}\t{}\t", app.id.safe(), service_port));
            let endpoints: Vec<String> = mine
                .iter()
                .filter_map(|i| i.ports.get(n).map(|p| format!("{}:{}", i.host, p)))
                .collect();
            out.push_str(&endpoints.join("\t"));
            out.push('\n');
        }
    }
    warp::http::Response::builder()
        .status(200)
        .header("content-type", "text/plain; charset=utf-8")
        .body(out.into())
        .expect("static headers are valid")
}

#[derive(serde::Deserialize)]
struct DeleteTasks {
    ids: Vec<String>,
}

/// `POST /v2/tasks/delete {"ids": [...]}`.
pub(super) async fn delete_many(ctx: &ApiContext, req: &Request) -> Result<Reply, ApiError> {
    let scale = req.flag("scale", false)?;
    let wipe = req.flag("wipe", false)?;
    let force = req.flag("force", false)?;
    let body: DeleteTasks = parse_json(&req.body)?;
    {
        let st = read(&ctx.state);
        for id in &body.ids {
            let known = Instance::instance_id_of(id)
                .and_then(|i| st.instances.get(i))
                .is_some_and(|i| &i.task_id == id);
            if !known {
                return Err(ApiError::BadRequest(format!("Invalid task id {id}")));
            }
        }
    }
    if body.ids.is_empty() {
        return Ok(empty_reply(200));
    }
    kill_reply(
        ctx,
        body.ids,
        scale,
        wipe,
        force,
        |tasks| json!({ "tasks": tasks }),
    )
    .await
}
