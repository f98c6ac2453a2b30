//! Marathon's REST API against the real server: shapes, errors and the
//! small behaviours clients rely on (collapsed slashes, embeds, booleans,
//! events). Bodies follow the examples of Marathon's published API spec.

use std::collections::BTreeSet;
use std::time::Duration;

use agora_integration_tests::{assert_eventually, Cluster, Marathon};
use serde_json::{json, Value};

/// Every key of Marathon's `app.App` type, plus what embeds add
/// (from Marathon's RAML/OpenAPI spec): a strict client accepts nothing else.
const APP_KEYS: &[&str] = &[
    "id",
    "acceptedResourceRoles",
    "args",
    "backoffFactor",
    "backoffSeconds",
    "cmd",
    "constraints",
    "container",
    "cpus",
    "dependencies",
    "disk",
    "env",
    "executor",
    "executorResources",
    "fetch",
    "healthChecks",
    "check",
    "instances",
    "labels",
    "maxLaunchDelaySeconds",
    "mem",
    "gpus",
    "ipAddress",
    "networks",
    "ports",
    "portDefinitions",
    "readinessChecks",
    "residency",
    "resourceLimits",
    "requirePorts",
    "secrets",
    "taskKillGracePeriodSeconds",
    "upgradeStrategy",
    "uris",
    "user",
    "version",
    "versionInfo",
    "killSelection",
    "unreachableStrategy",
    "tty",
    "role",
    // embeds
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "tasks",
    "lastTaskFailure",
    "readinessCheckResults",
    "taskStats",
];

/// Keys of Marathon's `task.Task`.
const TASK_KEYS: &[&str] = &[
    "appId",
    "healthCheckResults",
    "checkResult",
    "host",
    "id",
    "ipAddresses",
    "ports",
    "servicePorts",
    "slaveId",
    "state",
    "stagedAt",
    "startedAt",
    "version",
    "localVolumes",
    "region",
    "zone",
    "role",
];

