//! Emulated frameworks: SDK schedulers that launch their share of the tasks
//! on whatever offers come, then get out of the allocator's way.
//!
//! Each framework is a tokio task owning one [`Scheduler`] (and so, through
//! the SDK, one HTTP/2 connection: fine up to a few thousand frameworks).
//! They subscribe suppressed, so that subscribing is measured alone and the
//! launch starts when the bench says so. The bench steers all of them at
//! once through a `watch` of [`Mode`]:
//!
//! * `Launch`: revive; on offers, launch as many pending tasks as fit in each
//!   offer, decline the unusable ones with a long filter, suppress once
//!   nothing is pending;
//! * `Steady`: revive, and decline every offer *without* a filter, so every
//!   allocation cycle sees free resources on every agent: the allocator's
//!   steady-state cost with all frameworks wanting offers;
//! * `Quiet`: suppress and decline with a long filter;
//! * `Watch`: revive until one offer came on the current subscription,
//!   decline it with a long filter and suppress again; after a resubscription
//!   (a master failover) the framework revives again, so the first offer
//!   from the new leader is seen and counted, at the cost of one offer per
//!   framework;
//! * `Stop`: drop the scheduler, which closes its stream.
//!
//! Frameworks find the master through a [`Detector`] (a fixed address, or
//! ZooKeeper in the failover bench, where the SDK follows the leader and
//! resubscribes by itself). Status updates are acknowledged by the SDK
//! (`auto_acknowledge`); what the frameworks see is counted in
//! [`FrameworkCounters`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use agora_common::resources::Resources;
use agora_common::task_state::is_terminal;
use agora_coord::Detector;
use agora_proto::{Offer, TaskState};
use agora_sdk::{launch_operation, Scheduler, SchedulerConfig, SchedulerEvent, TaskBuilder};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::args::tasks_fitting;

/// Subscriptions in flight at once. A thousand connections opened at the
/// same instant overflow the master's listen backlog (1024) and some are
/// reset; the SDK would retry them, but a window makes the phase measure the
/// master rather than the kernel's accept queue.
const SUBSCRIPTION_WINDOW: usize = 128;

/// Decline/accept filter that keeps refused resources away for the whole bench.
const LONG_FILTER_SECS: f64 = 3600.0;

/// What every framework is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Subscribed and suppressed.
    Idle,
    /// Launch the pending tasks.
    Launch,
    /// Revived, declining everything without a filter.
    Steady,
    /// Suppressed again.
    Quiet,
    /// Revived until one offer per subscription came, then suppressed.
    Watch,
    /// Close the scheduler.
    Stop,
}

/// What the frameworks have seen and done, in all.
#[derive(Debug, Default)]
pub(crate) struct FrameworkCounters {
    /// Frameworks that received SUBSCRIBED.
    pub subscribed: AtomicU64,
    /// Offers received.
    pub offers: AtomicU64,
    /// Offers declined.
    pub declined: AtomicU64,
    /// ACCEPT calls made.
    pub accepts: AtomicU64,
    /// Tasks sent in ACCEPTs.
    pub launched: AtomicU64,
    /// Distinct tasks reported TASK_RUNNING.
    pub running: AtomicU64,
    /// Tasks reported in a terminal state.
    pub failed: AtomicU64,
    /// Frameworks that received an offer in `Watch` mode (each counted once).
    pub watching: AtomicU64,
    /// Frameworks that got SUBSCRIBED a second time (each counted once).
    pub resubscribed: AtomicU64,
    /// Frameworks that received an offer after resubscribing (each counted once).
    pub offered_after_resubscription: AtomicU64,
    /// Connections lost and retried by the SDK.
    pub reconnections: AtomicU64,
    /// Why the latest connection was lost.
    pub last_reconnection: Mutex<Option<String>>,
    /// When the first ACCEPT was sent.
    pub first_accept: OnceLock<Instant>,
    /// Problems: SDK errors, ERROR events, disconnections, failed tasks.
    problems: AtomicU64,
    last_problem: Mutex<Option<String>>,
}

impl FrameworkCounters {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn problem(&self, framework: usize, what: String) {
        self.problems.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(framework, %what, "emulated framework problem");
        if let Ok(mut last) = self.last_problem.lock() {
            *last = Some(format!("bench-framework-{framework}: {what}"));
        }
    }

    /// Fails if any framework met a problem.
    pub fn check(&self) -> anyhow::Result<()> {
        let problems = Self::get(&self.problems);
        if problems == 0 {
            return Ok(());
        }
        let last = self
            .last_problem
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_default();
        anyhow::bail!("{problems} framework problem(s); latest: {last}")
    }
}

