//! Marathon Docker apps end to end, as a user runs them: `agora local`
//! (master, an agent with the Docker containerizer, Marathon) driven through
//! the REST API, containers of images built here, answers fetched from the
//! host ports Marathon reports. Skipped, saying so, only where the machine
//! has no Docker engine socket.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use support::docker::{containers_of, engine, IMAGE};
use support::{agora, eventually, free_port, get_json, local_master_port, Proc, DEADLINE};

struct Local {
    _proc: Proc,
    dir: tempfile::TempDir,
    marathon: String,
    http: reqwest::Client,
}

impl Local {
    fn start() -> Local {
        let dir = tempfile::tempdir().expect("temp dir");
        let master_port = local_master_port(1);
        let marathon_port = free_port();
        let log = std::fs::File::create(dir.path().join("local.log")).expect("log");
        let proc = Proc(
            agora()
                .args(["local", "--agents", "1"])
                .args(["--master-port", &master_port.to_string()])
                .args(["--marathon-port", &marathon_port.to_string()])
                .arg("--work-dir")
                .arg(dir.path())
                .args([
                    "--agent-resources",
                    "cpus:4;mem:2048;disk:1000;ports:[31000-31020]",
                ])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn agora local"),
        );
        eventually("Marathon to lead", || {
            get_json(marathon_port, "/v2/info").filter(|info| info["elected"] == true)
        });
        Local {
            _proc: proc,
            dir,
            marathon: format!("http://127.0.0.1:{marathon_port}"),
            http: reqwest::Client::new(),
        }
    }

    fn agent_work_dir(&self) -> PathBuf {
        self.dir.path().join("agent0")
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.marathon));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("Marathon answers");
        let status = answer.status();
        let value: Value = answer.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    async fn tasks(&self, app: &str) -> Vec<Value> {
        self.call(reqwest::Method::GET, &format!("/v2/apps{app}/tasks"), None)
            .await["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `app` has `n` running tasks and no deployment.
    async fn settled(&self, app: &str, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let tasks = self.tasks(app).await;
            let running = tasks
                .iter()
                .filter(|t| t["state"] == "TASK_RUNNING")
                .count();
            let deployments = self
                .call(reqwest::Method::GET, "/v2/deployments", None)
                .await;
            if running == n && tasks.len() == n && deployments.as_array().is_some_and(Vec::is_empty)
            {
                return tasks;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{app}: {running} of {n} running: {tasks:?}\n{}",
                std::fs::read_to_string(self.dir.path().join("local.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn running_containers(docker: &bollard::Docker, work_dir: &Path) -> usize {
    containers_of(docker, work_dir)
        .await
        .iter()
        .filter(|c| c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING))
        .count()
}

async fn body(url: &str) -> Option<String> {
    let answer = reqwest::get(url).await.ok()?;
    answer.status().is_success().then_some(())?;
    answer.text().await.ok()
}

fn address(task: &Value) -> std::net::IpAddr {
    let ips = task["ipAddresses"].as_array().expect("ipAddresses");
    assert_eq!(ips.len(), 1, "{task}");
    assert_eq!(ips[0]["protocol"], "IPv4");
    ips[0]["ipAddress"]
        .as_str()
        .expect("an address")
        .parse()
        .expect("an IP address, never a hostname")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_bridge_docker_apps_answer_on_the_host_ports_marathon_reports() {
    let Some(_docker) = engine("host_and_bridge_docker_apps_answer_on_the_host_ports").await else {
        return;
    };
    let local = Local::start();
    let serve = |text: &str, port: &str| {
        format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p {port} -h /www")
    };
    local
        .call(
            reqwest::Method::POST,
            "/v2/apps",
            Some(json!({
                "id": "/docker/host",
                "cmd": serve("host-$PORT0", "$PORT0"),
                "cpus": 0.1, "mem": 32, "instances": 1,
                "container": {"type": "DOCKER", "docker": {"image": IMAGE}}
            })),
        )
        .await;
    local
        .call(
            reqwest::Method::POST,
            "/v2/apps",
            Some(json!({
                "id": "/docker/bridge",
                "cmd": serve("bridge-$PORT0", "80"),
                "cpus": 0.1, "mem": 32, "instances": 1,
                "networks": [{"mode": "container/bridge"}],
                "container": {"type": "DOCKER", "docker": {"image": IMAGE},
                    "portMappings": [{"containerPort": 80, "hostPort": 0, "name": "http"}]}
            })),
        )
        .await;
    let host = local.settled("/docker/host", 1).await.remove(0);
    let bridge = local.settled("/docker/bridge", 1).await.remove(0);
    for (task, text) in [(&host, "host"), (&bridge, "bridge")] {
        let port = task["ports"][0].as_u64().expect("a host port");
        let url = format!("http://127.0.0.1:{port}/");
        let mut answer = None;
        let deadline = std::time::Instant::now() + DEADLINE;
        while answer.is_none() && std::time::Instant::now() < deadline {
            answer = body(&url).await;
            if answer.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert_eq!(
            answer.as_deref(),
            Some(format!("{text}-{port}\n").as_str()),
            "{url}: the host port reaches the container, PORT0 is the host port"
        );
    }
    assert!(
        address(&host).is_loopback(),
        "the agent's address (agora local binds 127.0.0.1)"
    );
    let bridged = address(&bridge);
    assert!(
        !bridged.is_loopback(),
        "a bridged container has an address of its own: {bridged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_app_scales_restarts_and_is_deleted_without_leftover_containers() {
    let Some(docker) = engine("a_docker_app_scales_restarts_and_is_deleted").await else {
        return;
    };
    let local = Local::start();
    let work_dir = local.agent_work_dir();
    local
        .call(
            reqwest::Method::POST,
            "/v2/apps",
            Some(json!({
                "id": "/docker/sleeper",
                "cmd": "while true; do sleep 0.2; done",
                "cpus": 0.1, "mem": 32, "instances": 2,
                "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
                "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5}
            })),
        )
        .await;
    local.settled("/docker/sleeper", 2).await;
    assert_eq!(running_containers(&docker, &work_dir).await, 2);

    local
        .call(
            reqwest::Method::PUT,
            "/v2/apps/docker/sleeper",
            Some(json!({"instances": 3})),
        )
        .await;
    let before: Vec<Value> = local.settled("/docker/sleeper", 3).await;
    assert_eq!(running_containers(&docker, &work_dir).await, 3);

    local
        .call(
            reqwest::Method::POST,
            "/v2/apps/docker/sleeper/restart",
            None,
        )
        .await;
    let after = local.settled("/docker/sleeper", 3).await;
    for task in &after {
        assert!(
            before.iter().all(|b| b["id"] != task["id"]),
            "every task replaced by the rolling restart"
        );
    }
    let deadline = std::time::Instant::now() + DEADLINE;
    while containers_of(&docker, &work_dir).await.len() != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the replaced containers are removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    local
        .call(reqwest::Method::DELETE, "/v2/apps/docker/sleeper", None)
        .await;
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let left = containers_of(&docker, &work_dir).await;
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "containers left behind: {:?}",
            left.iter().map(|c| &c.names).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