fn assert_only_keys(value: &Value, allowed: &[&str], what: &str) {
    let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
    let extra: Vec<&String> = value
        .as_object()
        .expect("an object")
        .keys()
        .filter(|k| !allowed.contains(k.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "{what} has keys Marathon does not send: {extra:?}"
    );
}

fn marathon_port(marathon: &Marathon) -> u16 {
    marathon
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in the URL")
}

async fn start() -> (Cluster, Marathon) {
    let cluster = Cluster::builder()
        .agents(1)
        .agent_resources("cpus:4;mem:4096;disk:10000;ports:[31000-31100]")
        .start()
        .await;
    let marathon = Marathon::start(&cluster).await;
    (cluster, marathon)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_leader_ping_plugins_metrics() {
    let (cluster, marathon) = start().await;
    let ping = marathon.call("GET", "/ping", None).await;
    assert_eq!((ping.status, ping.text.as_str()), (200, "pong"));
    assert_eventually!(
        Duration::from_secs(20),
        marathon.get("/v2/info").await["frameworkId"].is_string(),
        "Marathon did not subscribe"
    );
    let info = marathon.get("/v2/info").await;
    for key in [
        "name",
        "version",
        "buildref",
        "elected",
        "leader",
        "frameworkId",
        "marathon_config",
        "zookeeper_config",
        "http_config",
    ] {
        assert!(info.get(key).is_some(), "/v2/info lacks {key}: {info}");
    }
    assert_eq!(info["name"], "marathon");
    // Clients gate features on Marathon's version: the API level Agora
    // implements, with Agora's own version and commit in `buildref`.
    assert_eq!(info["version"], agora_common::build::MARATHON_API_VERSION);
    assert!(
        info["buildref"]
            .as_str()
            .is_some_and(|b| b.starts_with(&format!("agora-{}", agora_common::VERSION))),
        "{info}"
    );
    assert_eq!(info["elected"], true);
    assert!(info["marathon_config"].is_object());
    assert!(info["zookeeper_config"].is_object());
    // From the configuration, not constants: no HTTPS port where none is
    // served, the ZooKeeper timeouts of the session Marathon would open.
    assert_eq!(
        info["http_config"],
        json!({"http_port": marathon_port(&marathon)})
    );
    assert_eq!(info["zookeeper_config"]["zk_session_timeout"], 10_000);
    assert_eq!(info["zookeeper_config"]["zk_connection_timeout"], 4_000);
    assert_eq!(info["marathon_config"]["framework_name"], "marathon");
    let leader = marathon.get("/v2/leader").await;
    assert_eq!(leader["leader"], info["leader"]);
    assert_eq!(marathon.get("/v2/plugins").await, json!({"plugins": []}));
    let metrics = marathon.get("/metrics").await;
    assert!(metrics["gauges"]["marathon.apps.active.gauge"]["value"].is_number());
    let framework = cluster.state().await["frameworks"][0].clone();
    assert_eq!(framework["name"], "marathon");
    assert_eq!(framework["id"], info["frameworkId"]);
    assert_eq!(framework["checkpoint"], true);
    assert_eq!(framework["failover_timeout"], 604800.0);
    marathon.stop().await;
    cluster.stop().await;
}

/// `HEAD /v2/pods` answered 200 and told clients pods were supported; their
/// pod calls then 404'd, and pods in a group were dropped silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pods_are_advertised_and_pods_in_a_group_are_refused() {
    let (cluster, marathon) = start().await;
    for method in ["HEAD", "GET"] {
        let answer = marathon.call(method, "/v2/pods", None).await;
        assert_eq!(answer.status, 404, "{method} /v2/pods: {}", answer.text);
    }
    let pod = r#"{"id": "/shop", "pods": [{"id": "/shop/cart", "containers": []}],
                  "groups": [{"id": "/shop/back", "pods": [{"id": "/shop/back/db"}]}]}"#;
    let refused = marathon.call("POST", "/v2/groups", Some(pod)).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let paths: Vec<&str> = refused.body["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["path"].as_str())
        .collect();
    assert_eq!(paths, ["/pods", "/groups(0)/pods"], "{}", refused.text);
    assert!(
        refused.text.contains("Pods are not supported"),
        "{}",
        refused.text
    );
    // Nothing was stored.
    let missing = marathon.call("GET", "/v2/groups/shop", None).await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    // What `GET /v2/groups` renders (`"pods": []`) goes back in unchanged.
    let round_trip = r#"{"id": "/shop", "pods": [], "apps": [{"id": "/shop/web", "cmd": "sleep 60", "instances": 0}]}"#;
    let created = marathon.call("POST", "/v2/groups", Some(round_trip)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    marathon.stop().await;
    cluster.stop().await;
}

/// `PUT /v2/groups?dryRun=true` deployed the group instead of returning the
/// steps it would take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_returns_the_plan_and_changes_nothing() {
    let (cluster, marathon) = start().await;
    let group = r#"{"id": "/dry", "apps": [{"id": "web", "cmd": "sleep 60", "instances": 2}]}"#;
    let root = format!(r#"{{"groups": [{group}]}}"#);
    for (path, body) in [
        ("/v2/groups/dry?dryRun=true", group),
        ("/v2/groups?dryRun=true", root.as_str()),
    ] {
        let answer = marathon.call("PUT", path, Some(body)).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        assert!(answer.deployment_id.is_none(), "{path}: no deployment");
        let actions: Vec<(String, String)> = answer.body["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .flat_map(|s| s["actions"].as_array().cloned().unwrap_or_default())
            .map(|a| {
                (
                    a["action"].as_str().unwrap_or_default().into(),
                    a["app"].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        assert!(
            actions.contains(&("StartApplication".into(), "/dry/web".into())),
            "{path}: {}",
            answer.text
        );
        assert_eq!(
            marathon.call("GET", "/v2/groups/dry", None).await.status,
            404,
            "{path} stored the group"
        );
        assert_eq!(marathon.get("/v2/deployments").await, json!([]), "{path}");
    }
    // Invalid is invalid, dry or not.
    let bad = r#"{"id": "/dry", "apps": [{"id": "web", "cmd": "sleep 60", "instances": -1}]}"#;
    let refused = marathon
        .call("PUT", "/v2/groups?dryRun=true", Some(bad))
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    marathon.stop().await;
    cluster.stop().await;
}

/// `DELETE /v2/leader` on a lone Marathon left it answering 503 `Could not
/// determine the current leader` for good: it must rejoin the election and
/// lead again. A backup it cannot write is refused, not ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_marathon_leads_again_after_abdicating() {
    let (cluster, marathon) = start().await;
    let refused = marathon
        .call(
            "DELETE",
            "/v2/leader?backup=file:///tmp/marathon-backup",
            None,
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.text.contains("'backup'"), "{}", refused.text);
    assert_eq!(marathon.call("GET", "/v2/apps", None).await.status, 200);

    let abdicated = marathon.call("DELETE", "/v2/leader", None).await;
    assert_eq!(abdicated.status, 200, "{}", abdicated.text);
    // It steps down (for 2 s, room for another instance to take over)...
    assert_eventually!(
        Duration::from_secs(10),
        marathon.call("GET", "/v2/apps", None).await.status == 503,
        "the Marathon did not step down"
    );
    // ...and, alone, leads again.
    assert_eventually!(
        Duration::from_secs(20),
        marathon.call("GET", "/v2/apps", None).await.status == 200
            && marathon.get("/v2/info").await["elected"] == true,
        "the lone Marathon did not lead again after abdicating"
    );
    marathon.stop().await;
    cluster.stop().await;
}

/// TRACE and other methods a path does not declare got 404s and other
/// codes: they answer 405 with the methods the path takes in `Allow`, and
/// `HEAD` answers wherever `GET` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_methods_answer_405_with_allow() {
    let (cluster, marathon) = start().await;
    let app = r#"{"id": "/hyg", "cmd": "sleep 60", "instances": 0}"#;
    assert_eq!(
        marathon.call("POST", "/v2/apps", Some(app)).await.status,
        201
    );
    let http = reqwest::Client::new();
    let table = [
        ("TRACE", "/v2/apps", "GET, HEAD, POST, PUT, PATCH"),
        ("DELETE", "/v2/apps", "GET, HEAD, POST, PUT, PATCH"),
        ("POST", "/v2/apps/hyg", "GET, HEAD, PUT, PATCH, DELETE"),
        ("GET", "/v2/apps/hyg/restart", "POST"),
        ("PUT", "/v2/apps/hyg/tasks", "GET, HEAD, DELETE"),
        ("POST", "/v2/apps/hyg/versions", "GET, HEAD"),
        ("TRACE", "/v2/groups", "GET, HEAD, POST, PUT, PATCH, DELETE"),
        ("POST", "/v2/info", "GET, HEAD"),
        ("PUT", "/v2/leader", "GET, HEAD, DELETE"),
        ("DELETE", "/v2/tasks", "GET, HEAD"),
        ("GET", "/v2/tasks/delete", "POST"),
        ("POST", "/ping", "GET, HEAD"),
        ("OPTIONS", "/metrics", "GET, HEAD"),
    ];
    for (method, path, allow) in table {
        let answer = http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", marathon.url()),
            )
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 405, "{method} {path}");
        assert_eq!(
            answer.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }
    for path in ["/v2/info", "/v2/apps", "/v2/apps/hyg", "/ping"] {
        let answer = http
            .head(format!("{}{path}", marathon.url()))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200, "HEAD {path}");
        assert!(
            answer.bytes().await.expect("body").is_empty(),
            "HEAD {path}"
        );
    }
    marathon.stop().await;
    cluster.stop().await;
}

/// `GET /v2/apps/{id}/tasks` answered JSON only: like `/v2/tasks`, it gives
/// Marathon's text form for `Accept: text/plain` (tools built for
/// haproxy-marathon-bridge read it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_tasks_answer_in_text_for_text_clients() {
    let (cluster, marathon) = start().await;
    let app = r#"{"id": "/txt", "cmd": "sleep 60", "instances": 1, "cpus": 0.1, "mem": 16,
                  "portDefinitions": [{"port": 0}]}"#;
    assert_eq!(
        marathon.call("POST", "/v2/apps", Some(app)).await.status,
        201
    );
    assert_eventually!(
        Duration::from_secs(20),
        marathon.get("/v2/apps/txt").await["app"]["tasksRunning"] == 1,
        "the task did not run"
    );
    let shown = marathon.get("/v2/apps/txt").await;
    let service_port = shown["app"]["portDefinitions"][0]["port"]
        .as_u64()
        .expect("service port");
    let task = &marathon.get("/v2/apps/txt/tasks").await["tasks"][0];
    let endpoint = format!(
        "{}:{}",
        task["host"].as_str().expect("host"),
        task["ports"][0].as_u64().expect("port")
    );
    let http = reqwest::Client::new();
    for path in ["/v2/apps/txt/tasks", "/v2/tasks"] {
        let answer = http
            .get(format!("{}{path}", marathon.url()))
            .header("accept", "text/plain")
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200, "{path}");
        let content_type = answer.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(
            content_type.starts_with("text/plain"),
            "{path}: {content_type}"
        );
        let text = answer.text().await.expect("text");
        assert_eq!(text, format!("txt\t{service_port}\t{endpoint}\n"), "{path}");
    }
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_validation_error_class() {
    let (cluster, marathon) = start().await;
    let post = |body: &'static str| marathon.call("POST", "/v2/apps", Some(body));

    // Not JSON at all.
    let bad = post("{not json").await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(bad.body["message"], "Invalid JSON");
    // A field of the wrong type: 400 naming it (the spec's example).
    let bad = post(r#"{"id": 5}"#).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body,
        json!({"message": "Invalid JSON", "details": [{"path": "/id", "errors": ["error.expected.jsstring"]}]})
    );
    // Semantic errors: 422 with the field's path.
    for (body, path) in [
        (r#"{"id": "/Bad_Id", "cmd": "x"}"#, "/id"),
        (r#"{"id": "/a", "cmd": "x", "cpus": -1}"#, "/cpus"),
        (r#"{"id": "/a", "cmd": "x", "instances": -2}"#, "/instances"),
        (
            r#"{"id": "/a", "cmd": "x", "upgradeStrategy": {"minimumHealthCapacity": 1.5, "maximumOverCapacity": 1}}"#,
            "/upgradeStrategy/minimumHealthCapacity",
        ),
        (
            r#"{"id": "/a", "cmd": "x", "constraints": [["hostname", "SOMETIMES"]]}"#,
            "/constraints(0)",
        ),
        (
            r#"{"id": "/a", "cmd": "x", "backoffFactor": 0.5}"#,
            "/backoffFactor",
        ),
        (
            r#"{"id": "/a", "cmd": "x", "env": {"P": {"secret": "nope"}}}"#,
            "/env/P",
        ),
        (r#"{"id": "/a"}"#, "/"),
        (
            r#"{"id": "/a", "cmd": "x", "portDefinitions": [{"port": 80, "name": "Bad Name"}]}"#,
            "/portDefinitions(0)/name",
        ),
        (r#"{"cmd": "x"}"#, "/id"),
    ] {
        let answer = marathon.call("POST", "/v2/apps", Some(body)).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
        assert_eq!(answer.body["message"], "Object is not valid", "{body}");
        let paths: Vec<&str> = answer.body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&path), "{body}: {paths:?}");
        assert!(answer.body["details"][0]["errors"][0].is_string());
    }
    // Nothing half-stored.
    assert_eq!(marathon.get("/v2/apps").await, json!({"apps": []}));
    // Unknown app and group: 404 with Marathon's messages.
    let missing = marathon.call("GET", "/v2/apps/not_existent", None).await;
    assert_eq!(missing.status, 404);
    let missing = marathon.call("GET", "/v2/apps/not-existent", None).await;
    assert_eq!(
        missing.body["message"],
        "App '/not-existent' does not exist"
    );
    let missing = marathon.call("GET", "/v2/groups/nope", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["message"], "Group '/nope' does not exist");
    // Conflict: the app exists.
    let body = r#"{"id": "/dup", "cmd": "sleep 100", "cpus": 0.1, "mem": 16, "instances": 0}"#;
    assert_eq!(post(body).await.status, 201);
    let again = post(body).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.body["message"],
        "An app with id [/dup] already exists."
    );
    // Bad boolean query value.
    let bad_flag = marathon
        .call("DELETE", "/v2/apps/dup?force=maybe", None)
        .await;
    assert_eq!(bad_flag.status, 400);
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_example_app_round_trips_with_only_marathon_fields() {
    let (cluster, marathon) = start().await;
    // The request example of POST /v2/apps, trimmed to what runs without Docker.
    let example = json!({
        "id": "/foo", "instances": 2, "cmd": "sleep 1000", "cpus": 0.1, "disk": 0, "mem": 16,
        "acceptedResourceRoles": ["*"], "backoffFactor": 1.15, "backoffSeconds": 1,
        "constraints": [["hostname", "LIKE", ".+"]],
        "env": {"XPS1": "Test", "XPS2": "Rest", "PASSWORD": {"secret": "secret1"}},
        "executor": "",
        "healthChecks": [{"gracePeriodSeconds": 300, "ignoreHttp1xx": false, "intervalSeconds": 20,
            "maxConsecutiveFailures": 3, "path": "/", "portIndex": 0, "protocol": "HTTP", "timeoutSeconds": 20}],
        "labels": {"owner": "zeus", "note": "Away from olympus"},
        "maxLaunchDelaySeconds": 3600,
        "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "http", "labels": {"vip": "192.168.0.1:80"}}],
        "requirePorts": false,
        "upgradeStrategy": {"maximumOverCapacity": 1, "minimumHealthCapacity": 1},
        "fetch": [],
        "secrets": {"secret1": {"source": "/db/password"}},
        "taskKillGracePeriodSeconds": 30,
    });
    let created = marathon
        .call("POST", "/v2/apps", Some(&example.to_string()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_only_keys(&created.body, APP_KEYS, "POST /v2/apps");
    marathon
        .wait_running("/foo", 2, Duration::from_secs(30))
        .await;
    let app = marathon.get("/v2/apps/foo").await["app"].clone();
    assert_only_keys(&app, APP_KEYS, "GET /v2/apps/foo");
    for task in app["tasks"].as_array().unwrap() {
        assert_only_keys(task, TASK_KEYS, "a task");
    }
    for key in ["cpus", "mem", "disk"] {
        assert_eq!(app[key].as_f64(), example[key].as_f64(), "{key}");
    }
    for key in [
        "cmd",
        "labels",
        "env",
        "secrets",
        "constraints",
        "taskKillGracePeriodSeconds",
        "maxLaunchDelaySeconds",
    ] {
        assert_eq!(app[key], example[key], "{key}");
    }
    // Health checks come back with Marathon's defaults filled in.
    let check = &app["healthChecks"][0];
    assert_eq!(check["intervalSeconds"], 20);
    assert_eq!(check["delaySeconds"], 15);
    assert_eq!(check["protocol"], "HTTP");
    assert_eq!(app["portDefinitions"][0]["name"], "http");
    assert_eq!(app["killSelection"], "YOUNGEST_FIRST");
    assert_eq!(app["networks"], json!([{"mode": "host"}]));
    let list = marathon
        .get("/v2/apps?embed=apps.tasks&embed=apps.lastTaskFailure")
        .await;
    assert_only_keys(&list["apps"][0], APP_KEYS, "GET /v2/apps");
    assert_eq!(list["apps"][0]["tasks"].as_array().unwrap().len(), 2);
    let tasks = marathon.get("/v2/tasks?status=running").await;
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 2);
    for d in marathon.get("/v2/deployments").await.as_array().unwrap() {
        assert_only_keys(
            d,
            &[
                "id",
                "version",
                "affectedApps",
                "affectedPods",
                "steps",
                "currentActions",
                "currentStep",
                "totalSteps",
            ],
            "a deployment",
        );
    }
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_embeds_selectors_and_booleans() {
    let (cluster, marathon) = start().await;
    for (id, env) in [("/prod/web", "prod"), ("/dev/web", "dev")] {
        let body = json!({"id": id, "cmd": "sleep 100", "cpus": 0.1, "mem": 16, "instances": 0,
            "labels": {"env": env}});
        let answer = marathon
            .call("POST", "/v2/apps?force=TRUE", Some(&body.to_string()))
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
    }
    // Repeated slashes collapse.
    let app = marathon.get("//v2//apps///prod//web").await;
    assert_eq!(app["app"]["id"], "/prod/web");
    // Selectors.
    let prod = marathon.get("/v2/apps?label=env==prod").await;
    assert_eq!(prod["apps"].as_array().unwrap().len(), 1);
    assert_eq!(prod["apps"][0]["id"], "/prod/web");
    let by_id = marathon.get("/v2/apps?id=dev").await;
    assert_eq!(by_id["apps"][0]["id"], "/dev/web");
    let by_cmd = marathon.get("/v2/apps?cmd=sleep").await;
    assert_eq!(by_cmd["apps"].as_array().unwrap().len(), 2);
    let in_group = marathon.get("/v2/apps/prod/*").await;
    assert_eq!(in_group["apps"].as_array().unwrap().len(), 1);
    // Embeds with or without prefixes.
    for embed in ["apps.tasks", "app.tasks", "tasks", "group.apps.tasks"] {
        let list = marathon.get(&format!("/v2/apps?embed={embed}")).await;
        assert!(list["apps"][0]["tasks"].is_array(), "{embed}");
    }
    // Clients that accept gzip get it (and the same list).
    // (`no_gzip`: the bytes as sent, whatever reqwest features the workspace enables.)
    let zipped = reqwest::Client::builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(format!("{}/v2/apps?embed=apps.tasks", marathon.url()))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip stream");
    let plain = marathon.get("/v2/apps").await;
    assert!(plain["apps"][0].get("tasks").is_none());
    assert!(plain["apps"][0]["tasksRunning"].is_number());
    let groups = marathon
        .get("/v2/groups?embed=group.apps&embed=group.groups")
        .await;
    assert_eq!(groups["groups"].as_array().unwrap().len(), 2);
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_as_server_sent_events() {
    let (cluster, marathon) = start().await;
    let mut stream = marathon
        .events(&[
            "api_post_event",
            "deployment_success",
            "status_update_event",
        ])
        .await;
    assert!(stream.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let created = marathon
        .call(
            "POST",
            "/v2/apps",
            Some(r#"{"id": "/ev", "cmd": "sleep 100", "cpus": 0.1, "mem": 16}"#),
        )
        .await;
    assert_eq!(created.status, 201);
    let seen = stream
        .read_until(Duration::from_secs(30), |seen| {
            seen.contains("event: api_post_event")
                && seen.contains("event: deployment_success")
                && seen.contains("TASK_RUNNING")
        })
        .await
        .to_string();
    // The filter held: no other event types.
    assert!(!seen.contains("event: event_stream_attached"), "{seen}");
    let data_line = seen
        .lines()
        .find(|l| l.starts_with("data:") && l.contains("api_post_event"))
        .unwrap();
    let event: Value = serde_json::from_str(data_line.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(event["eventType"], "api_post_event");
    assert_eq!(event["uri"], "/v2/apps");
    assert_eq!(event["appDefinition"]["id"], "/ev");
    assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
    // Clients with strict models crashed on deployment events without the
    // whole groups: the plan carries `original` and `target` as `GET
    // /v2/groups` renders them, and its steps.
    let data_line = seen
        .lines()
        .find(|l| l.starts_with("data:") && l.contains("\"deployment_success\""))
        .unwrap();
    let event: Value = serde_json::from_str(data_line.trim_start_matches("data:").trim()).unwrap();
    let plan = &event["plan"];
    assert_eq!(event["id"], plan["id"]);
    assert!(
        plan["version"].as_str().is_some_and(|v| v.ends_with('Z')),
        "{plan}"
    );
    for (root, apps) in [(&plan["original"], 0), (&plan["target"], 1)] {
        assert_eq!(root["id"], "/", "{plan}");
        let mut keys: Vec<&str> = root
            .as_object()
            .expect("a group")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["apps", "dependencies", "groups", "id", "pods", "version"]
        );
        assert_eq!(root["apps"].as_array().map(Vec::len), Some(apps), "{root}");
    }
    assert_eq!(plan["target"]["apps"][0]["id"], "/ev");
    assert_eq!(plan["target"]["apps"][0]["cmd"], "sleep 100");
    assert_eq!(plan["steps"][0]["actions"][0]["action"], "StartApplication");

    // A subscriber that goes away is announced to the others.
    let mut watcher = marathon.events(&["event_stream_detached"]).await;
    drop(stream);
    watcher
        .read_until(Duration::from_secs(30), |seen| {
            seen.contains("event: event_stream_detached")
        })
        .await;
    drop(watcher);
    marathon.stop().await;
    cluster.stop().await;
}
