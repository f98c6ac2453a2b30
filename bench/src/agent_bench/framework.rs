//! The one SDK framework of the agent bench: it launches every task on the
//! offers of the one agent and times each from the ACCEPT that carried it
//! to its first TASK_RUNNING: first all at once ([`BenchFramework::launch_all`],
//! as many per ACCEPT as an offer holds), then one at a time
//! ([`BenchFramework::launch_serial`], each waiting for the previous one to
//! run), which is the launch cost of one task on an agent not busy launching.
//!
//! Updates are acknowledged by the SDK (`auto_acknowledge`), as a real
//! framework would; a task reported in a terminal state before all are
//! running fails the bench with the agent's message.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agora_common::resources::Resources;
use agora_common::task_state::is_terminal;
use agora_proto::{health_check, HealthCheck, Offer, TaskState};
use agora_sdk::{launch_operation, Scheduler, SchedulerConfig, SchedulerEvent, TaskBuilder};
use anyhow::{anyhow, bail, Context};
use tokio::sync::mpsc;

use crate::args::tasks_fitting;
use crate::health_bench::server::Health;

/// Filter on declined offers once every task is launched.
const LONG_FILTER_SECS: f64 = 3600.0;

/// What the launch phase measured.
#[derive(Debug)]
pub(crate) struct Launch {
    /// When the first ACCEPT was sent.
    pub first_accept: Instant,
    /// When the last task was reported running.
    pub all_running: Instant,
    /// Per task: ACCEPT sent → TASK_RUNNING received.
    pub latencies: Vec<Duration>,
    /// ACCEPT calls made.
    pub accepts: usize,
}

/// The task shape and command.
#[derive(Debug, Clone)]
pub(crate) struct TaskPlan {
    pub count: usize,
    pub cpus: f64,
    pub mem: f64,
    pub command: String,
    /// Each task's HTTP health check: `GET /t/<task id>` on this port.
    pub health: Option<HealthPlan>,
}

/// The health check every task carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HealthPlan {
    pub port: u16,
    pub interval: Duration,
    pub consecutive_failures: u32,
}

impl HealthPlan {
    /// Mesos' `HealthCheck` of task `id`: no delay and no grace period, so
    /// that every probe counts from the start; a timeout of one interval.
    fn of_task(&self, id: &str) -> HealthCheck {
        HealthCheck {
            r#type: health_check::Type::Http as i32,
            http: Some(health_check::HttpCheckInfo {
                port: u32::from(self.port),
                path: Some(format!("/t/{id}")),
                ..Default::default()
            }),
            delay_seconds: Some(0.0),
            grace_period_seconds: Some(0.0),
            interval_seconds: Some(self.interval.as_secs_f64()),
            timeout_seconds: Some(self.interval.as_secs_f64()),
            consecutive_failures: Some(self.consecutive_failures),
            ..Default::default()
        }
    }
}

impl TaskPlan {
    /// Task `id` on `offer`.
    fn task(&self, id: String, offer: &Offer) -> agora_proto::TaskInfo {
        let health = self.health.map(|h| h.of_task(&id));
        let mut task = TaskBuilder::new(id, self.command.clone())
            .cpus(self.cpus)
            .mem(self.mem)
            .build(offer);
        task.health_check = health;
        task
    }
}

/// The subscribed framework; dropping it closes its stream.
pub(crate) struct BenchFramework {
    scheduler: Scheduler,
    events: mpsc::Receiver<SchedulerEvent>,
    /// Offers kept for the serial phase once the burst needs no more.
    held: Vec<Offer>,
}

impl BenchFramework {
    /// Subscribes to the master at `addr`.
    pub async fn subscribe(addr: &str) -> anyhow::Result<Self> {
        let config = SchedulerConfig::new(addr, "agora-bench-agent").auto_acknowledge(true);
        let (scheduler, events) = Scheduler::subscribe(config)
            .await
            .context("subscribing the bench framework")?;
        Ok(BenchFramework {
            scheduler,
            events,
            held: Vec::new(),
        })
    }

