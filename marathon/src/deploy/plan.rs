//! The deployment planner: the steps from one root group to another, as
//! Marathon's `DeploymentPlan`.
//!
//! Step 1 stops the apps that are gone, step 2 starts the new ones (at 0
//! instances), then the apps of the target come in dependency order: an app
//! comes after every app it depends on (its own `dependencies` and those of
//! every enclosing group; a dependency on a group means every app beneath
//! it). Apps at the same depth of the dependency graph share a step. Each
//! app gets at most one action there: a new app is scaled to its
//! instances, a changed one restarted, one whose `instances` alone changed
//! scaled. Steps without actions are dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::{AppDefinition, PathId, RootGroup, Timestamp};

/// What a deployment does to an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionKind {
    /// Create the app (with no instances yet).
    StartApplication,
    /// Kill all its instances and forget it.
    StopApplication,
    /// Launch or kill instances to reach `instances`.
    ScaleApplication,
    /// Replace all instances by ones of the new version.
    RestartApplication,
}

impl ActionKind {
    /// Marathon's name (`ScaleApplication`).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::StartApplication => "StartApplication",
            ActionKind::StopApplication => "StopApplication",
            ActionKind::ScaleApplication => "ScaleApplication",
            ActionKind::RestartApplication => "RestartApplication",
        }
    }
}

/// One action on one app; serializes as Marathon's `{"action", "app"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// What is done.
    #[serde(rename = "action")]
    pub kind: ActionKind,
    /// To which app.
    pub app: PathId,
}

/// Actions run together; a step ends when all of them have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The actions, by app id.
    pub actions: Vec<Action>,
}

/// A deployment: the affected apps before and after, and the steps between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentPlan {
    /// A random UUID.
    pub id: String,
    /// The version of the target root group.
    pub version: Timestamp,
    /// The affected apps as they were (absent: new).
    #[serde(with = "arc_apps")]
    pub original: BTreeMap<PathId, Arc<AppDefinition>>,
    /// The affected apps as they will be (absent: removed).
    #[serde(with = "arc_apps")]
    pub target: BTreeMap<PathId, Arc<AppDefinition>>,
    /// The steps, run one after the other.
    pub steps: Vec<Step>,
}

