//! Two `agora marathon` processes electing their leader through a real
//! ZooKeeper, on a real master and agent: the standby forwards calls and
//! streams the leader's events; killing the leader, or asking it to step
//! down, hands leadership over with the same framework and the same tasks.

#[path = "../../coord/tests/support/zk.rs"]
mod zk;

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{agora, dechunk, free_port, get_json, Cluster, Proc, RESOURCES};

/// Generous: the machine running the tests may be busy.
const WAIT: Duration = Duration::from_secs(60);
const APP: &str = "/ha";

/// Polls `check` until it returns `Some`, failing with `what` after `WAIT`.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Value,
    text: String,
}

/// One HTTP/1.1 call on `127.0.0.1:port` (`None`: no answer at all).
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Option<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, text) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let text = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(text)
    } else {
        text.to_string()
    };
    Some(Answer {
        status,
        head: head.to_string(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    })
}

/// `/v2/events` read as it arrives, on a thread of its own.
struct EventStream {
    socket: TcpStream,
    text: Arc<Mutex<String>>,
    head: Arc<Mutex<Option<String>>>,
    /// Set when the stream ended.
    ended: Arc<std::sync::atomic::AtomicBool>,
}

impl EventStream {
    fn open(port: u16) -> EventStream {
        let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect for events");
        write!(
            socket,
            "GET /v2/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
        )
        .expect("request events");
        let text = Arc::new(Mutex::new(String::new()));
        let head = Arc::new(Mutex::new(None));
        let reader = socket.try_clone().expect("clone socket");
        let (sink, head_sink) = (text.clone(), head.clone());
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let end = ended.clone();
        std::thread::spawn(move || {
            read_events(reader, &sink, &head_sink);
            end.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        EventStream {
            socket,
            text,
            head,
            ended,
        }
    }

    /// Whether the stream has ended.
    fn ended(&self) -> bool {
        self.ended.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The response head, once received.
    fn head(&self) -> Option<String> {
        self.head.lock().expect("lock").clone()
    }

    /// Every complete event so far: its type and data.
    fn events(&self) -> Vec<(String, Value)> {
        let text = self.text.lock().expect("lock").clone();
        let mut events = Vec::new();
        let mut blocks: Vec<&str> = text.split("\n\n").collect();
        blocks.pop(); // possibly incomplete
        for block in blocks {
            let mut kind = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(k) = line.strip_prefix("event: ") {
                    kind = Some(k.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).ok();
                }
            }
            if let (Some(kind), Some(data)) = (kind, data) {
                events.push((kind, data));
            }
        }
        events
    }
}

/// Reads an HTTP answer's head, then its body chunk by chunk as it arrives.
fn read_events(reader: TcpStream, sink: &Mutex<String>, head: &Mutex<Option<String>>) {
    let mut reader = BufReader::new(reader);
    let mut lines = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        lines.push_str(&line);
    }
    let chunked = lines
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    *head.lock().expect("lock") = Some(lines);
    // Each chunk is appended as soon as it is complete.
    loop {
        let data = if chunked {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                return;
            }
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                return;
            };
            if size == 0 {
                return;
            }
            let mut data = vec![0; size + 2];
            if reader.read_exact(&mut data).is_err() {
                return;
            }
            data.truncate(size);
            data
        } else {
            let mut data = vec![0; 4096];
            match reader.read(&mut data) {
                Ok(0) | Err(_) => return,
                Ok(n) => data.truncate(n),
            }
            data
        };
        sink.lock()
            .expect("lock")
            .push_str(&String::from_utf8_lossy(&data));
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// The Marathon processes, their ports and logs; on a failure, the logs'
/// ends are printed.
struct Marathons {
    zk: String,
    master_port: u16,
    dir: PathBuf,
    ports: Vec<u16>,
    procs: Vec<Option<Proc>>,
    /// An instance stopped with SIGSTOP (it cannot answer).
    frozen: Option<usize>,
}

impl Marathons {
    fn spawn(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(i))
            .expect("log");
        let proc = Proc(
            agora()
                .args(["marathon", "--master"])
                .arg(format!("127.0.0.1:{}", self.master_port))
                .args(["--zk", &self.zk, "--zk-session-timeout", "2secs"])
                .args(["--http-port", &self.ports[i].to_string()])
                .args(["--http-address", "127.0.0.1", "--hostname", "127.0.0.1"])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn agora marathon"),
        );
        if i < self.procs.len() {
            self.procs[i] = Some(proc);
        } else {
            self.procs.push(Some(proc));
        }
    }

