//! `/ping`, `/metrics`, `/v2/info`, `/v2/leader`, `/v2/queue`, `/v2/deployments`.

use std::sync::atomic::Ordering;

use agora_common::build;
use serde_json::{json, Value};
use warp::http::Method;

use super::render::queue_json;
use super::{deployment_reply, empty_reply, json_reply, ApiContext, Reply, Request};
use crate::core::read;
use crate::error::ApiError;
use crate::model::PathId;

pub(super) fn ping() -> Reply {
    warp::http::Response::builder()
        .status(200)
        .header("content-type", "text/plain; charset=utf-8")
        .header("cache-control", "must-revalidate,no-cache,no-store")
        .body("pong".into())
        .expect("static headers are valid")
}

pub(super) fn info(ctx: &ApiContext) -> Reply {
    let c = &ctx.config;
    let zk_timeout = c.zk_session_timeout.as_millis() as u64;
    let st = read(&ctx.state);
    let mut info = json!({
        "name": "marathon",
        "version": build::MARATHON_API_VERSION,
        "buildref": build::buildref(),
        "elected": st.leadership.elected,
        "marathon_config": {
            "checkpoint": true,
            "decline_offer_duration": c.decline_offer_duration.as_millis() as u64,
            "executor": "//cmd",
            "failover_timeout": c.failover_timeout.as_secs(),
            "features": [],
            "framework_name": c.framework_name,
            "ha": c.ha,
            "hostname": c.hostname,
            "local_port_max": c.service_ports.1,
            "local_port_min": c.service_ports.0,
            "master": c.master,
            "max_instances_per_offer": c.max_instances_per_offer,
            "mesos_role": c.mesos_role,
            "reconciliation_initial_delay": c.reconciliation_initial_delay.as_millis() as u64,
            "reconciliation_interval": c.reconciliation_interval.as_millis() as u64,
            "task_launch_timeout": c.task_launch_timeout.as_millis() as u64,
            "task_lost_expunge_initial_delay": 300000,
            "task_lost_expunge_interval": 30000,
            "webui_url": c.own_url(),
        },
        // The session's timeout; a connection idle for 2/5 of it is taken
        // as lost (the client's rule), and a call lasts at most the session.
        "zookeeper_config": {
            "zk": c.zk.clone().unwrap_or_default(),
            "zk_connection_timeout": zk_timeout * 2 / 5,
            "zk_max_versions": c.zk_max_versions,
            "zk_session_timeout": zk_timeout,
            "zk_timeout": zk_timeout,
        },
        // No HTTPS listener: no `https_port` to advertise.
        "http_config": {
            "http_port": c.http_addr.port(),
        },
    });
    if let Some(leader) = &st.leadership.leader {
        info["leader"] = json!(leader);
    }
    if let Some(id) = &st.framework_id {
        info["frameworkId"] = json!(id);
    }
    json_reply(200, &info)
}

pub(super) async fn leader(ctx: &ApiContext, req: &Request) -> Result<Reply, ApiError> {
    let leader = read(&ctx.state).leadership.leader.clone();
    if req.method == Method::GET {
        return match leader {
            Some(l) => Ok(json_reply(200, &json!({ "leader": l }))),
            None => Err(ApiError::NotFound("There is no leader".into())),
        };
    }
    if req.method != Method::DELETE {
        return Err(ApiError::MethodNotAllowed(super::GET_DELETE));
    }
    // Marathon writes a backup of its state to `backup` (and reads one
    // from `restore`) as it steps down; Agora does neither yet, so it says
    // so rather than stepping down as if it had.
    for unsupported in ["backup", "restore"] {
        if req.param(unsupported).is_some() {
            return Err(ApiError::BadRequest(format!(
                "Query parameter '{unsupported}' is not supported by this Marathon: \
                 it writes and restores no backups; leadership was not abdicated"
            )));
        }
    }
    ctx.abdicate
        .send(())
        .await
        .map_err(|_| ApiError::NotFound("There is no leader".into()))?;
    Ok(json_reply(200, &json!({"message": "Leadership abdicated"})))
}

