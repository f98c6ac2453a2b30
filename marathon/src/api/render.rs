//! Apps, tasks and queue entries rendered in Marathon's JSON shapes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::core::state::{QueueEntry, State};
use crate::model::TaskStateExt;
use crate::model::{AppDefinition, Instance, PathId};

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

    /// The embed as a small number (one bit per part), for the render cache.
    fn bits(&self) -> u8 {
        [
            self.tasks,
            self.counts,
            self.deployments,
            self.last_task_failure,
            self.readiness,
            self.task_stats,
        ]
        .iter()
        .enumerate()
        .fold(0, |bits, (i, on)| bits | (u8::from(*on) << i))
    }
}

/// What is rendered per app, by embed: the app's revision and its text.
type RenderedApps = HashMap<u8, HashMap<PathId, (u64, Arc<str>)>>;

/// Most app lists kept (one per query); past it, all are forgotten.
const LISTS_KEPT: usize = 16;

/// Apps already rendered as JSON text, per embed, app and revision
/// ([`State::app_revision`]): a list of a thousand apps is rendered again
/// only for the apps that changed and copied for the others; and a whole
/// list is answered again as it was while no app changed ([`State::revision`]).
#[derive(Debug, Default)]
pub struct RenderCache {
    apps: Mutex<RenderedApps>,
    lists: Mutex<HashMap<(String, u8), (u64, Body)>>,
}

/// A rendered list, and its gzip form once a client asked for it.
#[derive(Debug, Clone)]
struct Body {
    plain: Bytes,
    gzip: Arc<std::sync::OnceLock<Bytes>>,
}

/// Answers smaller than this are not worth compressing.
const GZIP_MIN_BYTES: usize = 1024;

