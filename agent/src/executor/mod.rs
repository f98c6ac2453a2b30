//! The executor shim: `agora executor --config <sandbox>/.agora/shim.json`.
//!
//! The agent starts one shim per task (the `agora` binary re-executed, see
//! [`crate::containerizer::shim`]). The shim
//!
//! 1. makes itself a *child subreaper* (`PR_SET_CHILD_SUBREAPER`), so that
//!    whatever its task forks, even daemonised grandchildren, stays its
//!    descendant and can be found and killed ([`tree`]);
//! 2. binds its socket, fetches the task's URIs into the sandbox
//!    ([`crate::fetcher`]; a failure is recorded as a failed launch), and
//!    starts the task's command as its child, in a process group of its own,
//!    with the given environment, the sandbox as working directory and the
//!    sandbox's `stdout`/`stderr` files;
//! 3. listens on its Unix socket and speaks the [`protocol`] with whichever
//!    agent dials it last: `started{pid}` on every connection, `kill{grace}`
//!    carried out here (SIGTERM to every descendant, SIGKILL to every
//!    descendant once the grace period is over, even if the agent died
//!    meanwhile), `exited{status}` at the end;
//! 4. once the task's main process has ended, SIGKILLs and reaps every
//!    process left, writes `exit_status` atomically, tells the connected
//!    agent if any, and exits.
//!
//! **Docker mode** (`shim.json` says `command: {type: docker}`): the shim is
//! the container's supervisor, as Mesos' docker executor is. It binds its
//! socket, fetches URIs, then has the engine pull the image if it is missing
//! (or `force_pull`), create and start the container, or adopts the
//! container of that name if one exists (a shim restarted after a crash);
//! it copies the container's output into the sandbox's `stdout`/`stderr`
//! through the engine's logs API, learns the exit from the engine's wait API
//! (no polling), carries out kills itself (the image's stop signal, SIGKILL
//! after the grace period), reports an OOM kill as the memory limitation,
//! removes the container and writes `exit_status` as above. See [`docker`].
//!
//! The shim runs in its own process group (the agent starts it so), so a
//! signal to the agent's group (Ctrl-C in a terminal) reaches neither the
//! shim nor the task; stop signals sent to the shim itself are ignored (its
//! task's end is the agent's decision, sent as `kill`); and nothing ties the
//! shim's life to the agent's: a SIGKILLed agent finds its shims still there
//! when it comes back. It is a single-threaded tokio runtime and keeps
//! nothing but one connection, so it stays small (a few MiB of RSS, mostly
//! the shared binary's pages).

mod docker;
mod footprint;
pub mod health;
mod isolate;
mod launch;
pub mod protocol;
mod session;
mod tree;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{interval_at, sleep, sleep_until, Instant, Interval, MissedTickBehavior};

use crate::containerizer::Limitation;

use protocol::{
    shim_file, write_json_atomic, Command, ExitRecord, ExitStatus, ShimConfig, ShimEvent,
    ShimRequest, EXIT_FILE,
};
use session::Session;

/// How long the shim keeps SIGKILLing a task's leftovers before it gives up
/// on processes stuck in uninterruptible sleep.
const CLEANUP_LIMIT: Duration = Duration::from_secs(10);

