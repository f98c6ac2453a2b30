//! `agora execute`: run a command as one or more tasks, like Mesos'
//! `mesos-execute`, and report how they ended.

use std::collections::BTreeMap;

use agora_common::resources::Resources;
use agora_common::task_state::is_terminal;
use agora_proto::framework_info::capability::Type as Capability;
use agora_proto::{TaskState, TaskStatus};
use agora_sdk::{Scheduler, SchedulerConfig, SchedulerEvent, TaskBuilder};
use clap::Args;

/// Flags of `agora execute`.
#[derive(Debug, Args)]
pub struct ExecuteArgs {
    /// The master: `HOST:PORT`, or `zk://host:2181/agora` to follow the leader.
    #[arg(long, env = "AGORA_MASTER")]
    pub master: String,
    /// The framework's and the tasks' name.
    #[arg(long)]
    pub name: String,
    /// The shell command to run.
    #[arg(long)]
    pub command: String,
    /// How many tasks to run.
    #[arg(long, default_value_t = 1)]
    pub instances: u32,
    /// CPUs per task.
    #[arg(long, default_value_t = 0.1)]
    pub cpus: f64,
    /// Memory per task, in MB.
    #[arg(long, default_value_t = 32.0)]
    pub mem: f64,
    /// Disk per task, in MB (0: none asked; with
    /// `--enforce-container-disk-quota` the agent kills a task over it).
    #[arg(long, default_value_t = 0.0)]
    pub disk: f64,
    /// A URI to fetch into each task's sandbox before it starts (repeatable):
    /// http(s), file or an absolute path; archives are extracted.
    #[arg(long = "uri")]
    pub uris: Vec<String>,
    /// The role to run in.
    #[arg(long, default_value = "*")]
    pub role: String,
}

/// What became of the tasks.
pub struct Outcome {
    /// Final status per task id.
    pub finals: BTreeMap<String, TaskStatus>,
}

impl Outcome {
    /// Whether every task finished successfully.
    pub fn success(&self) -> bool {
        self.finals
            .values()
            .all(|s| s.state() == TaskState::TaskFinished)
    }
}

fn describe(status: &TaskStatus) -> String {
    let id = status
        .task_id
        .as_ref()
        .map(|t| t.value.as_str())
        .unwrap_or("?");
    let mut line = format!("task {id} {}", status.state().as_str_name());
    if let Some(reason) = status.reason {
        if let Ok(r) = agora_proto::task_status::Reason::try_from(reason) {
            line.push_str(&format!(" reason={}", r.as_str_name()));
        }
    }
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        line.push_str(&format!(" message={message:?}"));
    }
    line
}

/// Runs the tasks and waits until each is terminal.
pub async fn run(args: ExecuteArgs) -> anyhow::Result<Outcome> {
    if args.instances == 0 {
        anyhow::bail!("--instances: must be at least 1");
    }
    if !(args.cpus.is_finite() && args.cpus > 0.0) {
        anyhow::bail!("--cpus: must be greater than zero");
    }
    if !(args.mem.is_finite() && args.mem > 0.0) {
        anyhow::bail!("--mem: must be greater than zero");
    }
    agora_master::config::validate_role(&args.role).map_err(|m| anyhow::anyhow!("--role: {m}"))?;
    let detector =
        crate::flags::master_detector(&args.master, agora_coord::zk::DEFAULT_SESSION_TIMEOUT)
            .await?;
    let config = SchedulerConfig::with_detector(detector, args.name.clone())
        .roles(&[args.role.as_str()])
        .capability(Capability::PartitionAware)
        .capability(Capability::TaskKillingState)
        .auto_acknowledge(true);
    let (scheduler, mut events) = Scheduler::subscribe(config).await?;
    let mut pending: Vec<String> = (0..args.instances)
        .map(|i| {
            if args.instances == 1 {
                args.name.clone()
            } else {
                format!("{}-{i}", args.name)
            }
        })
        .rev()
        .collect();
    let total = pending.len();
    let mut finals = BTreeMap::new();
    if !(args.disk.is_finite() && args.disk >= 0.0) {
        anyhow::bail!("--disk: must not be negative");
    }
    let mut per_task = format!("cpus:{};mem:{}", args.cpus, args.mem);
    if args.disk > 0.0 {
        per_task.push_str(&format!(";disk:{}", args.disk));
    }
    let per_task = Resources::parse(&per_task)?;
    while let Some(event) = events.recv().await {
        match event {
            SchedulerEvent::Subscribed { framework_id, .. } => {
                println!("Subscribed with framework id {framework_id}");
            }
            SchedulerEvent::Offers(offers) => {
                for offer in offers {
                    let mut available = Resources::from_vec(offer.resources.iter().cloned());
                    let mut tasks = Vec::new();
                    while let Some(id) = pending.last() {
                        if !available.contains(&per_task) {
                            break;
                        }
                        available.subtract(&per_task);
                        let mut task = TaskBuilder::new(id.clone(), args.command.clone())
                            .cpus(args.cpus)
                            .mem(args.mem);
                        if args.disk > 0.0 {
                            task = task.disk(args.disk);
                        }
                        for uri in &args.uris {
                            task = task.uri(agora_proto::command_info::Uri {
                                value: uri.clone(),
                                ..Default::default()
                            });
                        }
                        tasks.push(task.build(&offer));
                        pending.pop();
                    }
                    if tasks.is_empty() {
                        let ids = offer.id.clone().into_iter().collect();
                        scheduler.decline(ids, Some(60.0)).await?;
                    } else {
                        for t in &tasks {
                            let task = t.task_id.as_ref().map(|i| i.value.as_str()).unwrap_or("");
                            println!("Launching task {task} on {}", offer.hostname);
                        }
                        scheduler.launch(&offer, tasks).await?;
                    }
                }
                if pending.is_empty() {
                    scheduler.suppress(&[]).await.ok();
                }
            }
            SchedulerEvent::Update(status) => {
                println!("{}", describe(&status));
                if is_terminal(status.state()) {
                    let id = status
                        .task_id
                        .as_ref()
                        .map(|t| t.value.clone())
                        .unwrap_or_default();
                    finals.insert(id, status);
                    if finals.len() == total {
                        break;
                    }
                }
            }
            SchedulerEvent::Disconnected(reason) => {
                eprintln!("Disconnected from the master ({reason}); reconnecting");
            }
            SchedulerEvent::Error(message) => {
                anyhow::bail!("the master refused the framework: {message}");
            }
            _ => {}
        }
    }
    // The framework has no more use; tell the master so it does not linger.
    scheduler.teardown().await.ok();
    Ok(Outcome { finals })
}
