//! The bundled Marathon end to end: real master, real agents, real processes,
//! driven through the REST API v2 as Marathon's clients drive it.

use std::time::Duration;

use agora_integration_tests::{assert_eventually, Cluster, Marathon};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

async fn cluster(agents: usize) -> Cluster {
    Cluster::builder()
        .agents(agents)
        .agent_resources("cpus:4;mem:4096;disk:10000;ports:[31000-31100]")
        .start()
        .await
}

fn app(id: &str, instances: u32) -> String {
    json!({"id": id, "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": instances})
        .to_string()
}

fn task_ids(tasks: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_scale_restart_update_and_delete_an_app() {
    let cluster = cluster(1).await;
    let marathon = Marathon::start(&cluster).await;

    // Create: 201 with the app, its deployment, and then all instances running.
    let created = marathon
        .call("POST", "/v2/apps", Some(&app("/web", 2)))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["id"], "/web");
    assert_eq!(created.body["instances"], 2);
    assert!(created.deployment_id.is_some());
    assert_eq!(
        created.body["deployments"][0]["id"].as_str(),
        created.deployment_id.as_deref()
    );
    assert!(created.body["version"].as_str().unwrap().ends_with('Z'));
    marathon.wait_running("/web", 2, WAIT).await;
    marathon.wait_for_deployments(WAIT).await;

    // GET embeds tasks and counts by default; tasks carry env-visible ports.
    let shown = marathon.get("/v2/apps/web").await;
    assert_eq!(shown["app"]["tasksRunning"], 2);
    assert_eq!(shown["app"]["tasks"].as_array().unwrap().len(), 2);
    let task = &shown["app"]["tasks"][0];
    assert_eq!(task["appId"], "/web");
    assert!(!task["host"].as_str().unwrap().is_empty());
    assert!(task["startedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(task["ports"].as_array().unwrap().len(), 1);
    let service_port = shown["app"]["portDefinitions"][0]["port"].as_i64().unwrap();
    assert!((10000..=20000).contains(&service_port), "{service_port}");

    // Scale up, then down.
    let scaled = marathon
        .call("PUT", "/v2/apps/web", Some(r#"{"instances": 4}"#))
        .await;
    assert_eq!(scaled.status, 200, "{}", scaled.text);
    assert!(scaled.body["deploymentId"].is_string());
    marathon.wait_running("/web", 4, WAIT).await;
    marathon.wait_for_deployments(WAIT).await;
    let down = marathon
        .call("PATCH", "/v2/apps/web", Some(r#"{"instances": 1}"#))
        .await;
    assert_eq!(down.status, 200, "{}", down.text);
    marathon.wait_running("/web", 1, WAIT).await;
    marathon.wait_for_deployments(WAIT).await;

    // Restart: every task replaced.
    let before = task_ids(&marathon.tasks_in_state("/web", "TASK_RUNNING").await);
    let restarted = marathon.call("POST", "/v2/apps/web/restart", None).await;
    assert_eq!(restarted.status, 200, "{}", restarted.text);
    marathon.wait_for_deployments(WAIT).await;
    marathon.wait_running("/web", 1, WAIT).await;
    let after = task_ids(&marathon.tasks_in_state("/web", "TASK_RUNNING").await);
    assert!(
        before.iter().all(|t| !after.contains(t)),
        "{before:?} {after:?}"
    );

    // A new version: tasks run the new command; versions are listed.
    let updated = marathon
        .call("PUT", "/v2/apps/web", Some(r#"{"cmd": "sleep 2000"}"#))
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let new_version = updated.body["version"].as_str().unwrap().to_string();
    marathon.wait_for_deployments(WAIT).await;
    marathon.wait_running("/web", 1, WAIT).await;
    let tasks = marathon.tasks_in_state("/web", "TASK_RUNNING").await;
    assert_eq!(tasks[0]["version"], new_version.as_str());
    let versions = marathon.get("/v2/apps/web/versions").await;
    assert!(versions["versions"].as_array().unwrap().len() >= 3);
    assert_eq!(versions["versions"][0], new_version.as_str());
    let old = marathon
        .get(&format!(
            "/v2/apps/web/versions/{}",
            versions["versions"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .as_str()
                .unwrap()
        ))
        .await;
    assert_eq!(old["cmd"], "sleep 1000");

    // Delete: the tasks go, the app is gone.
    let deleted = marathon.call("DELETE", "/v2/apps/web", None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    marathon.wait_for_deployments(WAIT).await;
    let gone = marathon.call("GET", "/v2/apps/web", None).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["message"], "App '/web' does not exist");
    assert_eventually!(
        WAIT,
        cluster.state().await["frameworks"][0]["tasks"]
            .as_array()
            .is_some_and(|t| t.is_empty()),
        "the master still lists tasks"
    );
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_get_marathon_environment_and_ports() {
    let cluster = cluster(1).await;
    let marathon = Marathon::start(&cluster).await;
    let body = json!({
        "id": "/env/echo",
        "cmd": "env > env.txt && sleep 1000",
        "cpus": 0.1, "mem": 16,
        "labels": {"team": "core"},
        "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0}],
    });
    let created = marathon
        .call("POST", "/v2/apps", Some(&body.to_string()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    marathon.wait_running("/env/echo", 1, WAIT).await;
    let task = marathon.tasks_in_state("/env/echo", "TASK_RUNNING").await[0].clone();
    let ports: Vec<u64> = task["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(ports.len(), 2);
    // Read env.txt from the sandbox through the agent's files API.
    let state = cluster.get_json("/master/state").await;
    let agent = format!("http://{}", cluster.agent_http(0));
    let sandbox = find_sandbox(&cluster, &agent, &state, task["id"].as_str().unwrap()).await;
    let env = read_file(&cluster, &agent, &format!("{sandbox}/env.txt")).await;
    assert!(env.contains("MARATHON_APP_ID=/env/echo"), "{env}");
    assert!(env.contains(&format!("PORT0={}", ports[0])), "{env}");
    assert!(env.contains(&format!("PORT1={}", ports[1])), "{env}");
    assert!(env.contains(&format!("PORT_HTTP={}", ports[0])), "{env}");
    assert!(
        env.contains(&format!("PORTS={},{}", ports[0], ports[1])),
        "{env}"
    );
    assert!(env.contains("MARATHON_APP_LABEL_TEAM=core"), "{env}");
    assert!(env.contains("MARATHON_APP_VERSION="), "{env}");
    marathon.stop().await;
    cluster.stop().await;
}

async fn find_sandbox(cluster: &Cluster, agent: &str, _state: &Value, task_id: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state: Value = cluster
            .http()
            .get(format!("{agent}/state"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let found = state["frameworks"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|f| f["executors"].as_array().cloned().unwrap_or_default())
            .find(|e| {
                e["tasks"]
                    .as_array()
                    .is_some_and(|ts| ts.iter().any(|t| t["id"] == task_id))
            })
            .and_then(|e| e["directory"].as_str().map(str::to_string));
        if let Some(dir) = found {
            return dir;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent does not list {task_id}: {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn read_file(cluster: &Cluster, agent: &str, path: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer: Value = cluster
            .http()
            .get(format!("{agent}/files/read"))
            .query(&[("path", path), ("offset", "0")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        let text = answer["data"].as_str().unwrap_or_default().to_string();
        if text.contains("PORT0=") {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} not written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_with_scale_and_wipe() {
    let cluster = cluster(1).await;
    let marathon = Marathon::start(&cluster).await;
    assert_eq!(
        marathon
            .call("POST", "/v2/apps", Some(&app("/k", 3)))
            .await
            .status,
        201
    );
    marathon.wait_running("/k", 3, WAIT).await;
    marathon.wait_for_deployments(WAIT).await;
    let tasks = marathon.tasks_in_state("/k", "TASK_RUNNING").await;

    // Kill without scale: replaced.
    let one = tasks[0]["id"].as_str().unwrap();
    let killed = marathon
        .call("DELETE", &format!("/v2/apps/k/tasks/{one}"), None)
        .await;
    assert_eq!(killed.status, 200, "{}", killed.text);
    assert_eq!(killed.body["task"]["id"], one);
    assert_eventually!(
        WAIT,
        {
            let now = task_ids(&marathon.tasks_in_state("/k", "TASK_RUNNING").await);
            now.len() == 3 && !now.contains(&one.to_string())
        },
        "the killed task was not replaced"
    );

    // Kill with scale: instances drop and nothing replaces it.
    let two = marathon.tasks_in_state("/k", "TASK_RUNNING").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let scaled = marathon
        .call(
            "DELETE",
            &format!("/v2/apps/k/tasks/{two}?scale=TRUE"),
            None,
        )
        .await;
    assert_eq!(scaled.status, 200, "{}", scaled.text);
    assert!(scaled.body["deploymentId"].is_string());
    marathon.wait_for_deployments(WAIT).await;
    marathon.wait_running("/k", 2, WAIT).await;
    assert_eq!(marathon.get("/v2/apps/k").await["app"]["instances"], 2);

    // Kill with wipe: the instance is forgotten at once and replaced.
    let three = marathon.tasks_in_state("/k", "TASK_RUNNING").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let wiped = marathon
        .call(
            "POST",
            "/v2/tasks/delete?wipe=true",
            Some(&json!({"ids": [three]}).to_string()),
        )
        .await;
    assert_eq!(wiped.status, 200, "{}", wiped.text);
    assert_eventually!(
        WAIT,
        {
            let now = task_ids(&marathon.tasks_in_state("/k", "TASK_RUNNING").await);
            now.len() == 2 && !now.contains(&three)
        },
        "the wiped task was not replaced"
    );
    let unknown = marathon
        .call("POST", "/v2/tasks/delete", Some(r#"{"ids": ["nope"]}"#))
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["message"], "Invalid task id nope");
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_with_dependencies_deploys_in_order() {
    let cluster = cluster(1).await;
    let marathon = Marathon::start(&cluster).await;
    let group = json!({
        "id": "/shop",
        "apps": [
            {"id": "web", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "dependencies": ["db"]},
            {"id": "db", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16}
        ]
    });
    let created = marathon
        .call("POST", "/v2/groups", Some(&group.to_string()))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let deployments = marathon.get("/v2/deployments").await;
    let plan = deployments
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == created.body["deploymentId"])
        .cloned()
        .expect("the deployment is listed as soon as the call returns");
    let steps: Vec<Vec<(String, String)>> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["action"].as_str().unwrap().to_string(),
                        a["app"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .collect();
    let db_scale = steps
        .iter()
        .position(|s| s.contains(&("ScaleApplication".into(), "/shop/db".into())))
        .expect("db is scaled");
    let web_scale = steps
        .iter()
        .position(|s| s.contains(&("ScaleApplication".into(), "/shop/web".into())))
        .expect("web is scaled");
    assert!(db_scale < web_scale, "{steps:?}");
    marathon.wait_for_deployments(WAIT).await;
    let db = marathon.tasks_in_state("/shop/db", "TASK_RUNNING").await;
    let web = marathon.tasks_in_state("/shop/web", "TASK_RUNNING").await;
    assert_eq!((db.len(), web.len()), (1, 1));
    assert!(
        db[0]["startedAt"].as_str() <= web[0]["stagedAt"].as_str(),
        "web was launched before db ran: {db:?} {web:?}"
    );
    let tree = marathon.get("/v2/groups").await;
    assert_eq!(tree["id"], "/");
    assert_eq!(tree["groups"][0]["id"], "/shop");
    assert_eq!(tree["groups"][0]["apps"].as_array().unwrap().len(), 2);

    // scaleBy doubles every app of the group.
    let scaled = marathon
        .call("PUT", "/v2/groups/shop", Some(r#"{"scaleBy": 2}"#))
        .await;
    assert_eq!(scaled.status, 200, "{}", scaled.text);
    marathon.wait_running("/shop/db", 2, WAIT).await;
    marathon.wait_running("/shop/web", 2, WAIT).await;
    marathon.wait_for_deployments(WAIT).await;

    // The group's versions are listed newest first; rolling back to the
    // first one brings both apps back to one instance.
    let versions = marathon.get("/v2/groups/shop/versions").await;
    let versions = versions.as_array().unwrap().clone();
    assert!(versions.len() >= 2, "{versions:?}");
    assert!(versions[0].as_str() > versions[1].as_str());
    let first = versions.last().unwrap().as_str().unwrap();
    let rolled = marathon
        .call(
            "PUT",
            "/v2/groups/shop",
            Some(&json!({ "version": first }).to_string()),
        )
        .await;
    assert_eq!(rolled.status, 200, "{}", rolled.text);
    marathon.wait_for_deployments(WAIT).await;
    marathon.wait_running("/shop/db", 1, WAIT).await;
    marathon.wait_running("/shop/web", 1, WAIT).await;
    assert!(
        marathon
            .get("/v2/groups/versions")
            .await
            .as_array()
            .unwrap()
            .len()
            >= 3
    );

    // Deleting the group removes its apps.
    assert_eq!(
        marathon
            .call("DELETE", "/v2/groups/shop", None)
            .await
            .status,
        200
    );
    marathon.wait_for_deployments(WAIT).await;
    assert_eq!(
        marathon.call("GET", "/v2/groups/shop", None).await.status,
        404
    );
    assert_eq!(
        marathon.get("/v2/apps").await["apps"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraints_place_instances() {
    let cluster = Cluster::builder()
        .agents(2)
        .agent_resources("cpus:4;mem:4096;disk:10000;ports:[31000-31100]")
        .agent_attributes(&["rack:a", "rack:b"])
        .start()
        .await;
    let marathon = Marathon::start(&cluster).await;
    let body = json!({"id": "/spread", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16,
        "instances": 3, "constraints": [["rack", "UNIQUE"]]});
    assert_eq!(
        marathon
            .call("POST", "/v2/apps", Some(&body.to_string()))
            .await
            .status,
        201
    );
    marathon.wait_running("/spread", 2, WAIT).await;
    // The third instance has nowhere to go: it waits in the queue, and the
    // queue says why.
    assert_eventually!(
        WAIT,
        {
            let queue = marathon.get("/v2/queue?embed=lastUnusedOffers").await;
            let entry = &queue["queue"][0];
            entry["count"] == 1
                && entry["lastUnusedOffers"].as_array().is_some_and(|o| {
                    o.iter().any(|o| {
                        o["reason"]
                            .as_array()
                            .is_some_and(|r| r.contains(&json!("UnfulfilledConstraint")))
                    })
                })
        },
        "the queue does not show the unplaceable instance: {}",
        marathon.get("/v2/queue?embed=lastUnusedOffers").await
    );
    let tasks = marathon.tasks_in_state("/spread", "TASK_RUNNING").await;
    let agents: std::collections::BTreeSet<&str> = tasks
        .iter()
        .map(|t| t["slaveId"].as_str().unwrap())
        .collect();
    assert_eq!(agents.len(), 2, "one per rack: {tasks:?}");

    // A second app pinned with CLUSTER to rack b.
    let pinned = json!({"id": "/pinned", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16,
        "instances": 2, "constraints": [["rack", "CLUSTER", "b"]]});
    assert_eq!(
        marathon
            .call("POST", "/v2/apps", Some(&pinned.to_string()))
            .await
            .status,
        201
    );
    marathon.wait_running("/pinned", 2, WAIT).await;
    let pinned_tasks = marathon.tasks_in_state("/pinned", "TASK_RUNNING").await;
    let spread_on_b = tasks
        .iter()
        .find(|t| pinned_tasks.iter().any(|p| p["slaveId"] == t["slaveId"]));
    assert!(spread_on_b.is_some());
    let agents: std::collections::BTreeSet<&str> = pinned_tasks
        .iter()
        .map(|t| t["slaveId"].as_str().unwrap())
        .collect();
    assert_eq!(agents.len(), 1);
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_command_backs_off_and_records_the_failure() {
    let cluster = cluster(1).await;
    let marathon = Marathon::start(&cluster).await;
    let body = json!({"id": "/crash", "cmd": "echo boom; exit 3", "cpus": 0.1, "mem": 16,
        "backoffSeconds": 1, "backoffFactor": 2, "maxLaunchDelaySeconds": 60});
    assert_eq!(
        marathon
            .call("POST", "/v2/apps", Some(&body.to_string()))
            .await
            .status,
        201
    );
    assert_eventually!(
        WAIT,
        marathon.get("/v2/apps/crash").await["app"]["lastTaskFailure"]["state"] == "TASK_FAILED",
        "no lastTaskFailure"
    );
    // After a few failures the delay has grown past the first second.
    assert_eventually!(
        WAIT,
        {
            let queue = marathon.get("/v2/queue").await;
            queue["queue"][0]["delay"]["timeLeftSeconds"]
                .as_u64()
                .is_some_and(|s| s >= 2)
        },
        "the delay did not grow: {}",
        marathon.get("/v2/queue").await
    );
    let failure = &marathon.get("/v2/apps/crash").await["app"]["lastTaskFailure"];
    assert_eq!(failure["appId"], "/crash");
    // Resetting the delay makes it due at once.
    let reset = marathon.call("DELETE", "/v2/queue/crash/delay", None).await;
    assert_eq!(reset.status, 204, "{}", reset.text);
    let unknown = marathon.call("DELETE", "/v2/queue/nope/delay", None).await;
    assert_eq!(unknown.status, 404);
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_conflict_roll_back_and_cancel() {
    let cluster = cluster(1).await;
    let marathon = Marathon::start(&cluster).await;
    assert_eq!(
        marathon
            .call("POST", "/v2/apps", Some(&app("/r", 1)))
            .await
            .status,
        201
    );
    marathon.wait_running("/r", 1, WAIT).await;
    marathon.wait_for_deployments(WAIT).await;
    // A version that can never be placed: the deployment stays.
    let stuck = marathon
        .call("PUT", "/v2/apps/r", Some(r#"{"cpus": 64, "instances": 2}"#))
        .await;
    assert_eq!(stuck.status, 200, "{}", stuck.text);
    let deployment = stuck.body["deploymentId"].as_str().unwrap().to_string();
    assert_eq!(stuck.deployment_id.as_deref(), Some(deployment.as_str()));
    // Another change of the same app is refused without force.
    let refused = marathon
        .call("PUT", "/v2/apps/r", Some(r#"{"instances": 3}"#))
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.body["deployments"][0]["id"], deployment.as_str());
    // Rolling back restores the previous version.
    let rollback = marathon
        .call("DELETE", &format!("/v2/deployments/{deployment}"), None)
        .await;
    assert_eq!(rollback.status, 200, "{}", rollback.text);
    marathon.wait_for_deployments(WAIT).await;
    let shown = marathon.get("/v2/apps/r").await;
    assert_eq!(shown["app"]["cpus"], 0.1);
    assert_eq!(shown["app"]["instances"], 1);
    marathon.wait_running("/r", 1, WAIT).await;

    // Force-cancel: the deployment stops, the app keeps its new definition.
    let stuck = marathon
        .call("PUT", "/v2/apps/r", Some(r#"{"cpus": 64}"#))
        .await;
    let deployment = stuck.body["deploymentId"].as_str().unwrap().to_string();
    let cancelled = marathon
        .call(
            "DELETE",
            &format!("/v2/deployments/{deployment}?force=true"),
            None,
        )
        .await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.text);
    marathon.wait_for_deployments(WAIT).await;
    assert_eq!(marathon.get("/v2/apps/r").await["app"]["cpus"], 64.0);
    let missing = marathon
        .call("DELETE", "/v2/deployments/not-a-deployment", None)
        .await;
    assert_eq!(missing.status, 404);
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_restart_keeps_tasks() {
    let cluster = cluster(1).await;
    let marathon = Marathon::start(&cluster).await;
    assert_eq!(
        marathon
            .call("POST", "/v2/apps", Some(&app("/keep", 2)))
            .await
            .status,
        201
    );
    marathon.wait_running("/keep", 2, WAIT).await;
    marathon.wait_for_deployments(WAIT).await;
    let before = task_ids(&marathon.tasks_in_state("/keep", "TASK_RUNNING").await);
    let store = marathon.store.clone();
    marathon.stop().await;
    // A new Marathon on the same state resubscribes with the same framework id.
    let marathon = Marathon::start_with(&cluster, store, |_| {}).await;
    marathon.wait_running("/keep", 2, WAIT).await;
    let after = task_ids(&marathon.tasks_in_state("/keep", "TASK_RUNNING").await);
    assert_eq!(before, after, "a Marathon restart must not replace tasks");
    assert_eq!(
        cluster.state().await["frameworks"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "one framework, resubscribed"
    );
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_instances_are_replaced_and_expunged() {
    let cluster = Cluster::builder()
        .agents(2)
        .proxied()
        .agent_resources("cpus:4;mem:4096;disk:10000;ports:[31000-31100]")
        .agent_attributes(&["rack:a", "rack:b"])
        .start()
        .await;
    let marathon = Marathon::start(&cluster).await;
    // One instance, pinned to rack a first so we know which agent to cut off.
    let body = json!({"id": "/island", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16,
        "constraints": [["rack", "CLUSTER", "a"]],
        "unreachableStrategy": {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 2}});
    assert_eq!(
        marathon
            .call("POST", "/v2/apps", Some(&body.to_string()))
            .await
            .status,
        201
    );
    marathon.wait_running("/island", 1, WAIT).await;
    marathon.wait_for_deployments(WAIT).await;
    let first = marathon.tasks_in_state("/island", "TASK_RUNNING").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Let the replacement go anywhere.
    let relaxed = marathon
        .call("PATCH", "/v2/apps/island", Some(r#"{"constraints": []}"#))
        .await;
    assert_eq!(relaxed.status, 200, "{}", relaxed.text);
    marathon.wait_for_deployments(WAIT).await;
    let running = marathon.tasks_in_state("/island", "TASK_RUNNING").await;
    assert_eq!(running.len(), 1);
    let current = running[0]["id"].as_str().unwrap().to_string();
    let on_a = running[0]["slaveId"].as_str().unwrap().to_string();
    let a_index = if cluster.state().await["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == on_a.as_str() && s["attributes"]["rack"] == "a")
    {
        0
    } else {
        1
    };
    let _ = first;
    // Cut off the agent the instance runs on: it becomes unreachable, and
    // after inactiveAfterSeconds a replacement runs on the other agent.
    cluster.agent(a_index).proxy.as_ref().unwrap().cut();
    assert_eventually!(
        WAIT,
        !marathon
            .tasks_in_state("/island", "TASK_UNREACHABLE")
            .await
            .is_empty(),
        "the instance did not become unreachable"
    );
    assert_eventually!(
        WAIT,
        marathon
            .tasks_in_state("/island", "TASK_RUNNING")
            .await
            .iter()
            .any(|t| t["id"] != current.as_str()),
        "no replacement ran"
    );
    // After expungeAfterSeconds the unreachable instance is forgotten.
    assert_eventually!(
        WAIT,
        marathon
            .tasks_in_state("/island", "TASK_UNREACHABLE")
            .await
            .is_empty(),
        "the unreachable instance was not expunged"
    );
    // When the agent comes back, the old task is unknown and killed: one instance remains.
    cluster.agent(a_index).proxy.as_ref().unwrap().restore();
    assert_eventually!(
        WAIT,
        cluster.state().await["frameworks"][0]["tasks"]
            .as_array()
            .is_some_and(|tasks| tasks.iter().all(|t| t["id"] != current.as_str())),
        "the expunged task was not killed when its agent returned: {}",
        cluster.state().await["frameworks"][0]["tasks"]
    );
    marathon.wait_running("/island", 1, WAIT).await;
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_the_state_does_not_know_are_killed() {
    let cluster = cluster(1).await;
    let marathon = Marathon::start(&cluster).await;
    assert_eq!(
        marathon
            .call("POST", "/v2/apps", Some(&app("/lost", 2)))
            .await
            .status,
        201
    );
    marathon.wait_running("/lost", 2, WAIT).await;
    let framework_id = marathon.get("/v2/info").await["frameworkId"]
        .as_str()
        .unwrap()
        .to_string();
    marathon.stop().await;
    // A Marathon that kept only its framework id (its apps and instances
    // lost) reconciles, learns of the tasks, and kills them.
    let store = std::sync::Arc::new(agora_coord::MemoryStore::new());
    agora_coord::Store::put(
        store.as_ref(),
        "/state/framework-id",
        framework_id.into_bytes(),
        None,
    )
    .await
    .unwrap();
    let marathon = Marathon::start_with(&cluster, store, |_| {}).await;
    assert_eventually!(
        WAIT,
        cluster.state().await["frameworks"][0]["tasks"]
            .as_array()
            .is_some_and(|t| t.is_empty()),
        "unknown tasks still run: {}",
        cluster.state().await["frameworks"][0]["tasks"]
    );
    marathon.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_whose_tasks_keep_failing_fails_and_rolls_back() {
    let cluster = cluster(1).await;
    let marathon = Marathon::start_with(
        &cluster,
        std::sync::Arc::new(agora_coord::MemoryStore::new()),
        |c| c.deployment_max_task_failures = 3,
    )
    .await;
    let good = json!({"id": "/flaky", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16,
        "backoffSeconds": 0, "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}});
    assert_eq!(
        marathon
            .call("POST", "/v2/apps", Some(&good.to_string()))
            .await
            .status,
        201
    );
    marathon.wait_running("/flaky", 1, WAIT).await;
    marathon.wait_for_deployments(WAIT).await;
    let old_task = marathon.tasks_in_state("/flaky", "TASK_RUNNING").await[0]["id"].clone();
    let mut events = marathon.events(&["deployment_failed"]).await;
    // A broken version: its tasks never start (the artifact cannot be fetched).
    let broken = marathon
        .call(
            "PUT",
            "/v2/apps/flaky",
            Some(r#"{"fetch": [{"uri": "file:///nonexistent/agora/artifact.tgz"}]}"#),
        )
        .await;
    assert_eq!(broken.status, 200, "{}", broken.text);
    let seen = events
        .read_until(WAIT, |seen| seen.contains("event: deployment_failed"))
        .await;
    assert!(seen.contains("rolled back"), "{seen}");
    // The rollback deployment restores the previous command; the old task was never touched.
    marathon.wait_for_deployments(WAIT).await;
    assert_eq!(
        marathon.get("/v2/apps/flaky").await["app"]["cmd"],
        "sleep 1000"
    );
    let running = marathon.tasks_in_state("/flaky", "TASK_RUNNING").await;
    assert_eq!(running.len(), 1);
    assert_eq!(running[0]["id"], old_task);
    marathon.stop().await;
    cluster.stop().await;
}