/// Why a shim could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// `shim.json` is missing or invalid.
    #[error("cannot read the shim config {}: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The runtime, the SIGCHLD handler or the socket could not be set up.
    #[error("cannot {what}: {source}")]
    Setup {
        /// What failed.
        what: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The name of the small binary that runs only shims, found next to
/// `agora` (or in the agent's `--launcher-dir`).
pub const EXECUTOR_BINARY: &str = "agora-executor";

/// A shim's command line, `executor --config PATH`, as the agent passes it
/// to either binary (`agora` or [`EXECUTOR_BINARY`]): the shim's exit code,
/// or `None` if `args` (without the program's name) are something else.
/// Logs go to standard error, plainly (the agent keeps them in the sandbox).
pub fn main_with_args(mut args: impl Iterator<Item = std::ffi::OsString>) -> Option<ExitCode> {
    if args.next()? != "executor" {
        return None;
    }
    let (flag, config) = (args.next()?, args.next()?);
    if flag != "--config" || args.next().is_some() {
        return None;
    }
    agora_common::telemetry::init_plain();
    Some(match run(Path::new(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    })
}

/// Runs the shim described by `config_path` until its task has ended.
pub fn run(config_path: &Path) -> Result<(), ShimError> {
    let config_error = |source| ShimError::Config {
        path: config_path.to_path_buf(),
        source,
    };
    let config: ShimConfig = protocol::read_json(config_path)
        .map_err(config_error)?
        .ok_or_else(|| config_error(io::ErrorKind::NotFound.into()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ShimError::Setup {
            what: "start the runtime",
            source,
        })?;
    runtime.block_on(supervise(config))
}

/// How long after its start a shim lets go of the code it ran to start
/// (see [`footprint`]).
const RELEASE_STARTUP_CODE_AFTER: Duration = Duration::from_secs(5);

async fn supervise(config: ShimConfig) -> Result<(), ShimError> {
    let setup = |what| move |source| ShimError::Setup { what, source };
    tokio::spawn(async {
        tokio::time::sleep(RELEASE_STARTUP_CODE_AFTER).await;
        footprint::release_code();
    });
    ignore_stop_signals().map_err(setup("handle SIGTERM"))?;
    let exit_file = shim_file(&config.sandbox, EXIT_FILE);
    // A socket left by a crashed shim of the same container would make bind fail.
    let _ = std::fs::remove_file(&config.socket);
    if let Command::Docker { run } = &config.command {
        // Bound before the engine is asked for anything: the agent's dial
        // succeeds at once and it waits for `started` however long a pull takes.
        let listener = UnixListener::bind(&config.socket).map_err(setup("bind the shim socket"))?;
        // The container's URIs are fetched once it is clear there is no
        // container to adopt (whose sandbox already holds them).
        let end = docker::supervise(&config, run, listener).await;
        return finish(&config, &exit_file, end).await;
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        // Without it, double-forked processes escape to init; the process
        // group still catches everything that does not call setsid.
        tracing::warn!(error = %e, "cannot become a child subreaper");
    }
    // Registered before the task exists, so its SIGCHLD cannot be missed.
    let mut sigchld = signal(SignalKind::child()).map_err(setup("handle SIGCHLD"))?;
    // Bound before the fetch: the agent's dial succeeds at once and it then
    // waits for `started` however long the download takes.
    let listener = UnixListener::bind(&config.socket).map_err(setup("bind the shim socket"))?;
    let launched = match launch::fetch(&config).await {
        Ok(()) => launch::spawn_task(&config),
        Err(message) => Err(message),
    };
    let (main, guard) = match launched {
        Ok(started) => started,
        Err(message) => {
            let end = (
                Ending::LaunchFailed(message),
                SessionEnd::Listening(listener),
            );
            return finish(&config, &exit_file, end).await;
        }
    };
    tracing::info!(container_id = %config.container_id, pid = main.as_raw(), "task started");

    let me = std::process::id() as i32;
    let mut checks = (!config.checks.is_empty()).then(|| {
        let target = Arc::new(health::probe::HostTarget {
            sandbox: config.sandbox.clone(),
            env: config.env.clone(),
        });
        health::start(
            &config.checks,
            target,
            std::time::Instant::now(),
            Default::default(),
        )
    });
    let mut session = Session::start(
        listener,
        main.as_raw(),
        Vec::new(),
        checks.as_ref().map(|c| c.status.clone()),
    );
    let mut unhealthy: Option<String> = None;
    let mut kill_at: Option<Instant> = None;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut limitation: Option<Limitation> = None;
    // The OOM state is read when the cgroup says the OOM killer may have
    // struck (then a few times shortly after), and polled only where it
    // cannot say.
    let mut oom_events = guard.oom_events();
    let mut memory_watch = (guard.watches_memory() && oom_events.is_none())
        .then(|| watch_every(isolate::MEMORY_WATCH));
    let mut recheck_until: Option<Instant> = None;
    let mut disk_watch = guard.watches_disk().then(|| {
        watch_every(Duration::from_millis(
            config.isolation.disk_watch_ms.unwrap_or(15_000).max(1),
        ))
    });
    let status = loop {
        if let Some(status) = tree::reap(main) {
            break status;
        }
        tokio::select! {
            _ = sigchld.recv() => {}
            request = session.request() => match request {
                ShimRequest::Kill { grace_ms } => {
                    let grace = Duration::from_millis(grace_ms);
                    tracing::info!(?grace, "killing the task");
                    if grace.is_zero() {
                        tree::signal_descendants(me, Signal::SIGKILL);
                    } else {
                        tree::signal_descendants(me, Signal::SIGTERM);
                        // A second kill may shorten the grace, never lengthen it.
                        let at = Instant::now() + grace;
                        kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                    }
                }
            },
            cause = health_kill(&mut checks), if unhealthy.is_none() => {
                let grace = config.checks.kill_grace;
                if grace.is_zero() {
                    tree::signal_descendants(me, Signal::SIGKILL);
                } else {
                    tree::signal_descendants(me, Signal::SIGTERM);
                    let at = Instant::now() + grace;
                    kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                }
                unhealthy = Some(cause);
            }
            _ = sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() => {
                tracing::info!("grace period over; SIGKILL");
                kill_at = None;
                tree::signal_descendants(me, Signal::SIGKILL);
                guard.kill_all().await;
            }
            event = isolate::oom_event(&mut oom_events), if limitation.is_none() => {
                if !event {
                    oom_events = None;
                    memory_watch = Some(watch_every(isolate::MEMORY_WATCH));
                } else if let Some(l) = guard.memory_exceeded() {
                    limitation = Some(enforce(me, &guard, l).await);
                } else {
                    recheck_until = Some(Instant::now() + isolate::OOM_RECHECK_FOR);
                    memory_watch = Some(watch_every(isolate::OOM_RECHECK_EVERY));
                }
            }
            _ = tick(&mut memory_watch), if limitation.is_none() => {
                if let Some(l) = guard.memory_exceeded() {
                    limitation = Some(enforce(me, &guard, l).await);
                } else if recheck_until.is_some_and(|until| Instant::now() >= until) {
                    // Back to waiting for the next event.
                    recheck_until = None;
                    memory_watch = None;
                }
            }
            _ = tick(&mut disk_watch), if limitation.is_none() => {
                if let Some(l) = guard.disk_exceeded().await {
                    limitation = Some(enforce(me, &guard, l).await);
                }
            }
        }
    };
    // The cgroup catches what left the process tree (a setsid'd daemon
    // reparented elsewhere cannot leave its cgroup).
    guard.kill_all().await;
    clean_up(me, main).await;
    // The OOM killer may have ended the task between two watches.
    let limitation = limitation.or_else(|| guard.memory_exceeded());
    guard.destroy().await;
    let status = exit_status(status);
    drop(checks);
    let ending = Ending::Ended {
        pid: main.as_raw(),
        status,
        limitation,
        unhealthy,
    };
    finish(&config, &exit_file, (ending, SessionEnd::Serving(session))).await
}

/// The cause, once the task's health check wants it killed (never without
/// a health check, and only once).
async fn health_kill(checks: &mut Option<health::Running>) -> String {
    let Some(running) = checks else {
        return std::future::pending().await;
    };
    match (&mut running.kill).await {
        Ok(cause) => cause,
        // The checks stopped without asking: nothing to do, ever.
        Err(_) => std::future::pending().await,
    }
}

/// A shim's life is its task's: it ends when the task has ended, and the
/// agent ends a task with a `kill` request. Stop signals meant for the agent
/// (a service manager stopping every process of the agent's unit, `pkill
/// agora`) are logged and otherwise ignored, so the agent's kills, carried
/// out by the shims, still reach every task and container.
fn ignore_stop_signals() -> io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => "SIGHUP",
            };
            tracing::info!("{name} ignored: the shim ends with its task, which the agent kills");
        }
    });
    Ok(())
}

