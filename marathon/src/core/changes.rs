//! Changes from the API: new root groups become deployments; kills; cancels.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use tracing::info;

use super::deployments::step_json;
use super::state::RunningDeployment;
use super::{ChangeFn, Core, CoreError, DeploymentResult, KillResult};
use crate::deploy::plan::{plan, DeploymentPlan};
use crate::error::ApiError;
use crate::model::group::GroupEmbed;
use crate::model::instance::Goal;
use crate::model::validation::validate_root;
use crate::model::{Instance, PathId, RootGroup, Timestamp};
use crate::scheduler::ports::assign_service_ports;
use crate::storage::{GroupSnapshot, Write};

/// A change worked out and not yet stored.
struct Prepared {
    current: RootGroup,
    target: RootGroup,
    version: Timestamp,
    plan: DeploymentPlan,
}

impl Core {
    /// Computes, validates, stores and starts a change. `decommission`
    /// instances are killed for good as part of it (kills with `scale`).
    /// What `change` would do, stored nowhere: its validated target and
    /// the plan from the current root to it (`dryRun`).
    pub(super) fn plan_change(&self, change: ChangeFn) -> Result<DeploymentPlan, ApiError> {
        self.prepare(change).map(|prepared| prepared.plan)
    }

    /// The change's target (service ports assigned, validated), and the
    /// plan to it from the current root.
    fn prepare(&self, change: ChangeFn) -> Result<Prepared, ApiError> {
        let (current, last_version) = {
            let st = self.state();
            let last = st
                .root
                .groups
                .get(&PathId::root())
                .map(|g| g.version)
                .unwrap_or_default();
            (st.root.clone(), last)
        };
        let version = last_version.next_after();
        let mut target = change(&current, version)?;
        self.assign_service_ports(&current, &mut target)?;
        let violations = validate_root(&target);
        if !violations.is_empty() {
            return Err(ApiError::Invalid(violations));
        }
        let plan = plan(&current, &target, version);
        Ok(Prepared {
            current,
            target,
            version,
            plan,
        })
    }

    pub(super) async fn apply_change(
        &mut self,
        change: ChangeFn,
        force: bool,
        decommission: Vec<String>,
    ) -> Result<Result<DeploymentResult, ApiError>, CoreError> {
        let Prepared {
            current,
            target,
            version,
            plan: mut new_plan,
        } = match self.prepare(change) {
            Ok(prepared) => prepared,
            Err(e) => return Ok(Err(e)),
        };
        let conflicting: Vec<String> = self
            .state()
            .deployments
            .values()
            .filter(|d| d.plan.conflicts_with(&new_plan))
            .map(|d| d.plan.id.clone())
            .collect();
        if !conflicting.is_empty() && !force {
            return Ok(Err(ApiError::locked(conflicting)));
        }
        new_plan.id = uuid::Uuid::new_v4().to_string();
        let mut writes = root_writes(&current, &target);
        writes.extend(group_version_writes(&current, &target));
        for id in &conflicting {
            writes.push(Write::DeleteDeployment(id.clone()));
        }
        let new_plan = Arc::new(new_plan);
        writes.push(Write::Deployment(Box::new((*new_plan).clone()), 0));
        let mut killed = Vec::new();
        {
            let st = self.state();
            for id in &decommission {
                if let Some(instance) = st.instances.get(id) {
                    let mut instance = instance.clone();
                    instance.goal = Goal::Decommissioned;
                    writes.push(Write::Instance(Box::new(instance.clone())));
                    killed.push(instance);
                }
            }
        }
        self.persist(writes).await?;
        {
            let mut st = self.state_mut();
            for id in &conflicting {
                st.remove_deployment(id);
            }
            for instance in &killed {
                st.put_instance(instance.clone());
            }
            st.set_root(target.clone());
        }
        let running = RunningDeployment {
            plan: new_plan.clone(),
            current_step: 0,
            original: Arc::new(current),
            target: Arc::new(target),
        };
        self.state_mut().insert_deployment(running.clone());
        for instance in &killed {
            self.kill_instance(instance).await;
        }
        for id in &conflicting {
            self.ctx.events.publish(
                "deployment_failed",
                json!({"id": id, "reason": "canceled by a forced change"}),
            );
        }
        self.ctx.events.publish(
            "group_change_success",
            json!({"groupId": "/", "version": version}),
        );
        if let Some(first) = new_plan.steps.first() {
            publish_plan_event(
                &self.ctx.events,
                "deployment_info",
                &running,
                json!({"currentStep": step_json(first)}),
            );
        }
        info!(deployment = %new_plan.id, steps = new_plan.steps.len(), "deployment started");
        self.dirty.extend(new_plan.affected_apps());
        Ok(Ok(DeploymentResult {
            deployment_id: new_plan.id.clone(),
            version,
        }))
    }

