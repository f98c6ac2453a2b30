//! `/v2/apps`: list, create, update (one or many), rollback, restart,
//! delete, tasks and versions.

use serde_json::{json, Map, Value};
use warp::http::Method;

use super::render::{app_json, task_json, AppEmbed};
use super::{
    accepts_gzip, deployment_reply, json_reply, rendered_reply, ApiContext, Reply, Request,
};
use crate::core::{read, ChangeFn, KillResult};
use crate::error::{ApiError, Violation};
use crate::model::update::merge_update;
use crate::model::validation::validate_app;
use crate::model::{parse_json, parse_value, AppDefinition, PathId, RootGroup, Timestamp};

pub(super) async fn route(
    ctx: &ApiContext,
    req: &Request,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    let m = &req.method;
    if rest.is_empty() {
        return match *m {
            Method::GET => Ok(list(ctx, req, None)),
            Method::POST => create(ctx, req).await,
            Method::PUT | Method::PATCH => update_many(ctx, req).await,
            _ => Err(ApiError::MethodNotAllowed(&[
                "GET", "HEAD", "POST", "PUT", "PATCH",
            ])),
        };
    }
    if rest.last() == Some(&"*") && *m == Method::GET {
        let group = PathId::parse(&rest[..rest.len() - 1].join("/"));
        return Ok(list(ctx, req, Some(group)));
    }
    match split_resource(ctx, rest) {
        (app, Some(("restart", []))) => match *m {
            Method::POST => restart(ctx, req, app).await,
            _ => Err(ApiError::MethodNotAllowed(&["POST"])),
        },
        (app, Some(("tasks", []))) => match *m {
            Method::GET => app_tasks(ctx, req, &app),
            Method::DELETE => kill_app_tasks(ctx, req, &app).await,
            _ => Err(ApiError::MethodNotAllowed(&["GET", "HEAD", "DELETE"])),
        },
        (app, Some(("tasks", [task]))) => match *m {
            Method::DELETE => kill_one_task(ctx, req, &app, task).await,
            _ => Err(ApiError::MethodNotAllowed(&["DELETE"])),
        },
        (app, Some(("versions", rest))) if rest.len() <= 1 => match (*m == Method::GET, rest) {
            (true, []) => versions(ctx, &app).await,
            (true, [version]) => version_of(ctx, &app, version).await,
            _ => Err(ApiError::MethodNotAllowed(&["GET", "HEAD"])),
        },
        (app, None) => match *m {
            Method::GET => show(ctx, req, &app),
            Method::PUT | Method::PATCH => update_one(ctx, req, app).await,
            Method::DELETE => delete(ctx, req, app).await,
            _ => Err(ApiError::MethodNotAllowed(&[
                "GET", "HEAD", "PUT", "PATCH", "DELETE",
            ])),
        },
        _ => Err(ApiError::NotFound(format!(
            "The requested resource '{}' could not be found",
            req.raw_path
        ))),
    }
}

