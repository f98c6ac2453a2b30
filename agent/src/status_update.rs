//! The status update manager: at-least-once, in-order delivery of task
//! status updates.
//!
//! A pure core in the raft-rs manner: no clock, no network. The agent actor
//! passes `now` in, sends whatever the manager hands back, and feeds
//! acknowledgements in. Per task there is one *stream*, a queue whose head is
//! the only update in flight: it is resent on a timer that starts at the
//! configured interval and doubles up to [`MAX_RETRY_INTERVAL`], and resent
//! at once after every (re)registration ([`StatusUpdateManager::flush`]).
//! An acknowledgement carrying the head's uuid pops it and puts the next one
//! in flight; any other uuid is a stale duplicate and is ignored.
//!
//! Checkpointing is the actor's: it writes [`StatusUpdateManager::pending`]
//! with the task after each change, and a recovering agent enqueues the
//! checkpointed updates again, in order.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use agora_common::backoff::Backoff;
use agora_common::task_state::is_terminal;
use agora_proto::{TaskState, TaskStatus};

/// The cap of the retry interval (Mesos: 10 minutes).
pub const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(600);

/// Identifies a stream: (framework id, task id).
pub type StreamKey = (String, String);

/// One update, as queued.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The task's framework.
    pub framework_id: String,
    /// The status, with its uuid set.
    pub status: TaskStatus,
}

impl Update {
    /// The task id of the status.
    pub fn task_id(&self) -> &str {
        self.status
            .task_id
            .as_ref()
            .map(|t| t.value.as_str())
            .unwrap_or_default()
    }

    fn key(&self) -> StreamKey {
        (self.framework_id.clone(), self.task_id().to_string())
    }
}

#[derive(Debug)]
struct Stream {
    pending: VecDeque<Update>,
    /// When the head is due for (re)sending.
    next_send: Instant,
    backoff: Backoff,
}

/// What an acknowledgement did.
#[derive(Debug, PartialEq)]
pub enum Acked {
    /// No stream, or the uuid is not the head's: nothing changed.
    Ignored,
    /// The head was popped.
    Popped {
        /// Whether the popped update was terminal: the stream is then closed
        /// and the task may be forgotten.
        terminal: bool,
        /// The next update to send now, if any (boxed: updates are large).
        next: Option<Box<Update>>,
    },
}

/// The queues of every task's updates.
#[derive(Debug)]
pub struct StatusUpdateManager {
    initial_interval: Duration,
    streams: BTreeMap<StreamKey, Stream>,
}

impl StatusUpdateManager {
    /// A manager whose first retry comes `initial_interval` after a send.
    pub fn new(initial_interval: Duration) -> Self {
        StatusUpdateManager {
            initial_interval,
            streams: BTreeMap::new(),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.initial_interval, MAX_RETRY_INTERVAL, 2.0)
    }

    /// Queues `update`; returns it when it becomes the head, in which case
    /// the caller sends it now.
    pub fn enqueue(&mut self, update: Update, now: Instant) -> Option<Update> {
        let key = update.key();
        if let Some(stream) = self.streams.get_mut(&key) {
            stream.pending.push_back(update);
            return None;
        }
        let mut backoff = self.backoff();
        let next_send = now + backoff.next_delay();
        self.streams.insert(
            key,
            Stream {
                pending: VecDeque::from([update.clone()]),
                next_send,
                backoff,
            },
        );
        Some(update)
    }

    /// Applies an acknowledgement for `uuid` of the task's head update.
    pub fn acknowledge(
        &mut self,
        framework_id: &str,
        task_id: &str,
        uuid: &[u8],
        now: Instant,
    ) -> Acked {
        let key = (framework_id.to_string(), task_id.to_string());
        let Some(stream) = self.streams.get_mut(&key) else {
            return Acked::Ignored;
        };
        let head_matches = stream
            .pending
            .front()
            .is_some_and(|head| head.status.uuid.as_deref() == Some(uuid));
        if !head_matches {
            return Acked::Ignored;
        }
        let popped = stream.pending.pop_front();
        let terminal =
            popped.is_some_and(|u| TaskState::try_from(u.status.state).is_ok_and(is_terminal));
        if terminal || stream.pending.is_empty() {
            // Nothing may follow a terminal update: drop the stream (and
            // anything wrongly queued behind it).
            self.streams.remove(&key);
            return Acked::Popped {
                terminal,
                next: None,
            };
        }
        stream.backoff.reset();
        stream.next_send = now + stream.backoff.next_delay();
        Acked::Popped {
            terminal,
            next: stream.pending.front().cloned().map(Box::new),
        }
    }

    /// The heads whose retry time has come; their next retry is scheduled
    /// with a doubled interval.
    pub fn due(&mut self, now: Instant) -> Vec<Update> {
        let mut out = Vec::new();
        for stream in self.streams.values_mut() {
            if stream.next_send <= now {
                stream.next_send = now + stream.backoff.next_delay();
                out.extend(stream.pending.front().cloned());
            }
        }
        out
    }

    /// Every head, to be resent at once after a (re)registration; the retry
    /// timers start over.
    pub fn flush(&mut self, now: Instant) -> Vec<Update> {
        let mut out = Vec::new();
        for stream in self.streams.values_mut() {
            stream.backoff.reset();
            stream.next_send = now + stream.backoff.next_delay();
            out.extend(stream.pending.front().cloned());
        }
        out
    }