pub(super) fn queue(ctx: &ApiContext, req: &Request) -> Reply {
    let with_offers = req
        .params("embed")
        .iter()
        .any(|e| e == "lastUnusedOffers" || e == "queue.lastUnusedOffers");
    let st = read(&ctx.state);
    let entries: Vec<Value> = st
        .queue
        .values()
        .filter(|e| e.count > 0)
        .map(|e| queue_json(&st, e, with_offers))
        .collect();
    json_reply(200, &json!({ "queue": entries }))
}

pub(super) async fn reset_delay(ctx: &ApiContext, rest: &[&str]) -> Result<Reply, ApiError> {
    let app = PathId::parse(&rest.join("/"));
    ctx.core.reset_delay(app).await?;
    Ok(empty_reply(204))
}

pub(super) fn deployments(ctx: &ApiContext) -> Reply {
    let st = read(&ctx.state);
    let mut list: Vec<&crate::core::state::RunningDeployment> = st.deployments.values().collect();
    list.sort_by_key(|d| d.plan.version);
    let list: Vec<Value> = list.iter().map(|d| d.to_json(&st)).collect();
    json_reply(200, &Value::Array(list))
}

/// `GET /v2/deployments/{id}` (Agora's extension): the deployment's
/// `/v2/deployments` entry and, under `status`, what its current step
/// waits for, app by app, with the last failure's cause.
pub(super) fn deployment(ctx: &ApiContext, id: &str) -> Result<Reply, ApiError> {
    let st = read(&ctx.state);
    let d = st
        .deployments
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("DeploymentPlan {id} does not exist")))?;
    let mut entry = d.to_json(&st);
    let waiting: Vec<Value> = st
        .deployment_progress(d)
        .iter()
        .map(|p| {
            json!({
                "app": p.app,
                "wanted": p.wanted,
                "launched": p.new,
                "running": p.running,
                "healthyAndReady": p.ready,
                "lastHealthCheckFailure": p.health_failure,
                "lastTaskFailure": p.task_failure,
                "message": p.describe(),
            })
        })
        .collect();
    let deadline = crate::deploy::progress::deadline(&d.plan).map(|d| d.as_secs());
    entry["status"] = json!({"currentActions": waiting, "progressDeadlineSeconds": deadline});
    Ok(json_reply(200, &entry))
}

pub(super) async fn cancel_deployment(
    ctx: &ApiContext,
    req: &Request,
    id: &str,
) -> Result<Reply, ApiError> {
    let force = req.flag("force", false)?;
    match ctx.core.cancel_deployment(id.to_string(), force).await? {
        Some(result) => Ok(deployment_reply(200, &result)),
        None => Ok(empty_reply(202)),
    }
}

/// Marathon's metrics document: counters and gauges of this instance.
pub(super) fn metrics(ctx: &ApiContext) -> Reply {
    let st = read(&ctx.state);
    let running = st.instances.values().filter(|i| i.is_running()).count();
    let staged = st.instances.len() - running;
    let queued: u64 = st.queue.values().map(|e| u64::from(e.count)).sum();
    let gauges = json!({
        "marathon.apps.active.gauge": {"value": st.root.apps.len()},
        "marathon.groups.active.gauge": {"value": st.root.groups.len()},
        "marathon.instances.running.gauge": {"value": running},
        "marathon.instances.staged.gauge": {"value": staged},
        "marathon.instances.launch-queue.gauge": {"value": queued},
        "marathon.deployments.active.gauge": {"value": st.deployments.len()},
        "marathon.leadership.elected.gauge": {"value": u8::from(st.leadership.elected)},
    });
    let probes = &ctx.probe_stats;
    let counters = json!({
        "marathon.health.probes.counter": {"count": probes.probes.load(Ordering::Relaxed)},
        "marathon.health.probes-late.counter": {"count": probes.late.load(Ordering::Relaxed)},
    });
    json_reply(
        200,
        &json!({
            "version": "4.0.0",
            "counters": counters,
            "gauges": gauges,
            "histograms": {},
            "meters": {},
            "timers": {},
        }),
    )
}
