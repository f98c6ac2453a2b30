//! `/v2/events`: Server-Sent Events (`event: <type>` / `data: <json>`, as
//! Marathon writes them), filtered by `event_type`, with an empty line every
//! 15 s so proxies and clients see bytes on an idle stream.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde_json::json;
use tokio_stream::wrappers::{BroadcastStream, IntervalStream};
use warp::http::Response;

use super::{ApiContext, Reply, Request};

/// Time between keep-alive lines.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Event types Agora adds to Marathon's: sent only to streams that name
/// them in `event_type`, since clients with strict models refuse types
/// they do not know.
const EXTENSIONS: &[&str] = &["unhealthy_task_kill_held_event"];

/// Whether a stream asking for `types` (none: all of Marathon's) gets
/// events of `event_type`.
fn wanted(types: &[String], event_type: &str) -> bool {
    if types.is_empty() {
        !EXTENSIONS.contains(&event_type)
    } else {
        types.iter().any(|t| t == event_type)
    }
}

/// Announces `event_stream_detached` when a subscriber's stream is dropped.
struct Detached {
    events: crate::events::EventBus,
    remote: String,
}

impl Drop for Detached {
    fn drop(&mut self) {
        self.events.publish(
            "event_stream_detached",
            json!({"remoteAddress": self.remote}),
        );
    }
}

pub(super) fn stream(ctx: &ApiContext, req: &Request) -> Reply {
    let types = req.params("event_type");
    let rx = ctx.events.subscribe();
    // Announced to every subscriber (this one too, unless it filters it out).
    ctx.events.publish(
        "event_stream_attached",
        json!({"remoteAddress": req.client_ip()}),
    );
    let detached = Detached {
        events: ctx.events.clone(),
        remote: req.client_ip(),
    };
    let events = BroadcastStream::new(rx).filter_map(move |item| {
        // Owned by the stream: dropped (and announced) when the client goes.
        let _detached = &detached;
        let wanted = item.ok().filter(|event| wanted(&types, &event.event_type));
        async move {
            wanted.map(|event| {
                Bytes::from(format!(
                    "event: {}\ndata: {}\n\n",
                    event.event_type,
                    event.data()
                ))
            })
        }
    });
    let mut ticks = tokio::time::interval(KEEP_ALIVE);
    ticks.reset();
    let keep_alive = IntervalStream::new(ticks).map(|_| Bytes::from_static(b"\n"));
    let stop = ctx.shutdown.clone();
    let term_ended = ctx.events.streams_ended();
    let body = stream::select(events, keep_alive)
        .take_until(async move {
            tokio::select! {
                _ = stop.fired() => {}
                _ = term_ended => {}
            }
        })
        .map(Ok::<_, std::convert::Infallible>);
    let (parts, body) = warp::reply::Reply::into_response(warp::reply::stream(body)).into_parts();
    let mut reply = Response::from_parts(parts, body);
    let headers = reply.headers_mut();
    headers.insert(
        "content-type",
        warp::http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        "cache-control",
        warp::http::HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_reach_only_the_streams_that_name_them() {
        let all: Vec<String> = Vec::new();
        let named = vec!["unhealthy_task_kill_held_event".to_string()];
        assert!(wanted(&all, "status_update_event"));
        assert!(!wanted(&all, "unhealthy_task_kill_held_event"));
        assert!(wanted(&named, "unhealthy_task_kill_held_event"));
        assert!(!wanted(&named, "status_update_event"));
    }
}
