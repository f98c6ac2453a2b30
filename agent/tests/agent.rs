//! The agent end to end: a real agent, real processes, a master stand-in
//! speaking the Agent API over a real socket.

mod support;

use std::time::Duration;

use agora_common::resources::ranges;
use agora_proto::agent::{agent_message, master_message};
use agora_proto::environment::{variable, Variable};
use agora_proto::framework_info::capability;
use agora_proto::task_status::Reason;
use agora_proto::{CommandInfo, Environment, FrameworkId, TaskId, TaskState};
use support::*;

#[tokio::test]
async fn registers_with_its_resources_and_attributes() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    let register = master
        .expect(|m| match &m.message {
            Some(agent_message::Message::Register(r)) => Some(r.clone()),
            _ => None,
        })
        .await;
    let info = register.agent_info.expect("agent info");
    assert_eq!(info.hostname, "test-host");
    assert_eq!(info.port, Some(i32::from(agent.handle.http_addr().port())));
    assert!(info.resources.iter().any(|r| r.name == "cpus"));
    assert_eq!(info.attributes[0].name, "rack");
    assert_eq!(register.version, agora_common::build::MESOS_API_VERSION);
    assert_eq!(agent.handle.registered().await.as_deref(), Some(AGENT_ID));
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn runs_a_command_task_to_completion_with_its_environment() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;

    let mut task = shell_task("t1", "echo hello; env; sleep 0.2");
    task.resources.push(ranges("ports", &[(31005, 31006)]));
    if let Some(command) = task.command.as_mut() {
        command.environment = Some(Environment {
            variables: vec![Variable {
                name: "FOO".into(),
                value: Some("bar".into()),
                r#type: variable::Type::Value as i32,
            }],
        });
    }
    master.send(run(framework(&[]), task));

    let running = master.expect_update("t1").await;
    assert_eq!(state(&running), TaskState::TaskRunning);
    assert_eq!(
        running.agent_id.as_ref().map(|a| a.value.as_str()),
        Some(AGENT_ID)
    );
    assert_eq!(
        running.executor_id.as_ref().map(|e| e.value.as_str()),
        Some("t1")
    );
    assert_eq!(running.uuid.as_ref().map(Vec::len), Some(16));
    assert!(running
        .container_status
        .and_then(|c| c.executor_pid)
        .is_some_and(|pid| pid > 0));

    let finished = master.expect_update("t1").await;
    assert_eq!(state(&finished), TaskState::TaskFinished);
    assert_eq!(
        finished.message.as_deref(),
        Some("Command exited with status 0")
    );

    let sandbox = agent.sandbox(FRAMEWORK, "t1");
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).expect("stdout");
    let sandbox_path = std::fs::canonicalize(&sandbox).expect("sandbox exists");
    for expected in [
        "hello".to_string(),
        "MESOS_TASK_ID=t1".to_string(),
        format!("MESOS_AGENT_ID={AGENT_ID}"),
        format!("MESOS_FRAMEWORK_ID={FRAMEWORK}"),
        "MESOS_EXECUTOR_ID=t1".to_string(),
        format!("MESOS_SANDBOX={}", sandbox_path.display()),
        "HOST=test-host".to_string(),
        "PORT0=31005".to_string(),
        "PORT1=31006".to_string(),
        "PORT=31005".to_string(),
        "PORTS=31005,31006".to_string(),
        "FOO=bar".to_string(),
    ] {
        assert!(
            stdout.lines().any(|l| l == expected),
            "{expected} missing from stdout:\n{stdout}"
        );
    }
    assert!(sandbox.join("stderr").exists());
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn failures_are_reported_with_reasons() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;

    master.send(run(framework(&[]), shell_task("exit3", "exit 3")));
    assert_eq!(
        state(&master.expect_update("exit3").await),
        TaskState::TaskRunning
    );
    let failed = master.expect_update("exit3").await;
    assert_eq!(state(&failed), TaskState::TaskFailed);
    assert_eq!(
        failed.message.as_deref(),
        Some("Command exited with status 3")
    );
    assert_eq!(failed.reason, Some(Reason::CommandExecutorFailed as i32));

    let mut missing = shell_task("missing", "");
    missing.command = Some(CommandInfo {
        value: Some("/nonexistent/program".into()),
        shell: Some(false),
        ..Default::default()
    });
    master.send(run(framework(&[]), missing));
    let failed = master.expect_update("missing").await;
    assert_eq!(state(&failed), TaskState::TaskFailed);
    assert_eq!(failed.reason, Some(Reason::ContainerLaunchFailed as i32));
    assert!(
        failed
            .message
            .as_deref()
            .is_some_and(|m| m.contains("/nonexistent/program")),
        "{:?}",
        failed.message
    );

    let mut no_command = shell_task("nocmd", "");
    no_command.command = None;
    master.send(run(framework(&[]), no_command));
    let failed = master.expect_update("nocmd").await;
    assert_eq!(state(&failed), TaskState::TaskFailed);
    assert_eq!(failed.reason, Some(Reason::ContainerLaunchFailed as i32));
    assert!(failed
        .message
        .as_deref()
        .is_some_and(|m| m.contains("only command tasks are supported")));
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn kill_terminates_with_sigterm_and_announces_killing() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;

    let fw = framework(&[capability::Type::TaskKillingState]);
    master.send(run(fw, shell_task("sleeper", "sleep 100")));
    assert_eq!(
        state(&master.expect_update("sleeper").await),
        TaskState::TaskRunning
    );
    master.send(kill("sleeper", None));
    assert_eq!(
        state(&master.expect_update("sleeper").await),
        TaskState::TaskKilling
    );
    let killed = master.expect_update("sleeper").await;
    assert_eq!(state(&killed), TaskState::TaskKilled);
    assert_eq!(
        killed.message.as_deref(),
        Some("Command terminated with signal SIGTERM")
    );
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn kill_escalates_to_sigkill_after_the_grace_period() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;

    master.send(run(
        framework(&[]),
        shell_task("stubborn", "trap '' TERM; sleep 100"),
    ));
    assert_eq!(
        state(&master.expect_update("stubborn").await),
        TaskState::TaskRunning
    );
    let asked = tokio::time::Instant::now();
    master.send(kill("stubborn", Some(Duration::from_secs(1))));
    let killed = master.expect_update("stubborn").await;
    assert_eq!(state(&killed), TaskState::TaskKilled);
    assert_eq!(
        killed.message.as_deref(),
        Some("Command terminated with signal SIGKILL")
    );
    assert!(
        asked.elapsed() >= Duration::from_secs(1),
        "SIGKILL came before the grace period"
    );
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn killed_task_leaves_no_process_behind() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;

    master.send(run(
        framework(&[]),
        shell_task("forker", "sleep 300 & echo $! > child.pid; sleep 300"),
    ));
    assert_eq!(
        state(&master.expect_update("forker").await),
        TaskState::TaskRunning
    );
    let pid_file = agent.sandbox(FRAMEWORK, "forker").join("child.pid");
    assert_eventually("the child wrote its pid", || {
        let pid_file = pid_file.clone();
        Box::pin(async move { std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n')) })
    })
    .await;
    let child: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    assert!(process_alive(child));

    master.send(kill("forker", None));
    assert_eq!(
        state(&master.expect_update("forker").await),
        TaskState::TaskKilled
    );
    assert_eventually("the forked child is gone", || {
        Box::pin(async move { !process_alive(child) })
    })
    .await;
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn unacknowledged_updates_are_resent_in_order() {
    let mut master = TestMaster::start(false).await;
    let agent = TestAgent::start(&master, |c| {
        c.status_update_retry_interval = Duration::from_millis(200);
    })
    .await;
    registered(&mut master, &agent).await;

    master.send(run(framework(&[]), shell_task("quick", "true")));
    let first = master.expect_update("quick").await;
    assert_eq!(state(&first), TaskState::TaskRunning);
    // The task finishes at once, but TASK_FINISHED must wait for the ack of
    // TASK_RUNNING: only the head is resent meanwhile.
    let resent = master.expect_update("quick").await;
    assert_eq!(resent.uuid, first.uuid, "the same update is resent");
    assert_eq!(state(&resent), TaskState::TaskRunning);

    // A wrong uuid acknowledges nothing.
    let ack = |uuid: Vec<u8>| {
        master_message::Message::Acknowledgement(master_message::StatusUpdateAcknowledgement {
            framework_id: Some(FrameworkId {
                value: FRAMEWORK.into(),
            }),
            task_id: Some(TaskId {
                value: "quick".into(),
            }),
            uuid,
        })
    };
    master.send(ack(vec![0; 16]));
    assert_eq!(master.expect_update("quick").await.uuid, first.uuid);

    master.send(ack(first.uuid.clone().expect("uuid")));
    let finished = master
        .expect(|m| match &m.message {
            Some(agent_message::Message::StatusUpdate(u))
                if u.status.as_ref().is_some_and(|s| s.uuid != first.uuid) =>
            {
                Some(u.clone())
            }
            _ => None,
        })
        .await;
    let status = finished.status.expect("status");
    assert_eq!(state(&status), TaskState::TaskFinished);
    assert_eq!(finished.latest_state, Some(TaskState::TaskFinished as i32));
    master.send(ack(status.uuid.clone().expect("uuid")));

    // Acknowledged and terminal: forgotten, so no more resends.
    let quiet = master.collect_for(Duration::from_millis(600)).await;
    assert!(
        !quiet
            .iter()
            .any(|m| matches!(m.message, Some(agent_message::Message::StatusUpdate(_)))),
        "{quiet:?}"
    );
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn reconnects_and_reregisters_with_its_running_task() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;

    master.send(run(framework(&[]), shell_task("survivor", "sleep 100")));
    assert_eq!(
        state(&master.expect_update("survivor").await),
        TaskState::TaskRunning
    );
    master.drop_connection();

    let reregister = master
        .expect(|m| match &m.message {
            Some(agent_message::Message::Reregister(r)) => Some(r.clone()),
            _ => None,
        })
        .await;
    let info = reregister.agent_info.expect("agent info");
    assert_eq!(info.id.map(|i| i.value).as_deref(), Some(AGENT_ID));
    assert_eq!(reregister.tasks.len(), 1);
    let task = &reregister.tasks[0];
    assert_eq!(
        task.task_id.as_ref().map(|t| t.value.as_str()),
        Some("survivor")
    );
    assert_eq!(task.state, TaskState::TaskRunning as i32);
    assert_eq!(
        task.framework_id.as_ref().map(|f| f.value.as_str()),
        Some(FRAMEWORK)
    );
    assert_eq!(
        task.agent_id.as_ref().map(|a| a.value.as_str()),
        Some(AGENT_ID)
    );
    assert!(!task.resources.is_empty());
    assert_eq!(reregister.frameworks.len(), 1);
    assert_eq!(reregister.frameworks[0].name, "test-framework");

    // The new stream works: a kill goes through.
    master.send(kill("survivor", None));
    assert_eq!(
        state(&master.expect_update("survivor").await),
        TaskState::TaskKilled
    );
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_silent_master_is_left_after_the_ping_timeout() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |c| {
        c.master_ping_timeout = Duration::from_millis(300);
    })
    .await;
    registered(&mut master, &agent).await;
    master
        .expect(|m| matches!(m.message, Some(agent_message::Message::Reregister(_))).then_some(()))
        .await;
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn answers_pings() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;
    master.send(master_message::Message::Ping(master_message::Ping {
        sequence: 42,
    }));
    let pong = master
        .expect(|m| match &m.message {
            Some(agent_message::Message::Pong(p)) => Some(p.sequence),
            _ => None,
        })
        .await;
    assert_eq!(pong, 42);
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn http_endpoints_show_the_running_task() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;
    master.send(run(framework(&[]), shell_task("web", "sleep 100")));
    assert_eq!(
        state(&master.expect_update("web").await),
        TaskState::TaskRunning
    );

    let addr = agent.handle.http_addr();
    for path in ["/state", "/state.json", "/slave(1)/state"] {
        let (code, body) = http_get(addr, path).await;
        assert_eq!(code, 200, "{path}");
        let state: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(state["id"], AGENT_ID);
        assert_eq!(state["hostname"], "test-host");
        assert_eq!(state["pid"], format!("slave(1)@{addr}"));
        assert_eq!(state["attributes"]["rack"], "r1");
        assert_eq!(state["resources"]["ports"], "[31000-31010]");
        let task = &state["frameworks"][0]["executors"][0]["tasks"][0];
        assert_eq!(task["id"], "web");
        assert_eq!(task["state"], "TASK_RUNNING");
        assert_eq!(task["framework_id"], FRAMEWORK);
        assert_eq!(task["slave_id"], AGENT_ID);
    }
    assert_eq!(http_get(addr, "/health").await.0, 200);
    let (_, version) = http_get(addr, "/version").await;
    let version: serde_json::Value = serde_json::from_str(&version).expect("json");
    assert_eq!(version["version"], agora_common::build::MESOS_API_VERSION);
    assert_eq!(
        version["git_tag"],
        format!("agora-{}", agora_common::VERSION)
    );
    let (_, metrics) = http_get(addr, "/metrics/snapshot").await;
    let metrics: serde_json::Value = serde_json::from_str(&metrics).expect("json");
    assert_eq!(metrics["slave/tasks_running"], 1);
    assert_eq!(metrics["slave/registered"], 1);
    assert_eq!(metrics["slave/cpus_total"], 2.0);
    assert_eq!(metrics["slave/cpus_used"], 0.1);
    agent.stop().await.expect("clean stop");
}

#[tokio::test]
async fn shutdown_kills_every_task() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;
    master.send(run(framework(&[]), shell_task("doomed", "sleep 100")));
    let running = master.expect_update("doomed").await;
    let pid = running
        .container_status
        .and_then(|c| c.executor_pid)
        .expect("pid");
    agent.stop().await.expect("clean stop");
    assert_eventually("the task's process is gone", || {
        Box::pin(async move { !process_alive(pid) })
    })
    .await;
}

