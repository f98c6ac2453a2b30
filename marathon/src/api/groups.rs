//! `/v2/groups`: the tree of apps; create, update (scaleBy), delete.

use warp::http::Method;

use super::render::{app_json, strip_embed_prefix, AppEmbed};
use super::{deployment_reply, json_reply, ApiContext, Reply, Request};
use crate::core::{read, ChangeFn};
use crate::error::ApiError;
use crate::model::group::{GroupEmbed, GroupUpdate};
use crate::model::{parse_json, PathId, RootGroup, Timestamp};

pub(super) async fn route(
    ctx: &ApiContext,
    req: &Request,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    let m = &req.method;
    if rest.last() == Some(&"versions") && *m == Method::GET {
        let id = PathId::parse(&rest[..rest.len() - 1].join("/"));
        return versions(ctx, &id).await;
    }
    let id = PathId::parse(&rest.join("/"));
    match *m {
        Method::GET => show(ctx, req, &id),
        Method::POST => create(ctx, req, id).await,
        Method::PUT | Method::PATCH => update(ctx, req, id).await,
        Method::DELETE => delete(ctx, req, id).await,
        _ => Err(ApiError::MethodNotAllowed(&[
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
        ])),
    }
}

fn embeds(req: &Request) -> (GroupEmbed, AppEmbed) {
    let values = req.params("embed");
    if values.is_empty() {
        return (
            GroupEmbed {
                apps: true,
                groups: true,
                pods: true,
            },
            AppEmbed::default(),
        );
    }
    let mut group = GroupEmbed {
        apps: false,
        groups: false,
        pods: true,
    };
    let mut app_values = Vec::new();
    for v in &values {
        match v.as_str() {
            "group.groups" | "groups" => group.groups = true,
            "group.apps" | "apps" => group.apps = true,
            "group.pods" | "pods" => group.pods = true,
            other => {
                group.apps = true;
                app_values.push(strip_embed_prefix(other).to_string());
            }
        }
    }
    let mut app = AppEmbed::parse(&app_values);
    if app_values.is_empty() {
        app = AppEmbed::default();
    }
    (group, app)
}

fn show(ctx: &ApiContext, req: &Request, id: &PathId) -> Result<Reply, ApiError> {
    let (group_embed, app_embed) = embeds(req);
    let st = read(&ctx.state);
    let mut render_app = |app: &crate::model::AppDefinition| app_json(&st, app, &app_embed);
    let value = st
        .root
        .render(id, &group_embed, &mut render_app)
        .ok_or_else(|| ApiError::unknown_group(id))?;
    Ok(json_reply(200, &value))
}

async fn versions(ctx: &ApiContext, id: &PathId) -> Result<Reply, ApiError> {
    if read(&ctx.state).root.group(id).is_none() {
        return Err(ApiError::unknown_group(id));
    }
    let versions = super::newest_first(ctx.storage.group_versions(id).await)?;
    Ok(json_reply(200, &serde_json::json!(versions)))
}

fn parse_update(req: &Request) -> Result<GroupUpdate, ApiError> {
    let update = parse_json::<GroupUpdate>(&req.body)?;
    let unsupported = update.unsupported();
    if !unsupported.is_empty() {
        return Err(ApiError::Invalid(unsupported));
    }
    Ok(update)
}

async fn create(ctx: &ApiContext, req: &Request, parent: PathId) -> Result<Reply, ApiError> {
    let force = req.flag("force", false)?;
    let update = parse_update(req)?;
    let id = match &update.id {
        Some(raw) => PathId::parse_relative(raw, &parent),
        None => parent.clone(),
    };
    let defaults = ctx.defaults.clone();
    let target_id = id.clone();
    let change: ChangeFn = Box::new(move |root: &RootGroup, version: Timestamp| {
        if root.group(&target_id).is_some() && !target_id.is_root() {
            return Err(ApiError::Exists(format!(
                "Group {target_id} is already created. Use PUT to change this group."
            )));
        }
        if target_id.is_root() && (!root.apps.is_empty() || root.groups.len() > 1) {
            return Err(ApiError::Exists(
                "Group / is already created. Use PUT to change this group.".into(),
            ));
        }
        root.apply_update(&target_id, update, version, &defaults)
    });
    let result = ctx.core.change(force, change).await?;
    let mut reply = deployment_reply(201, &result);
    if let Ok(v) = format!("/v2/groups{id}").parse() {
        reply.headers_mut().insert("Location", v);
    }
    Ok(reply)
}

async fn update(ctx: &ApiContext, req: &Request, id: PathId) -> Result<Reply, ApiError> {
    let force = req.flag("force", false)?;
    let dry_run = req.flag("dryRun", false)?;
    let update = parse_update(req)?;
    let defaults = ctx.defaults.clone();
    let rollback_to = match update.version {
        Some(v)
            if update.apps.is_none() && update.groups.is_none() && update.scale_by.is_none() =>
        {
            let old = ctx
                .storage
                .group_at(&id, v)
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string()))?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("Group '{id}' does not exist in version {v}"))
                })?;
            Some(old)
        }
        _ => None,
    };
    let change: ChangeFn = Box::new(move |root: &RootGroup, version: Timestamp| {
        if let Some(old) = rollback_to {
            return Ok(root.with_group_from(&id, &old, version));
        }
        if let Some(factor) = update.scale_by {
            if root.group(&id).is_none() {
                return Err(ApiError::unknown_group(&id));
            }
            return Ok(root.scale_group(&id, factor, version));
        }
        root.apply_update(&id, update, version, &defaults)
    });
    if dry_run {
        // The steps Marathon would take; nothing is stored or started.
        let plan = ctx.core.plan(change).await?;
        return Ok(json_reply(200, &serde_json::json!({"steps": plan.steps})));
    }
    let result = ctx.core.change(force, change).await?;
    Ok(deployment_reply(200, &result))
}

async fn delete(ctx: &ApiContext, req: &Request, id: PathId) -> Result<Reply, ApiError> {
    let force = req.flag("force", false)?;
    let change: ChangeFn = Box::new(move |root: &RootGroup, version: Timestamp| {
        if root.group(&id).is_none() {
            return Err(ApiError::unknown_group(&id));
        }
        let mut target = root.clone();
        target.remove_group(&id, version);
        Ok(target)
    });
    let result = ctx.core.change(force, change).await?;
    Ok(deployment_reply(200, &result))
}
