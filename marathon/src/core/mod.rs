//! The leading Marathon's scheduler: one task owns every change.
//!
//! API handlers send [`Command`]s; the master's events arrive through the
//! SDK. Each change is validated, planned, **stored**, and only then applied
//! to the shared [`State`] and answered, so nothing a client was told about
//! is lost by a failover. Deployments, the launch queue and the scale check
//! are all driven from [`Core::evaluate`], which recomputes what each app
//! needs from the current counts (launch so many, kill these) rather than
//! keeping counters that could drift.

mod changes;
mod deployments;
mod health;
mod offers;
pub mod state;
mod updates;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use agora_coord::Detector;
use agora_proto::framework_info::capability::Type as Capability;
use agora_proto::{FrameworkId, FrameworkInfo};
use agora_sdk::{Scheduler, SchedulerConfig, SchedulerEvent};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::config::MarathonConfig;
use crate::error::ApiError;
use crate::events::EventBus;
use crate::model::{AppDefaults, PathId, RootGroup, Timestamp};
use crate::storage::{Storage, StorageError, Write};
pub use state::State;
pub(crate) use updates::ip_addresses_json;

/// The shared state, read by the API.
pub type SharedState = Arc<RwLock<State>>;

/// Reads the shared state (a poisoned lock is still consistent: only the core writes).
pub fn read(state: &SharedState) -> std::sync::RwLockReadGuard<'_, State> {
    state.read().unwrap_or_else(|e| e.into_inner())
}

/// Forgets everything but leadership: what a leader knows is loaded anew
/// in each term, and a standby shows nothing of its own.
pub(crate) fn reset(st: &mut State) {
    st.reset();
}

pub(crate) fn write_state(state: &SharedState) -> std::sync::RwLockWriteGuard<'_, State> {
    state.write().unwrap_or_else(|e| e.into_inner())
}

/// A change of apps and groups, computed from the current root group and the new version.
pub type ChangeFn =
    Box<dyn FnOnce(&RootGroup, Timestamp) -> Result<RootGroup, ApiError> + Send + 'static>;

/// What a change returns: `{"deploymentId": ..., "version": ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentResult {
    /// The deployment carrying the change out.
    pub deployment_id: String,
    /// The new version of the root group.
    pub version: Timestamp,
}

/// What killing tasks returned.
#[derive(Debug, Clone)]
pub enum KillResult {
    /// The instances killed (ids), without scaling.
    Killed(Vec<crate::model::Instance>),
    /// With `scale`: the deployment that lowered `instances`.
    Scaled(DeploymentResult),
}