#[tokio::test]
async fn master_shutdown_kills_tasks_and_stops_the_agent() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;
    master.send(run(framework(&[]), shell_task("victim", "sleep 100")));
    let running = master.expect_update("victim").await;
    assert_eq!(state(&running), TaskState::TaskRunning);
    let pid = running
        .container_status
        .and_then(|c| c.executor_pid)
        .expect("pid");
    master.send(master_message::Message::Shutdown(
        master_message::Shutdown {
            message: "agent marked gone".into(),
        },
    ));
    let err = agent
        .handle
        .join()
        .await
        .expect_err("shut down by the master");
    assert!(err.to_string().contains("agent marked gone"), "{err}");
    assert!(
        !process_alive(pid),
        "tasks are killed before the agent stops"
    );
    let _ = std::fs::remove_dir_all(&agent.work_dir);
}

#[tokio::test]
async fn kill_of_an_unknown_task_reports_it_lost() {
    let mut master = TestMaster::start(true).await;
    let agent = TestAgent::start(&master, |_| {}).await;
    registered(&mut master, &agent).await;
    master.send(kill("ghost", None));
    let lost = master.expect_update("ghost").await;
    assert_eq!(state(&lost), TaskState::TaskLost);
    assert_eq!(lost.reason, Some(Reason::TaskUnknown as i32));
    agent.stop().await.expect("clean stop");
}
