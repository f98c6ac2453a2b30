//! Native isolation and limits through the real binaries: a task over its
//! memory is OOM-killed in its cgroup and reported with the limitation (a
//! child of it too, the main process living on), a
//! task is pid 1 of its pid namespace, `--isolation posix` runs plain
//! process groups, a task over its `disk` is killed when the quota is
//! enforced, and a bad `--isolation` stops the agent with one line.

mod support;

use agora_agent::isolation::{cgroups::CgroupManager, namespaces::Namespaces};
use support::*;

const RESOURCES: &str = "cpus:2;mem:1024;disk:1000";

/// The task's pid as it saw it (`$$`), from the file `mypid` in its sandbox.
fn task_pid(cluster: &Cluster) -> String {
    eventually("the task's pid file", || {
        let file = find(&cluster.work_dir().join("slaves"), "mypid")?;
        let text = std::fs::read_to_string(file).ok()?;
        text.ends_with('\n').then(|| text.trim().to_string())
    })
}

#[test]
fn a_task_over_its_memory_is_killed_with_the_memory_limitation() {
    if let Err(why) = CgroupManager::detect() {
        agora_agent::isolation::skip_unavailable(&why);
        return;
    }
    let cluster = Cluster::start();
    let (_agent, _) = cluster.agent(RESOURCES, &[]);
    // `tail` keeps the whole "line" of an endless newline-free stream.
    let exec = cluster.execute_with("hog", "tail /dev/zero", &["--mem", "32"]);
    exec.wait_for("task hog TASK_FAILED");
    let output = exec.output();
    assert!(
        output.contains("reason=REASON_CONTAINER_LIMITATION_MEMORY"),
        "{output}"
    );
    assert!(output.contains("Memory limit exceeded: 32 MB"), "{output}");
}

/// The OOM killer ends a child and the task's shell would go on: the shim,
/// woken by the cgroup's OOM event (not polling), ends the whole container
/// with the memory limitation, as Mesos does.
#[test]
fn a_child_over_the_memory_limit_fails_the_task_though_its_main_process_lives() {
    if let Err(why) = CgroupManager::detect() {
        agora_agent::isolation::skip_unavailable(&why);
        return;
    }
    let cluster = Cluster::start();
    let (_agent, _) = cluster.agent(RESOURCES, &[]);
    let exec = cluster.execute_with("childhog", "tail /dev/zero; sleep 600", &["--mem", "32"]);
    exec.wait_for("task childhog TASK_FAILED");
    let output = exec.output();
    assert!(
        output.contains("reason=REASON_CONTAINER_LIMITATION_MEMORY"),
        "{output}"
    );
    assert!(output.contains("Memory limit exceeded: 32 MB"), "{output}");
}

#[test]
fn a_task_is_pid_1_of_its_namespace_and_posix_isolation_is_plain() {
    if let Err(why) = Namespaces::detect() {
        agora_agent::isolation::skip_unavailable(&why);
        return;
    }
    let cluster = Cluster::start();
    let (mut agent, _) = cluster.agent(RESOURCES, &[]);
    let exec = cluster.execute("ns", "echo $$ > mypid");
    exec.wait_for("task ns TASK_FINISHED");
    assert_eq!(task_pid(&cluster), "1");
    agent.kill();
    std::fs::remove_dir_all(cluster.work_dir()).expect("fresh work dir");

    let (_agent, _) = cluster.agent(RESOURCES, &["--isolation", "posix"]);
    let exec = cluster.execute("plain", "echo $$ > mypid");
    exec.wait_for("task plain TASK_FINISHED");
    assert_ne!(task_pid(&cluster), "1");
}

#[test]
fn a_task_over_its_disk_is_killed_when_the_quota_is_enforced() {
    let cluster = Cluster::start();
    let (_agent, _) = cluster.agent(
        RESOURCES,
        &[
            "--enforce-container-disk-quota",
            "--container-disk-watch-interval",
            "100ms",
        ],
    );
    let exec = cluster.execute_with(
        "filler",
        "dd if=/dev/zero of=big bs=1M count=3 && sleep 60",
        &["--disk", "1"],
    );
    exec.wait_for("task filler TASK_FAILED");
    let output = exec.output();
    assert!(
        output.contains("reason=REASON_CONTAINER_LIMITATION_DISK"),
        "{output}"
    );
    assert!(output.contains("exceeds quota (1 MB)"), "{output}");
}

#[test]
fn an_unknown_isolator_stops_the_agent_with_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = agora()
        .args(["agent", "--master", "127.0.0.1:1", "--port", "0"])
        .args(["--isolation", "gpu/nvidia"])
        .arg("--work-dir")
        .arg(dir.path())
        .output()
        .expect("run agent");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--isolation: unknown isolator 'gpu/nvidia'"),
        "{stderr}"
    );
}

#[test]
fn monitor_statistics_reports_the_tasks_cgroup() {
    if let Err(why) = CgroupManager::detect() {
        agora_agent::isolation::skip_unavailable(&why);
        return;
    }
    let cluster = Cluster::start();
    let (mut agent, _) = cluster.agent(RESOURCES, &[]);
    let exec = cluster.execute_with("watched", "exec sleep 600", &["--mem", "64"]);
    exec.wait_for("task watched TASK_RUNNING");
    let port = cluster.agent_port;
    let entry = eventually("statistics for the task", || {
        let stats = get_json(port, "/monitor/statistics")?;
        stats.as_array()?.first().cloned()
    });
    assert_eq!(entry["executor_id"], "watched", "{entry}");
    assert_eq!(entry["source"], "watched", "{entry}");
    let s = &entry["statistics"];
    assert_eq!(s["mem_limit_bytes"], 64 * 1024 * 1024, "{entry}");
    assert!(
        s["cpus_limit"]
            .as_f64()
            .is_some_and(|c| c > 0.05 && c < 0.15),
        "{entry}"
    );
    assert!(s["mem_rss_bytes"].as_u64().is_some(), "{entry}");
    assert!(s["timestamp"].as_f64().is_some_and(|t| t > 0.0), "{entry}");
    let metrics = get_json(port, "/metrics/snapshot").expect("metrics");
    assert_eq!(metrics["slave/executors_running"], 1, "{metrics}");
    assert_eq!(metrics["slave/tasks_running"], 1, "{metrics}");
    // A graceful stop kills the task: nothing is left behind.
    agent.terminate();
    drop(exec);
}
