//! `agora local`: a master and N agents in one process, for a first look and
//! for development. Coordination is in memory; nothing else is needed.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use agora_agent::AgentConfig;
use std::sync::Arc;

use agora_common::shutdown::ShutdownTrigger;
use agora_coord::{LocalElection, MemoryStore, StaticDetector};
use agora_master::MasterConfig;
use anyhow::Context;
use clap::Args;

/// Flags of `agora local`.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// How many agents to run.
    #[arg(long, default_value_t = 2)]
    pub agents: u16,
    /// The master's port (agents take the following ones).
    #[arg(long, default_value_t = 5050)]
    pub master_port: u16,
    /// Address to bind everything to.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: IpAddr,
    /// Where the master and agents keep their files (default: a folder under the temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Resources of each agent in Mesos syntax (default: auto-detected).
    #[arg(long)]
    pub agent_resources: Option<String>,
    /// Port of Marathon's REST API.
    #[arg(long, default_value_t = 8080)]
    pub marathon_port: u16,
}

/// Runs the local cluster until Ctrl-C.
pub async fn run(args: LocalArgs, trigger: ShutdownTrigger) -> anyhow::Result<()> {
    if args.agents == 0 {
        anyhow::bail!("--agents: must be at least 1");
    }
    let work_dir = args
        .work_dir
        .unwrap_or_else(|| std::env::temp_dir().join("agora-local"));
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("--work-dir: cannot create {}", work_dir.display()))?;
    let shutdown = trigger.subscribe();
    let master_config = MasterConfig {
        ip: args.ip,
        port: args.master_port,
        advertise_ip: Some(if args.ip.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            args.ip
        }),
        work_dir: work_dir.join("master"),
        ..MasterConfig::default()
    };
    let master = agora_master::start(master_config, shutdown.clone())
        .await
        .context("--master-port")?;
    master.wait_until_leading().await;
    let master_addr = format!("{}:{}", local_host(args.ip), master.addr().port());
    let shim = crate::agent_cmd::executor_program(None)?;
    crate::agent_cmd::log_executor_program(&shim);
    let mut agents = Vec::new();
    for i in 0..args.agents {
        let mut config = AgentConfig::with_master_address(
            master_addr.clone(),
            work_dir.join(format!("agent{i}")),
        );
        config.ip = args.ip;
        config.port = args
            .master_port
            .checked_add(1 + i)
            .context("--master-port: no room for the agents' ports above it")?;
        config.resources = args.agent_resources.clone();
        config.executor_program = Some(shim.clone());
        config.validate()?;
        let handle = agora_agent::start(config, shutdown.clone()).await?;
        agents.push(handle);
    }
    let host = local_host(args.ip);
    let marathon_config = agora_marathon::MarathonConfig {
        http_addr: std::net::SocketAddr::new(args.ip, args.marathon_port),
        hostname: host.to_string(),
        master: master_addr.clone(),
        ..Default::default()
    };
    let marathon_coordination = agora_marathon::Coordination {
        election: Arc::new(LocalElection),
        leader: Arc::new(StaticDetector::new(format!(
            "{host}:{}",
            args.marathon_port
        ))),
        store: Arc::new(MemoryStore::new()),
        master: Arc::new(StaticDetector::new(master_addr.clone())),
    };
    let marathon = agora_marathon::start(marathon_config, marathon_coordination, shutdown.clone())
        .await
        .context("--marathon-port")?;
    let marathon_url = format!("http://{host}:{}", marathon.addr().port());
    println!("Agora is running locally.");
    println!("  master      http://{master_addr}  (state: http://{master_addr}/master/state)");
    println!("  marathon    {marathon_url}  (apps: {marathon_url}/v2/apps)");
    for (i, agent) in agents.iter().enumerate() {
        println!("  agent {i}     http://{}", agent.http_addr());
    }
    println!("  work dir    {}", work_dir.display());
    println!("Try: agora execute --master {master_addr} --name hello --command 'echo hello'");
    println!(
        "  or: curl -X POST -H 'Content-Type: application/json' {marathon_url}/v2/apps -d '{{\"id\": \"/hello\", \"cmd\": \"sleep 1000\", \"cpus\": 0.1, \"mem\": 32}}'"
    );
    println!("Press Ctrl-C to stop.");
    crate::wait_for_signal().await;
    // stdout may be gone (a closed pipe); stopping must not depend on it.
    let _ = writeln!(std::io::stdout(), "Stopping...");
    trigger.fire();
    for agent in agents {
        if let Err(e) = agent.join().await {
            eprintln!("an agent stopped with an error: {e}");
        }
    }
    marathon.join().await;
    master.join().await;
    Ok(())
}

fn local_host(ip: IpAddr) -> IpAddr {
    if ip.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        ip
    }
}
