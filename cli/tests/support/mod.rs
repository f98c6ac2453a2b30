//! What the end-to-end tests of the `agora` binary share: a real master
//! and a real agent as children of the test, `agora execute` as the
//! framework, and polling helpers.

#![allow(dead_code)] // each test binary uses its own subset
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod docker;

pub const RESOURCES: &str = "cpus:2;mem:1024;disk:1000;ports:[31000-31010]";
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn agora() -> Command {
    Command::new(env!("CARGO_BIN_EXE_agora"))
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A `--master-port` for `agora local`, whose agents listen on the ports
/// right above it: it and the next `agents` ports free a moment ago, below
/// the kernel's ephemeral range (where any outgoing connection may hold the
/// port above a free one), from a start that differs between tests.
pub fn local_master_port(agents: u16) -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let seed =
        u64::from(std::process::id()) * 7_919 + CALLS.fetch_add(1, Ordering::Relaxed) * 104_729;
    for attempt in 0..2_000u64 {
        let base = 20_000 + ((seed + attempt * 13) % 10_000) as u16;
        let held: Result<Vec<_>, _> = (0..=agents)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)))
            .collect();
        if held.is_ok() {
            return base;
        }
    }
    panic!("no {} consecutive free ports for agora local", agents + 1)
}

/// Polls `check` until it returns `Some`, failing with `what` at the deadline.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET path` on `127.0.0.1:port`, as JSON.
pub fn get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    serde_json::from_str(&body).ok()
}

pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A child process stopped and reaped on drop: SIGTERM first, so an agent
/// kills its tasks and shims rather than leaving them behind, then SIGKILL.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, then wait for it to exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + DEADLINE;
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
        self.kill();
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub master_port: u16,
    pub agent_port: u16,
    /// Killed with the cluster.
    _master: Proc,
}

impl Cluster {
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let master_port = free_port();
        let log = std::fs::File::create(dir.path().join("master.log")).expect("log");
        let master = Proc(
            agora()
                .args([
                    "master",
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    &master_port.to_string(),
                ])
                .args(["--allocation-interval", "100ms"])
                .arg("--work-dir")
                .arg(dir.path().join("master"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn master"),
        );
        eventually("the master", || get_json(master_port, "/master/state"));
        Cluster {
            dir,
            master_port,
            agent_port: free_port(),
            _master: master,
        }
    }

    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("agent")
    }

    /// Starts the agent (same work dir and port every time) and waits until
    /// it is registered; returns it with its id.
    pub fn agent(&self, resources: &str, extra: &[&str]) -> (Proc, String) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .expect("log");
        let agent = Proc(
            agora()
                .args(["agent", "--ip", "127.0.0.1"])
                .args(["--master", &format!("127.0.0.1:{}", self.master_port)])
                .args(["--port", &self.agent_port.to_string()])
                .arg("--work-dir")
                .arg(self.work_dir())
                .args(["--resources", resources])
                .args(["--executor-shutdown-grace-period", "200ms"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn agent"),
        );
        let port = self.agent_port;
        let id = eventually("the agent to register", || {
            let metrics = get_json(port, "/metrics/snapshot")?;
            if metrics["slave/registered"] != 1 {
                return None;
            }
            get_json(port, "/state")?["id"].as_str().map(String::from)
        });
        (agent, id)
    }

    /// `agora execute` in the background; its output lines are collected.
    pub fn execute(&self, name: &str, command: &str) -> Execute {
        self.execute_with(name, command, &[])
    }

    /// [`Cluster::execute`] with more `agora execute` flags.
    pub fn execute_with(&self, name: &str, command: &str, extra: &[&str]) -> Execute {
        let mut child = agora()
            .args([
                "execute",
                "--master",
                &format!("127.0.0.1:{}", self.master_port),
            ])
            .args(["--name", name, "--command", command])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn execute");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("lock").push(line);
            }
        });
        Execute {
            proc: Proc(child),
            lines,
        }
    }

    /// The state the master reports for `task_id`, and the agent it is on.
    pub fn master_task(&self, task_id: &str) -> Option<(String, String)> {
        let state = get_json(self.master_port, "/master/state")?;
        state["frameworks"].as_array()?.iter().find_map(|f| {
            f["tasks"].as_array()?.iter().find_map(|t| {
                (t["id"] == task_id).then(|| {
                    (
                        t["state"].as_str().unwrap_or_default().to_string(),
                        t["slave_id"].as_str().unwrap_or_default().to_string(),
                    )
                })
            })
        })
    }

    /// The sandbox of the task that wrote a file named `pid`, and that pid.
    pub fn task_pid(&self) -> (PathBuf, i32) {
        eventually("the task's pid file", || {
            let file = find(&self.work_dir().join("slaves"), "pid")?;
            let pid = std::fs::read_to_string(&file).ok()?.trim().parse().ok()?;
            Some((file.parent()?.to_path_buf(), pid))
        })
    }
}

pub struct Execute {
    pub proc: Proc,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Execute {
    pub fn output(&self) -> String {
        self.lines.lock().expect("lock").join("\n")
    }

    pub fn wait_for(&self, text: &str) {
        eventually(&format!("'{text}' from execute"), || {
            self.output().contains(text).then_some(())
        });
    }
}

pub fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        if path.is_dir() && !is_link {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}

pub fn alive(pid: i32) -> bool {
    // A zombie is not alive: it is only waiting to be reaped.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or_default()
            .trim_start()
            .starts_with('Z')
    })
}
