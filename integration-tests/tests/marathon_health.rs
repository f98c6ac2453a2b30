//! Health checks, readiness checks and health-aware deployments end to end:
//! real tasks (a tiny HTTP server whose health files toggle, see
//! [`HealthServer`]) on a real agent, checked by the agent (Mesos checks)
//! and by Marathon itself (HTTP, HTTPS, TCP), driven through the REST API.

use std::sync::Arc;
use std::time::Duration;

use agora_integration_tests::{assert_eventually, Cluster, HealthServer, Marathon};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(40);

async fn cluster() -> Cluster {
    Cluster::builder()
        .agents(1)
        .agent_resources("cpus:8;mem:8192;disk:10000;ports:[31000-31300]")
        .start()
        .await
}

/// An app running the health server, with `extra` fields on top.
fn server_app(id: &str, server: &HealthServer, instances: u32, extra: Value) -> String {
    let mut app = json!({"id": id, "cmd": server.cmd(), "cpus": 0.05, "mem": 32,
        "instances": instances, "backoffSeconds": 0, "portDefinitions": [{"port": 0, "name": "http"}]});
    if let (Some(app), Some(extra)) = (app.as_object_mut(), extra.as_object()) {
        app.extend(extra.clone());
    }
    app.to_string()
}

/// An HTTP check on `/health` every second, killing after `failures`
/// (0: never) outside a 10 s grace period.
fn http_check(protocol: &str, failures: u32) -> Value {
    json!({"protocol": protocol, "path": "/health", "portIndex": 0, "intervalSeconds": 1,
        "timeoutSeconds": 1, "maxConsecutiveFailures": failures, "gracePeriodSeconds": 10,
        "delaySeconds": 0})
}

/// The events of type `kind` in an event stream's text.
fn events_of(seen: &str, kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut current = None;
    for line in seen.lines() {
        if let Some(event) = line.strip_prefix("event: ") {
            current = Some(event.trim().to_string());
        } else if let Some(data) = line.strip_prefix("data: ") {
            if current.as_deref() == Some(kind) {
                if let Ok(v) = serde_json::from_str(data) {
                    out.push(v);
                }
            }
        }
    }
    out
}