/// How a shim's task ended, for the exit record and the agent.
enum Ending {
    /// It ran as `pid` and ended so.
    Ended {
        pid: i32,
        status: ExitStatus,
        limitation: Option<Limitation>,
        /// Why it was killed for failing its health checks, if it was.
        unhealthy: Option<String>,
    },
    /// It never started.
    LaunchFailed(String),
    /// Its end cannot be told (the container vanished from the engine):
    /// no record is written, the agent reports the task's end as unknown.
    Unknown(String),
}

/// The socket's state when the task ends: a session serving agents, or a
/// listener whose connections were never greeted (the launch failed).
enum SessionEnd {
    Serving(Session),
    Listening(UnixListener),
}

/// Writes the exit record (first: an agent that dials from now on and finds
/// the socket dead reads it), tells the connected agent, closes the socket.
async fn finish(
    config: &ShimConfig,
    exit_file: &Path,
    (ending, session): (Ending, SessionEnd),
) -> Result<(), ShimError> {
    let setup = |what| move |source| ShimError::Setup { what, source };
    let record = match ending {
        Ending::Ended {
            pid,
            status,
            limitation,
            unhealthy,
        } => {
            tracing::info!(?status, ?limitation, ?unhealthy, "task ended");
            Some((
                ExitRecord::Ended {
                    pid,
                    status,
                    limitation: limitation.clone(),
                    unhealthy: unhealthy.clone(),
                },
                Some(ShimEvent::Exited {
                    status,
                    limitation,
                    unhealthy,
                }),
            ))
        }
        Ending::LaunchFailed(message) => {
            tracing::warn!(%message, "task launch failed");
            // The agent, waiting for `started`, sees the socket close and
            // reads why.
            Some((ExitRecord::LaunchFailed { message }, None))
        }
        Ending::Unknown(why) => {
            tracing::error!(%why, "the task's end is unknown");
            None
        }
    };
    let event = match record {
        Some((record, event)) => {
            write_json_atomic(exit_file, &record).map_err(setup("write the exit status"))?;
            event
        }
        None => None,
    };
    match (session, event) {
        (SessionEnd::Serving(session), Some(event)) => session.finish(event).await,
        (SessionEnd::Serving(session), None) => drop(session),
        (SessionEnd::Listening(listener), _) => drop(listener),
    }
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}

