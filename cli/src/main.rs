//! The `agora` binary: parses flags, sets up tracing, and hands each
//! subcommand's configuration to its component's `run`.

mod agent_cmd;
mod bench;
mod execute;
mod flags;
mod local;
mod marathon_cmd;
mod master_cmd;

use std::process::ExitCode;

use agora_common::shutdown;
use clap::{Parser, Subcommand};

/// Agora: a two-level resource-offer cluster platform in the style of Mesos.
#[derive(Debug, Parser)]
#[command(name = "agora", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a master.
    Master(master_cmd::MasterArgs),
    /// Run an agent.
    Agent(agent_cmd::AgentArgs),
    /// Run the bundled Marathon (REST API v2) as a framework.
    Marathon(marathon_cmd::MarathonArgs),
    /// Run a master, agents and Marathon in one process (no ZooKeeper needed).
    Local(local::LocalArgs),
    /// Run a command as tasks on the cluster and wait for them (like mesos-execute).
    Execute(execute::ExecuteArgs),
    /// Benchmarks that report figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The executor shim the agent starts for each task (not for humans).
    #[command(hide = true)]
    Executor(ExecutorArgs),
}

/// Flags of the hidden `agora executor`.
#[derive(Debug, clap::Args)]
struct ExecutorArgs {
    /// The shim's `shim.json`, written by the agent in the task's sandbox.
    #[arg(long)]
    config: std::path::PathBuf,
}

/// `agora executor --config PATH`, recognized before clap: one shim runs
/// per task, and skipping the flag parser and the filtered log set-up keeps
/// their code out of each shim's memory (the agent runs the smaller
/// `agora-executor` instead when it is installed next to `agora`).
fn executor_fast_path() -> Option<ExitCode> {
    agora_agent::executor::main_with_args(std::env::args_os().skip(1))
}

fn main() -> ExitCode {
    if let Some(code) = executor_fast_path() {
        return code;
    }
    agora_common::build::set_git_sha(env!("AGORA_GIT_SHA"));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line naming the flag, as operators' scripts expect.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first}");
            return ExitCode::from(2);
        }
    };
    // A user running `execute` wants the task updates, not the SDK's logs.
    let default_filter = match cli.command {
        Command::Execute(_) => "warn",
        _ => "info",
    };
    agora_common::telemetry::init(default_filter);
    if let Command::Executor(args) = &cli.command {
        // The shim runs its own single-threaded runtime: one per task, so
        // it must stay small.
        return match agora_agent::executor::run(&args.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let (trigger, shutdown) = shutdown::channel();
    match command {
        Command::Master(args) => {
            let coordination = args.coordination().await?;
            let config = args.into_config()?;
            let handle = agora_master::start_with(config, coordination, shutdown).await?;
            println!("master listening on {}", handle.addr());
            wait_for_signal().await;
            trigger.fire();
            handle.join().await;
        }
        Command::Agent(args) => {
            let config = args.into_config().await?;
            if let Some(program) = &config.executor_program {
                agent_cmd::log_executor_program(program);
            }
            let handle = agora_agent::start(config, shutdown).await?;
            let mut join = tokio::spawn(handle.join());
            tokio::select! {
                _ = wait_for_signal() => {
                    // A graceful stop: the agent kills its tasks and sends
                    // their last updates before the process exits.
                    trigger.fire();
                    join.await??;
                }
                result = &mut join => {
                    // The agent stopped on its own (e.g. the master shut it down).
                    result??;
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Command::Marathon(args) => {
            let config = args.config()?;
            let coordination = args.coordination(&config).await?;
            let handle = agora_marathon::start(config, coordination, shutdown).await?;
            println!("marathon listening on http://{}", handle.addr());
            wait_for_signal().await;
            trigger.fire();
            handle.join().await;
        }
        Command::Local(args) => local::run(args, trigger).await?,
        Command::Execute(args) => {
            let outcome = execute::run(args).await?;
            return Ok(if outcome.success() {
                ExitCode::SUCCESS
            } else {
                for status in outcome
                    .finals
                    .values()
                    .filter(|s| s.state() != agora_proto::TaskState::TaskFinished)
                {
                    eprintln!(
                        "task {} did not finish successfully: {}",
                        status
                            .task_id
                            .as_ref()
                            .map(|t| t.value.as_str())
                            .unwrap_or("?"),
                        status
                            .message
                            .as_deref()
                            .unwrap_or(status.state().as_str_name())
                    );
                }
                ExitCode::FAILURE
            });
        }
        Command::Bench(command) => bench::run(command).await?,
        // Handled in `main`, before any multi-threaded runtime exists.
        Command::Executor(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