    /// When [`StatusUpdateManager::due`] next has something to return.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.streams.values().map(|s| s.next_send).min()
    }

    /// The task's unacknowledged statuses, oldest (the one in flight) first.
    pub fn pending(&self, framework_id: &str, task_id: &str) -> Vec<TaskStatus> {
        self.streams
            .get(&(framework_id.to_string(), task_id.to_string()))
            .map(|s| s.pending.iter().map(|u| u.status.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether the task still has unacknowledged updates.
    pub fn has_pending(&self, framework_id: &str, task_id: &str) -> bool {
        self.streams
            .contains_key(&(framework_id.to_string(), task_id.to_string()))
    }

    /// The number of unacknowledged updates over all tasks.
    pub fn pending_count(&self) -> usize {
        self.streams.values().map(|s| s.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::TaskId;

    const SECOND: Duration = Duration::from_secs(1);

    fn update(task: &str, state: TaskState, uuid: u8) -> Update {
        Update {
            framework_id: "f".into(),
            status: TaskStatus {
                task_id: Some(TaskId { value: task.into() }),
                state: state as i32,
                uuid: Some(vec![uuid]),
                ..Default::default()
            },
        }
    }

    fn uuids(updates: &[Update]) -> Vec<u8> {
        updates
            .iter()
            .map(|u| u.status.uuid.as_ref().expect("uuid")[0])
            .collect()
    }

    #[test]
    fn one_in_flight_per_task_in_order() {
        let t0 = Instant::now();
        let mut m = StatusUpdateManager::new(SECOND);
        assert!(m
            .enqueue(update("t", TaskState::TaskRunning, 1), t0)
            .is_some());
        assert!(m
            .enqueue(update("t", TaskState::TaskFinished, 2), t0)
            .is_none());
        // Another task has its own stream.
        assert!(m
            .enqueue(update("u", TaskState::TaskRunning, 3), t0)
            .is_some());

        let acked = m.acknowledge("f", "t", &[1], t0);
        let Acked::Popped { terminal, next } = acked else {
            panic!("expected a pop, got {acked:?}");
        };
        assert!(!terminal);
        assert_eq!(next.map(|u| u.status.uuid.clone()), Some(Some(vec![2])));

        assert_eq!(
            m.acknowledge("f", "t", &[2], t0),
            Acked::Popped {
                terminal: true,
                next: None
            }
        );
        assert!(!m.has_pending("f", "t"));
        assert!(m.has_pending("f", "u"));
    }

    #[test]
    fn wrong_uuid_is_ignored() {
        let t0 = Instant::now();
        let mut m = StatusUpdateManager::new(SECOND);
        m.enqueue(update("t", TaskState::TaskRunning, 1), t0);
        m.enqueue(update("t", TaskState::TaskFinished, 2), t0);
        // The second update's uuid is not in flight yet.
        assert_eq!(m.acknowledge("f", "t", &[2], t0), Acked::Ignored);
        assert_eq!(m.acknowledge("f", "other", &[1], t0), Acked::Ignored);
        assert_eq!(m.acknowledge("g", "t", &[1], t0), Acked::Ignored);
        assert_eq!(m.pending_count(), 2);
    }

    #[test]
    fn retries_back_off_to_the_cap() {
        let t0 = Instant::now();
        let mut m = StatusUpdateManager::new(SECOND);
        m.enqueue(update("t", TaskState::TaskRunning, 1), t0);
        assert_eq!(m.next_deadline(), Some(t0 + SECOND));
        assert!(m.due(t0 + SECOND / 2).is_empty());

        let mut now = t0 + SECOND;
        let mut gaps = Vec::new();
        for _ in 0..12 {
            assert_eq!(uuids(&m.due(now)), vec![1]);
            let next = m.next_deadline().expect("still pending");
            gaps.push((next - now).as_secs());
            now = next;
        }
        assert_eq!(&gaps[..4], &[2, 4, 8, 16]);
        assert_eq!(gaps.last(), Some(&600), "capped at ten minutes");
    }

    #[test]
    fn flush_resends_every_head_and_restarts_timers() {
        let t0 = Instant::now();
        let mut m = StatusUpdateManager::new(SECOND);
        m.enqueue(update("t", TaskState::TaskRunning, 1), t0);
        m.enqueue(update("t", TaskState::TaskFinished, 2), t0);
        m.enqueue(update("u", TaskState::TaskRunning, 3), t0);
        let later = t0 + 10 * SECOND;
        m.due(later);
        m.due(later + 2 * SECOND);
        let flushed = m.flush(later + 3 * SECOND);
        assert_eq!(uuids(&flushed), vec![1, 3], "only heads, once each");
        assert_eq!(m.next_deadline(), Some(later + 4 * SECOND));
    }

    #[test]
    fn an_ack_restarts_the_timer_for_the_next_update() {
        let t0 = Instant::now();
        let mut m = StatusUpdateManager::new(SECOND);
        m.enqueue(update("t", TaskState::TaskRunning, 1), t0);
        m.enqueue(update("t", TaskState::TaskFinished, 2), t0);
        m.due(t0 + SECOND);
        m.due(t0 + 3 * SECOND);
        let t1 = t0 + 4 * SECOND;
        m.acknowledge("f", "t", &[1], t1);
        assert_eq!(m.next_deadline(), Some(t1 + SECOND));
    }
}
