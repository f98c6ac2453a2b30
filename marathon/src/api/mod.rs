//! The Marathon REST API v2, served with warp.
//!
//! One warp filter takes every request; routing is done here on the path's
//! segments because app and group ids are paths themselves (`/v2/apps/prod/web/tasks`)
//! and repeated slashes must collapse as in Marathon. A standby instance
//! forwards every call but `/ping`, `/metrics` and `GET /v2/leader` to the
//! leader, streams included, and answers 503 while it knows no leader (or
//! only itself, between being elected and having loaded the state).

mod apps;
mod events;
mod groups;
mod misc;
mod proxy;
pub mod render;
mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use warp::http::{HeaderMap, Method, Response, StatusCode};
use warp::Filter;

use crate::config::MarathonConfig;
use crate::core::{CoreHandle, DeploymentResult, SharedState};
use crate::error::ApiError;
use crate::events::EventBus;
use crate::model::AppDefaults;
use crate::storage::Storage;

/// A warp response.
pub type Reply = warp::reply::Response;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiContext {
    /// Settings.
    pub config: MarathonConfig,
    /// Defaults applied to apps.
    pub defaults: AppDefaults,
    /// The state (read-only here).
    pub state: SharedState,
    /// The core, for changes.
    pub core: CoreHandle,
    /// Stored versions.
    pub storage: Arc<Storage>,
    /// Events.
    pub events: EventBus,
    /// Asks the leader to step down (`DELETE /v2/leader`).
    pub abdicate: mpsc::Sender<()>,
    /// Forwards calls to the leader.
    pub proxy: reqwest::Client,
    /// Ends event streams when Marathon stops (the server waits for open streams).
    pub shutdown: agora_common::shutdown::Shutdown,
    /// Apps already rendered.
    pub renders: Arc<render::RenderCache>,
    /// Marathon's own probes, counted.
    pub probe_stats: Arc<crate::health::ProbeStats>,
}

/// One request, its path split into non-empty segments.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// Path segments (repeated slashes collapsed).
    pub segments: Vec<String>,
    /// The raw path as received.
    pub raw_path: String,
    /// The raw query string.
    pub raw_query: String,
    /// Query parameters in order.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The client's address.
    pub remote: Option<SocketAddr>,
}

impl Request {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a parameter, comma-separated values split.
    pub fn params(&self, name: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// A boolean parameter: `true`/`false` in any case; absent is `default`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.param(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some("") => Ok(true),
            Some(v) => Err(ApiError::BadRequest(format!(
                "Query parameter '{name}' must be true or false, got '{v}'"
            ))),
        }
    }

    /// The client's address as text.
    pub fn client_ip(&self) -> String {
        self.remote.map(|a| a.ip().to_string()).unwrap_or_default()
    }

    /// The path as Marathon reports it in events (collapsed).
    pub fn uri(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }
}

/// A JSON response.
pub fn json_reply(status: u16, body: &Value) -> Reply {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string().into())
        .expect("static headers are valid")
}

/// A JSON response already rendered.
pub fn json_bytes_reply(status: u16, body: Bytes) -> Reply {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.into())
        .expect("static headers are valid")
}

/// Whether the client takes gzip answers (and compression is on).
pub fn accepts_gzip(ctx: &ApiContext, req: &Request) -> bool {
    ctx.config.http_compression
        && req
            .headers
            .get_all("accept-encoding")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|e| e.trim().split(';').next() == Some("gzip"))
}

/// A rendered JSON answer, gzip-encoded if it was compressed.
pub fn rendered_reply(body: render::Rendered) -> Reply {
    let gzipped = body.gzipped;
    let mut reply = json_bytes_reply(200, body.bytes);
    reply.headers_mut().insert(
        "vary",
        warp::http::HeaderValue::from_static("Accept-Encoding"),
    );
    if gzipped {
        reply.headers_mut().insert(
            "content-encoding",
            warp::http::HeaderValue::from_static("gzip"),
        );
    }
    reply
}

/// An empty response.
pub fn empty_reply(status: u16) -> Reply {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .body(Default::default())
        .expect("static headers are valid")
}

/// `{"deploymentId", "version"}` with the `Marathon-Deployment-Id` header.
pub fn deployment_reply(status: u16, result: &DeploymentResult) -> Reply {
    let mut reply = json_reply(
        status,
        &serde_json::json!({"deploymentId": result.deployment_id, "version": result.version}),
    );
    if let Ok(v) = result.deployment_id.parse() {
        reply.headers_mut().insert("Marathon-Deployment-Id", v);
    }
    reply
}

/// Stored versions, newest first, as `/versions` endpoints list them.
pub fn newest_first(
    versions: Result<Vec<crate::model::Timestamp>, crate::storage::StorageError>,
) -> Result<Vec<crate::model::Timestamp>, ApiError> {
    let mut versions = versions.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    versions.reverse();
    Ok(versions)
}

fn error_reply(e: &ApiError) -> Reply {
    let mut reply = json_reply(e.status(), &e.body());
    if let ApiError::MethodNotAllowed(allow) = e {
        if let Ok(v) = allow.join(", ").parse() {
            reply.headers_mut().insert("Allow", v);
        }
    }
    reply
}

/// Methods of the API's fixed paths (apps and groups say theirs where they
/// route); `HEAD` wherever `GET` is, as HTTP has it.
const GET: &[&str] = &["GET", "HEAD"];
const GET_DELETE: &[&str] = &["GET", "HEAD", "DELETE"];
const POST: &[&str] = &["POST"];
const DELETE: &[&str] = &["DELETE"];