/// The sizes every framework works with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskShape {
    /// CPUs per task.
    pub cpus: f64,
    /// Memory per task.
    pub mem: f64,
}

/// The running emulated frameworks.
pub(crate) struct FrameworkFleet {
    /// What they have seen.
    pub counters: Arc<FrameworkCounters>,
    mode: watch::Sender<Mode>,
    tasks: JoinSet<()>,
}

impl FrameworkFleet {
    /// Starts `frameworks` frameworks finding the master through
    /// `detector`, splitting `tasks` evenly (the first ones take the
    /// remainder); they subscribe suppressed.
    pub fn start(
        detector: Arc<dyn Detector>,
        frameworks: usize,
        tasks: usize,
        shape: TaskShape,
    ) -> Self {
        let counters = Arc::new(FrameworkCounters::default());
        let (mode, modes) = watch::channel(Mode::Idle);
        let mut set = JoinSet::new();
        let window = Arc::new(Semaphore::new(SUBSCRIPTION_WINDOW));
        for index in 0..frameworks {
            let share = tasks / frameworks + usize::from(index < tasks % frameworks);
            let framework = Framework {
                index,
                shape,
                counters: counters.clone(),
                mode: Mode::Idle,
                pending: share,
                next_task: 0,
                running: HashSet::new(),
                suppressed: true,
                subscriptions: 0,
                offered: false,
                watched: false,
                permit: None,
            };
            set.spawn(framework.run(detector.clone(), modes.clone(), window.clone()));
        }
        FrameworkFleet {
            counters,
            mode,
            tasks: set,
        }
    }

    /// Tells every framework what to do next.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Closes every scheduler and waits (briefly) for the tasks to end.
    pub async fn stop(mut self) {
        self.set_mode(Mode::Stop);
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}

/// One emulated framework.
struct Framework {
    index: usize,
    shape: TaskShape,
    counters: Arc<FrameworkCounters>,
    mode: Mode,
    /// Tasks not launched yet.
    pending: usize,
    next_task: usize,
    running: HashSet<String>,
    suppressed: bool,
    /// SUBSCRIBED events seen (after the first, resubscriptions).
    subscriptions: u32,
    /// Whether an offer came on the current subscription.
    offered: bool,
    /// Whether an offer came in `Watch` mode.
    watched: bool,
    /// A place in the subscription window, until subscribed.
    permit: Option<OwnedSemaphorePermit>,
}

impl Framework {
    async fn run(
        mut self,
        detector: Arc<dyn Detector>,
        mut modes: watch::Receiver<Mode>,
        window: Arc<Semaphore>,
    ) {
        // The semaphore is never closed, so acquiring cannot fail.
        let Ok(permit) = window.acquire_owned().await else {
            return;
        };
        self.permit = Some(permit);
        let name = format!("bench-framework-{}", self.index);
        let config = SchedulerConfig::with_detector(detector, name)
            .auto_acknowledge(true)
            .suppressed_roles(&["*"]);
        let (scheduler, mut events) = match Scheduler::subscribe(config).await {
            Ok(s) => s,
            Err(e) => return self.problem(format!("subscribe: {e}")),
        };
        loop {
            tokio::select! {
                changed = modes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let mode = *modes.borrow_and_update();
                    if mode == Mode::Stop {
                        return;
                    }
                    if let Err(e) = self.enter(mode, &scheduler).await {
                        self.problem(format!("entering {mode:?}: {e}"));
                    }
                }
                event = events.recv() => {
                    let Some(event) = event else {
                        return self.problem("the SDK closed the event stream".into());
                    };
                    if let Err(e) = self.handle(event, &scheduler).await {
                        self.problem(format!("call failed: {e}"));
                    }
                }
            }
        }
    }

    async fn enter(
        &mut self,
        mode: Mode,
        scheduler: &Scheduler,
    ) -> Result<(), agora_sdk::SdkError> {
        if mode == Mode::Watch && self.mode != Mode::Watch {
            // Offers seen while launching do not count: watch for a new one.
            self.offered = false;
        }
        self.mode = mode;
        let want_offers = match mode {
            Mode::Launch => self.pending > 0,
            Mode::Steady => true,
            Mode::Watch => !self.offered,
            Mode::Idle | Mode::Quiet | Mode::Stop => false,
        };
        if want_offers && self.suppressed {
            scheduler.revive(&[]).await?;
            self.suppressed = false;
        } else if !want_offers && !self.suppressed {
            scheduler.suppress(&[]).await?;
            self.suppressed = true;
        }
        Ok(())
    }