/// Splits `prod/web/tasks/t1` into the app id and the sub-resource. A
/// keyword whose prefix names an existing app wins; app ids may contain
/// segments named like the keywords.
fn split_resource<'a>(
    ctx: &ApiContext,
    rest: &'a [&'a str],
) -> (PathId, Option<(&'a str, &'a [&'a str])>) {
    let st = read(&ctx.state);
    let keyword = |s: &str| matches!(s, "tasks" | "versions" | "restart");
    let candidates: Vec<usize> = (1..rest.len()).filter(|k| keyword(rest[*k])).collect();
    let full = PathId::parse(&rest.join("/"));
    let pick = candidates
        .iter()
        .copied()
        .find(|k| st.root.app(&PathId::parse(&rest[..*k].join("/"))).is_some())
        .or_else(|| {
            if st.root.app(&full).is_some() {
                None
            } else {
                candidates.first().copied()
            }
        });
    match pick {
        Some(k) => (
            PathId::parse(&rest[..k].join("/")),
            Some((rest[k], &rest[k + 1..])),
        ),
        None => (full, None),
    }
}

fn embeds(req: &Request) -> Vec<String> {
    req.params("embed")
}

fn list(ctx: &ApiContext, req: &Request, group: Option<PathId>) -> Reply {
    let embed = AppEmbed::parse(&embeds(req));
    let cmd = req.param("cmd").map(str::to_string);
    let id = req.param("id").map(|s| s.to_ascii_lowercase());
    let selector = req.param("label").map(LabelSelector::parse);
    let st = read(&ctx.state);
    let query = format!(
        "{}?{}",
        group.as_ref().map(|g| g.to_string()).unwrap_or_default(),
        req.raw_query
    );
    let body = ctx
        .renders
        .apps_list(&st, &query, &embed, accepts_gzip(ctx, req), || {
            st.root
                .apps
                .values()
                .filter(|a| group.as_ref().is_none_or(|g| a.id.starts_with(g)))
                .filter(|a| {
                    cmd.as_ref()
                        .is_none_or(|c| a.cmd.as_deref().is_some_and(|x| x.contains(c.as_str())))
                })
                .filter(|a| {
                    id.as_ref()
                        .is_none_or(|i| a.id.to_string().to_ascii_lowercase().contains(i.as_str()))
                })
                .filter(|a| selector.as_ref().is_none_or(|s| s.matches(&a.labels)))
                .map(|a| a.as_ref())
                .collect()
        });
    rendered_reply(body)
}

fn show(ctx: &ApiContext, req: &Request, id: &PathId) -> Result<Reply, ApiError> {
    let values = embeds(req);
    let embed = if values.is_empty() {
        AppEmbed::single_default()
    } else {
        AppEmbed::parse(&values)
    };
    let st = read(&ctx.state);
    let app = st.root.app(id).ok_or_else(|| ApiError::unknown_app(id))?;
    Ok(json_reply(200, &json!({"app": app_json(&st, app, &embed)})))
}

/// Parses and validates a whole app definition (as sent, then normalized).
fn parse_app(ctx: &ApiContext, value: Value) -> Result<AppDefinition, ApiError> {
    let mut app: AppDefinition = parse_value(value)?;
    let violations = validate_app(&app);
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    app.normalize(&ctx.defaults);
    Ok(app)
}

fn body_object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    match parse_json::<Value>(&req.body)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::InvalidJson(vec![Violation::new(
            "/",
            "error.expected.jsobject",
        )])),
    }
}

async fn create(ctx: &ApiContext, req: &Request) -> Result<Reply, ApiError> {
    let force = req.flag("force", false)?;
    let body = body_object(req)?;
    if !body.contains_key("id") {
        return Err(ApiError::invalid("/id", "error.path.missing"));
    }
    let app = parse_app(ctx, Value::Object(body.clone()))?;
    let id = app.id.clone();
    let change: ChangeFn = Box::new(move |root: &RootGroup, version: Timestamp| {
        if root.app(&app.id).is_some() {
            return Err(ApiError::Exists(format!(
                "An app with id [{}] already exists.",
                app.id
            )));
        }
        let mut target = root.clone();
        target.put_app(app, version);
        Ok(target)
    });
    let result = ctx.core.change(force, change).await?;
    post_event(ctx, req, Value::Object(body));
    let st = read(&ctx.state);
    let app = st.root.app(&id).ok_or_else(|| ApiError::unknown_app(&id))?;
    let embed = AppEmbed {
        tasks: true,
        counts: true,
        deployments: true,
        ..Default::default()
    };
    let mut reply = json_reply(201, &app_json(&st, app, &embed));
    let headers = reply.headers_mut();
    if let Ok(v) = format!("/v2/apps{id}").parse() {
        headers.insert("Location", v);
    }
    if let Ok(v) = result.deployment_id.parse() {
        headers.insert("Marathon-Deployment-Id", v);
    }
    Ok(reply)
}