/// What a fixed path takes, `None` for the paths routed further.
fn fixed_methods(segments: &[&str]) -> Option<&'static [&'static str]> {
    Some(match segments {
        ["ping"] | ["metrics"] => GET,
        ["v2", "info" | "plugins" | "events" | "queue" | "deployments" | "tasks"] => GET,
        ["v2", "leader"] | ["v2", "deployments", _] => GET_DELETE,
        ["v2", "tasks", "delete"] => POST,
        ["v2", "queue", rest @ .., "delay"] if !rest.is_empty() => DELETE,
        _ => return None,
    })
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    ctx: ApiContext,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let ctx = Arc::new(ctx);
    let route = warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::bytes())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  raw_query: String,
                  headers: HeaderMap,
                  remote: Option<SocketAddr>,
                  body: Bytes| {
                let ctx = ctx.clone();
                async move {
                    let request = Request {
                        method,
                        segments: path
                            .as_str()
                            .split('/')
                            .filter(|s| !s.is_empty())
                            .map(|s| percent_decode(&s.replace('+', "%2B")))
                            .collect(),
                        raw_path: path.as_str().to_string(),
                        query: parse_query(&raw_query),
                        raw_query,
                        headers,
                        body,
                        remote,
                    };
                    handle(&ctx, request).await
                }
            },
        );
    warp::serve(route)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

async fn handle(ctx: &ApiContext, req: Request) -> Reply {
    let (elected, ready, leader) = {
        let st = crate::core::read(&ctx.state);
        (
            st.leadership.elected,
            st.ready,
            st.leadership.leader.clone(),
        )
    };
    let leading = elected && ready;
    if !leading && !is_local(&req) {
        let unavailable = |message: String| error_reply(&ApiError::Unavailable(message));
        let own = own_address(ctx);
        return match leader {
            _ if elected => unavailable(format!(
                "{own} was elected and is loading its state; try again shortly"
            )),
            // Forwarded already: the sender took this instance for the
            // leader; forwarding again could loop between standbys.
            Some(_) if req.headers.contains_key(proxy::VIA) => unavailable(format!(
                "Could not determine the current leader: {own} does not lead"
            )),
            Some(leader) if leader != own => proxy::forward(ctx, &leader, req).await,
            _ => unavailable("Could not determine the current leader".into()),
        };
    }
    // `HEAD` is answered as `GET`, without the body (the server drops it).
    let mut req = req;
    if req.method == Method::HEAD {
        req.method = Method::GET;
    }
    let mut reply = match route(ctx, &req).await {
        Ok(reply) => reply,
        Err(e) => error_reply(&e),
    };
    if leading {
        if let Ok(url) = ctx.config.own_url().parse() {
            reply.headers_mut().insert(proxy::LEADER, url);
        }
    }
    reply
}

/// Calls every instance answers itself.
fn is_local(req: &Request) -> bool {
    let s: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    matches!(s.as_slice(), ["ping"] | ["metrics"])
        || (req.method == Method::GET && matches!(s.as_slice(), ["v2", "leader"]))
}

/// This instance's `host:port`, as it announces itself.
pub fn own_address(ctx: &ApiContext) -> String {
    format!("{}:{}", ctx.config.hostname, ctx.config.http_addr.port())
}

async fn route(ctx: &ApiContext, req: &Request) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = &req.method;
    if let Some(allow) = fixed_methods(&segments) {
        if !allow.contains(&m.as_str()) {
            return Err(ApiError::MethodNotAllowed(allow));
        }
    }
    match segments.as_slice() {
        ["ping"] => Ok(misc::ping()),
        ["metrics"] => Ok(misc::metrics(ctx)),
        ["v2", "info"] if m == Method::GET => Ok(misc::info(ctx)),
        ["v2", "leader"] => misc::leader(ctx, req).await,
        ["v2", "plugins"] if m == Method::GET => {
            Ok(json_reply(200, &serde_json::json!({"plugins": []})))
        }
        // No pods: `/v2/pods` answers 404, as a Marathon without pods does,
        // so that clients probing it (`HEAD /v2/pods`) leave pods alone.
        ["v2", "events"] if m == Method::GET => Ok(events::stream(ctx, req)),
        ["v2", "queue"] if m == Method::GET => Ok(misc::queue(ctx, req)),
        ["v2", "queue", rest @ .., "delay"] if m == Method::DELETE && !rest.is_empty() => {
            misc::reset_delay(ctx, rest).await
        }
        ["v2", "deployments"] if m == Method::GET => Ok(misc::deployments(ctx)),
        ["v2", "deployments", id] if m == Method::GET => misc::deployment(ctx, id),
        ["v2", "deployments", id] if m == Method::DELETE => {
            misc::cancel_deployment(ctx, req, id).await
        }
        ["v2", "tasks"] if m == Method::GET => tasks::list(ctx, req),
        ["v2", "tasks", "delete"] if m == Method::POST => tasks::delete_many(ctx, req).await,
        ["v2", "apps", rest @ ..] => apps::route(ctx, req, rest).await,
        ["v2", "groups", rest @ ..] => groups::route(ctx, req, rest).await,
        _ => Err(ApiError::NotFound(format!(
            "The requested resource '{}' could not be found",
            req.raw_path
        ))),
    }
}

fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (as a space, in queries).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        assert_eq!(
            parse_query("embed=apps.tasks&label=a%3D%3Db&force"),
            vec![
                ("embed".to_string(), "apps.tasks".to_string()),
                ("label".to_string(), "a==b".to_string()),
                ("force".to_string(), String::new()),
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a+b"), "a b");
    }
}