/// `body` compressed with gzip (fast level: the point is fewer bytes to copy).
pub fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// A rendered answer: its bytes and whether they are gzip-compressed.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The body.
    pub bytes: Bytes,
    /// Whether `bytes` is gzip.
    pub gzipped: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RenderCache {
    /// `{"apps": [...]}` with `apps()` (of `st.root`) rendered by [`app_json`]
    /// with `embed`: the same text as rendering them anew. `query` names
    /// the list (the same query gives the same apps while no app changed).
    pub fn apps_list<'a>(
        &self,
        st: &'a State,
        query: &str,
        embed: &AppEmbed,
        accept_gzip: bool,
        apps: impl FnOnce() -> Vec<&'a AppDefinition>,
    ) -> Rendered {
        let revision = st.revision();
        let key = (query.to_string(), embed.bits());
        let cached = lock(&self.lists)
            .get(&key)
            .filter(|(r, _)| *r == revision)
            .map(|(_, body)| body.clone());
        let body = match cached {
            Some(body) => body,
            None => {
                let body = Body {
                    plain: self.render_list(st, embed, apps()),
                    gzip: Arc::default(),
                };
                let mut lists = lock(&self.lists);
                if lists.len() >= LISTS_KEPT {
                    lists.clear();
                }
                lists.insert(key, (revision, body.clone()));
                body
            }
        };
        if accept_gzip && body.plain.len() >= GZIP_MIN_BYTES {
            // Compressed once per list and revision, then shared.
            let bytes = body.gzip.get_or_init(|| gzip(&body.plain)).clone();
            return Rendered {
                bytes,
                gzipped: true,
            };
        }
        Rendered {
            bytes: body.plain,
            gzipped: false,
        }
    }

    fn render_list(&self, st: &State, embed: &AppEmbed, apps: Vec<&AppDefinition>) -> Bytes {
        let texts = self.app_texts(st, &apps, embed);
        let mut out = String::with_capacity(texts.iter().map(|t| t.len() + 1).sum::<usize>() + 16);
        out.push_str("{\"apps\":[");
        for (i, text) in texts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(text);
        }
        out.push_str("]}");
        Bytes::from(out)
    }

    /// The text of each app, rendered now only if it changed since last time.
    fn app_texts(&self, st: &State, apps: &[&AppDefinition], embed: &AppEmbed) -> Vec<Arc<str>> {
        let bits = embed.bits();
        let mut texts: Vec<Option<Arc<str>>> = {
            let cache = lock(&self.apps);
            let rendered = cache.get(&bits);
            apps.iter()
                .map(|app| {
                    let (revision, text) = rendered?.get(&app.id)?;
                    (*revision == st.app_revision(&app.id)).then(|| text.clone())
                })
                .collect()
        };
        let mut fresh = Vec::new();
        for (app, text) in apps.iter().zip(texts.iter_mut()) {
            if text.is_none() {
                let rendered: Arc<str> = app_json(st, app, embed).to_string().into();
                fresh.push((app.id.clone(), st.app_revision(&app.id), rendered.clone()));
                *text = Some(rendered);
            }
        }
        if !fresh.is_empty() {
            let mut cache = lock(&self.apps);
            let rendered = cache.entry(bits).or_default();
            rendered.extend(fresh.into_iter().map(|(id, rev, text)| (id, (rev, text))));
            // Forget apps that are gone or changed since, now and then.
            if rendered.len() > 2 * st.root.apps.len() + 64 {
                rendered.retain(|id, (rev, _)| {
                    st.root.apps.contains_key(id) && *rev == st.app_revision(id)
                });
            }
        }
        texts.into_iter().flatten().collect()
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
        map.insert("readinessCheckResults".into(), st.readiness_json(&app.id));
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
        crate::core::ip_addresses_json(&i.ip_addresses),
    );
    m.insert("localVolumes".into(), json!([]));
    if !i.health.is_empty() {
        let results: Vec<Value> = i
            .health
            .iter()
            .map(|r| {
                json!({
                    "alive": r.alive,
                    "consecutiveFailures": r.consecutive_failures,
                    "firstSuccess": r.first_success,
                    "lastSuccess": r.last_success,
                    "lastFailure": r.last_failure,
                    "lastFailureCause": r.last_failure_cause,
                    "taskId": i.task_id,
                    "instanceId": i.instance_id,
                })
            })
            .collect();
        m.insert("healthCheckResults".into(), Value::Array(results));
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

    use crate::core::state::{RunningDeployment, TaskFailure};
    use crate::deploy::plan::DeploymentPlan;
    use crate::model::instance::{Goal, TaskState};
    use crate::model::{RootGroup, Timestamp};

    fn instance(app: &PathId, n: u32) -> Instance {
        let instance_id = format!("{}.instance-{n}", app.safe());
        Instance {
            task_id: Instance::task_id_for(&instance_id),
            instance_id,
            app_id: app.clone(),
            app_version: Timestamp(1),
            agent_id: "agent-1".into(),
            host: "host-1".into(),
            attributes: Vec::new(),
            ports: vec![31000 + n],
            ip_addresses: Vec::new(),
            state: TaskState::TaskStaging,
            goal: Goal::Running,
            staged_at: Timestamp(2),
            started_at: None,
            unreachable_since: None,
            health: Vec::new(),
            since: Timestamp(2),
        }
    }

    /// What the cache must answer: every app rendered anew.
    fn fresh(st: &State, embed: &AppEmbed) -> String {
        let apps: Vec<Value> = st
            .root
            .apps
            .values()
            .map(|a| app_json(st, a, embed))
            .collect();
        json!({ "apps": apps }).to_string()
    }

    fn cached(cache: &RenderCache, st: &State, embed: &AppEmbed) -> String {
        let body = cache.apps_list(st, "q", embed, false, || {
            st.root.apps.values().map(|a| a.as_ref()).collect()
        });
        assert!(!body.gzipped);
        let plain = String::from_utf8(body.bytes.to_vec()).expect("utf-8");
        // The gzip form of the same list decompresses to the same text.
        let zipped = cache.apps_list(st, "q", embed, true, || {
            st.root.apps.values().map(|a| a.as_ref()).collect()
        });
        if zipped.gzipped {
            use std::io::Read;
            let mut text = String::new();
            flate2::read::GzDecoder::new(&zipped.bytes[..])
                .read_to_string(&mut text)
                .expect("gzip");
            assert_eq!(text, plain);
        } else {
            assert!(plain.len() < GZIP_MIN_BYTES);
        }
        plain
    }

    #[test]
    fn cached_lists_follow_every_change() {
        let (a, b) = (PathId::parse("/a"), PathId::parse("/b"));
        let mut st = State::default();
        let mut root = RootGroup::empty(Timestamp(1));
        root.put_app(AppDefinition::with_id(a.clone()), Timestamp(1));
        root.put_app(AppDefinition::with_id(b.clone()), Timestamp(1));
        st.set_root(root);
        st.put_instance(instance(&a, 1));
        let cache = RenderCache::default();
        let embed = AppEmbed::parse(&["apps.tasks".into(), "apps.lastTaskFailure".into()]);
        let check = |st: &State| assert_eq!(cached(&cache, st, &embed), fresh(st, &embed));
        check(&st);
        check(&st);

        // An instance changes state, another comes.
        let mut running = instance(&a, 1);
        running.state = TaskState::TaskRunning;
        running.started_at = Some(Timestamp(3));
        st.put_instance(running);
        check(&st);
        st.put_instance(instance(&b, 2));
        check(&st);

        // A deployment affects an app, then ends.
        let mut target = st.root.clone();
        let mut scaled = AppDefinition::with_id(b.clone());
        scaled.instances = 3;
        target.put_app(scaled, Timestamp(4));
        let plan = crate::deploy::plan::plan(&st.root, &target, Timestamp(4));
        let plan = Arc::new(DeploymentPlan {
            id: "d1".into(),
            ..plan
        });
        st.set_root(target);
        st.insert_deployment(RunningDeployment {
            plan,
            current_step: 0,
            original: Arc::new(st.root.clone()),
            target: Arc::new(st.root.clone()),
        });
        check(&st);
        st.remove_deployment("d1");
        check(&st);

        // A task fails and is forgotten.
        st.remove_instance(&format!("{}.instance-2", b.safe()));
        st.record_failure(TaskFailure {
            app_id: b.clone(),
            host: "host-1".into(),
            message: "boom".into(),
            state: TaskState::TaskFailed,
            task_id: "t".into(),
            timestamp: Timestamp(5),
            version: Timestamp(4),
            slave_id: "agent-1".into(),
        });
        check(&st);

        // An app goes; the whole state is replaced.
        let mut target = st.root.clone();
        target.apps.remove(&a);
        st.set_root(target);
        check(&st);
        st.touch_all();
        check(&st);

        // Another embed is cached apart.
        let counts = AppEmbed::parse(&[]);
        assert_eq!(cached(&cache, &st, &counts), fresh(&st, &counts));
        check(&st);
    }
}