/// Serde for maps of shared apps (serde's `rc` feature is not enabled).
mod arc_apps {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::{AppDefinition, PathId};

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<PathId, Arc<AppDefinition>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(map.iter().map(|(id, app)| (id, app.as_ref())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<PathId, Arc<AppDefinition>>, D::Error> {
        let map = BTreeMap::<PathId, AppDefinition>::deserialize(deserializer)?;
        Ok(map
            .into_iter()
            .map(|(id, app)| (id, Arc::new(app)))
            .collect())
    }
}

/// The action an app of the target needs in the dependency-ordered steps.
fn app_action(old: Option<&AppDefinition>, new: &AppDefinition) -> Option<ActionKind> {
    let Some(old) = old else {
        return Some(ActionKind::ScaleApplication);
    };
    let config_change = |app: &AppDefinition| app.version_info.map(|v| v.last_config_change_at);
    if config_change(old) != config_change(new) || old.is_upgrade(new) {
        Some(ActionKind::RestartApplication)
    } else if old.instances != new.instances {
        Some(ActionKind::ScaleApplication)
    } else {
        None
    }
}

/// The apps each app of `root` depends on: its own dependencies and those
/// of its enclosing groups, a group standing for every app beneath it.
fn dependencies(root: &RootGroup) -> BTreeMap<&PathId, BTreeSet<&PathId>> {
    let mut result = BTreeMap::new();
    for (id, app) in &root.apps {
        let group_deps = id
            .ancestors()
            .into_iter()
            .filter_map(|group| root.groups.get(&group))
            .flat_map(|meta| meta.dependencies.iter());
        let mut deps = BTreeSet::new();
        for dep in app.dependencies.iter().chain(group_deps) {
            if let Some((dep_id, _)) = root.apps.get_key_value(dep) {
                deps.insert(dep_id);
            } else {
                deps.extend(root.transitive_apps(dep).map(|a| &a.id));
            }
        }
        deps.remove(id);
        result.insert(id, deps);
    }
    result
}

/// The depth of each app in the dependency graph: 0 for apps that depend on
/// nothing, else one more than the deepest dependency (the longest path, as
/// Marathon layers). Apps on or behind a cycle get one layer after all others.
fn layers(root: &RootGroup) -> BTreeMap<&PathId, usize> {
    let deps = dependencies(root);
    let mut layer: BTreeMap<&PathId, usize> = BTreeMap::new();
    loop {
        let mut progress = false;
        for (id, app_deps) in &deps {
            if layer.contains_key(id) {
                continue;
            }
            let known: Option<Vec<usize>> =
                app_deps.iter().map(|d| layer.get(d).copied()).collect();
            if let Some(known) = known {
                let depth = known.into_iter().map(|l| l + 1).max().unwrap_or(0);
                layer.insert(id, depth);
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    let last = layer.values().map(|l| l + 1).max().unwrap_or(0);
    for id in deps.keys() {
        layer.entry(id).or_insert(last);
    }
    layer
}

/// The plan from `original` to `target`, the root group of version `version`.
pub fn plan(original: &RootGroup, target: &RootGroup, version: Timestamp) -> DeploymentPlan {
    let mut plan_original = BTreeMap::new();
    let mut plan_target = BTreeMap::new();
    let mut steps = Vec::new();

    let stops: Vec<Action> = original
        .apps
        .iter()
        .filter(|(id, _)| !target.apps.contains_key(*id))
        .map(|(id, app)| {
            plan_original.insert(id.clone(), app.clone());
            Action {
                kind: ActionKind::StopApplication,
                app: id.clone(),
            }
        })
        .collect();
    steps.push(Step { actions: stops });

    let starts: Vec<Action> = target
        .apps
        .keys()
        .filter(|id| !original.apps.contains_key(*id))
        .map(|id| Action {
            kind: ActionKind::StartApplication,
            app: id.clone(),
        })
        .collect();
    steps.push(Step { actions: starts });

    let mut by_layer: BTreeMap<usize, Vec<Action>> = BTreeMap::new();
    let app_layers = layers(target);
    for (id, new) in &target.apps {
        let old = original.apps.get(id);
        let Some(kind) = app_action(old.map(|a| a.as_ref()), new) else {
            continue;
        };
        if let Some(old) = old {
            plan_original.insert(id.clone(), old.clone());
        }
        plan_target.insert(id.clone(), new.clone());
        by_layer
            .entry(app_layers.get(id).copied().unwrap_or(0))
            .or_default()
            .push(Action {
                kind,
                app: id.clone(),
            });
    }
    steps.extend(by_layer.into_values().map(|actions| Step { actions }));
    steps.retain(|step| !step.actions.is_empty());

    DeploymentPlan {
        id: uuid::Uuid::new_v4().to_string(),
        version,
        original: plan_original,
        target: plan_target,
        steps,
    }
}

impl DeploymentPlan {
    /// The apps the plan touches.
    pub fn affected_apps(&self) -> BTreeSet<PathId> {
        self.original
            .keys()
            .chain(self.target.keys())
            .cloned()
            .collect()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether both plans touch an app.
    pub fn conflicts_with(&self, other: &DeploymentPlan) -> bool {
        let theirs = other.affected_apps();
        self.affected_apps().iter().any(|id| theirs.contains(id))
    }

    /// The plan's `/v2/deployments` entry. `current_step` is 1-based, as
    /// Marathon's `currentStep`: the number of the step being executed (its
    /// actions are the `currentActions`; none for 0 or past the last step),
    /// with the `readinessCheckResults` of each app's instances.
    pub fn to_json(&self, current_step: usize, readiness: &dyn Fn(&PathId) -> Value) -> Value {
        let action_json = |a: &Action| json!({"action": a.kind.as_str(), "app": a.app.to_string()});
        let current_actions: Vec<Value> = current_step
            .checked_sub(1)
            .and_then(|i| self.steps.get(i))
            .map(|step| {
                step.actions
                    .iter()
                    .map(|a| {
                        json!({
                            "action": a.kind.as_str(),
                            "app": a.app.to_string(),
                            "readinessCheckResults": readiness(&a.app),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "id": self.id,
            "version": self.version.to_string(),
            "affectedApps": self.affected_apps().iter().map(|id| id.to_string()).collect::<Vec<_>>(),
            "affectedPods": [],
            "steps": self.steps.iter().map(|step| json!({
                "actions": step.actions.iter().map(action_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "currentActions": current_actions,
            "currentStep": current_step,
            "totalSteps": self.steps.len(),
        })
    }

    /// For a rollback: `current` with every affected app put back as it was
    /// in `original` (new apps removed, removed apps restored), changed
    /// apps stamped with `version`.
    pub fn revert(&self, current: &RootGroup, version: Timestamp) -> RootGroup {
        let mut root = current.clone();
        for id in self.affected_apps() {
            match self.original.get(&id) {
                Some(app) => {
                    if root.app(&id) != Some(app) {
                        root.put_app(AppDefinition::clone(app), version);
                        // The original keeps its own version: the instances
                        // still running it must not be replaced by the rollback.
                        root.apps.insert(id.clone(), app.clone());
                    }
                }
                None => {
                    root.remove_app(&id, version);
                }
            }
        }
        root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AppDefaults;

    fn t(n: i64) -> Timestamp {
        Timestamp(2_000_000 + n)
    }

    fn p(s: &str) -> PathId {
        PathId::parse(s)
    }

    fn app(id: &str, instances: i64, deps: &[&str]) -> AppDefinition {
        let mut app = AppDefinition::with_id(p(id));
        app.cmd = Some("sleep 100".into());
        app.instances = instances;
        app.dependencies = deps.iter().map(|d| p(d)).collect();
        app.normalize(&AppDefaults::default());
        app
    }

    fn root(apps: Vec<AppDefinition>, version: Timestamp) -> RootGroup {
        let mut root = RootGroup::empty(version);
        for a in apps {
            root.put_app(a, version);
        }
        root
    }

    fn steps(plan: &DeploymentPlan) -> Vec<Vec<String>> {
        plan.steps
            .iter()
            .map(|s| {
                s.actions
                    .iter()
                    .map(|a| format!("{} {}", a.kind.as_str(), a.app))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn stops_starts_then_scales_new_apps() {
        let from = root(vec![app("/old", 2, &[]), app("/same", 1, &[])], t(1));
        let mut to = from.clone();
        to.remove_app(&p("/old"), t(2));
        to.put_app(app("/new", 3, &[]), t(2));
        let plan = plan(&from, &to, t(2));
        assert_eq!(
            steps(&plan),
            vec![
                vec!["StopApplication /old"],
                vec!["StartApplication /new"],
                vec!["ScaleApplication /new"],
            ]
        );
        assert_eq!(plan.version, t(2));
        assert_eq!(plan.affected_apps(), BTreeSet::from([p("/old"), p("/new")]));
        assert!(plan.original.contains_key(&p("/old")) && !plan.target.contains_key(&p("/old")));
        assert!(!plan.original.contains_key(&p("/new")) && plan.target.contains_key(&p("/new")));
        assert!(uuid::Uuid::parse_str(&plan.id).is_ok());
    }

    #[test]
    fn scale_restart_or_nothing() {
        let from = root(
            vec![
                app("/scale", 1, &[]),
                app("/upgrade", 1, &[]),
                app("/restart", 1, &[]),
                app("/same", 1, &[]),
            ],
            t(1),
        );
        let mut to = from.clone();
        to.put_app(app("/scale", 4, &[]), t(2));
        let mut upgraded = app("/upgrade", 1, &[]);
        upgraded.cmd = Some("new".into());
        to.put_app(upgraded, t(2));
        to.restart_app(&p("/restart"), t(2));
        to.put_app(app("/same", 1, &[]), t(2)); // version moves, nothing else
        let plan = plan(&from, &to, t(2));
        assert_eq!(
            steps(&plan),
            vec![vec![
                "RestartApplication /restart",
                "ScaleApplication /scale",
                "RestartApplication /upgrade",
            ]]
        );
        assert!(!plan.affected_apps().contains(&p("/same")));
        assert_eq!(plan.original.len(), 3);
        assert_eq!(plan.target.len(), 3);

        let nothing = super::plan(&to, &to, t(3));
        assert!(nothing.is_empty());
        assert!(nothing.affected_apps().is_empty());
    }

    #[test]
    fn dependencies_order_the_steps() {
        // web -> api -> db (app dependencies), /front group depends on /back,
        // cache is independent.
        let target = {
            let mut r = root(
                vec![
                    app("/back/db", 1, &[]),
                    app("/back/api", 1, &["db"]),
                    app("/front/web", 1, &[]),
                    app("/cache", 1, &[]),
                ],
                t(1),
            );
            // Relative dependency ids are resolved by the API; use absolute ones.
            let mut api = AppDefinition::clone(r.app(&p("/back/api")).unwrap());
            api.dependencies = vec![p("/back/db")];
            r.put_app(api, t(1));
            r.groups
                .get_mut(&p("/front"))
                .unwrap()
                .dependencies
                .insert(p("/back"));
            r
        };
        let plan = plan(&RootGroup::empty(t(0)), &target, t(1));
        assert_eq!(
            steps(&plan),
            vec![
                vec![
                    "StartApplication /back/api",
                    "StartApplication /back/db",
                    "StartApplication /cache",
                    "StartApplication /front/web",
                ],
                vec!["ScaleApplication /back/db", "ScaleApplication /cache"],
                vec!["ScaleApplication /back/api"],
                vec!["ScaleApplication /front/web"],
            ]
        );

        // Only web changes: its layer is still after its dependencies, but
        // empty steps are dropped.
        let mut next = target.clone();
        next.put_app(app("/front/web", 3, &[]), t(2));
        next.put_app(app("/cache", 2, &[]), t(2));
        let plan = super::plan(&target, &next, t(2));
        assert_eq!(
            steps(&plan),
            vec![
                vec!["ScaleApplication /cache"],
                vec!["ScaleApplication /front/web"]
            ]
        );
    }

    #[test]
    fn cycles_and_self_dependencies_do_not_hang() {
        let target = root(
            vec![
                app("/a", 1, &["/b"]),
                app("/b", 1, &["/a"]),
                app("/c", 1, &["/c"]),
                app("/d", 1, &["/a"]),
                app("/g/e", 1, &["/g"]),
            ],
            t(1),
        );
        let plan = plan(&RootGroup::empty(t(0)), &target, t(1));
        let s = steps(&plan);
        assert_eq!(s.len(), 3);
        assert_eq!(s[1], vec!["ScaleApplication /c", "ScaleApplication /g/e"]);
        assert_eq!(
            s[2],
            vec![
                "ScaleApplication /a",
                "ScaleApplication /b",
                "ScaleApplication /d"
            ]
        );
    }

    #[test]
    fn deployment_json() {
        let from = root(vec![app("/foo", 1, &[])], t(1));
        let mut to = from.clone();
        to.put_app(app("/foo", 2, &[]), t(2));
        let plan = plan(&from, &to, t(2));
        let v = plan.to_json(1, &|_| json!([]));
        assert_eq!(
            v,
            json!({
                "id": plan.id,
                "version": t(2).to_string(),
                "affectedApps": ["/foo"],
                "affectedPods": [],
                "steps": [{"actions": [{"action": "ScaleApplication", "app": "/foo"}]}],
                "currentActions": [{"action": "ScaleApplication", "app": "/foo",
                    "readinessCheckResults": []}],
                "currentStep": 1,
                "totalSteps": 1,
            })
        );
        assert_eq!(plan.to_json(0, &|_| json!([]))["currentActions"], json!([]));
        assert_eq!(plan.to_json(2, &|_| json!([]))["currentActions"], json!([]));
        // Serde shape of the steps is Marathon's too.
        assert_eq!(serde_json::to_value(&plan.steps).unwrap(), v["steps"]);
    }

    #[test]
    fn round_trips_through_serde() {
        let from = root(vec![app("/a", 1, &[]), app("/b/c", 1, &[])], t(1));
        let mut to = from.clone();
        to.remove_app(&p("/a"), t(2));
        to.put_app(app("/b/c", 2, &[]), t(2));
        let plan = plan(&from, &to, t(2));
        let text = serde_json::to_string(&plan).unwrap();
        let back: DeploymentPlan = serde_json::from_str(&text).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn conflicts() {
        let base = root(vec![app("/a", 1, &[]), app("/b", 1, &[])], t(1));
        let mut to_a = base.clone();
        to_a.put_app(app("/a", 2, &[]), t(2));
        let mut to_b = base.clone();
        to_b.put_app(app("/b", 2, &[]), t(2));
        let mut to_ab = base.clone();
        to_ab.remove_app(&p("/a"), t(2));
        to_ab.remove_app(&p("/b"), t(2));
        let (pa, pb, pab) = (
            plan(&base, &to_a, t(2)),
            plan(&base, &to_b, t(2)),
            plan(&base, &to_ab, t(2)),
        );
        assert!(!pa.conflicts_with(&pb));
        assert!(pa.conflicts_with(&pab) && pab.conflicts_with(&pb));
        assert!(!pa.conflicts_with(&plan(&base, &base, t(2))));
    }

    #[test]
    fn revert_puts_the_original_apps_back() {
        let from = root(
            vec![
                app("/gone", 1, &[]),
                app("/up", 1, &[]),
                app("/keep", 1, &[]),
            ],
            t(1),
        );
        let mut to = from.clone();
        to.remove_app(&p("/gone"), t(2));
        let mut up = app("/up", 3, &[]);
        up.cmd = Some("v2".into());
        to.put_app(up, t(2));
        to.put_app(app("/new", 1, &[]), t(2));
        let plan = plan(&from, &to, t(2));

        let back = plan.revert(&to, t(3));
        let ids: Vec<String> = back.apps.keys().map(|id| id.to_string()).collect();
        assert_eq!(ids, vec!["/gone", "/keep", "/up"]);
        let up = back.app(&p("/up")).unwrap();
        assert_eq!((up.instances, up.cmd.as_deref()), (1, Some("sleep 100")));
        // The originals come back as they were, versions included: the
        // instances still running them are the target's.
        assert_eq!(up.version, Some(t(1)));
        assert_eq!(up.version_info.unwrap().last_config_change_at, t(1));
        assert_eq!(back.app(&p("/keep")).unwrap().version, Some(t(1)));

        // Planning the rollback undoes the deployment.
        let undo = super::plan(&to, &back, t(3));
        assert_eq!(
            steps(&undo),
            vec![
                vec!["StopApplication /new"],
                vec!["StartApplication /gone"],
                vec!["ScaleApplication /gone", "RestartApplication /up"],
            ]
        );
    }
}