    fn assign_service_ports(
        &self,
        current: &RootGroup,
        target: &mut RootGroup,
    ) -> Result<(), ApiError> {
        let changed: Vec<PathId> = target
            .apps
            .iter()
            .filter(|(id, app)| current.apps.get(*id) != Some(*app))
            .filter(|(_, app)| app.service_ports().contains(&0))
            .map(|(id, _)| id.clone())
            .collect();
        for id in changed {
            let used = target
                .apps
                .values()
                .filter(|a| a.id != id)
                .flat_map(|a| a.service_ports())
                .filter(|p| *p != 0)
                .collect();
            let Some(app) = target.apps.get_mut(&id) else {
                continue;
            };
            let app = Arc::make_mut(app);
            // Keep the ports the app had: clients rely on them staying put.
            if let Some(old) = current.apps.get(&id) {
                inherit_service_ports(app, old);
            }
            assign_service_ports(app, &used, self.ctx.config.service_ports)
                .map_err(|e| ApiError::invalid("/portDefinitions", e))?;
        }
        Ok(())
    }

    pub(super) async fn kill_tasks(
        &mut self,
        task_ids: Vec<String>,
        scale: bool,
        wipe: bool,
        force: bool,
    ) -> Result<Result<KillResult, ApiError>, CoreError> {
        let instances: Vec<Instance> = {
            let st = self.state();
            task_ids
                .iter()
                .filter_map(|t| Instance::instance_id_of(t))
                .filter_map(|id| st.instances.get(id).cloned())
                .collect()
        };
        if scale {
            let mut per_app: BTreeMap<PathId, i64> = BTreeMap::new();
            for i in &instances {
                *per_app.entry(i.app_id.clone()).or_default() += 1;
            }
            let ids: Vec<String> = instances.iter().map(|i| i.instance_id.clone()).collect();
            let change: ChangeFn = Box::new(move |root: &RootGroup, version: Timestamp| {
                let mut target = root.clone();
                for (app_id, n) in per_app {
                    if let Some(app) = root.app(&app_id) {
                        let mut app = (**app).clone();
                        app.instances = (app.instances - n).max(0);
                        target.put_app(app, version);
                    }
                }
                Ok(target)
            });
            let result = self.apply_change(change, force, ids).await?;
            return Ok(result.map(KillResult::Scaled));
        }
        let mut writes = Vec::new();
        for instance in &instances {
            if wipe {
                writes.push(Write::DeleteInstance(instance.instance_id.clone()));
            }
        }
        self.persist(writes).await?;
        for instance in &instances {
            self.kill_instance(instance).await;
            if wipe {
                self.state_mut().remove_instance(&instance.instance_id);
            }
            self.dirty.insert(instance.app_id.clone());
        }
        Ok(Ok(KillResult::Killed(instances)))
    }

    pub(super) async fn cancel_deployment(
        &mut self,
        id: &str,
        force: bool,
    ) -> Result<Result<Option<DeploymentResult>, ApiError>, CoreError> {
        let Some(running) = self.state().deployments.get(id).cloned() else {
            return Ok(Err(ApiError::NotFound(format!(
                "DeploymentPlan {id} does not exist"
            ))));
        };
        if force {
            self.persist(vec![Write::DeleteDeployment(id.to_string())])
                .await?;
            self.state_mut().remove_deployment(id);
            publish_plan_event(
                &self.ctx.events,
                "deployment_failed",
                &running,
                json!({"id": id}),
            );
            self.dirty.extend(running.plan.affected_apps());
            return Ok(Ok(None));
        }
        let plan = running.plan.clone();
        let change: ChangeFn =
            Box::new(move |root: &RootGroup, version: Timestamp| Ok(plan.revert(root, version)));
        let result = self.apply_change(change, true, Vec::new()).await?;
        Ok(result.map(Some))
    }

    /// Ends a deployment as failed and rolls its apps back to what they were.
    pub(super) async fn fail_deployment(
        &mut self,
        id: &str,
        reason: &str,
    ) -> Result<(), CoreError> {
        let Some(running) = self.state().deployments.get(id).cloned() else {
            return Ok(());
        };
        self.persist(vec![Write::DeleteDeployment(id.to_string())])
            .await?;
        self.state_mut().remove_deployment(id);
        tracing::warn!(deployment = %id, %reason, "deployment failed");
        publish_plan_event(
            &self.ctx.events,
            "deployment_failed",
            &running,
            json!({"id": id, "reason": reason}),
        );
        let plan = running.plan.clone();
        let change: ChangeFn =
            Box::new(move |root: &RootGroup, version: Timestamp| Ok(plan.revert(root, version)));
        if let Err(e) = self.apply_change(change, true, Vec::new()).await? {
            tracing::warn!(deployment = %id, error = %e, "rolling back a failed deployment was refused");
        }
        Ok(())
    }