fn post_event(ctx: &ApiContext, req: &Request, app: Value) {
    ctx.events.publish(
        "api_post_event",
        json!({"clientIp": req.client_ip(), "uri": req.uri(), "appDefinition": app}),
    );
}

/// A change that applies `patch` to app `id` (creating it if missing), or
/// rolls it back to a stored version.
fn update_change(
    ctx: &ApiContext,
    id: PathId,
    patch: Map<String, Value>,
    partial: bool,
) -> ChangeFn {
    let ctx = ctx.clone();
    Box::new(move |root: &RootGroup, version: Timestamp| {
        let mut target = root.clone();
        let current = if partial {
            root.app(&id).map(|a| &**a)
        } else {
            None
        };
        let app = parse_app(&ctx, merge_update(current, &patch, &id))?;
        target.put_app(app, version);
        Ok(target)
    })
}

fn is_rollback(patch: &Map<String, Value>) -> bool {
    patch.len() == 1 && patch.contains_key("version")
        || (patch.contains_key("version") && patch.keys().all(|k| k == "version" || k == "id"))
}

async fn rollback_target(
    ctx: &ApiContext,
    id: &PathId,
    patch: &Map<String, Value>,
) -> Result<AppDefinition, ApiError> {
    let raw = patch.get("version").and_then(Value::as_str).unwrap_or("");
    let version = Timestamp::parse(raw)
        .ok_or_else(|| ApiError::invalid("/version", "error.expected.date.isoformat"))?;
    ctx.storage
        .app_version(id, version)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("Version '{raw}' of app '{id}' does not exist")))
}

async fn update_one(ctx: &ApiContext, req: &Request, id: PathId) -> Result<Reply, ApiError> {
    let force = req.flag("force", false)?;
    let partial = req.method == Method::PATCH || req.flag("partialUpdate", true)?;
    let patch = body_object(req)?;
    if let Some(body_id) = patch.get("id").and_then(Value::as_str) {
        if PathId::parse_relative(body_id, &id.parent()) != id && PathId::parse(body_id) != id {
            return Err(ApiError::invalid(
                "/id",
                "The application id in the body must match the id in the path",
            ));
        }
    }
    let existed = read(&ctx.state).root.app(&id).is_some();
    let change = if is_rollback(&patch) {
        let old = rollback_target(ctx, &id, &patch).await?;
        Box::new(move |root: &RootGroup, version: Timestamp| {
            let mut target = root.clone();
            target.put_app(old, version);
            Ok(target)
        }) as ChangeFn
    } else {
        update_change(ctx, id.clone(), patch.clone(), partial)
    };
    let result = ctx.core.change(force, change).await?;
    post_event(ctx, req, Value::Object(patch));
    Ok(deployment_reply(if existed { 200 } else { 201 }, &result))
}

async fn update_many(ctx: &ApiContext, req: &Request) -> Result<Reply, ApiError> {
    let force = req.flag("force", false)?;
    let partial = req.method == Method::PATCH || req.flag("partialUpdate", true)?;
    let items = match parse_json::<Value>(&req.body)? {
        Value::Array(items) => items,
        _ => {
            return Err(ApiError::InvalidJson(vec![Violation::new(
                "/",
                "error.expected.jsarray",
            )]))
        }
    };
    let mut patches = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(ApiError::InvalidJson(vec![Violation::new(
                format!("/({i})"),
                "error.expected.jsobject",
            )]));
        };
        let Some(id) = map.get("id").and_then(Value::as_str).map(PathId::parse) else {
            return Err(ApiError::invalid(
                format!("/({i})/id"),
                "error.path.missing",
            ));
        };
        patches.push((id, map));
    }
    let changes: Vec<ChangeFn> = patches
        .iter()
        .map(|(id, patch)| update_change(ctx, id.clone(), patch.clone(), partial))
        .collect();
    let change: ChangeFn = Box::new(move |root: &RootGroup, version: Timestamp| {
        let mut target = root.clone();
        for change in changes {
            target = change(&target, version)?;
        }
        Ok(target)
    });
    let result = ctx.core.change(force, change).await?;
    Ok(deployment_reply(200, &result))
}