    async fn handle(
        &mut self,
        event: SchedulerEvent,
        scheduler: &Scheduler,
    ) -> Result<(), agora_sdk::SdkError> {
        match event {
            SchedulerEvent::Subscribed { .. } => {
                self.subscriptions += 1;
                self.offered = false;
                if self.subscriptions > 1 {
                    if self.subscriptions == 2 {
                        self.counters.resubscribed.fetch_add(1, Ordering::Relaxed);
                    }
                    // A resubscription starts suppressed again (our config
                    // says so): restore what the current mode wants.
                    self.suppressed = true;
                    self.enter(self.mode, scheduler).await?;
                } else {
                    self.permit.take();
                    self.counters.subscribed.fetch_add(1, Ordering::Relaxed);
                }
            }
            SchedulerEvent::Offers(offers) => self.offers(offers, scheduler).await?,
            SchedulerEvent::Update(status) => {
                let id = status.task_id.as_ref().map(|t| t.value.clone());
                let state = status.state();
                if state == TaskState::TaskRunning {
                    if self.running.insert(id.unwrap_or_default()) {
                        self.counters.running.fetch_add(1, Ordering::Relaxed);
                    }
                } else if is_terminal(state) {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    let why = status.message.unwrap_or_default();
                    self.problem(format!("task {id:?} {}: {why}", state.as_str_name()));
                }
            }
            SchedulerEvent::Error(message) => self.problem(format!("ERROR from master: {message}")),
            SchedulerEvent::Disconnected(why) => {
                // The SDK reconnects and resubscribes by itself (as the same
                // framework); count it, and let the phase timeout judge.
                self.counters.reconnections.fetch_add(1, Ordering::Relaxed);
                tracing::info!(framework = self.index, %why, "framework reconnecting");
                if let Ok(mut last) = self.counters.last_reconnection.lock() {
                    *last = Some(why);
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn offers(
        &mut self,
        offers: Vec<Offer>,
        scheduler: &Scheduler,
    ) -> Result<(), agora_sdk::SdkError> {
        let count = offers.len() as u64;
        self.counters.offers.fetch_add(count, Ordering::Relaxed);
        if self.mode == Mode::Watch && !self.watched && count > 0 {
            self.watched = true;
            self.counters.watching.fetch_add(1, Ordering::Relaxed);
        }
        if !self.offered && count > 0 {
            self.offered = true;
            if self.subscriptions == 2 {
                self.counters
                    .offered_after_resubscription
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut decline = Vec::new();
        for offer in offers {
            let Some(id) = offer.id.clone() else { continue };
            if self.mode != Mode::Launch || self.pending == 0 {
                decline.push(id);
                continue;
            }
            let resources = Resources::from_vec(offer.resources.iter().cloned());
            let fit = tasks_fitting(&resources, self.shape.cpus, self.shape.mem).min(self.pending);
            if fit == 0 {
                decline.push(id);
                continue;
            }
            let tasks = (0..fit)
                .map(|_| {
                    self.next_task += 1;
                    let task_id = format!("bench-fw{}-task-{}", self.index, self.next_task);
                    TaskBuilder::new(task_id, "true")
                        .cpus(self.shape.cpus)
                        .mem(self.shape.mem)
                        .build(&offer)
                })
                .collect();
            self.pending -= fit;
            self.counters.first_accept.get_or_init(Instant::now);
            // What is left of the agent is of no use to us: filter it for long.
            let operations = vec![launch_operation(tasks)];
            scheduler
                .accept(vec![id], operations, Some(LONG_FILTER_SECS))
                .await?;
            self.counters.accepts.fetch_add(1, Ordering::Relaxed);
            self.counters
                .launched
                .fetch_add(fit as u64, Ordering::Relaxed);
        }
        if !decline.is_empty() {
            self.counters
                .declined
                .fetch_add(decline.len() as u64, Ordering::Relaxed);
            // In steady state the same resources must come straight back.
            let refuse = match self.mode {
                Mode::Steady => 0.0,
                _ => LONG_FILTER_SECS,
            };
            scheduler.decline(decline, Some(refuse)).await?;
        }
        let done = match self.mode {
            Mode::Launch => self.pending == 0,
            Mode::Watch => true,
            _ => false,
        };
        if done && !self.suppressed {
            scheduler.suppress(&[]).await?;
            self.suppressed = true;
        }
        Ok(())
    }

    fn problem(&self, what: String) {
        self.counters.problem(self.index, what);
    }
}