/// Calls from the API into the core.
pub enum Command {
    /// Changes apps and groups (a deployment).
    Change {
        /// The change.
        change: ChangeFn,
        /// Cancel conflicting deployments instead of answering 409.
        force: bool,
        /// The answer.
        reply: oneshot::Sender<Result<DeploymentResult, ApiError>>,
    },
    /// What a change would do, stored nowhere (`dryRun`).
    Plan {
        /// The change.
        change: ChangeFn,
        /// The plan it would start.
        reply: oneshot::Sender<Result<crate::deploy::plan::DeploymentPlan, ApiError>>,
    },
    /// Kills tasks by id.
    KillTasks {
        /// Task ids (unknown ones are ignored).
        task_ids: Vec<String>,
        /// Lower `instances` accordingly.
        scale: bool,
        /// Forget the instances at once.
        wipe: bool,
        /// Override locks (with `scale`).
        force: bool,
        /// The answer.
        reply: oneshot::Sender<Result<KillResult, ApiError>>,
    },
    /// Cancels a deployment: rolled back, or with `force` only stopped.
    CancelDeployment {
        /// The deployment.
        id: String,
        /// Stop without rolling back.
        force: bool,
        /// The rollback deployment, if any.
        reply: oneshot::Sender<Result<Option<DeploymentResult>, ApiError>>,
    },
    /// Resets an app's relaunch delay.
    ResetDelay {
        /// The app.
        app: PathId,
        /// Whether the app was waiting.
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
}

/// The API's way into the core.
#[derive(Clone, Debug)]
pub struct CoreHandle {
    tx: mpsc::Sender<Command>,
}

impl CoreHandle {
    /// A handle and the receiving end for the core task.
    pub fn channel() -> (CoreHandle, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(1024);
        (CoreHandle { tx }, rx)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ApiError>>) -> Command,
    ) -> Result<T, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| ApiError::Unavailable("Marathon is not leading".into()))?;
        answer
            .await
            .map_err(|_| ApiError::Unavailable("leadership was lost during the call".into()))?
    }

    /// Applies a change of apps/groups as a deployment.
    pub async fn change(
        &self,
        force: bool,
        change: ChangeFn,
    ) -> Result<DeploymentResult, ApiError> {
        self.ask(|reply| Command::Change {
            change,
            force,
            reply,
        })
        .await
    }

    /// The plan a change would start, changing nothing.
    pub async fn plan(
        &self,
        change: ChangeFn,
    ) -> Result<crate::deploy::plan::DeploymentPlan, ApiError> {
        self.ask(|reply| Command::Plan { change, reply }).await
    }

    /// Kills tasks.
    pub async fn kill_tasks(
        &self,
        task_ids: Vec<String>,
        scale: bool,
        wipe: bool,
        force: bool,
    ) -> Result<KillResult, ApiError> {
        self.ask(|reply| Command::KillTasks {
            task_ids,
            scale,
            wipe,
            force,
            reply,
        })
        .await
    }

    /// Cancels (force) or rolls back a deployment.
    pub async fn cancel_deployment(
        &self,
        id: String,
        force: bool,
    ) -> Result<Option<DeploymentResult>, ApiError> {
        self.ask(|reply| Command::CancelDeployment { id, force, reply })
            .await
    }

    /// Resets an app's relaunch delay.
    pub async fn reset_delay(&self, app: PathId) -> Result<(), ApiError> {
        self.ask(|reply| Command::ResetDelay { app, reply }).await
    }
}

/// Everything the core needs while it leads.
#[derive(Clone)]
pub struct CoreContext {
    /// Settings.
    pub config: MarathonConfig,
    /// Defaults applied to apps.
    pub defaults: AppDefaults,
    /// Storage.
    pub storage: Arc<Storage>,
    /// The shared state.
    pub state: SharedState,
    /// Events.
    pub events: EventBus,
    /// Finds the leading master.
    pub master: Arc<dyn Detector>,
    /// Counts Marathon's own probes, across terms (shown in `/metrics`).
    pub probe_stats: Arc<crate::health::ProbeStats>,
}

/// Why the core stopped.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Storage failed (or another leader wrote): stop leading.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// Another scheduler subscribed as this framework (a newer leader).
    #[error("another Marathon took the framework over")]
    FailedOver,
}

/// The core task's state beyond the shared [`State`].
pub(crate) struct Core {
    ctx: CoreContext,
    scheduler: Scheduler,
    suppressed: bool,
    last_reconcile: Option<Instant>,
    subscribed: bool,
    /// Apps whose demand must be recomputed.
    dirty: BTreeSet<PathId>,
    /// What is known of each running deployment's current step.
    steps: HashMap<String, deployments::StepProgress>,
    last_full_check: Instant,
    /// Failed tasks of each running deployment's new versions.
    deployment_failures: std::collections::HashMap<String, u32>,
    /// Marathon's own probes.
    health: health::Health,
    /// Since when each deployment with a deadline stands still.
    progress: HashMap<String, crate::deploy::progress::Watch>,
}