async fn delete(ctx: &ApiContext, req: &Request, id: PathId) -> Result<Reply, ApiError> {
    let force = req.flag("force", false)?;
    let change: ChangeFn = Box::new(move |root: &RootGroup, version: Timestamp| {
        let mut target = root.clone();
        target
            .remove_app(&id, version)
            .ok_or_else(|| ApiError::unknown_app(&id))?;
        Ok(target)
    });
    let result = ctx.core.change(force, change).await?;
    Ok(deployment_reply(200, &result))
}

async fn restart(ctx: &ApiContext, req: &Request, id: PathId) -> Result<Reply, ApiError> {
    let force = req.flag("force", false)?;
    let change: ChangeFn = Box::new(move |root: &RootGroup, version: Timestamp| {
        let mut target = root.clone();
        if !target.restart_app(&id, version) {
            return Err(ApiError::unknown_app(&id));
        }
        Ok(target)
    });
    let result = ctx.core.change(force, change).await?;
    Ok(deployment_reply(200, &result))
}

/// `GET /v2/apps/{id}/tasks`: JSON, or Marathon's text form for
/// `Accept: text/plain`.
fn app_tasks(ctx: &ApiContext, req: &Request, id: &PathId) -> Result<Reply, ApiError> {
    let st = read(&ctx.state);
    let app = st.root.app(id).ok_or_else(|| ApiError::unknown_app(id))?;
    if super::tasks::wants_text(req) {
        let instances = st.app_instances(id);
        return Ok(super::tasks::text_list(&st, &instances, Some(id)));
    }
    let tasks: Vec<Value> = st
        .app_instances(id)
        .into_iter()
        .map(|i| task_json(i, Some(app)))
        .collect();
    Ok(json_reply(200, &json!({ "tasks": tasks })))
}

async fn kill_app_tasks(ctx: &ApiContext, req: &Request, id: &PathId) -> Result<Reply, ApiError> {
    let scale = req.flag("scale", false)?;
    let wipe = req.flag("wipe", false)?;
    let force = req.flag("force", false)?;
    let host = req.param("host").map(str::to_string);
    let task_ids: Vec<String> = {
        let st = read(&ctx.state);
        st.root.app(id).ok_or_else(|| ApiError::unknown_app(id))?;
        st.app_instances(id)
            .into_iter()
            .filter(|i| host.as_ref().is_none_or(|h| &i.host == h || h == "*"))
            .map(|i| i.task_id.clone())
            .collect()
    };
    kill_reply(
        ctx,
        task_ids,
        scale,
        wipe,
        force,
        |tasks| json!({ "tasks": tasks }),
    )
    .await
}

async fn kill_one_task(
    ctx: &ApiContext,
    req: &Request,
    id: &PathId,
    task: &str,
) -> Result<Reply, ApiError> {
    let scale = req.flag("scale", false)?;
    let wipe = req.flag("wipe", false)?;
    let force = req.flag("force", false)?;
    {
        let st = read(&ctx.state);
        st.root.app(id).ok_or_else(|| ApiError::unknown_app(id))?;
        let known = st.app_instances(id).iter().any(|i| i.task_id == task);
        if !known {
            return Err(ApiError::NotFound(format!("Task '{task}' does not exist")));
        }
    }
    kill_reply(
        ctx,
        vec![task.to_string()],
        scale,
        wipe,
        force,
        |mut tasks| json!({ "task": tasks.pop().unwrap_or(Value::Null) }),
    )
    .await
}