    fn log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("marathon{i}.log"))
    }

    fn address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// The instances that run and can answer.
    fn running(&self) -> Vec<usize> {
        (0..self.procs.len())
            .filter(|i| self.procs[*i].is_some() && self.frozen != Some(*i))
            .collect()
    }

    fn signal(&self, i: usize, signal: &str) {
        if let Some(p) = &self.procs[i] {
            let _ = std::process::Command::new("kill")
                .args([signal, &p.pid().to_string()])
                .status();
        }
    }

    /// SIGSTOP: the process keeps its connections but does nothing.
    fn freeze(&mut self, i: usize) {
        self.signal(i, "-STOP");
        self.frozen = Some(i);
    }

    fn thaw(&mut self, i: usize) {
        self.signal(i, "-CONT");
        self.frozen = None;
    }

    /// Whether instance `i` itself leads (its own gauge; `/metrics` is never forwarded).
    fn elected(&self, i: usize) -> Option<bool> {
        let metrics = get_json(self.ports[i], "/metrics")?;
        Some(metrics["gauges"]["marathon.leadership.elected.gauge"]["value"] == 1)
    }

    /// The running instance that leads, once exactly one does, serves, and
    /// every running instance names it in `/v2/leader` and `/v2/info`.
    fn leader(&self) -> Option<usize> {
        let running = self.running();
        let mut leading = Vec::new();
        for &i in &running {
            if self.elected(i)? {
                leading.push(i);
            }
        }
        let [leader] = leading[..] else {
            return None;
        };
        let address = self.address(leader);
        for &i in &running {
            let named = get_json(self.ports[i], "/v2/leader")?;
            if named["leader"] != address.as_str() {
                return None;
            }
            // A standby forwards `/v2/info`: every instance shows the leader's.
            let info = get_json(self.ports[i], "/v2/info")?;
            if info["elected"] != true
                || info["leader"] != address.as_str()
                || info["http_config"]["http_port"] != self.ports[leader]
            {
                return None;
            }
        }
        Some(leader)
    }
}