/// Leads until `stop` fires or storage fails: loads the state, subscribes,
/// and serves commands and the master's events.
pub async fn run(
    ctx: CoreContext,
    commands: &mut mpsc::Receiver<Command>,
    mut stop: agora_common::shutdown::Shutdown,
) -> Result<(), CoreError> {
    // Claim the store first: a deposed leader's writes fail from here on,
    // so nothing it does can be missing from what is loaded next.
    ctx.storage.claim().await?;
    let loaded = ctx.storage.load().await?;
    info!(
        apps = loaded.root.apps.len(),
        instances = loaded.instances.len(),
        deployments = loaded.deployments.len(),
        "loaded Marathon state"
    );
    {
        let mut st = write_state(&ctx.state);
        // Nothing of an earlier term (queue, backoffs, ...) carries over.
        reset(&mut st);
        st.root = loaded.root;
        let root = Arc::new(st.root.clone());
        for (_, instance) in loaded.instances {
            st.put_instance(instance);
        }
        st.deployments = loaded
            .deployments
            .into_iter()
            .map(|(plan, step)| {
                (
                    plan.id.clone(),
                    state::RunningDeployment {
                        original: Arc::new(plan.revert(&root, plan.version)),
                        target: root.clone(),
                        plan: Arc::new(plan),
                        current_step: step,
                    },
                )
            })
            .collect();
        st.framework_id = loaded.framework_id.clone().filter(|id| !id.is_empty());
        st.touch_all();
        st.ready = true;
    }
    let (scheduler, mut sdk_events) =
        subscribe(&ctx, loaded.framework_id.filter(|id| !id.is_empty())).await;
    let tick = ctx.config.tick;
    let (health, mut probe_results) =
        health::Health::new(ctx.config.health_kill_hold, ctx.probe_stats.clone());
    let mut core = Core {
        ctx,
        scheduler,
        suppressed: false,
        last_reconcile: None,
        subscribed: false,
        dirty: BTreeSet::new(),
        steps: HashMap::new(),
        last_full_check: Instant::now(),
        deployment_failures: std::collections::HashMap::new(),
        health,
        progress: HashMap::new(),
    };
    core.mark_all_dirty();
    core.watch_all_health();
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            _ = stop.wait() => break Ok(()),
            command = commands.recv() => match command {
                Some(command) => {
                    if let Err(e) = core.handle_command(command).await {
                        break Err(e);
                    }
                }
                None => break Ok(()),
            },
            event = sdk_events.recv() => match event {
                Some(SchedulerEvent::FailedOver(_)) => {
                    // Another instance subscribed as this framework: it
                    // leads now, whatever this one still believes. Stop
                    // without touching the store or the master.
                    break Err(CoreError::FailedOver);
                }
                Some(SchedulerEvent::Error(message)) => {
                    // The master removed the framework (torn down, or its
                    // failover timeout passed): its tasks are gone; start afresh.
                    warn!(%message, "the master removed the framework; registering anew");
                    if let Err(e) = core.persist(vec![Write::FrameworkId(String::new())]).await {
                        break Err(e);
                    }
                    core.state_mut().framework_id = None;
                    let (scheduler, events) = subscribe(&core.ctx, None).await;
                    core.scheduler = scheduler;
                    sdk_events = events;
                }
                Some(event) => {
                    if let Err(e) = core.handle_event(event).await {
                        break Err(e);
                    }
                }
                None => {
                    warn!("the scheduler connection closed; subscribing again");
                    let framework_id = read(&core.ctx.state).framework_id.clone();
                    let (scheduler, events) = subscribe(&core.ctx, framework_id).await;
                    core.scheduler = scheduler;
                    sdk_events = events;
                }
            },
            results = probe_results.next() => {
                core.on_probes(results);
                core.health_kills().await;
            }
            _ = ticker.tick() => {
                if let Err(e) = core.on_tick().await {
                    break Err(e);
                }
            }
        }
        if let Err(e) = core.evaluate().await {
            break Err(e);
        }
    };
    write_state(&core.ctx.state).ready = false;
    result
}

async fn subscribe(
    ctx: &CoreContext,
    framework_id: Option<String>,
) -> (Scheduler, mpsc::Receiver<SchedulerEvent>) {
    let info = FrameworkInfo {
        user: std::env::var("USER").unwrap_or_else(|_| "root".to_string()),
        name: ctx.config.framework_name.clone(),
        id: framework_id.map(|value| FrameworkId { value }),
        failover_timeout: Some(ctx.config.failover_timeout.as_secs_f64()),
        checkpoint: Some(true),
        roles: vec![ctx.config.mesos_role.clone()],
        hostname: Some(ctx.config.hostname.clone()),
        webui_url: Some(ctx.config.own_url()),
        ..Default::default()
    };
    let config =
        SchedulerConfig::with_detector(ctx.master.clone(), ctx.config.framework_name.clone())
            .framework_info(info)
            .capability(Capability::PartitionAware)
            .capability(Capability::TaskKillingState)
            .capability(Capability::MultiRole)
            .auto_acknowledge(false);
    Scheduler::subscribe(config)
        .await
        .expect("subscribing only starts a background connection")
}

