//! Agent restart recovery with real processes: a real master and a real
//! agent (`agora master`, `agora agent`) as children of the test, tasks
//! under real executor shims, and real SIGKILLs of the agent.

mod support;

use std::time::Duration;

use support::*;
/// The tests read a task's pid from inside it (`$$`), which only means
/// the host's pid outside a pid namespace: cgroups yes, namespaces no.
fn host_pids() -> Vec<&'static str> {
    let isolation = if agora_agent::isolation::cgroups::CgroupManager::detect().is_ok() {
        "cgroups/cpu,cgroups/mem"
    } else {
        "posix"
    };
    vec!["--isolation", isolation]
}

/// [`Cluster::agent`] with [`host_pids`] and `extra`.
fn start_agent(cluster: &Cluster, resources: &str, extra: &[&str]) -> (Proc, String) {
    let mut flags = host_pids();
    flags.extend_from_slice(extra);
    cluster.agent(resources, &flags)
}

const SLEEPER: &str = "echo $$ > pid; exec sleep 600";

#[test]
fn a_task_keeps_running_across_an_agent_sigkill() {
    let cluster = Cluster::start();
    let (mut agent, id) = start_agent(&cluster, RESOURCES, &[]);
    let exec = cluster.execute("sleeper", SLEEPER);
    exec.wait_for("task sleeper TASK_RUNNING");
    let (_, pid) = cluster.task_pid();
    assert!(alive(pid));

    agent.kill();
    assert!(alive(pid), "the task survives the agent's death");
    let (mut agent, again) = start_agent(&cluster, RESOURCES, &[]);
    assert_eq!(again, id, "the restarted agent is the same agent");
    assert!(alive(pid), "same pid after recovery");
    assert_eq!(
        cluster.master_task("sleeper"),
        Some(("TASK_RUNNING".to_string(), id.clone()))
    );
    // Long enough for a wrong update to reach the framework.
    std::thread::sleep(Duration::from_millis(500));
    let output = exec.output();
    for bad in [
        "TASK_LOST",
        "TASK_FAILED",
        "TASK_UNREACHABLE",
        "TASK_KILLED",
        "TASK_GONE",
    ] {
        assert!(!output.contains(bad), "{bad} delivered: {output}");
    }
    // The recovered agent still controls the task: a graceful stop kills it.
    agent.terminate();
    eventually("the task to be killed", || (!alive(pid)).then_some(()));
    drop(exec);
}

#[test]
fn a_task_that_ends_while_the_agent_is_down_is_reported_finished() {
    let cluster = Cluster::start();
    let (mut agent, _) = start_agent(&cluster, RESOURCES, &[]);
    let exec = cluster.execute(
        "waiter",
        "echo $$ > pid; while [ ! -e go ]; do sleep 0.05; done",
    );
    exec.wait_for("task waiter TASK_RUNNING");
    let (sandbox, pid) = cluster.task_pid();

    agent.kill();
    std::fs::write(sandbox.join("go"), "").expect("go");
    eventually("the shim to record the exit", || {
        sandbox.join(".agora/exit_status").exists().then_some(())
    });
    assert!(!alive(pid));
    let (_agent, _) = start_agent(&cluster, RESOURCES, &[]);
    exec.wait_for("task waiter TASK_FINISHED");
    let mut exec = exec;
    let status = eventually("execute to exit", || exec.proc.0.try_wait().ok().flatten());
    assert!(status.success(), "{}", exec.output());
}

/// Starts a sleeper, SIGKILLs the agent and restarts it with `resources`
/// and `extra`; returns whether the new agent kept its id, once the old task
/// is dead.
fn restart_kills_the_task(resources: &str, extra: &[&str]) -> bool {
    let cluster = Cluster::start();
    let (mut agent, id) = start_agent(&cluster, RESOURCES, &[]);
    let exec = cluster.execute("doomed", SLEEPER);
    exec.wait_for("task doomed TASK_RUNNING");
    let (_, pid) = cluster.task_pid();
    agent.kill();
    assert!(alive(pid));
    let (_agent, new_id) = start_agent(&cluster, resources, extra);
    eventually("the old task to be killed", || (!alive(pid)).then_some(()));
    drop(exec);
    new_id == id
}

#[test]
fn recover_cleanup_kills_the_old_tasks() {
    assert!(
        !restart_kills_the_task(RESOURCES, &["--recover", "cleanup"]),
        "cleanup starts a new agent"
    );
}

#[test]
fn changed_resources_start_a_fresh_agent() {
    assert!(
        !restart_kills_the_task("cpus:3;mem:1024;disk:1000;ports:[31000-31010]", &[]),
        "a new agent id"
    );
}
