//! The event bus behind `/v2/events`: every event is serialized once and
//! shared by all subscribers. A subscriber that falls more than the buffer
//! behind loses events (and is told so by a gap), as Marathon drops slow
//! consumers rather than slowing the scheduler.
//!
//! An event whose body is large (a deployment's plan carries the whole
//! root group before and after) is published as a closure
//! ([`EventBus::publish_with`]): the core hands over shared snapshots, and
//! the first subscriber to send the event renders it, off the core.
//!
//! When a leader's term ends, its streams end too ([`EventBus::end_streams`]):
//! a client then reconnects and is forwarded to the new leader, instead of
//! listening to an instance that has nothing more to say.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, watch};

use crate::model::Timestamp;

/// How many events a subscriber may lag behind.
const BUFFER: usize = 8192;

/// Renders an event's JSON body (`eventType` and `timestamp` included).
type Render = Box<dyn FnOnce() -> String + Send>;

/// One event, rendered once, when first sent.
pub struct Event {
    /// Marathon's `eventType` (`status_update_event`, ...).
    pub event_type: String,
    data: OnceLock<String>,
    render: Mutex<Option<Render>>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("event_type", &self.event_type)
            .field("rendered", &self.data.get().is_some())
            .finish()
    }
}

impl Event {
    /// The JSON body, `eventType` and `timestamp` included (rendered by the
    /// first caller; the others share it).
    pub fn data(&self) -> &str {
        self.data.get_or_init(|| {
            let render = self
                .render
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            render.map(|render| render()).unwrap_or_default()
        })
    }
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
        let data = OnceLock::new();
        let _ = data.set(body(event_type, fields, Timestamp::now()));
        let event = Event {
            event_type: event_type.to_string(),
            data,
            render: Mutex::new(None),
        };
        let _ = self.tx.send(Arc::new(event));
    }

    /// Publishes an event whose fields `fields` renders, when a subscriber
    /// first sends it (never, without subscribers); stamped now.
    pub fn publish_with(&self, event_type: &str, fields: impl FnOnce() -> Value + Send + 'static) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let at = Timestamp::now();
        let name = event_type.to_string();
        let event = Event {
            event_type: event_type.to_string(),
            data: OnceLock::new(),
            render: Mutex::new(Some(Box::new(move || body(&name, fields(), at)))),
        };
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new subscription, starting with the next event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

/// `fields` with `eventType` and `timestamp`, as text.
fn body(event_type: &str, fields: Value, at: Timestamp) -> String {
    let mut body = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    body.insert("eventType".into(), json!(event_type));
    body.insert("timestamp".into(), json!(at));
    Value::Object(body).to_string()
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
        let body: Value = serde_json::from_str(event.data()).unwrap();
        assert_eq!(body["appId"], "/a");
        assert_eq!(body["eventType"], "app_terminated_event");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[tokio::test]
    async fn a_lazy_event_is_rendered_once_by_whoever_sends_it_first() {
        let bus = EventBus::new();
        let renders = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = renders.clone();
        bus.publish_with("nobody_listens", move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            json!({})
        });
        let (mut a, mut b) = (bus.subscribe(), bus.subscribe());
        let counted = renders.clone();
        bus.publish_with("deployment_info", move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            json!({"plan": {"id": "d"}})
        });
        let (ea, eb) = (a.recv().await.unwrap(), b.recv().await.unwrap());
        assert_eq!(
            renders.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "not before sent"
        );
        let body: Value = serde_json::from_str(ea.data()).unwrap();
        assert_eq!(body["plan"]["id"], "d");
        assert_eq!(body["eventType"], "deployment_info");
        assert_eq!(eb.data(), ea.data());
        assert_eq!(renders.load(std::sync::atomic::Ordering::SeqCst), 1);
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