impl Drop for Marathons {
    fn drop(&mut self) {
        // A frozen process would ignore the SIGTERM that stops it.
        if let Some(i) = self.frozen {
            self.thaw(i);
        }
        if std::thread::panicking() {
            for i in 0..self.ports.len() {
                let log = std::fs::read_to_string(self.log(i)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("--- marathon{i} ({}) log tail ---", self.ports[i]);
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// The ids of the app's running tasks, as `port` reports them.
fn running_tasks(port: u16) -> Option<BTreeSet<String>> {
    let tasks = get_json(port, &format!("/v2/apps{APP}/tasks"))?;
    Some(
        tasks["tasks"]
            .as_array()?
            .iter()
            .filter(|t| t["state"] == "TASK_RUNNING")
            .filter_map(|t| t["id"].as_str().map(String::from))
            .collect(),
    )
}

/// The master's one framework, if it has exactly one.
fn framework(cluster: &Cluster) -> Option<Value> {
    let state = get_json(cluster.master_port, "/master/state")?;
    match state["frameworks"].as_array()?.as_slice() {
        [f] => Some(f.clone()),
        _ => None,
    }
}

/// The ids of the tasks the master knows for the framework, with their states.
fn master_tasks(framework: &Value) -> Vec<(String, String)> {
    let mut tasks: Vec<(String, String)> = framework["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["id"].as_str().unwrap_or_default().to_string(),
                t["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    tasks.sort();
    tasks
}

/// The master runs exactly `ids`, all TASK_RUNNING, for framework `id`
/// subscribed by the instance at `port`, and no task of it ended.
fn master_runs(cluster: &Cluster, id: &str, port: u16, ids: &BTreeSet<String>) -> Option<()> {
    let f = framework(cluster)?;
    let expected: Vec<(String, String)> = ids
        .iter()
        .map(|t| (t.clone(), "TASK_RUNNING".to_string()))
        .collect();
    (f["id"] == id
        && f["active"] == true
        && f["webui_url"] == format!("http://127.0.0.1:{port}")
        && master_tasks(&f) == expected
        && f["completed_tasks"].as_array().is_some_and(Vec::is_empty))
    .then_some(())
}

#[test]
fn a_standby_forwards_and_takes_over_with_the_same_framework_and_tasks() {
    let zk = zk::ZkServer::start();
    let cluster = Cluster::start();
    let (_agent, _agent_id) = cluster.agent(RESOURCES, &[]);
    let mut marathons = Marathons {
        zk: zk.url("/marathon"),
        master_port: cluster.master_port,
        dir: cluster.dir.path().to_path_buf(),
        ports: vec![free_port(), free_port()],
        procs: Vec::new(),
        frozen: None,
    };
    marathons.spawn(0);
    marathons.spawn(1);

    // Exactly one leads; both name it.
    let first = wait_for("one leading Marathon", || marathons.leader());
    let standby = 1 - first;
    let (leader_port, standby_port) = (marathons.ports[first], marathons.ports[standby]);
    let via = call(standby_port, "GET", "/v2/info", None).expect("info via the standby");
    assert!(
        via.head
            .to_ascii_lowercase()
            .contains(&format!("x-marathon-via: 127.0.0.1:{standby_port}")),
        "a forwarded answer names the standby: {}",
        via.head
    );

    // The standby streams the leader's events as they happen.
    let events = EventStream::open(standby_port);
    wait_for("the event stream through the standby", || {
        events
            .events()
            .iter()
            .any(|(kind, _)| kind == "event_stream_attached")
            .then_some(())
    });
    assert!(events
        .head()
        .is_some_and(|h| h.starts_with("HTTP/1.1 200") && h.contains("text/event-stream")));

    // A change sent to the standby is carried out by the leader.
    let app = json!({"id": APP, "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 2});
    let created = call(standby_port, "POST", "/v2/apps", Some(&app)).expect("POST via standby");
    assert_eq!(created.status, 201, "POST /v2/apps: {}", created.text);
    assert_eq!(created.body["id"], APP);
    let apps = get_json(standby_port, "/v2/apps").expect("apps via the standby");
    assert!(
        apps["apps"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == APP)),
        "{apps}"
    );
    let tasks = wait_for("2 running instances", || {
        running_tasks(standby_port).filter(|t| t.len() == 2)
    });
    wait_for("TASK_RUNNING events through the standby", || {
        let seen: BTreeSet<String> = events
            .events()
            .into_iter()
            .filter(|(kind, data)| {
                kind == "status_update_event"
                    && data["appId"] == APP
                    && data["taskStatus"] == "TASK_RUNNING"
            })
            .filter_map(|(_, data)| data["taskId"].as_str().map(String::from))
            .collect();
        (seen == tasks).then_some(())
    });
    wait_for("the deployment to finish", || {
        get_json(standby_port, "/v2/deployments")
            .filter(|d| d.as_array().is_some_and(Vec::is_empty))
    });
    let framework_id = get_json(leader_port, "/v2/info").expect("info")["frameworkId"]
        .as_str()
        .expect("a framework id")
        .to_string();
    wait_for("the master to run the tasks", || {
        master_runs(&cluster, &framework_id, leader_port, &tasks)
    });

    // SIGKILL the leader: the standby takes over.
    let killed = Instant::now();
    marathons.procs[first].take().expect("leader").kill();
    let mut answers = Vec::new();
    let second = wait_for("the standby to take over", || {
        // Meanwhile, the standby answers for itself: the leader's answer, or
        // an error with a message (never a hang or an empty answer).
        match call(standby_port, "GET", "/v2/apps", None) {
            Some(a) => answers.push((a.status, a.body.clone())),
            None => answers.push((0, Value::Null)),
        }
        marathons.leader()
    });
    let elected_after = killed.elapsed();
    assert_eq!(second, standby);
    // The stream through the standby ended with the leader: its client knows
    // to reconnect.
    wait_for("the forwarded event stream to end", || {
        events.ended().then_some(())
    });
    for (status, body) in &answers {
        assert!(
            *status == 200 || (matches!(status, 502 | 503) && body["message"].is_string()),
            "during the takeover: {status} {body}"
        );
    }
    let after = wait_for("the same 2 tasks on the new leader", || {
        running_tasks(standby_port).filter(|t| t.len() == 2)
    });
    assert_eq!(after, tasks, "the failover must not replace tasks");
    wait_for(
        "the new leader to resubscribe as the same framework",
        || master_runs(&cluster, &framework_id, standby_port, &tasks),
    );
    let resubscribed_after = killed.elapsed();
    let info = get_json(standby_port, "/v2/info").expect("info");
    assert_eq!(info["frameworkId"], framework_id.as_str());
    eprintln!(
        "takeover: elected and serving {elected_after:?} after the SIGKILL, \
         resubscribed {resubscribed_after:?} after it; answers meanwhile: {:?}",
        answers.iter().map(|(s, _)| *s).collect::<Vec<_>>()
    );

    // Changes work on the new leader.
    let scaled = call(
        standby_port,
        "PUT",
        &format!("/v2/apps{APP}"),
        Some(&json!({"instances": 3})),
    )
    .expect("scale");
    assert_eq!(scaled.status, 200, "scale: {}", scaled.text);
    let three = wait_for("3 running instances", || {
        running_tasks(standby_port).filter(|t| t.len() == 3)
    });
    assert!(three.is_superset(&tasks), "scaling up keeps the tasks");
    wait_for("the scale deployment to finish", || {
        get_json(standby_port, "/v2/deployments")
            .filter(|d| d.as_array().is_some_and(Vec::is_empty))
    });
    wait_for("the master to run 3 tasks", || {
        master_runs(&cluster, &framework_id, standby_port, &three)
    });

    // Restart the killed instance: it stands by behind the new leader.
    marathons.spawn(first);
    assert_eq!(
        wait_for("both instances agreeing", || marathons.leader()),
        second
    );

    // Freeze the leader past its ZooKeeper session: the restarted instance
    // takes over. Once thawed, the frozen one learns both that its session
    // ended and that the framework failed over to the other instance: it
    // must stand by without touching the framework, the tasks or the store.
    marathons.freeze(second);
    let frozen = Instant::now();
    assert_eq!(
        wait_for("the restarted instance to take over", || marathons.leader()),
        first
    );
    wait_for(
        "the restarted instance to resubscribe as the same framework",
        || master_runs(&cluster, &framework_id, leader_port, &three),
    );
    let taken_over = frozen.elapsed();
    marathons.thaw(second);
    assert_eq!(
        wait_for("the thawed instance to stand by", || marathons.leader()),
        first
    );
    wait_for("the thawed instance to follow the new leader", || {
        (marathons.elected(second) == Some(false)
            && get_json(standby_port, "/v2/leader")?["leader"] == marathons.address(first).as_str())
        .then_some(())
    });
    master_runs(&cluster, &framework_id, leader_port, &three)
        .expect("the framework, its tasks and its scheduler are the same after the thaw");
    assert_eq!(
        running_tasks(standby_port),
        Some(three.clone()),
        "the same tasks through the thawed instance"
    );
    eprintln!("freeze: the other instance led and resubscribed {taken_over:?} after the SIGSTOP");

    // The leader steps down when asked; the other instance takes over,
    // loading what the first stored: the same framework and tasks.
    let leaders_events = EventStream::open(leader_port);
    wait_for("the leader's own event stream", || {
        leaders_events
            .head()
            .filter(|h| h.starts_with("HTTP/1.1 200"))
    });
    let abdicated = call(leader_port, "DELETE", "/v2/leader", None).expect("abdicate");
    let asked = Instant::now();
    assert_eq!(abdicated.status, 200, "abdicate: {}", abdicated.text);
    assert_eq!(abdicated.body, json!({"message": "Leadership abdicated"}));
    assert_eq!(
        wait_for("the other instance to lead", || {
            marathons.leader().filter(|l| *l == second)
        }),
        second
    );
    let handed_over = asked.elapsed();
    // Its term's streams ended with it, so their clients find the new leader.
    wait_for("the leader's event stream to end with its term", || {
        leaders_events.ended().then_some(())
    });
    let last = wait_for("the same 3 tasks on the last leader", || {
        running_tasks(standby_port).filter(|t| t.len() == 3)
    });
    assert_eq!(last, three, "abdication must not replace tasks");
    wait_for(
        "the last leader to resubscribe as the same framework",
        || master_runs(&cluster, &framework_id, standby_port, &three),
    );
    let info = get_json(standby_port, "/v2/info").expect("info");
    assert_eq!(
        info["frameworkId"],
        framework_id.as_str(),
        "the stored framework id"
    );
    eprintln!(
        "abdication: the other instance led {handed_over:?} after DELETE /v2/leader, \
         resubscribed {:?} after it",
        asked.elapsed()
    );
    // The instance that stepped down stands by and forwards.
    let via_old = get_json(leader_port, &format!("/v2/apps{APP}")).expect("app via old leader");
    assert_eq!(via_old["app"]["instances"], 3);
}