    /// Sends a kill for an instance's task, with its app's grace period.
    pub(super) async fn kill_instance(&self, instance: &Instance) {
        let grace = self
            .state()
            .root
            .app(&instance.app_id)
            .and_then(|a| a.kill_grace_period());
        let policy = grace.map(|g| agora_proto::KillPolicy {
            grace_period: Some(agora_proto::DurationInfo {
                nanoseconds: g.as_nanos() as i64,
            }),
        });
        let agent = (!instance.agent_id.is_empty()).then(|| agora_proto::AgentId {
            value: instance.agent_id.clone(),
        });
        let _ = self.scheduler.kill(&instance.task_id, agent, policy).await;
    }
}

/// Keeps the service ports an app already had where the new definition asks for "any".
fn inherit_service_ports(app: &mut crate::model::AppDefinition, old: &crate::model::AppDefinition) {
    let old_ports = old.service_ports();
    if let Some(defs) = app.port_definitions.as_mut() {
        for (i, def) in defs.iter_mut().enumerate() {
            if def.port == 0 {
                if let Some(p) = old_ports.get(i).filter(|p| **p != 0) {
                    def.port = *p;
                }
            }
        }
    }
    if let Some(mappings) = app
        .container
        .as_mut()
        .and_then(|c| c.port_mappings.as_mut())
    {
        for (i, m) in mappings.iter_mut().enumerate() {
            if m.service_port == 0 {
                if let Some(p) = old_ports.get(i).filter(|p| **p != 0) {
                    m.service_port = *p;
                }
            }
        }
    }
}

/// The writes that turn `current` into `target` in storage.
fn root_writes(current: &RootGroup, target: &RootGroup) -> Vec<Write> {
    let mut writes = Vec::new();
    for (id, app) in &target.apps {
        if current.apps.get(id) != Some(app) {
            writes.push(Write::App(app.clone()));
        }
    }
    for id in current.apps.keys() {
        if !target.apps.contains_key(id) {
            writes.push(Write::DeleteApp(id.clone()));
        }
    }
    for (id, meta) in &target.groups {
        if current.groups.get(id) != Some(meta) {
            writes.push(Write::Group(id.clone(), meta.clone()));
        }
    }
    for id in current.groups.keys() {
        if !target.groups.contains_key(id) {
            writes.push(Write::DeleteGroup(id.clone()));
        }
    }
    writes
}

/// A snapshot of every group whose version changed, for group rollback.
fn group_version_writes(current: &RootGroup, target: &RootGroup) -> Vec<Write> {
    target
        .groups
        .iter()
        .filter(|(id, meta)| current.groups.get(*id).map(|m| m.version) != Some(meta.version))
        .map(|(id, meta)| {
            Write::GroupVersion(
                id.clone(),
                meta.version,
                Box::new(GroupSnapshot::of(target, id)),
            )
        })
        .collect()
}

/// The plan as events carry it.
/// A deployment's `plan` as Marathon's events carry it: `id`, `version`,
/// the whole root group before (`original`) and after (`target`), rendered
/// as `GET /v2/groups` renders groups (apps as their definitions) but with
/// the fields of Marathon's event groups only (`id`, `dependencies`,
/// `version`, `apps`, `groups`, `pods`: clients with strict models refuse
/// `enforceRole` there), and the `steps`.
pub(crate) fn plan_event_json(running: &RunningDeployment) -> serde_json::Value {
    let plan = &running.plan;
    let full = plan.to_json(1, &|_| json!([]));
    let whole = |root: &RootGroup| {
        let embed = GroupEmbed {
            apps: true,
            groups: true,
            pods: true,
        };
        let mut group = root
            .render(&PathId::root(), &embed, &mut |app| {
                serde_json::to_value(app).unwrap_or_default()
            })
            .unwrap_or_else(|| json!({"id": "/"}));
        strip_enforce_role(&mut group);
        group
    };
    json!({
        "id": plan.id,
        "version": plan.version,
        "original": whole(&running.original),
        "target": whole(&running.target),
        "steps": full["steps"],
    })
}

fn strip_enforce_role(group: &mut serde_json::Value) {
    if let Some(obj) = group.as_object_mut() {
        obj.remove("enforceRole");
        if let Some(serde_json::Value::Array(groups)) = obj.get_mut("groups") {
            groups.iter_mut().for_each(strip_enforce_role);
        }
    }
}

/// Publishes a deployment event: `fields`, and the `plan` with both whole
/// root groups, rendered only when a subscriber sends it (off the core).
pub(crate) fn publish_plan_event(
    events: &crate::events::EventBus,
    event_type: &str,
    running: &RunningDeployment,
    fields: serde_json::Value,
) {
    let running = running.clone();
    events.publish_with(event_type, move || {
        let mut body = match fields {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        body.insert("plan".into(), plan_event_json(&running));
        serde_json::Value::Object(body)
    });
}