impl Core {
    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        read(&self.ctx.state)
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        write_state(&self.ctx.state)
    }

    fn mark_all_dirty(&mut self) {
        let apps: Vec<PathId> = self.state().root.apps.keys().cloned().collect();
        self.dirty.extend(apps);
        let orphaned: Vec<PathId> = self.state().by_app.keys().cloned().collect();
        self.dirty.extend(orphaned);
    }

    async fn persist(&self, writes: Vec<Write>) -> Result<(), CoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.ctx.storage.write(writes).await?;
        Ok(())
    }

    async fn handle_event(&mut self, event: SchedulerEvent) -> Result<(), CoreError> {
        match event {
            SchedulerEvent::Subscribed { framework_id, .. } => {
                let known = self.state().framework_id.clone();
                if known.as_deref() != Some(framework_id.as_str()) {
                    self.persist(vec![Write::FrameworkId(framework_id.clone())])
                        .await?;
                    self.state_mut().framework_id = Some(framework_id.clone());
                }
                info!(%framework_id, "subscribed to the master");
                self.subscribed = true;
                // Learn the truth about every task before trusting the state.
                self.reconcile().await;
                // The master forgets suppression across a resubscription.
                self.suppressed = false;
                self.mark_all_dirty();
            }
            SchedulerEvent::Offers(offers) => self.handle_offers(offers).await?,
            SchedulerEvent::Update(status) => self.handle_update(status).await?,
            SchedulerEvent::Disconnected(reason) => {
                self.subscribed = false;
                warn!(%reason, "disconnected from the master");
            }
            SchedulerEvent::Error(_)
            | SchedulerEvent::FailedOver(_)
            | SchedulerEvent::Rescind(_)
            | SchedulerEvent::Message { .. }
            | SchedulerEvent::Failure { .. }
            | SchedulerEvent::Heartbeat => {}
        }
        Ok(())
    }

    async fn reconcile(&mut self) {
        let tasks: Vec<_> = self
            .state()
            .instances
            .values()
            .map(|i| {
                (
                    agora_proto::TaskId {
                        value: i.task_id.clone(),
                    },
                    Some(agora_proto::AgentId {
                        value: i.agent_id.clone(),
                    }),
                )
            })
            .collect();
        if !tasks.is_empty() {
            let _ = self.scheduler.reconcile(tasks).await;
        }
        // Implicit: the master answers with every task it knows, so tasks
        // this state has no record of are found (and killed).
        let _ = self.scheduler.reconcile(Vec::new()).await;
        self.last_reconcile = Some(Instant::now());
    }

    async fn on_tick(&mut self) -> Result<(), CoreError> {
        if self.subscribed
            && self
                .last_reconcile
                .is_some_and(|t| t.elapsed() >= self.ctx.config.reconciliation_interval)
        {
            self.reconcile().await;
        }
        self.expire_instances().await?;
        self.health_kills().await;
        self.check_deadlines().await?;
        // Backoffs end and unreachable instances turn inactive with time.
        if self.last_full_check.elapsed() >= Duration::from_secs(1) {
            self.mark_all_dirty();
            self.last_full_check = Instant::now();
        }
        Ok(())
    }

    async fn handle_command(&mut self, command: Command) -> Result<(), CoreError> {
        match command {
            Command::Change {
                change,
                force,
                reply,
            } => {
                let result = self.apply_change(change, force, Vec::new()).await?;
                let _ = reply.send(result);
            }
            Command::Plan { change, reply } => {
                let _ = reply.send(self.plan_change(change));
            }
            Command::KillTasks {
                task_ids,
                scale,
                wipe,
                force,
                reply,
            } => {
                let result = self.kill_tasks(task_ids, scale, wipe, force).await?;
                let _ = reply.send(result);
            }
            Command::CancelDeployment { id, force, reply } => {
                let result = self.cancel_deployment(&id, force).await?;
                let _ = reply.send(result);
            }
            Command::ResetDelay { app, reply } => {
                let mut st = self.state_mut();
                let result = if st.queue.contains_key(&app) || st.backoffs.contains_key(&app) {
                    st.backoffs.remove(&app);
                    Ok(())
                } else {
                    Err(ApiError::NotFound(format!(
                        "Application {app} not found in tasks queue."
                    )))
                };
                drop(st);
                self.dirty.insert(app);
                let _ = reply.send(result);
            }
        }
        Ok(())
    }
}
