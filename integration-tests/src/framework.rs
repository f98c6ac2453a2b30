//! A framework for tests: the SDK plus waiting helpers.

use std::time::Duration;

use agora_proto::{Offer, TaskState, TaskStatus};
use agora_sdk::{Scheduler, SchedulerConfig, SchedulerEvent};
use tokio::sync::mpsc;

/// How long helpers wait by default.
pub const WAIT: Duration = Duration::from_secs(20);

/// A subscribed framework.
pub struct TestFramework {
    /// The SDK handle.
    pub scheduler: Scheduler,
    /// The framework id.
    pub framework_id: String,
    events: mpsc::Receiver<SchedulerEvent>,
}

impl TestFramework {
    /// Subscribes and waits for SUBSCRIBED.
    pub async fn subscribe(config: SchedulerConfig) -> TestFramework {
        let (scheduler, mut events) = Scheduler::subscribe(config).await.expect("subscribe");
        let framework_id = tokio::time::timeout(WAIT, async {
            loop {
                match events.recv().await {
                    Some(SchedulerEvent::Subscribed { framework_id, .. }) => return framework_id,
                    Some(SchedulerEvent::Error(e)) => panic!("subscription refused: {e}"),
                    Some(_) => continue,
                    None => panic!("event stream closed before SUBSCRIBED"),
                }
            }
        })
        .await
        .expect("SUBSCRIBED within the timeout");
        TestFramework {
            scheduler,
            framework_id,
            events,
        }
    }

    /// The next event, or `None` after `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<SchedulerEvent> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Skips events until `pick` returns something; panics after `timeout`.
    pub async fn expect<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pick: impl FnMut(&SchedulerEvent) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(event)) => {
                    if let Some(t) = pick(&event) {
                        return t;
                    }
                }
                Ok(None) => panic!("event stream closed while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Whether an event matching `pick` arrives within `window` (other events are skipped).
    pub async fn sees_within(
        &mut self,
        window: Duration,
        mut pick: impl FnMut(&SchedulerEvent) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(event)) if pick(&event) => return true,
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// The next batch of offers.
    pub async fn offers(&mut self) -> Vec<Offer> {
        self.expect(WAIT, "offers", |e| match e {
            SchedulerEvent::Offers(o) => Some(o.clone()),
            _ => None,
        })
        .await
    }

    /// Launches one task running `command` with `cpus`/`mem` on the next
    /// offer; returns that offer.
    pub async fn launch_on_next_offer(
        &mut self,
        task_id: &str,
        command: &str,
        cpus: f64,
        mem: f64,
    ) -> Offer {
        let offer = self.offers().await.remove(0);
        let task = agora_sdk::TaskBuilder::new(task_id, command)
            .cpus(cpus)
            .mem(mem)
            .build(&offer);
        self.scheduler
            .launch(&offer, vec![task])
            .await
            .expect("launch");
        offer
    }

    /// Waits for an update of `task_id` into `state`.
    pub async fn update(&mut self, task_id: &str, state: TaskState) -> TaskStatus {
        let what = format!("{task_id} to reach {}", state.as_str_name());
        self.expect(WAIT, &what, |e| match e {
            SchedulerEvent::Update(s)
                if s.task_id.as_ref().map(|t| t.value.as_str()) == Some(task_id)
                    && s.state() == state =>
            {
                Some(s.clone())
            }
            _ => None,
        })
        .await
    }

    /// Waits until every task of `task_ids` has reached a terminal state,
    /// in whatever order their updates come; returns each one's last
    /// update.
    pub async fn terminal_updates(
        &mut self,
        task_ids: &[&str],
    ) -> std::collections::HashMap<String, TaskStatus> {
        let mut done = std::collections::HashMap::new();
        let what = format!("{task_ids:?} to end");
        while done.len() < task_ids.len() {
            let status = self
                .expect(WAIT, &what, |e| match e {
                    SchedulerEvent::Update(s)
                        if agora_common::task_state::is_terminal(s.state())
                            && task_ids.iter().any(|id| {
                                s.task_id.as_ref().map(|t| t.value.as_str()) == Some(*id)
                            }) =>
                    {
                        Some(s.clone())
                    }
                    _ => None,
                })
                .await;
            let id = status.task_id.clone().map(|t| t.value).unwrap_or_default();
            done.insert(id, status);
        }
        done
    }

    /// Waits for any update of `task_id`.
    pub async fn any_update(&mut self, task_id: &str) -> TaskStatus {
        let what = format!("an update of {task_id}");
        self.expect(WAIT, &what, |e| match e {
            SchedulerEvent::Update(s)
                if s.task_id.as_ref().map(|t| t.value.as_str()) == Some(task_id) =>
            {
                Some(s.clone())
            }
            _ => None,
        })
        .await
    }
}
