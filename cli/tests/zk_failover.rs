//! Three real masters electing through a real ZooKeeper, an agent and a
//! framework following the leader: killing the leader, or freezing it past
//! its session, is a non-event for the task.

#[path = "../../coord/tests/support/zk.rs"]
mod zk;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Children stopped on drop, so a failing test leaves nothing behind:
/// SIGTERM first (an agent then kills its tasks), SIGKILL for what remains.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &self.0 {
            signal(c, "-CONT");
            signal(c, "-TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for c in &mut self.0 {
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agora")
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status();
}

async fn state(port: u16) -> Option<Value> {
    reqwest::get(format!("http://127.0.0.1:{port}/master/state"))
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// The index of the master whose state says it leads, if exactly one does.
async fn leader(ports: &[u16], alive: &[bool]) -> Option<usize> {
    let mut leaders = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        if !alive[i] {
            continue;
        }
        if let Some(s) = state(*port).await {
            if s["pid"].is_string() && s["pid"] == s["leader"] {
                leaders.push(i);
            }
        }
    }
    (leaders.len() == 1).then(|| leaders[0])
}

async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_and_a_frozen_leader_are_non_events() {
    let zk = zk::ZkServer::start();
    let url = zk.url("/agora");
    let dir = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut procs = Procs(Vec::new());
    for (i, port) in ports.iter().enumerate() {
        let work = dir.path().join(format!("m{i}"));
        procs.0.push(spawn(&[
            "master",
            "--ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--work-dir",
            work.to_str().expect("utf-8"),
            "--zk",
            &url,
            "--zk-session-timeout",
            "2secs",
            "--allocation-interval",
            "100ms",
            "--agent-ping-timeout",
            "500ms",
            "--max-agent-ping-timeouts",
            "4",
        ]));
    }
    let mut alive = vec![true; 3];
    let first = eventually("one leader", Duration::from_secs(30), async || {
        leader(&ports, &alive).await
    })
    .await;
    // Every standby names the same leader.
    for (i, port) in ports.iter().enumerate() {
        let s = state(*port).await.expect("state");
        assert_eq!(
            s["leader"],
            format!("master@127.0.0.1:{}", ports[first]),
            "master {i}"
        );
    }

    let agent_port = free_port().to_string();
    let agent_dir = dir.path().join("agent");
    procs.0.push(spawn(&[
        "agent",
        "--master",
        &url,
        "--ip",
        "127.0.0.1",
        "--port",
        &agent_port,
        "--work-dir",
        agent_dir.to_str().expect("utf-8"),
        "--resources",
        "cpus:2;mem:1024;disk:100;ports:[31000-31010]",
        "--status-update-retry-interval",
        "500ms",
        "--master-ping-timeout",
        "3secs",
    ]));
    procs.0.push(spawn(&[
        "execute",
        "--master",
        &url,
        "--name",
        "steady",
        "--command",
        "sleep 120",
    ]));
    let running = |port: u16| async move {
        let s = state(port).await?;
        if std::env::var("AGORA_DEBUG_TEST").is_ok() {
            eprintln!(
                "{port}: slaves={} frameworks={}",
                s["slaves"], s["frameworks"]
            );
        }
        let task = &s["frameworks"][0]["tasks"][0];
        (s["slaves"][0]["active"] == true
            && s["frameworks"][0]["connected"] == true
            && task["state"] == "TASK_RUNNING")
            .then(|| (s["slaves"][0]["id"].clone(), task["id"].clone()))
    };
    let before = eventually("the task running", Duration::from_secs(30), async || {
        running(ports[first]).await
    })
    .await;

    // SIGKILL the leader: another takes over, the agent and framework follow.
    signal(&procs.0[first], "-KILL");
    alive[first] = false;
    let second = eventually("a new leader", Duration::from_secs(30), async || {
        leader(&ports, &alive).await
    })
    .await;
    assert_ne!(second, first);
    let after = eventually(
        "the task back on the new leader",
        Duration::from_secs(30),
        async || running(ports[second]).await,
    )
    .await;
    assert_eq!(after, before, "same agent, same task");

    // Freeze the new leader past its session: it must not act as leader
    // once it thaws, and rejoins as a standby.
    signal(&procs.0[second], "-STOP");
    alive[second] = false;
    let third = eventually(
        "a leader while one is frozen",
        Duration::from_secs(30),
        async || leader(&ports, &alive).await,
    )
    .await;
    signal(&procs.0[second], "-CONT");
    alive[second] = true;
    let thawed = eventually(
        "the thawed master standing by",
        Duration::from_secs(30),
        async || {
            let s = state(ports[second]).await?;
            (s["leader"] == format!("master@127.0.0.1:{}", ports[third])).then_some(s)
        },
    )
    .await;
    assert_eq!(
        thawed["slaves"].as_array().map(Vec::len),
        Some(0),
        "a standby has no books"
    );
    let metrics: Value = reqwest::get(format!(
        "http://127.0.0.1:{}/metrics/snapshot",
        ports[second]
    ))
    .await
    .expect("GET")
    .json()
    .await
    .expect("JSON");
    assert_eq!(metrics["master/elected"], 0.0);
    let last = eventually(
        "the task on the third leader",
        Duration::from_secs(30),
        async || running(ports[third]).await,
    )
    .await;
    assert_eq!(last, before);
}
