//! The figures a failover bench reports: serializable for machines, and a
//! table for people.

use serde::Serialize;

use crate::cluster::RegistryFigures;
use crate::report::Table;
use crate::target::MemoryReading;

/// Everything one run of the failover bench measured. Times in the
/// `failover` section run from the moment the leader was sent SIGKILL.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverBenchReport {
    /// Emulated agents.
    pub agents: usize,
    /// Frameworks.
    pub frameworks: usize,
    /// Tasks running when the leader was killed.
    pub tasks: usize,
    /// Masters started.
    pub masters: usize,
    /// The masters' ZooKeeper session timeout, seconds.
    pub session_timeout_seconds: f64,
    /// Which ZooKeeper: spawned by the bench or given with `--zk`.
    pub zookeeper: String,
    /// Getting the cluster to the state the failover starts from.
    pub setup: SetupFigures,
    /// The failover itself.
    pub failover: FailoverFigures,
    /// The masters' memory.
    pub memory: FailoverMemory,
    /// The registry in ZooKeeper after the failover.
    pub registry: RegistryFigures,
    /// Wall time of the whole bench.
    pub total_seconds: f64,
}

/// Before the failover.
#[derive(Debug, Clone, Serialize)]
pub struct SetupFigures {
    /// From spawning the masters until one led.
    pub first_leader_seconds: f64,
    /// Until every agent was registered (and `master/slaves_active` said so).
    pub registration_seconds: f64,
    /// Until every framework was subscribed.
    pub subscription_seconds: f64,
    /// Until every task was running and acknowledged.
    pub launch_seconds: f64,
    /// Until the registry in ZooKeeper held every agent.
    pub registry_complete_seconds: f64,
}

/// The failover, every time from the SIGKILL of the leader.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverFigures {
    /// The killed leader's address.
    pub killed_leader: String,
    /// The new leader's address.
    pub new_leader: String,
    /// (a) Until the ZooKeeper group named the new leader (the dead
    /// leader's session expired and the next contender's node came first).
    pub elected_seconds: f64,
    /// Until the new leader served as leader (`master/elected` = 1: registry
    /// recovered, actor running).
    pub leading_seconds: f64,
    /// Until every emulated agent had received `Reregistered`.
    pub agents_reregistered_seconds: f64,
    /// (b) Until the new leader's `master/slaves_active` reached the agent count.
    pub slaves_active_seconds: f64,
    /// Until every framework had received SUBSCRIBED from the new leader.
    pub frameworks_resubscribed_seconds: f64,
    /// (c) Until every framework had also received an offer from it.
    pub frameworks_offered_seconds: f64,
    /// Until the new leader's `master/frameworks_active` reached the framework count.
    pub frameworks_active_seconds: f64,
    /// (b) − (a), the figure with a target.
    pub reregistration_after_election_seconds: f64,
    /// The target for (b) − (a), seconds.
    pub target_seconds: f64,
    /// Whether (b) − (a) is under the target.
    pub target_met: bool,
    /// The new leader's `master/tasks_running` at the end.
    pub tasks_running_after: u64,
    /// Agent streams lost and retried (the failover breaks every one).
    pub agent_disconnections: u64,
    /// Framework connections lost and retried by the SDK.
    pub framework_reconnections: u64,
    /// Tasks the new leader told a reregistering agent to kill (expected 0).
    pub tasks_killed_on_reregistration: u64,
}

/// Memory of the masters, read from `/proc/<pid>/status`.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverMemory {
    /// The leader just before it was killed.
    pub old_leader_before_kill: Option<MemoryReading>,
    /// The new leader as a standby, just before the kill.
    pub new_leader_before_kill: Option<MemoryReading>,
    /// The new leader once every agent and framework was back.
    pub new_leader_after: Option<MemoryReading>,
}

impl FailoverBenchReport {
    /// A human-readable table of the figures.
    pub fn table(&self) -> String {
        let mut t = Table::default();
        t.title(&format!(
            "failover bench: {} masters, {} agents, {} frameworks, {} tasks; \
             session timeout {:.1} s; ZooKeeper {}",
            self.masters,
            self.agents,
            self.frameworks,
            self.tasks,
            self.session_timeout_seconds,
            self.zookeeper
        ));
        let secs = |s: f64| format!("{s:.2} s");
        let s = &self.setup;
        t.row("setup: first leader", &secs(s.first_leader_seconds));
        t.row("  agents registered", &secs(s.registration_seconds));
        t.row("  frameworks subscribed", &secs(s.subscription_seconds));
        t.row("  tasks running and acknowledged", &secs(s.launch_seconds));
        t.row(
            "  registry complete in ZooKeeper",
            &secs(s.registry_complete_seconds),
        );
        let f = &self.failover;
        t.row(
            "failover (from SIGKILL)",
            &format!("{} -> {}", f.killed_leader, f.new_leader),
        );
        t.row(
            "  (a) new leader elected (ZK group)",
            &secs(f.elected_seconds),
        );
        t.row(
            "  new leader serving (master/elected)",
            &secs(f.leading_seconds),
        );
        t.row(
            "  agents got Reregistered",
            &secs(f.agents_reregistered_seconds),
        );
        t.row("  (b) slaves_active = N", &secs(f.slaves_active_seconds));
        t.row(
            "  frameworks resubscribed",
            &secs(f.frameworks_resubscribed_seconds),
        );
        t.row(
            "  (c) ... and received an offer",
            &secs(f.frameworks_offered_seconds),
        );
        t.row(
            "  frameworks_active = F",
            &secs(f.frameworks_active_seconds),
        );
        t.row(
            "  (b) - (a)",
            &format!(
                "{:.2} s (target < {:.0} s: {})",
                f.reregistration_after_election_seconds,
                f.target_seconds,
                if f.target_met { "met" } else { "NOT met" }
            ),
        );
        t.row("  tasks running after", &f.tasks_running_after.to_string());
        t.row(
            "  agent / framework reconnections",
            &format!("{} / {}", f.agent_disconnections, f.framework_reconnections),
        );
        if f.tasks_killed_on_reregistration > 0 {
            t.row(
                "  tasks killed on reregistration",
                &f.tasks_killed_on_reregistration.to_string(),
            );
        }
        let mb = |m: &Option<MemoryReading>| match m {
            Some(m) => format!(
                "RSS {:.1} MiB, peak {:.1} MiB",
                m.rss_kb as f64 / 1024.0,
                m.peak_kb as f64 / 1024.0
            ),
            None => "not measured".to_string(),
        };
        let m = &self.memory;
        t.row(
            "memory: old leader before kill",
            &mb(&m.old_leader_before_kill),
        );
        t.row(
            "  new leader before kill (standby)",
            &mb(&m.new_leader_before_kill),
        );
        t.row("  new leader after failover", &mb(&m.new_leader_after));
        let r = &self.registry;
        t.row("registry in ZooKeeper", &r.root);
        t.row(
            "  keys (agents) / znodes",
            &format!("{} ({}) / {}", r.keys, r.agent_keys, r.znodes),
        );
        t.row(
            "  data",
            &format!(
                "{:.1} KiB ({:.0} bytes per key)",
                r.bytes as f64 / 1024.0,
                r.bytes as f64 / r.keys.max(1) as f64
            ),
        );
        t.row(
            "  read back by the bench",
            &format!("{:.2} s", r.read_seconds),
        );
        t.row("total", &format!("{:.1} s", self.total_seconds));
        t.out
    }
}
