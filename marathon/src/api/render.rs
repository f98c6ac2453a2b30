//! Apps, tasks and queue entries rendered in Marathon's JSON shapes.

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::core::state::{QueueEntry, State};
use crate::model::TaskStateExt;
use crate::model::{AppDefinition, Instance};

/// What to embed in an app (`embed=app.tasks` and the like, prefixes stripped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppEmbed {
    /// `tasks`.
    pub tasks: bool,
    /// `tasksStaged`, `tasksRunning`, `tasksHealthy`, `tasksUnhealthy`.
    pub counts: bool,
    /// `deployments`.
    pub deployments: bool,
    /// `lastTaskFailure`.
    pub last_task_failure: bool,
    /// `readinessCheckResults`.
    pub readiness: bool,
    /// `taskStats`.
    pub task_stats: bool,
}

impl AppEmbed {
    /// What `GET /v2/apps/{id}` embeds by default.
    pub fn single_default() -> Self {
        AppEmbed {
            tasks: true,
            counts: true,
            deployments: true,
            last_task_failure: true,
            readiness: false,
            task_stats: false,
        }
    }

    /// Parses embed values; `prefixes` are stripped (`app.`, `apps.`, `group.apps.`).
    /// Counts and deployments are always embedded in app lists, as Marathon does.
    pub fn parse(values: &[String]) -> Self {
        let mut embed = AppEmbed {
            counts: true,
            deployments: true,
            ..Default::default()
        };
        for v in values {
            match strip_embed_prefix(v) {
                "tasks" => embed.tasks = true,
                "counts" | "count" => embed.counts = true,
                "deployments" => embed.deployments = true,
                "lastTaskFailure" | "failures" => embed.last_task_failure = true,
                "readiness" => embed.readiness = true,
                "taskStats" => embed.task_stats = true,
                _ => {}
            }
        }
        embed
    }
}

/// `group.apps.tasks` → `tasks`, `apps.counts` → `counts`, `app.tasks` → `tasks`.
pub fn strip_embed_prefix(value: &str) -> &str {
    for prefix in ["group.apps.", "apps.", "app.", "group."] {
        if let Some(rest) = value.strip_prefix(prefix) {
            return rest;
        }
    }
    value
}

/// An app with the embedded extras.
pub fn app_json(st: &State, app: &AppDefinition, embed: &AppEmbed) -> Value {
    let mut v = serde_json::to_value(app).unwrap_or_else(|_| json!({}));
    let Value::Object(map) = &mut v else {
        return v;
    };
    if embed.counts {
        let c = st.counts(&app.id);
        map.insert("tasksStaged".into(), json!(c.staged));
        map.insert("tasksRunning".into(), json!(c.running));
        map.insert("tasksHealthy".into(), json!(c.healthy));
        map.insert("tasksUnhealthy".into(), json!(c.unhealthy));
    }
    if embed.deployments {
        let ids: Vec<Value> = st
            .deployments_of(&app.id)
            .into_iter()
            .map(|id| json!({"id": id}))
            .collect();
        map.insert("deployments".into(), Value::Array(ids));
    }
    if embed.tasks {
        let tasks: Vec<Value> = st
            .app_instances(&app.id)
            .into_iter()
            .map(|i| task_json(i, Some(app)))
            .collect();
        map.insert("tasks".into(), Value::Array(tasks));
    }
    if embed.last_task_failure {
        if let Some(f) = st.failures.get(&app.id) {
            map.insert(
                "lastTaskFailure".into(),
                json!({
                    "appId": f.app_id,
                    "host": f.host,
                    "message": f.message,
                    "state": f.state.as_str(),
                    "taskId": f.task_id,
                    "timestamp": f.timestamp,
                    "version": f.version,
                    "slaveId": f.slave_id,
                }),
            );
        }
    }
    if embed.readiness {
        map.insert("readinessCheckResults".into(), json!([]));
    }
    if embed.task_stats {
        map.insert("taskStats".into(), json!({}));
    }
    v
}

/// A task in Marathon's shape (`app` gives service ports and role).
pub fn task_json(i: &Instance, app: Option<&AppDefinition>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(i.task_id));
    m.insert("appId".into(), json!(i.app_id));
    m.insert("host".into(), json!(i.host));
    m.insert("slaveId".into(), json!(i.agent_id));
    m.insert("state".into(), json!(i.state.as_str()));
    m.insert("stagedAt".into(), json!(i.staged_at));
    if let Some(started) = i.started_at {
        m.insert("startedAt".into(), json!(started));
    }
    m.insert("version".into(), json!(i.app_version));
    m.insert("ports".into(), json!(i.ports));
    let service_ports: Vec<i64> = app.map(|a| a.service_ports()).unwrap_or_default();
    m.insert("servicePorts".into(), json!(service_ports));
    m.insert(
        "ipAddresses".into(),
        json!([{"ipAddress": i.host, "protocol": "IPv4"}]),
    );
    m.insert("localVolumes".into(), json!([]));
    if let Some(healthy) = i.healthy {
        m.insert(
            "healthCheckResults".into(),
            json!([{"alive": healthy, "taskId": i.task_id, "instanceId": i.instance_id}]),
        );
    }
    m.insert(
        "role".into(),
        json!(app
            .and_then(|a| a.role.clone())
            .unwrap_or_else(|| "*".into())),
    );
    Value::Object(m)
}

/// A `/v2/queue` entry.
pub fn queue_json(st: &State, entry: &QueueEntry, with_offers: bool) -> Value {
    let now = Instant::now();
    let (time_left, overdue) = match st.backoffs.get(&entry.app.id) {
        Some(b) if b.until > now => ((b.until - now).as_secs_f64().ceil() as u64, false),
        _ => (0, true),
    };
    let reasons: BTreeSet<&str> = entry.reject_summary.keys().copied().collect();
    let summary: Vec<Value> = reasons
        .iter()
        .map(|r| {
            json!({
                "reason": r,
                "declined": entry.reject_summary.get(r).copied().unwrap_or(0),
                "processed": entry.processed_offers,
            })
        })
        .collect();
    let mut processed = json!({
        "processedOffersCount": entry.processed_offers,
        "unusedOffersCount": entry.unused_offers,
        "rejectSummaryLastOffers": summary,
        "rejectSummaryLaunchAttempt": summary,
    });
    if let Some(t) = entry.last_unused_offer_at {
        processed["lastUnusedOfferAt"] = json!(t);
    }
    if let Some(t) = entry.last_used_offer_at {
        processed["lastUsedOfferAt"] = json!(t);
    }
    let mut v = json!({
        "app": app_json(st, &entry.app, &AppEmbed { counts: false, deployments: false, ..Default::default() }),
        "count": entry.count,
        "role": entry.app.role.clone().unwrap_or_else(|| "*".into()),
        "delay": {"timeLeftSeconds": time_left, "overdue": overdue},
        "since": entry.since,
        "processedOffersSummary": processed,
    });
    if with_offers {
        v["lastUnusedOffers"] = Value::Array(
            entry
                .last_unused
                .iter()
                .map(|o| {
                    json!({
                        "offer": o.offer,
                        "timestamp": o.timestamp,
                        "reason": o.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embed_prefixes_are_optional() {
        for v in ["apps.tasks", "app.tasks", "group.apps.tasks", "tasks"] {
            assert!(AppEmbed::parse(&[v.to_string()]).tasks, "{v}");
        }
        assert!(AppEmbed::parse(&["apps.lastTaskFailure".into()]).last_task_failure);
        assert!(!AppEmbed::parse(&[]).tasks);
    }
}
