//! Forwarding calls from a standby to the leader, bodies streamed both ways
//! (so `/v2/events` works through a standby too).

use futures::TryStreamExt;
use warp::http::Response;

use super::{json_reply, ApiContext, Reply, Request};

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
    outgoing = outgoing
        .header("X-Marathon-Via", super::own_address(ctx))
        .body(req.body.clone());
    let answer = match outgoing.send().await {
        Ok(a) => a,
        Err(e) => {
            return json_reply(
                502,
                &serde_json::json!({"message": format!("Could not reach the leader at {leader}: {e}")}),
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
    let body = answer.bytes_stream().map_err(std::io::Error::other);
    let streamed = warp::reply::Reply::into_response(warp::reply::stream(body));
    let (_, body) = streamed.into_parts();
    builder.body(body).unwrap_or_else(|_| {
        json_reply(
            502,
            &serde_json::json!({"message": "bad answer from the leader"}),
        )
    })
}