/// A timer for a limit watch; the first tick is one period away.
fn watch_every(period: Duration) -> Interval {
    let mut i = interval_at(Instant::now() + period, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

async fn tick(watch: &mut Option<Interval>) {
    match watch {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Kills the whole container for exceeding a limit.
async fn enforce(me: i32, guard: &isolate::Guard, limitation: Limitation) -> Limitation {
    tracing::warn!(message = %limitation.message, "limit exceeded; killing the task");
    tree::signal_descendants(me, Signal::SIGKILL);
    guard.kill_all().await;
    limitation
}

/// Kills and reaps whatever the task left behind.
async fn clean_up(me: i32, main: Pid) {
    let give_up = Instant::now() + CLEANUP_LIMIT;
    loop {
        let left = tree::signal_descendants(me, Signal::SIGKILL);
        tree::reap(main);
        if left == 0 {
            return;
        }
        if Instant::now() > give_up {
            tracing::warn!(left, "processes of the task survive SIGKILL; leaving them");
            return;
        }
        sleep(Duration::from_millis(1)).await;
    }
}

fn exit_status(status: WaitStatus) -> ExitStatus {
    match status {
        WaitStatus::Exited(_, code) => ExitStatus::Exited(code),
        WaitStatus::Signaled(_, signal, _) => ExitStatus::Signaled(signal as i32),
        // waitpid without WUNTRACED/WCONTINUED reports neither stops nor continues.
        other => {
            tracing::warn!(?other, "unexpected wait status");
            ExitStatus::Exited(-1)
        }
    }
}
