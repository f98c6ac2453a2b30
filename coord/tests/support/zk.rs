//! A real ZooKeeper server for tests: Debian's `zookeeper` package, run as
//! a standalone JVM on a free loopback port with its own data folder.
//!
//! Reusable by other test crates with
//! `#[path = "../../coord/tests/support/zk.rs"] mod zk;` (it needs only std,
//! `tempfile` and `nix`). The tick is 200 ms so that sessions of about a
//! second are accepted and expire fast. `kill`/`restart` keep the port and
//! the data folder, as a crashed and restarted server would; `pause`/
//! `resume` freeze the JVM (SIGSTOP/SIGCONT). The JVM is killed on drop.

#![allow(dead_code)] // each test binary uses a different part

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Where the Debian package puts the server and its configuration.
/// `zookeeper.jar`'s manifest names every other jar it needs.
pub const CLASSPATH: &str = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar";
/// The server's entry point (standalone when the config has no peers).
pub const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// A ZooKeeper server owned by a test.
pub struct ZkServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl ZkServer {
    /// Starts a server on a free port and waits until it serves.
    pub fn start() -> ZkServer {
        assert!(
            std::path::Path::new("/usr/share/java/zookeeper.jar").exists(),
            "ZooKeeper is not installed: run scripts/test.sh or apt-get install zookeeper"
        );
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        fs::create_dir_all(&data).expect("data dir");
        let cfg = format!(
            "tickTime=200\n\
             initLimit=10\n\
             syncLimit=5\n\
             dataDir={}\n\
             clientPort={port}\n\
             clientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=*\n\
             minSessionTimeout=400\n\
             maxSessionTimeout=20000\n",
            data.display()
        );
        fs::write(dir.path().join("zoo.cfg"), cfg).expect("zoo.cfg");
        let mut server = ZkServer {
            port,
            dir,
            child: None,
        };
        server.spawn();
        server
    }

    fn cfg(&self) -> PathBuf {
        self.dir.path().join("zoo.cfg")
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("zookeeper.log"))
            .expect("log file");
        let child = Command::new("java")
            // A small, quick-starting JVM: tests start many of them.
            .args(["-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dzookeeper.jmx.log4j.disable=true")
            .args(["-cp", CLASSPATH, MAIN_CLASS])
            .arg(self.cfg())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start java (is the JDK installed?)");
        self.child = Some(child);
        self.wait_serving(Duration::from_secs(30));
    }

    /// Waits until the server answers `srvr` as serving.
    fn wait_serving(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(reply) = self.four_letter("srvr") {
                if reply.contains("Mode:") {
                    return;
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("zookeeper exited with {status}; log: {}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "zookeeper did not serve within {timeout:?}; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("zookeeper.log")).unwrap_or_default()
    }

    /// Sends a four-letter word (`ruok`, `srvr`, `cons`, ...) and returns the reply.
    pub fn four_letter(&self, word: &str) -> Option<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(word.as_bytes()).ok()?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).ok()?;
        Some(reply)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `zk://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("zk://127.0.0.1:{}{path}", self.port)
    }

    /// Kills the JVM (SIGKILL) as a crash would; the data folder stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server gracefully (SIGTERM), killing it after 5 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data folder (killing
    /// it first if it runs) and waits until it serves.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Freezes the JVM (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// Thaws a paused JVM (SIGCONT).
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    fn signal(&self, signal: Signal) {
        let child = self.child.as_ref().expect("zookeeper is not running");
        kill(Pid::from_raw(child.id() as i32), signal).expect("signal zookeeper");
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        // A paused JVM still dies of SIGKILL.
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}
