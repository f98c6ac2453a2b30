//! The executor shim as the agent drives it: the real `agora-executor`
//! behind [`ShimContainerizer`], with its kill policy, its hold on the whole
//! process tree, its size, and its launch cost beside a bare spawn.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use agora_agent::containerizer::shim::ShimContainerizer;
use agora_agent::containerizer::{CommandSpec, Containerizer, LaunchSpec, Run, Termination};
use nix::sys::signal::Signal;

fn spec(work_dir: &Path, script: &str) -> LaunchSpec {
    let container_id = uuid::Uuid::new_v4().to_string();
    let sandbox = work_dir.join("sandboxes").join(&container_id);
    std::fs::create_dir_all(&sandbox).expect("sandbox");
    LaunchSpec {
        container_id,
        sandbox,
        run: Run::Command(CommandSpec::Shell(script.into())),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        uris: Vec::new(),
        resources: Default::default(),
        checks: Default::default(),
    }
}

/// The agent runs `agora-executor` when it is installed next to `agora`, and
/// `agora executor` otherwise: the same shim from either binary.
const SHIMS: [&str; 2] = [
    env!("CARGO_BIN_EXE_agora-executor"),
    env!("CARGO_BIN_EXE_agora"),
];

fn containerizer(work_dir: &Path) -> ShimContainerizer {
    ShimContainerizer::new(SHIMS[0], work_dir)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or_default()
            .trim_start()
            .starts_with('Z')
    })
}

fn status_field(pid: i32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
}

#[tokio::test]
async fn kill_honours_the_grace_period_and_leaves_no_process_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = containerizer(dir.path());
    // Ignores SIGTERM, and leaves a daemonised grandchild in its own session
    // that only the shim (a subreaper) can still find.
    let s = spec(
        dir.path(),
        "trap '' TERM; setsid sh -c 'echo $$ > grandchild; exec sleep 600' & sleep 600",
    );
    let (id, sandbox) = (s.container_id.clone(), s.sandbox.clone());
    let launched = c.launch(s).await.expect("launch");
    let grandchild: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(sandbox.join("grandchild"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let shim = status_field(launched.pid, "PPid:")
        .and_then(|p| p.parse::<i32>().ok())
        .expect("the task's parent is the shim");
    println!(
        "shim RSS: {}",
        status_field(shim, "VmRSS:").unwrap_or_default()
    );

    let grace = Duration::from_millis(300);
    let started = Instant::now();
    c.kill(&id, grace).await.expect("known");
    let termination = c.wait(&id).await.expect("known");
    let took = started.elapsed();
    assert_eq!(termination, Termination::Signaled(Signal::SIGKILL));
    assert!(
        took >= grace,
        "SIGKILL only after the grace period ({took:?})"
    );
    assert!(!alive(launched.pid));
    assert!(!alive(grandchild), "the daemonised grandchild is gone too");
    let record = std::fs::read_to_string(sandbox.join(".agora/exit_status")).expect("record");
    assert!(record.contains("\"signaled\":9"), "{record}");
}

#[tokio::test]
async fn exit_codes_and_launch_failures_from_either_binary() {
    for shim in SHIMS {
        exit_codes_and_launch_failures(shim).await;
    }
}

async fn exit_codes_and_launch_failures(shim: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ShimContainerizer::new(shim, dir.path());
    let s = spec(dir.path(), "echo out; exit 3");
    let (id, sandbox) = (s.container_id.clone(), s.sandbox.clone());
    c.launch(s).await.expect("launch");
    assert_eq!(
        c.wait(&id).await.expect("known"),
        Termination::Exited(3),
        "{shim}"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).expect("stdout"),
        "out\n",
        "{shim}"
    );

    let mut missing = spec(dir.path(), "");
    missing.run = Run::Command(CommandSpec::Exec {
        program: "/nonexistent/prog".into(),
        argv0: None,
        args: vec![],
    });
    let err = c.launch(missing).await.expect_err("no such program");
    assert!(
        err.to_string().contains("/nonexistent/prog"),
        "{shim}: {err}"
    );
}

/// Figures, not assertions: `cargo test -p agora --test shim -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn launch_latency_through_the_shim_versus_a_bare_spawn() {
    const N: usize = 100;
    let dir = tempfile::tempdir().expect("tempdir");
    let c = containerizer(dir.path());
    let mut shim_times = Vec::new();
    let mut ids = Vec::new();
    let mut rss_kib = Vec::new();
    for _ in 0..N {
        let s = spec(dir.path(), "exec sleep 60");
        ids.push(s.container_id.clone());
        let t = Instant::now();
        let launched = c.launch(s).await.expect("launch");
        shim_times.push(t.elapsed());
        let shim = status_field(launched.pid, "PPid:").and_then(|p| p.parse::<i32>().ok());
        if let Some(kib) = shim
            .and_then(|p| status_field(p, "VmRSS:"))
            .and_then(|v| v.trim_end_matches(" kB").trim().parse::<u64>().ok())
        {
            rss_kib.push(kib);
        }
    }
    let mut bare_times = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "exec sleep 60"])
            .process_group(0)
            .spawn()
            .expect("spawn");
        bare_times.push(t.elapsed());
        bare.push(child);
    }
    for id in &ids {
        c.kill(id, Duration::ZERO).await.expect("known");
        c.wait(id).await.expect("known");
    }
    for mut child in bare {
        let _ = child.kill();
        let _ = child.wait();
    }
    let pct = |v: &mut Vec<Duration>, p: usize| {
        v.sort();
        v[(v.len() * p / 100).min(v.len() - 1)]
    };
    rss_kib.sort();
    println!(
        "{N} launches: shim p50 {:?} p99 {:?}; bare spawn p50 {:?} p99 {:?}; shim RSS p50 {} KiB max {} KiB",
        pct(&mut shim_times, 50),
        pct(&mut shim_times, 99),
        pct(&mut bare_times, 50),
        pct(&mut bare_times, 99),
        rss_kib.get(rss_kib.len() / 2).copied().unwrap_or_default(),
        rss_kib.last().copied().unwrap_or_default(),
    );
}
