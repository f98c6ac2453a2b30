//! Forwarding calls from a standby to the leader. The answer's body is
//! streamed as it arrives (so `/v2/events` works through a standby too) and
//! ends when the leader's does or when this instance stops.
//!
//! As in Marathon, the forwarded call carries `X-Marathon-Via: <standby>`
//! (a standby never forwards a call that carries it), and so does the answer;
//! the leader's answers carry `X-Marathon-Leader: <its URL>`.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use warp::http::Response;

use super::{json_reply, ApiContext, Reply, Request};

/// Names the standby that forwarded a call (and its answer).
pub(super) const VIA: &str = "x-marathon-via";

/// The leader's URL, on every answer of the leader.
pub(super) const LEADER: &str = "x-marathon-leader";

/// How long the leader may take to start answering (a frozen leader must
/// not hang the standby's clients). Only the head is bounded: bodies, event
/// streams above all, take as long as they take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers that belong to one hop and are not forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub(super) async fn forward(ctx: &ApiContext, leader: &str, req: Request) -> Reply {
    let mut url = format!("http://{leader}{}", req.raw_path);
    if !req.raw_query.is_empty() {
        url.push('?');
        url.push_str(&req.raw_query);
    }
    let method = match reqwest::Method::from_bytes(req.method.as_str().as_bytes()) {
        Ok(m) => m,
        Err(_) => return json_reply(400, &serde_json::json!({"message": "unsupported method"})),
    };
    let mut outgoing = ctx.proxy.request(method, &url);
    for (name, value) in req.headers.iter() {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || n == "host" || n == "content-length" {
            continue;
        }
        outgoing = outgoing.header(n, value.as_bytes());
    }
    let own = super::own_address(ctx);
    outgoing = outgoing.header(VIA, own.as_str()).body(req.body);
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, outgoing.send()).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            return json_reply(
                502,
                &serde_json::json!({"message": format!("Could not reach the leader at {leader}: {e}")}),
            )
        }
        Err(_) => {
            return json_reply(
                504,
                &serde_json::json!({"message": format!(
                    "The leader at {leader} did not answer within {ANSWER_TIMEOUT:?}"
                )}),
            )
        }
    };
    let mut builder = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if HOP_BY_HOP.contains(&name.as_str()) || name.as_str() == "content-length" {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    builder = builder.header(VIA, own.as_str());
    // Open streams must not keep this instance's server from stopping.
    let stop = ctx.shutdown.clone();
    let body = answer
        .bytes_stream()
        .map_err(std::io::Error::other)
        .take_until(async move { stop.fired().await });
    let streamed = warp::reply::Reply::into_response(warp::reply::stream(body));
    let (_, body) = streamed.into_parts();
    builder.body(body).unwrap_or_else(|_| {
        json_reply(
            502,
            &serde_json::json!({"message": "bad answer from the leader"}),
        )
    })
}
