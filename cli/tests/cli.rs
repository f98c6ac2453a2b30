//! The `agora` binary as a user drives it: bad flags, `agora local`, `agora execute`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn agora() -> Command {
    Command::new(env!("CARGO_BIN_EXE_agora"))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn one_line_error(args: &[&str], flag: &str) {
    let out = agora().args(args).output().expect("run agora");
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line for {args:?}, got: {stderr}");
    assert!(lines[0].contains(flag), "'{}' should name {flag}", lines[0]);
}

#[test]
fn bad_flags_exit_with_one_line_naming_the_flag() {
    one_line_error(&["master", "--port", "abc"], "--port");
    one_line_error(&["master", "--weights", "web=x"], "--weights");
    one_line_error(
        &["master", "--allocation-interval", "5 parsecs"],
        "--allocation-interval",
    );
    one_line_error(&["master", "--roles", "a b"], "--roles");
    one_line_error(&["master", "--no-such-flag"], "--no-such-flag");
    one_line_error(
        &["agent", "--master", "127.0.0.1:1", "--resources", "cpus"],
        "--resources",
    );
    one_line_error(
        &["agent", "--master", "127.0.0.1:1", "--attributes", "rack"],
        "--attributes",
    );
    one_line_error(
        &[
            "execute",
            "--master",
            "127.0.0.1:1",
            "--name",
            "x",
            "--command",
            "true",
            "--cpus",
            "0",
        ],
        "--cpus",
    );
    one_line_error(&["local", "--agents", "0"], "--agents");
    one_line_error(&["marathon", "--master", "nowhere"], "--master");
    one_line_error(
        &[
            "marathon",
            "--master",
            "127.0.0.1:1",
            "--local-port-min",
            "20000",
            "--local-port-max",
            "10000",
        ],
        "--local-port-min",
    );
    one_line_error(
        &["marathon", "--master", "127.0.0.1:1", "--http-port", "http"],
        "--http-port",
    );
}

/// `agora local` in the background, stopped with SIGTERM on drop.
struct Local {
    child: Child,
    port: u16,
}

impl Local {
    fn start(dir: &std::path::Path) -> Local {
        let port = support::local_master_port(1);
        let mut child = agora()
            .args(["local", "--agents", "1", "--master-port", &port.to_string()])
            .args(["--marathon-port", &free_port().to_string()])
            .arg("--work-dir")
            .arg(dir)
            .args([
                "--agent-resources",
                "cpus:2;mem:1024;disk:1000;ports:[31000-31010]",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agora local");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut printed = String::new();
        loop {
            assert!(
                Instant::now() < deadline,
                "agora local did not start: {printed}"
            );
            match lines.next() {
                Some(Ok(line)) => {
                    printed.push_str(&line);
                    printed.push('\n');
                    if line.contains("Ctrl-C") {
                        break;
                    }
                }
                _ => panic!("agora local exited early: {printed}"),
            }
        }
        assert!(
            printed.contains(&format!("127.0.0.1:{port}")),
            "prints the master URL: {printed}"
        );
        assert!(
            printed.contains("/master/state"),
            "prints the state URL: {printed}"
        );
        assert!(
            printed.contains("/v2/apps"),
            "prints Marathon's URL: {printed}"
        );
        Local { child, port }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agora local did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn local_cluster_runs_execute_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = Local::start(dir.path());
    let master = format!("127.0.0.1:{}", local.port);

    let ok = agora()
        .args([
            "execute",
            "--master",
            &master,
            "--name",
            "hello",
            "--instances",
            "2",
        ])
        .args(["--command", "echo \"hello $MESOS_TASK_ID\""])
        .output()
        .expect("execute");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "execute failed: {stdout} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(stdout.matches("TASK_FINISHED").count(), 2, "{stdout}");
    assert!(stdout.contains("task hello-0 TASK_RUNNING"), "{stdout}");

    let bad = agora()
        .args([
            "execute",
            "--master",
            &master,
            "--name",
            "sad",
            "--command",
            "exit 3",
        ])
        .output()
        .expect("execute");
    assert_eq!(bad.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(stdout.contains("task sad TASK_FAILED"), "{stdout}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("did not finish successfully"), "{stderr}");

    // The task's output is in its sandbox.
    let found = walk(dir.path()).into_iter().any(|p| {
        p.ends_with("stdout")
            && std::fs::read_to_string(&p).is_ok_and(|s| s.contains("hello hello-1"))
    });
    assert!(found, "a sandbox stdout holds the task's output");

    let status = local.stop();
    assert!(
        status.success(),
        "agora local exits 0 on SIGTERM, got {status}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        if path.is_dir() && !is_link {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
