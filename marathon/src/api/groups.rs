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
        return versions(ctx, &id);
    }
    let id = PathId::parse(&rest.join("/"));
    match *m {
        Method::GET => show(ctx, req, &id),
        Method::POST => create(ctx, req, id).await,
        Method::PUT | Method::PATCH => update(ctx, req, id).await,
        Method::DELETE => delete(ctx, req, id).await,
        _ => Err(ApiError::NotFound(
            "HTTP method not allowed for this resource".into(),
        )),
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

fn versions(ctx: &ApiContext, id: &PathId) -> Result<Reply, ApiError> {
    let st = read(&ctx.state);
    let group = st
        .root
        .group(id)
        .ok_or_else(|| ApiError::unknown_group(id))?;
    Ok(json_reply(200, &serde_json::json!([group.version])))
}

fn parse_update(req: &Request) -> Result<GroupUpdate, ApiError> {
    parse_json::<GroupUpdate>(&req.body)
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
    let update = parse_update(req)?;
    let defaults = ctx.defaults.clone();
    let change: ChangeFn = Box::new(move |root: &RootGroup, version: Timestamp| {
        if let Some(factor) = update.scale_by {
            if root.group(&id).is_none() {
                return Err(ApiError::unknown_group(&id));
            }
            return Ok(root.scale_group(&id, factor, version));
        }
        if update.version.is_some() {
            return Err(ApiError::invalid(
                "/version",
                "Rolling a group back to an earlier version is not supported; roll back its apps with PUT /v2/apps/{id} and {\"version\": ...}",
            ));
        }
        root.apply_update(&id, update, version, &defaults)
    });
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
