//! Sandbox garbage collection through the real binaries: a real master and
//! agent (`--gc-delay 1secs`), tasks under real executor shims.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn a_finished_sandbox_is_collected_and_a_running_one_stays() {
    let cluster = Cluster::start();
    let (mut agent, _) = cluster.agent(
        RESOURCES,
        &["--gc-delay", "1secs", "--disk-watch-interval", "100ms"],
    );
    let slaves = cluster.work_dir().join("slaves");

    let sleeper = cluster.execute("sleeper", "echo $$ > pid; exec sleep 600");
    sleeper.wait_for("task sleeper TASK_RUNNING");
    let running = eventually("the sleeper's sandbox", || {
        Some(find(&slaves, "pid")?.parent()?.to_path_buf())
    });

    // Runs long enough for its sandbox to be found before it ends.
    let finisher = cluster.execute("finisher", "echo hi > marker; sleep 1");
    let finished = eventually("the finisher's sandbox", || {
        Some(find(&slaves, "marker")?.parent()?.to_path_buf())
    });
    finisher.wait_for("task finisher TASK_FINISHED");
    let executor = finished
        .parent()
        .and_then(|runs| runs.parent())
        .expect("the executor dir")
        .to_path_buf();
    eventually("the finished sandbox to be collected", || {
        (!finished.exists()).then_some(())
    });
    assert!(
        !executor.exists(),
        "the executor dir (with its `latest` link) goes with its only run"
    );
    // Well past the delay, the running task's sandbox is still there.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        running.join("pid").is_file(),
        "a running task's sandbox stays"
    );
    assert!(running.parent().expect("runs").join("latest").exists());
    // A graceful stop kills the sleeper (dropping the agent SIGKILLs it,
    // which would leave the shim and its task running).
    agent.terminate();
}
