//! The figures of `agora bench docker`: JSON through `serde`, and a table.

use serde::Serialize;

use crate::agent_bench::{LatencyFigures, ShimFigures};
use crate::target::MemoryReading;

/// Starting N containers at once, three ways.
#[derive(Debug, Clone, Serialize)]
pub struct BurstFigures {
    /// Containers started.
    pub containers: usize,
    /// Agora: `POST /v2/apps` with `instances: N` → N tasks TASK_RUNNING.
    pub agora_secs: f64,
    /// `docker run -d` N times in a shell loop.
    pub docker_run_loop_secs: f64,
    /// Swarm mode: `docker service create --replicas N` → N running;
    /// `None` when the engine was in a swarm already.
    pub swarm_secs: Option<f64>,
    /// `agora_secs / docker_run_loop_secs` (target ≤ 1.2).
    pub agora_vs_docker_run: f64,
    /// `agora_secs / swarm_secs` (target < 1).
    pub agora_vs_swarm: Option<f64>,
    /// Agora's app deleted → every container gone.
    pub agora_teardown_secs: f64,
}

/// One container at a time.
#[derive(Debug, Clone, Serialize)]
pub struct SerialFigures {
    /// Containers started one after another, each way.
    pub containers: usize,
    /// One `docker run -d`.
    pub docker_run: LatencyFigures,
    /// One create + start through the engine's API, no CLI.
    pub engine_api: LatencyFigures,
    /// Agora: the app scaled up by one (`PUT /v2/apps/{id}`) → that task
    /// TASK_RUNNING in `GET /v2/apps/{id}`.
    pub agora: LatencyFigures,
    /// `agora.p50_ms - docker_run.p50_ms` (target < 50).
    pub p50_overhead_ms: f64,
    /// `agora.p50_ms - engine_api.p50_ms`: what Agora adds to the engine.
    pub p50_overhead_vs_api_ms: f64,
}

/// The agent's memory.
#[derive(Debug, Clone, Serialize)]
pub struct DockerMemory {
    /// The agent before any container.
    pub agent_idle: MemoryReading,
    /// The agent with N containers running.
    pub agent_busy: MemoryReading,
    /// `(busy - idle) / N` of `VmRSS`, KiB.
    pub agent_kb_per_container: f64,
    /// The containers' shims (one process each).
    pub shims: ShimFigures,
}

/// The result of `agora bench docker`.
#[derive(Debug, Clone, Serialize)]
pub struct DockerBenchReport {
    /// The engine's version.
    pub engine: String,
    /// The image every container runs.
    pub image: String,
    /// What it runs.
    pub command: String,
    /// N at once.
    pub burst: BurstFigures,
    /// One at a time.
    pub serial: SerialFigures,
    /// Memory.
    pub memory: DockerMemory,
    /// Containers of the agent's left after it stopped (removed by the bench).
    pub leftover_containers: usize,
}

impl DockerBenchReport {
    /// A human-readable summary.
    pub fn table(&self) -> String {
        let b = &self.burst;
        let s = &self.serial;
        let m = &self.memory;
        let ratio = |r: Option<f64>| r.map_or("n/a".to_string(), |r| format!("{r:.2}x"));
        let mut out = String::new();
        out.push_str(&format!(
            "agora bench docker: Docker {}, {} `{}`\n",
            self.engine, self.image, self.command
        ));
        out.push_str(&format!("  {} containers at once\n", b.containers));
        out.push_str(&format!(
            "    agora (Marathon app)        {:>8.2} s\n",
            b.agora_secs
        ));
        out.push_str(&format!(
            "    docker run -d loop          {:>8.2} s   agora/loop  {}\n",
            b.docker_run_loop_secs,
            ratio(Some(b.agora_vs_docker_run))
        ));
        out.push_str(&format!(
            "    docker swarm service        {:>8}     agora/swarm {}\n",
            b.swarm_secs
                .map_or("n/a".to_string(), |s| format!("{s:.2} s")),
            ratio(b.agora_vs_swarm)
        ));
        out.push_str(&format!(
            "    agora teardown (DELETE)     {:>8.2} s\n",
            b.agora_teardown_secs
        ));
        out.push_str(&format!(
            "  {} containers one at a time (p50 / p99 ms)\n",
            s.containers
        ));
        out.push_str(&format!(
            "    docker run -d               {:>8.1} / {:.1}\n",
            s.docker_run.p50_ms, s.docker_run.p99_ms
        ));
        out.push_str(&format!(
            "    engine API create + start   {:>8.1} / {:.1}\n",
            s.engine_api.p50_ms, s.engine_api.p99_ms
        ));
        out.push_str(&format!(
            "    agora (scale by one)        {:>8.1} / {:.1}   p50 overhead {:.1} ms over docker run, {:.1} ms over the API\n",
            s.agora.p50_ms, s.agora.p99_ms, s.p50_overhead_ms, s.p50_overhead_vs_api_ms
        ));
        out.push_str(&format!(
            "  agent RSS idle / busy {:.1} / {:.1} MiB: {:.0} KiB per container; {} shims, mean VmRSS {:.1} MiB, RssAnon {:.2} MiB\n",
            m.agent_idle.rss_kb as f64 / 1024.0,
            m.agent_busy.rss_kb as f64 / 1024.0,
            m.agent_kb_per_container,
            m.shims.count,
            m.shims.avg_rss_kb / 1024.0,
            m.shims.avg_rss_anon_kb / 1024.0
        ));
        out.push_str(&format!(
            "  leftover containers: {}\n",
            self.leftover_containers
        ));
        out
    }
}