/// Kills and answers with the killed tasks (shaped by `shape`) or, with `scale`, the deployment.
pub(super) async fn kill_reply(
    ctx: &ApiContext,
    task_ids: Vec<String>,
    scale: bool,
    wipe: bool,
    force: bool,
    shape: impl FnOnce(Vec<Value>) -> Value,
) -> Result<Reply, ApiError> {
    match ctx.core.kill_tasks(task_ids, scale, wipe, force).await? {
        KillResult::Scaled(result) => Ok(deployment_reply(200, &result)),
        KillResult::Killed(instances) => {
            let st = read(&ctx.state);
            let tasks = instances
                .iter()
                .map(|i| task_json(i, st.root.app(&i.app_id).map(|a| &**a)))
                .collect();
            Ok(json_reply(200, &shape(tasks)))
        }
    }
}

async fn versions(ctx: &ApiContext, id: &PathId) -> Result<Reply, ApiError> {
    if read(&ctx.state).root.app(id).is_none() {
        return Err(ApiError::unknown_app(id));
    }
    let versions = super::newest_first(ctx.storage.app_versions(id).await)?;
    Ok(json_reply(200, &json!({ "versions": versions })))
}

async fn version_of(ctx: &ApiContext, id: &PathId, raw: &str) -> Result<Reply, ApiError> {
    let version = Timestamp::parse(raw)
        .ok_or_else(|| ApiError::BadRequest(format!("Invalid version '{raw}'")))?;
    let app = ctx
        .storage
        .app_version(id, version)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or_else(|| ApiError::unknown_app(id))?;
    Ok(json_reply(
        200,
        &serde_json::to_value(app).unwrap_or_default(),
    ))
}

/// Marathon's label selectors: `key`, `key==value`, `key!=value`,
/// `key in (a, b)`, `key notin (a, b)`, joined by commas.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LabelSelector {
    terms: Vec<LabelTerm>,
}

#[derive(Debug, Clone, PartialEq)]
enum LabelTerm {
    Exists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl LabelSelector {
    pub(super) fn parse(s: &str) -> Self {
        let mut terms = Vec::new();
        let mut depth = 0;
        let mut current = String::new();
        let mut parts = Vec::new();
        for c in s.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        parts.push(current);
        for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let term = if let Some((k, v)) = part.split_once("!=") {
                LabelTerm::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                LabelTerm::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                LabelTerm::NotIn(k.trim().into(), set_values(v))
            } else if let Some((k, v)) = part.split_once(" in ") {
                LabelTerm::In(k.trim().into(), set_values(v))
            } else {
                LabelTerm::Exists(part.into())
            };
            terms.push(term);
        }
        LabelSelector { terms }
    }

    pub(super) fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| match t {
            LabelTerm::Exists(k) => labels.contains_key(k),
            LabelTerm::Equals(k, v) => labels.get(k) == Some(v),
            LabelTerm::NotEquals(k, v) => labels.get(k) != Some(v),
            LabelTerm::In(k, vs) => labels.get(k).is_some_and(|x| vs.contains(x)),
            LabelTerm::NotIn(k, vs) => labels.get(k).is_none_or(|x| !vs.contains(x)),
        })
    }
}

fn set_values(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn label_selectors() {
        let labels: BTreeMap<String, String> = [
            ("env".to_string(), "prod".to_string()),
            ("tier".into(), "web".into()),
        ]
        .into();
        assert!(LabelSelector::parse("env").matches(&labels));
        assert!(LabelSelector::parse("env==prod").matches(&labels));
        assert!(!LabelSelector::parse("env!=prod").matches(&labels));
        assert!(LabelSelector::parse("tier in (web, db), env").matches(&labels));
        assert!(!LabelSelector::parse("tier notin (web)").matches(&labels));
        assert!(!LabelSelector::parse("missing").matches(&labels));
    }
}