fn ids(tasks: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = tasks
        .iter()
        .filter_map(|t| t["id"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids
}

async fn create(marathon: &Marathon, body: &str) {
    let created = marathon.call("POST", "/v2/apps", Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
}

async fn app(marathon: &Marathon, id: &str) -> Value {
    marathon.get(&format!("/v2/apps{id}")).await["app"].clone()
}

/// Waits until `id` has `n` running tasks, all healthy.
async fn wait_healthy(marathon: &Marathon, id: &str, n: u64) {
    assert_eventually!(
        WAIT,
        {
            let a = app(marathon, id).await;
            a["tasksHealthy"] == n && a["tasksRunning"] == n
        },
        "{id} not healthy: {}",
        app(marathon, id).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_checks_an_http_task_kills_it_when_unhealthy_and_replaces_it() {
    let cluster = cluster().await;
    let marathon = Marathon::start(&cluster).await;
    let server = HealthServer::new();
    let checks = json!({"healthChecks": [http_check("HTTP", 2), {"protocol": "TCP", "portIndex": 0, "intervalSeconds": 1}]});
    create(&marathon, &server_app("/web", &server, 1, checks)).await;
    // The deployment ends only once the instance is healthy.
    marathon.wait_for_deployments(WAIT).await;
    let shown = app(&marathon, "/web").await;
    assert_eq!(shown["tasksHealthy"], 1, "{shown}");
    assert_eq!(shown["tasksUnhealthy"], 0);
    let task = &shown["tasks"][0];
    let results = task["healthCheckResults"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{task}");
    for r in results {
        assert_eq!(r["alive"], true, "{r}");
        assert_eq!(r["consecutiveFailures"], 0);
        assert!(
            r["firstSuccess"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{r}"
        );
        assert!(r["lastSuccess"].is_string());
        assert!(r["lastFailure"].is_null());
        assert_eq!(r["taskId"], task["id"]);
        assert!(r["instanceId"]
            .as_str()
            .is_some_and(|i| i.contains(".instance-")));
    }
    let first = task["id"].as_str().expect("an id").to_string();

    let mut events = marathon
        .events(&[
            "health_status_changed_event",
            "failed_health_check_event",
            "unhealthy_task_kill_event",
            "instance_health_changed_event",
        ])
        .await;
    server.set_sick(&first, true);
    let seen = events
        .read_until(WAIT, |s| s.contains("event: unhealthy_task_kill_event"))
        .await
        .to_string();
    let kill = &events_of(&seen, "unhealthy_task_kill_event")[0];
    assert_eq!(kill["taskId"], first.as_str());
    assert_eq!(kill["appId"], "/web");
    assert!(
        kill["reason"]
            .as_str()
            .is_some_and(|r| r.contains("answered 500")),
        "{kill}"
    );
    let changed = events_of(&seen, "health_status_changed_event");
    assert!(
        changed
            .iter()
            .any(|e| e["taskId"] == first.as_str() && e["alive"] == false),
        "{seen}"
    );
    assert!(events_of(&seen, "failed_health_check_event")
        .iter()
        .any(|e| e["taskId"] == first.as_str() && e["healthCheck"]["protocol"] == "HTTP"));
    assert!(events_of(&seen, "instance_health_changed_event")
        .iter()
        .any(|e| e["healthy"] == false && e["runSpecId"] == "/web"));

    // The killed one counts as a failure (looked at before its replacement
    // runs: a replacement that fails to start would be the last failure).
    assert_eventually!(
        WAIT,
        marathon.get("/v2/apps/web?embed=app.lastTaskFailure").await["app"]["lastTaskFailure"]
            ["taskId"]
            == first.as_str(),
        "the health kill is not the last failure: {}",
        marathon.get("/v2/apps/web?embed=app.lastTaskFailure").await
    );
    // Replaced by a healthy instance.
    assert_eventually!(
        WAIT,
        {
            let a = app(&marathon, "/web").await;
            a["tasksHealthy"] == 1 && a["tasks"][0]["id"] != first.as_str()
        },
        "not replaced: {}",
        app(&marathon, "/web").await
    );
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_checks_run_on_the_agent_which_kills_an_unhealthy_task() {
    let cluster = cluster().await;
    let marathon = Marathon::start(&cluster).await;
    let server = HealthServer::new();
    let command = format!("test ! -e {}/command-sick", server.dir().display());
    create(
        &marathon,
        &server_app(
            "/mesos-http",
            &server,
            1,
            json!({"healthChecks": [http_check("MESOS_HTTP", 2)]}),
        ),
    )
    .await;
    create(
        &marathon,
        &server_app(
            "/mesos-command",
            &server,
            1,
            json!({"healthChecks": [{
        "protocol": "COMMAND", "command": {"value": command}, "intervalSeconds": 1,
        "timeoutSeconds": 2, "maxConsecutiveFailures": 2, "gracePeriodSeconds": 10}]}),
        ),
    )
    .await;
    create(
        &marathon,
        &server_app(
            "/mesos-tcp",
            &server,
            1,
            json!({"healthChecks": [{
        "protocol": "MESOS_TCP", "portIndex": 0, "intervalSeconds": 1}]}),
        ),
    )
    .await;
    marathon.wait_for_deployments(WAIT).await;
    for id in ["/mesos-http", "/mesos-command", "/mesos-tcp"] {
        wait_healthy(&marathon, id, 1).await;
    }
    let results = &app(&marathon, "/mesos-http").await["tasks"][0]["healthCheckResults"];
    assert_eq!(results.as_array().map(Vec::len), Some(1), "{results}");
    assert_eq!(results[0]["alive"], true);

    let http_task = app(&marathon, "/mesos-http").await["tasks"][0]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let command_task = app(&marathon, "/mesos-command").await["tasks"][0]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    let mut events = marathon.events(&["unhealthy_task_kill_event"]).await;
    server.set_sick(&http_task, true);
    std::fs::write(server.dir().join("command-sick"), b"").expect("a switch");
    let seen = events
        .read_until(WAIT, |s| {
            events_of(s, "unhealthy_task_kill_event").len() >= 2
        })
        .await
        .to_string();
    let kills = events_of(&seen, "unhealthy_task_kill_event");
    let http_kill = kills
        .iter()
        .find(|k| k["taskId"] == http_task.as_str())
        .expect("the HTTP task's kill");
    assert!(
        http_kill["reason"]
            .as_str()
            .is_some_and(|r| r.contains("500")),
        "the agent names the last failure: {http_kill}"
    );
    assert!(kills.iter().any(|k| k["taskId"] == command_task.as_str()));
    // The HTTP app is replaced and healthy again (its new task is not sick).
    assert_eventually!(
        WAIT,
        {
            let a = app(&marathon, "/mesos-http").await;
            a["tasksHealthy"] == 1 && a["tasks"][0]["id"] != http_task.as_str()
        },
        "not replaced: {}",
        app(&marathon, "/mesos-http").await
    );
    std::fs::remove_file(server.dir().join("command-sick")).expect("the switch");
    wait_healthy(&marathon, "/mesos-command", 1).await;
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_within_the_grace_period_are_not_counted() {
    let cluster = cluster().await;
    let marathon = Marathon::start(&cluster).await;
    let server = HealthServer::new();
    let mut events = marathon.events(&["unhealthy_task_kill_event"]).await;
    // The server listens only 4 s after the start: every check fails until
    // then, within a 20 s grace period, and a single failure would kill.
    let slow = json!({"id": "/slow", "cmd": format!("sleep 4; {}", server.cmd()), "cpus": 0.05,
        "mem": 32, "portDefinitions": [{"port": 0}], "healthChecks": [
            {"protocol": "MESOS_HTTP", "path": "/health", "intervalSeconds": 1, "timeoutSeconds": 1,
             "maxConsecutiveFailures": 1, "gracePeriodSeconds": 20, "delaySeconds": 0},
            {"protocol": "HTTP", "path": "/health", "intervalSeconds": 1, "timeoutSeconds": 1,
             "maxConsecutiveFailures": 1, "gracePeriodSeconds": 20}]});
    create(&marathon, &slow.to_string()).await;
    marathon.wait_running("/slow", 1, WAIT).await;
    let first = marathon.tasks_in_state("/slow", "TASK_RUNNING").await;
    wait_healthy(&marathon, "/slow", 1).await;
    marathon.wait_for_deployments(WAIT).await;
    assert_eq!(
        ids(&marathon.tasks_in_state("/slow", "TASK_RUNNING").await),
        ids(&first),
        "the task was not killed while starting"
    );
    let results = &app(&marathon, "/slow").await["tasks"][0]["healthCheckResults"];
    for r in results.as_array().expect("results") {
        assert!(r["lastFailure"].is_null(), "{r}");
    }
    assert!(events_of(&events.seen, "unhealthy_task_kill_event").is_empty());
    // Not a moment longer: a check failing once now kills at once.
    server.set_sick(&ids(&first)[0], true);
    events
        .read_until(WAIT, |s| s.contains("event: unhealthy_task_kill_event"))
        .await;
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_checks_gate_a_deployment_and_show_their_results() {
    let cluster = cluster().await;
    let marathon = Marathon::start(&cluster).await;
    let server = HealthServer::new();
    server.set_unready(true);
    let readiness = json!({"readinessChecks": [{"name": "ready", "protocol": "HTTP",
        "path": "/ready", "portName": "http", "intervalSeconds": 2, "timeoutSeconds": 1,
        "httpStatusCodesForReady": [200], "preserveLastResponse": true}]});
    create(&marathon, &server_app("/gated", &server, 1, readiness)).await;
    marathon.wait_running("/gated", 1, WAIT).await;
    let task = marathon.tasks_in_state("/gated", "TASK_RUNNING").await[0]["id"].clone();
    // Running, but not ready: the deployment waits and shows why.
    assert_eventually!(
        WAIT,
        {
            let d = marathon.get("/v2/deployments").await;
            d[0]["currentActions"][0]["readinessCheckResults"][0]["lastResponse"]["status"] == 503
        },
        "no readiness result: {}",
        marathon.get("/v2/deployments").await
    );
    let deployments = marathon.get("/v2/deployments").await;
    let result = &deployments[0]["currentActions"][0]["readinessCheckResults"][0];
    assert_eq!(result["name"], "ready");
    assert_eq!(result["taskId"], task);
    assert_eq!(result["ready"], false);
    assert_eq!(result["lastResponse"]["body"], "not ready yet");
    assert_eq!(result["lastResponse"]["contentType"], "text/plain");
    let id = deployments[0]["id"].as_str().expect("an id");
    let status = marathon.get(&format!("/v2/deployments/{id}")).await;
    assert!(
        status["status"]["currentActions"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("/gated: 0 of 1 new instances healthy and ready")),
        "{status}"
    );
    let shown = marathon.get("/v2/apps/gated?embed=app.readiness").await;
    assert_eq!(shown["app"]["readinessCheckResults"][0]["taskId"], task);
    // Ready: the deployment ends.
    server.set_unready(false);
    marathon.wait_for_deployments(WAIT).await;
    let missing = marathon
        .call("GET", &format!("/v2/deployments/{id}"), None)
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_to_a_broken_version_keeps_the_old_serving_and_rolls_back() {
    let cluster = cluster().await;
    let marathon = Marathon::start(&cluster).await;
    let server = HealthServer::new();
    let strategy = json!({"minimumHealthCapacity": 1, "maximumOverCapacity": 0.5});
    // Failing instances are not killed (maxConsecutiveFailures 0) and
    // failures count from the start: the new version's stay, failing.
    let mut check = http_check("HTTP", 0);
    check["gracePeriodSeconds"] = json!(0);
    create(
        &marathon,
        &server_app(
            "/roll",
            &server,
            2,
            json!({"healthChecks": [check], "upgradeStrategy": strategy}),
        ),
    )
    .await;
    marathon.wait_for_deployments(WAIT).await;
    wait_healthy(&marathon, "/roll", 2).await;
    let old = ids(&marathon.tasks_in_state("/roll", "TASK_RUNNING").await);

    // A version whose tasks never become healthy: the deployment waits,
    // saying why, and the old instances keep serving.
    let broken = marathon
        .call("PUT", "/v2/apps/roll", Some(r#"{"env": {"BROKEN": "1"}}"#))
        .await;
    assert_eq!(broken.status, 200, "{}", broken.text);
    let id = broken.body["deploymentId"]
        .as_str()
        .expect("an id")
        .to_string();
    assert_eventually!(
        WAIT,
        marathon.get(&format!("/v2/deployments/{id}")).await["status"]["currentActions"][0]
            ["lastHealthCheckFailure"]
            .as_str()
            .is_some_and(|c| c.contains("answered 500")),
        "no reason shown: {}",
        marathon.get(&format!("/v2/deployments/{id}")).await
    );
    let running = ids(&marathon.tasks_in_state("/roll", "TASK_RUNNING").await);
    assert!(old.iter().all(|t| running.contains(t)), "{running:?}");
    assert!(app(&marathon, "/roll").await["tasksHealthy"].as_u64() >= Some(2));

    // Rolled back on request: the old instances were never touched.
    let cancelled = marathon
        .call("DELETE", &format!("/v2/deployments/{id}"), None)
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    marathon.wait_for_deployments(WAIT).await;
    assert_eventually!(
        WAIT,
        ids(&marathon.tasks_in_state("/roll", "TASK_RUNNING").await) == old,
        "after the rollback: {}",
        app(&marathon, "/roll").await
    );
    assert!(app(&marathon, "/roll").await["env"]["BROKEN"].is_null());

    // With a progress deadline the same upgrade fails and rolls back by itself.
    let mut events = marathon.events(&["deployment_failed"]).await;
    let body = json!({"env": {"BROKEN": "1"}, "upgradeStrategy": {"minimumHealthCapacity": 1,
        "maximumOverCapacity": 0.5, "progressDeadlineSeconds": 4}});
    let broken = marathon
        .call("PUT", "/v2/apps/roll", Some(&body.to_string()))
        .await;
    assert_eq!(broken.status, 200, "{}", broken.text);
    let seen = events
        .read_until(WAIT, |s| s.contains("event: deployment_failed"))
        .await
        .to_string();
    let failed = &events_of(&seen, "deployment_failed")[0];
    let reason = failed["reason"].as_str().expect("a reason");
    assert!(reason.starts_with("no progress for 4 s"), "{reason}");
    assert!(reason.contains("last health check failure"), "{reason}");
    marathon.wait_for_deployments(WAIT).await;
    assert_eventually!(
        WAIT,
        ids(&marathon.tasks_in_state("/roll", "TASK_RUNNING").await) == old,
        "after the automatic rollback: {}",
        app(&marathon, "/roll").await
    );
    let shown = app(&marathon, "/roll").await;
    assert!(shown["env"]["BROKEN"].is_null(), "{shown}");
    assert!(shown["upgradeStrategy"]["progressDeadlineSeconds"].is_null());
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_kills_stay_within_the_upgrade_budget_and_hold_when_most_checks_fail() {
    let cluster = cluster().await;
    let marathon = Marathon::start(&cluster).await;
    let server = HealthServer::new();
    // 20 instances; the strategy lets one go at a time.
    let body = json!({"healthChecks": [http_check("HTTP", 2)],
        "upgradeStrategy": {"minimumHealthCapacity": 0.95, "maximumOverCapacity": 0.1}});
    create(&marathon, &server_app("/many", &server, 20, body)).await;
    marathon.wait_for_deployments(Duration::from_secs(90)).await;
    wait_healthy(&marathon, "/many", 20).await;
    let before = ids(&marathon.tasks_in_state("/many", "TASK_RUNNING").await);

    // Three sick instances: killed one at a time, each only once the one
    // before has ended.
    let mut events = marathon
        .events(&["unhealthy_task_kill_event", "status_update_event"])
        .await;
    for task in &before[..3] {
        server.set_sick(task, true);
    }
    let seen = events
        .read_until(WAIT, |s| {
            events_of(s, "unhealthy_task_kill_event").len() >= 3
        })
        .await
        .to_string();
    let order: Vec<(String, String)> = seen
        .split("\n\n")
        .filter_map(|chunk| {
            let kind = chunk.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data: Value =
                serde_json::from_str(chunk.lines().find_map(|l| l.strip_prefix("data: "))?).ok()?;
            let task = data["taskId"].as_str()?.to_string();
            match kind.trim() {
                "unhealthy_task_kill_event" => Some(("kill".into(), task)),
                "status_update_event" if data["taskStatus"] == "TASK_KILLED" => {
                    Some(("ended".into(), task))
                }
                _ => None,
            }
        })
        .collect();
    let mut in_flight = 0;
    for (what, task) in &order {
        match what.as_str() {
            "kill" => {
                in_flight += 1;
                assert!(in_flight <= 1, "two health kills at once: {order:?}");
            }
            _ if before[..3].contains(task) => in_flight -= 1,
            _ => {}
        }
    }
    wait_healthy(&marathon, "/many", 20).await;

    // Now every check fails at once (as when Marathon cannot reach the
    // agents): kills are held, said so, and nothing is killed.
    let now_running = ids(&marathon.tasks_in_state("/many", "TASK_RUNNING").await);
    let mut events = marathon
        .events(&[
            "unhealthy_task_kill_event",
            "unhealthy_task_kill_held_event",
        ])
        .await;
    server.set_all_sick(true);
    let seen = events
        .read_until(WAIT, |s| {
            s.contains("event: unhealthy_task_kill_held_event")
        })
        .await
        .to_string();
    let held = &events_of(&seen, "unhealthy_task_kill_held_event")[0];
    assert!(
        held["reason"]
            .as_str()
            .is_some_and(|r| r.contains("health checks fail at once")),
        "{held}"
    );
    // Well past two failed checks of every instance, nothing was killed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        events_of(&events.seen, "unhealthy_task_kill_event").is_empty(),
        "{}",
        events.seen
    );
    assert_eq!(
        app(&marathon, "/many").await["tasksUnhealthy"],
        20,
        "every instance shows unhealthy"
    );
    assert_eq!(
        ids(&marathon.tasks_in_state("/many", "TASK_RUNNING").await),
        now_running
    );
    server.set_all_sick(false);
    wait_healthy(&marathon, "/many", 20).await;
    assert_eq!(
        ids(&marathon.tasks_in_state("/many", "TASK_RUNNING").await),
        now_running
    );
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_holds_health_kills_and_keeps_healthy_tasks() {
    let cluster = cluster().await;
    let store: Arc<dyn agora_coord::Store> = Arc::new(agora_coord::MemoryStore::new());
    let marathon = Marathon::start_with(&cluster, store.clone(), |_| {}).await;
    let server = HealthServer::new();
    let mut check = http_check("HTTP", 2);
    check["gracePeriodSeconds"] = json!(0);
    create(
        &marathon,
        &server_app("/kept", &server, 2, json!({"healthChecks": [check]})),
    )
    .await;
    marathon.wait_for_deployments(WAIT).await;
    wait_healthy(&marathon, "/kept", 2).await;
    let tasks = ids(&marathon.tasks_in_state("/kept", "TASK_RUNNING").await);
    marathon.stop().await;

    // One instance turns sick while no Marathon leads; the next leader
    // finds it failing at once but holds the kill for its first seconds.
    server.set_sick(&tasks[0], true);
    let marathon = Marathon::start_with(&cluster, store, |c| {
        c.health_kill_hold = Duration::from_secs(5)
    })
    .await;
    let mut events = marathon
        .events(&[
            "unhealthy_task_kill_event",
            "unhealthy_task_kill_held_event",
        ])
        .await;
    let seen = events
        .read_until(WAIT, |s| {
            s.contains("event: unhealthy_task_kill_held_event")
        })
        .await
        .to_string();
    let held = &events_of(&seen, "unhealthy_task_kill_held_event")[0];
    assert!(
        held["reason"]
            .as_str()
            .is_some_and(|r| r.contains("leads since moments ago")),
        "{held}"
    );
    assert!(!seen.contains("event: unhealthy_task_kill_event"), "{seen}");
    // Health is known again without a kill of the healthy one...
    assert_eventually!(
        WAIT,
        {
            let a = app(&marathon, "/kept").await;
            a["tasksHealthy"] == 1 && a["tasksUnhealthy"] == 1
        },
        "health not learnt again: {}",
        app(&marathon, "/kept").await
    );
    // ...and once the hold is over, the sick one alone is killed.
    let seen = events
        .read_until(WAIT, |s| s.contains("event: unhealthy_task_kill_event"))
        .await
        .to_string();
    let kills = events_of(&seen, "unhealthy_task_kill_event");
    assert_eq!(kills.len(), 1, "{seen}");
    assert_eq!(kills[0]["taskId"], tasks[0].as_str());
    wait_healthy(&marathon, "/kept", 2).await;
    let running = ids(&marathon.tasks_in_state("/kept", "TASK_RUNNING").await);
    assert!(running.contains(&tasks[1]), "{running:?}");
    assert!(!running.contains(&tasks[0]), "{running:?}");
    marathon.stop().await;
    cluster.stop().await;
}