    /// Launches `plan.count` tasks on the offers that come and waits until
    /// all are running, at most `timeout`.
    pub async fn launch_all(
        &mut self,
        plan: &TaskPlan,
        timeout: Duration,
    ) -> anyhow::Result<Launch> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut accepted_at: HashMap<String, Instant> = HashMap::with_capacity(plan.count);
        let mut running: HashMap<String, Duration> = HashMap::with_capacity(plan.count);
        let mut first_accept = None;
        let mut accepts = 0;
        while running.len() < plan.count {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| {
                    anyhow!(
                        "launch timed out after {timeout:?}: {} of {} tasks launched, {} running",
                        accepted_at.len(),
                        plan.count,
                        running.len()
                    )
                })?
                .ok_or_else(|| anyhow!("the SDK closed the event stream"))?;
            match event {
                SchedulerEvent::Offers(offers) => {
                    for offer in offers {
                        let resources = Resources::from_vec(offer.resources.iter().cloned());
                        let fit = tasks_fitting(&resources, plan.cpus, plan.mem)
                            .min(plan.count - accepted_at.len());
                        if fit == 0 {
                            self.held.push(offer);
                            continue;
                        }
                        let first = accepted_at.len();
                        let tasks: Vec<_> = (first..first + fit)
                            .map(|i| plan.task(format!("bench-task-{i}"), &offer))
                            .collect();
                        let now = Instant::now();
                        first_accept.get_or_insert(now);
                        for i in first..first + fit {
                            accepted_at.insert(format!("bench-task-{i}"), now);
                        }
                        accepts += 1;
                        self.accept(&offer, tasks).await?;
                    }
                }
                SchedulerEvent::Update(status) => {
                    let id = status.task_id.as_ref().map(|t| t.value.clone());
                    let state = status.state();
                    let Some(id) = id else { continue };
                    if state == TaskState::TaskRunning {
                        if let Some(sent) = accepted_at.get(&id) {
                            running.entry(id).or_insert_with(|| sent.elapsed());
                        }
                    } else if is_terminal(state) {
                        bail!(
                            "task {id} ended {state:?} before all were running: {}",
                            status.message.unwrap_or_default()
                        );
                    }
                }
                SchedulerEvent::Error(e) => bail!("the master refused the framework: {e}"),
                _ => {}
            }
        }
        Ok(Launch {
            first_accept: first_accept.ok_or_else(|| anyhow!("no task was launched"))?,
            all_running: Instant::now(),
            latencies: running.into_values().collect(),
            accepts,
        })
    }

    /// Launches `count` tasks one at a time, each in its own ACCEPT once the
    /// previous one runs; returns each one's ACCEPT → TASK_RUNNING.
    pub async fn launch_serial(
        &mut self,
        count: usize,
        plan: &TaskPlan,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Duration>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut latencies = Vec::with_capacity(count);
        for i in 0..count {
            let id = format!("bench-serial-{i}");
            // An offer with room: a held one, else the next to come.
            let offer = loop {
                if let Some(offer) = self.held.pop() {
                    let resources = Resources::from_vec(offer.resources.iter().cloned());
                    if tasks_fitting(&resources, plan.cpus, plan.mem) > 0 {
                        break offer;
                    }
                    let ids = offer.id.into_iter().collect();
                    self.scheduler
                        .decline(ids, Some(LONG_FILTER_SECS))
                        .await
                        .context("declining an offer")?;
                    continue;
                }
                match self
                    .next_event(deadline, "an offer for the serial phase")
                    .await?
                {
                    SchedulerEvent::Offers(offers) => self.held.extend(offers),
                    SchedulerEvent::Rescind(id) => self.held.retain(|o| o.id.as_ref() != Some(&id)),
                    other => check(other)?,
                }
            };
            let task = plan.task(id.clone(), &offer);
            let sent = Instant::now();
            self.accept(&offer, vec![task]).await?;
            loop {
                match self.next_event(deadline, &format!("{id} to run")).await? {
                    SchedulerEvent::Update(status)
                        if status.task_id.as_ref().is_some_and(|t| t.value == id)
                            && status.state() == TaskState::TaskRunning =>
                    {
                        latencies.push(sent.elapsed());
                        break;
                    }
                    SchedulerEvent::Offers(offers) => self.held.extend(offers),
                    other => check(other)?,
                }
            }
        }
        Ok(latencies)
    }

    /// Waits until each of `ids` is reported `TASK_KILLED`, telling `health`
    /// as each is (which times it from when it turned sick); at most `timeout`.
    pub async fn await_kills(
        &mut self,
        ids: &[String],
        health: &Health,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut left: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        while !left.is_empty() {
            let waiting = format!("{} sick task(s) to be killed", left.len());
            match self.next_event(deadline, &waiting).await? {
                SchedulerEvent::Update(status) => {
                    let id = status.task_id.as_ref().map_or("", |t| t.value.as_str());
                    if status.state() == TaskState::TaskKilled && left.remove(id) {
                        health.killed(id);
                    } else if left.contains(id) && is_terminal(status.state()) {
                        bail!(
                            "sick task {id} ended {:?}, not killed: {}",
                            status.state(),
                            status.message.unwrap_or_default()
                        );
                    }
                }
                SchedulerEvent::Offers(offers) => self.held.extend(offers),
                SchedulerEvent::Error(e) => bail!("the master refused the framework: {e}"),
                _ => {}
            }
        }
        Ok(())
    }

    /// Launches `tasks` on `offer`, refusing nothing: the rest of the offer
    /// comes back at the next allocation (the master's default filter would
    /// hold it back 5 s, which the serial phase would wait out every time).
    async fn accept(&self, offer: &Offer, tasks: Vec<agora_proto::TaskInfo>) -> anyhow::Result<()> {
        let id = offer.id.clone().context("an offer without an id")?;
        self.scheduler
            .accept(vec![id], vec![launch_operation(tasks)], Some(0.0))
            .await
            .context("sending ACCEPT")
    }

    async fn next_event(
        &mut self,
        deadline: tokio::time::Instant,
        waiting_for: &str,
    ) -> anyhow::Result<SchedulerEvent> {
        tokio::time::timeout_at(deadline, self.events.recv())
            .await
            .map_err(|_| anyhow!("timed out waiting for {waiting_for}"))?
            .ok_or_else(|| anyhow!("the SDK closed the event stream"))
    }

    /// Closes the framework's stream.
    pub fn close(self) {
        drop(self.scheduler);
    }
}

/// Fails on an event that ends the bench: a task ending, or an error.
fn check(event: SchedulerEvent) -> anyhow::Result<()> {
    match event {
        SchedulerEvent::Update(status) if is_terminal(status.state()) => bail!(
            "task {} ended {:?}: {}",
            status.task_id.as_ref().map_or("", |t| t.value.as_str()),
            status.state(),
            status.message.as_deref().unwrap_or_default()
        ),
        SchedulerEvent::Error(e) => bail!("the master refused the framework: {e}"),
        _ => Ok(()),
    }
}
