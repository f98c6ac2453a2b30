//! The event bus behind `/v2/events`: every event is serialized once and
//! shared by all subscribers. A subscriber that falls more than the buffer
//! behind loses events (and is told so by a gap), as Marathon drops slow
//! consumers rather than slowing the scheduler.
//!
//! When a leader's term ends, its streams end too ([`EventBus::end_streams`]):
//! a client then reconnects and is forwarded to the new leader, instead of
//! listening to an instance that has nothing more to say.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, watch};

use crate::model::Timestamp;

/// How many events a subscriber may lag behind.
const BUFFER: usize = 8192;

/// One event, ready to send.
#[derive(Debug)]
pub struct Event {
    /// Marathon's `eventType` (`status_update_event`, ...).
    pub event_type: String,
    /// The JSON body, `eventType` and `timestamp` included.
    pub data: String,
}

/// Publishes events to every `/v2/events` subscriber.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    /// Bumped to end the open streams.
    ends: Arc<watch::Sender<u64>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        EventBus {
            tx: broadcast::channel(BUFFER).0,
            ends: Arc::new(watch::channel(0).0),
        }
    }

    /// Ends every stream open now (a leader's term ended).
    pub fn end_streams(&self) {
        self.ends.send_modify(|n| *n += 1);
    }

    /// Completes when the streams open now are to end.
    pub fn streams_ended(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut ends = self.ends.subscribe();
        async move {
            // The sender lives as long as the bus: an error means it is gone.
            let _ = ends.changed().await;
        }
    }

    /// Publishes `fields` as an event of `event_type` (adds `eventType` and `timestamp`).
    pub fn publish(&self, event_type: &str, fields: Value) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let mut body = match fields {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        body.insert("eventType".into(), json!(event_type));
        body.insert("timestamp".into(), json!(Timestamp::now()));
        let event = Event {
            event_type: event_type.to_string(),
            data: Value::Object(body).to_string(),
        };
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new subscription, starting with the next event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_typed_stamped_events() {
        let bus = EventBus::new();
        bus.publish("dropped_before_anyone_listens", json!({}));
        let mut rx = bus.subscribe();
        bus.publish("app_terminated_event", json!({"appId": "/a"}));
        let event = rx.recv().await.unwrap();
        assert_eq!(event.event_type, "app_terminated_event");
        let body: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(body["appId"], "/a");
        assert_eq!(body["eventType"], "app_terminated_event");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[tokio::test]
    async fn ending_streams_wakes_those_open_now() {
        let bus = EventBus::new();
        let ended = bus.streams_ended();
        bus.end_streams();
        tokio::time::timeout(std::time::Duration::from_secs(5), ended)
            .await
            .expect("ended");
        let later = bus.streams_ended();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), later)
                .await
                .is_err(),
            "a stream opened later stays open"
        );
    }
}
