//! Health checks and general checks on a real agent (the POSIX
//! containerizer, which runs the same check loops as a shim, in-process):
//! real tasks, a tiny HTTP server whose health a file toggles, a master
//! stand-in reading the status updates.

mod support;

use std::time::Duration;

use agora_common::resources::ranges;
use agora_proto::health_check::{HttpCheckInfo, TcpCheckInfo, Type as HealthType};
use agora_proto::task_status::Reason;
use agora_proto::{check_info, CheckInfo, CommandInfo, HealthCheck, TaskInfo, TaskState};
use support::*;

/// A port nobody uses at the moment.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A task serving its sandbox over HTTP on `port`: `GET /health` answers
/// 200 while the file `health` exists, 404 once it is removed.
fn web_task(id: &str, port: u16) -> TaskInfo {
    let mut task = shell_task(
        id,
        "touch health && exec python3 -m http.server $PORT0 --bind 127.0.0.1",
    );
    task.resources
        .push(ranges("ports", &[(u64::from(port), u64::from(port))]));
    task
}

fn http_check(port: u16, grace: f64, failures: u32) -> HealthCheck {
    HealthCheck {
        r#type: HealthType::Http as i32,
        http: Some(HttpCheckInfo {
            port: u32::from(port),
            path: Some("/health".into()),
            ..Default::default()
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.1),
        timeout_seconds: Some(2.0),
        consecutive_failures: Some(failures),
        grace_period_seconds: Some(grace),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_task_turns_healthy_then_unhealthy_and_is_killed_naming_the_failure() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;
    let port = free_port();
    let mut task = web_task("web", port);
    // The grace period covers the server's start; the first success ends it.
    task.health_check = Some(http_check(port, 30.0, 3));
    master.send(run(framework(&[]), task));

    let running = master.expect_update("web").await;
    assert_eq!(state(&running), TaskState::TaskRunning);
    assert_eq!(running.healthy, None, "no verdict yet");
    let healthy = master.expect_update("web").await;
    assert_eq!(state(&healthy), TaskState::TaskRunning);
    assert_eq!(healthy.healthy, Some(true));
    assert_eq!(
        healthy.reason,
        Some(Reason::TaskHealthCheckStatusUpdated as i32)
    );

    std::fs::remove_file(agent.sandbox(FRAMEWORK, "web").join("health")).expect("toggle");
    let unhealthy = master.expect_update("web").await;
    assert_eq!(state(&unhealthy), TaskState::TaskRunning);
    assert_eq!(unhealthy.healthy, Some(false));
    assert_eq!(
        unhealthy.reason,
        Some(Reason::TaskHealthCheckStatusUpdated as i32)
    );
    let cause = format!("GET http://127.0.0.1:{port}/health answered 404");
    assert_eq!(unhealthy.message.as_deref(), Some(cause.as_str()));
    // Reported once, however many checks fail, until the kill.
    let killed = master.expect_update("web").await;
    assert_eq!(state(&killed), TaskState::TaskKilled);
    assert_eq!(killed.healthy, Some(false));
    assert_eq!(
        killed.message,
        Some(format!(
            "Killed for failing its health check: 3 consecutive health checks failed; the last: {cause}"
        ))
    );
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn failures_within_the_grace_period_count_for_nothing() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;
    // Nothing listens: every probe fails, from the start.
    let port = free_port();
    let mut task = shell_task("late", "sleep 600");
    task.resources
        .push(ranges("ports", &[(u64::from(port), u64::from(port))]));
    task.health_check = Some(HealthCheck {
        r#type: HealthType::Tcp as i32,
        tcp: Some(TcpCheckInfo {
            port: u32::from(port),
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.05),
        timeout_seconds: Some(1.0),
        consecutive_failures: Some(1),
        grace_period_seconds: Some(1.5),
        ..Default::default()
    });
    let started = std::time::Instant::now();
    master.send(run(framework(&[]), task));
    assert_eq!(
        state(&master.expect_update("late").await),
        TaskState::TaskRunning
    );
    let unhealthy = master.expect_update("late").await;
    assert_eq!(unhealthy.healthy, Some(false));
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "a failure counted within the grace period: after {:?}",
        started.elapsed()
    );
    let killed = master.expect_update("late").await;
    assert_eq!(state(&killed), TaskState::TaskKilled);
    assert!(
        killed
            .message
            .as_deref()
            .is_some_and(|m| m.contains("TCP connection to port") && m.contains("refused")),
        "{:?}",
        killed.message
    );
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn command_checks_run_in_the_sandbox_and_general_checks_only_report() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;
    let mut task = shell_task("cmd", "touch ready; sleep 600");
    task.health_check = Some(HealthCheck {
        r#type: HealthType::Command as i32,
        command: Some(CommandInfo {
            value: Some("test -f ready".into()),
            ..Default::default()
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.1),
        consecutive_failures: Some(0),
        grace_period_seconds: Some(0.0),
        ..Default::default()
    });
    task.check = Some(CheckInfo {
        r#type: check_info::Type::Command as i32,
        command: Some(check_info::Command {
            command: Some(CommandInfo {
                value: Some("test -f ready && exit 3".into()),
                ..Default::default()
            }),
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.1),
        ..Default::default()
    });
    master.send(run(framework(&[]), task));
    assert_eq!(
        state(&master.expect_update("cmd").await),
        TaskState::TaskRunning
    );
    // Both results come, in either order, each in its own update. A probe
    // may run before the task's `touch`: then the first verdict is
    // unhealthy (and the check's exit code 1), and the next one says so.
    let exit_code = |c: &Option<agora_proto::CheckStatusInfo>| {
        c.as_ref()
            .and_then(|c| c.command.as_ref())
            .and_then(|c| c.exit_code)
    };
    let (mut healthy, mut checked) = (None, None);
    while healthy != Some(true) || exit_code(&checked) != Some(3) {
        let update = master.expect_update("cmd").await;
        assert_eq!(state(&update), TaskState::TaskRunning);
        match update.reason {
            Some(r) if r == Reason::TaskHealthCheckStatusUpdated as i32 => healthy = update.healthy,
            Some(r) if r == Reason::TaskCheckStatusUpdated as i32 => checked = update.check_status,
            other => panic!("unexpected update {other:?}: {update:?}"),
        }
    }
    let checked = checked.expect("a check result");
    assert_eq!(checked.r#type, check_info::Type::Command as i32);

    // Failing health checks with consecutive_failures 0 never kill: the
    // task is reported unhealthy once, and runs on.
    std::fs::remove_file(agent.sandbox(FRAMEWORK, "cmd").join("ready")).expect("toggle");
    let mut unhealthy = None;
    while unhealthy.is_none() {
        let update = master.expect_update("cmd").await;
        assert_eq!(state(&update), TaskState::TaskRunning);
        if update.reason == Some(Reason::TaskHealthCheckStatusUpdated as i32) {
            unhealthy = Some(update);
        }
    }
    let unhealthy = unhealthy.expect("unhealthy");
    assert_eq!(unhealthy.healthy, Some(false));
    assert_eq!(
        unhealthy.message.as_deref(),
        Some("command 'test -f ready' exited with status 1")
    );
    let later = master.collect_for(Duration::from_millis(500)).await;
    assert!(
        later.iter().all(|m| !matches!(
            &m.message,
            Some(agora_proto::agent::agent_message::Message::StatusUpdate(u))
                if u.status.as_ref().is_some_and(|s| s.healthy.is_some()
                    && s.reason == Some(Reason::TaskHealthCheckStatusUpdated as i32))
        )),
        "health reported again without a change: {later:?}"
    );
    master.send(kill("cmd", Some(Duration::from_millis(100))));
    let killed = master.expect_update("cmd").await;
    assert_eq!(state(&killed), TaskState::TaskKilled);
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_check_that_cannot_run_fails_the_launch_naming_it() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;
    let mut task = shell_task("bad", "sleep 600");
    task.health_check = Some(http_check(0, 0.0, 3));
    master.send(run(framework(&[]), task));
    let failed = master.expect_update("bad").await;
    assert_eq!(state(&failed), TaskState::TaskFailed);
    assert_eq!(failed.reason, Some(Reason::ContainerLaunchFailed as i32));
    assert_eq!(
        failed.message.as_deref(),
        Some("Failed to launch container: health check: port 0 is not a port")
    );
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_https_check_reaches_a_server_whatever_its_certificate() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;
    let port = free_port();
    // A self-signed certificate made in the sandbox, served by Python's ssl.
    let serve = "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=task -days 1 \
                 -keyout key.pem -out cert.pem 2>/dev/null && touch health && exec python3 -c '\
import http.server, ssl, os
s = http.server.HTTPServer((\"127.0.0.1\", int(os.environ[\"PORT0\"])), http.server.SimpleHTTPRequestHandler)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(\"cert.pem\", \"key.pem\")
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()'";
    let mut task = shell_task("tls", serve);
    task.resources
        .push(ranges("ports", &[(u64::from(port), u64::from(port))]));
    let mut check = http_check(port, 30.0, 3);
    if let Some(http) = check.http.as_mut() {
        http.scheme = Some("https".into());
    }
    task.health_check = Some(check);
    master.send(run(framework(&[]), task));
    assert_eq!(
        state(&master.expect_update("tls").await),
        TaskState::TaskRunning
    );
    let healthy = master.expect_update("tls").await;
    assert_eq!(healthy.healthy, Some(true), "{healthy:?}");
    agent.stop().await.expect("clean stop");
}
