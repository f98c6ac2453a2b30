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
//! The shim runs in its own process group (the agent starts it so), so a
//! signal to the agent's group (Ctrl-C in a terminal) reaches neither the
//! shim nor the task, and nothing ties the shim's life to the agent's: a
//! SIGKILLed agent finds its shims still there when it comes back. It is a
//! single-threaded tokio runtime and keeps nothing but one connection, so it
//! stays small (a few MiB of RSS, mostly the shared binary's pages).

mod isolate;
mod launch;
pub mod protocol;
mod tree;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{interval_at, sleep, sleep_until, Instant, Interval, MissedTickBehavior};

use crate::containerizer::Limitation;

use protocol::{
    encode, shim_file, write_json_atomic, ExitRecord, ExitStatus, ShimConfig, ShimEvent,
    ShimRequest, EXIT_FILE,
};

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

/// The connected agent, if any.
struct Conn {
    lines: Lines<BufReader<OwnedReadHalf>>,
    out: OwnedWriteHalf,
}

impl Conn {
    async fn send(&mut self, event: &ShimEvent) -> io::Result<()> {
        let mut line = encode(event);
        line.push('\n');
        self.out.write_all(line.as_bytes()).await
    }
}

async fn next_request(conn: &mut Option<Conn>) -> io::Result<Option<String>> {
    match conn {
        Some(c) => c.lines.next_line().await,
        None => std::future::pending().await,
    }
}

async fn supervise(config: ShimConfig) -> Result<(), ShimError> {
    let setup = |what| move |source| ShimError::Setup { what, source };
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        // Without it, double-forked processes escape to init; the process
        // group still catches everything that does not call setsid.
        tracing::warn!(error = %e, "cannot become a child subreaper");
    }
    // Registered before the task exists, so its SIGCHLD cannot be missed.
    let mut sigchld = signal(SignalKind::child()).map_err(setup("handle SIGCHLD"))?;
    let exit_file = shim_file(&config.sandbox, EXIT_FILE);
    // A socket left by a crashed shim of the same container would make bind fail.
    let _ = std::fs::remove_file(&config.socket);
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
            tracing::warn!(%message, "task launch failed");
            // The record first, then the socket closes: the agent, waiting
            // for `started`, sees the end and reads why.
            write_json_atomic(&exit_file, &ExitRecord::LaunchFailed { message })
                .map_err(setup("write the exit status"))?;
            drop(listener);
            let _ = std::fs::remove_file(&config.socket);
            return Ok(());
        }
    };
    tracing::info!(container_id = %config.container_id, pid = main.as_raw(), "task started");

    let me = std::process::id() as i32;
    let mut conn: Option<Conn> = None;
    let mut kill_at: Option<Instant> = None;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut limitation: Option<Limitation> = None;
    let mut memory_watch = guard
        .watches_memory()
        .then(|| watch_every(isolate::MEMORY_WATCH));
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
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let mut c = connection(stream);
                    match c.send(&ShimEvent::Started { pid: main.as_raw() }).await {
                        Ok(()) => conn = Some(c),
                        Err(e) => tracing::warn!(error = %e, "agent connection failed"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            line = next_request(&mut conn) => match line {
                Ok(Some(line)) => match serde_json::from_str::<ShimRequest>(&line) {
                    Ok(ShimRequest::Kill { grace_ms }) => {
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
                    Err(e) => tracing::warn!(error = %e, %line, "invalid request ignored"),
                },
                // The agent went away; it will dial again when it is back.
                Ok(None) | Err(_) => conn = None,
            },
            _ = sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() => {
                tracing::info!("grace period over; SIGKILL");
                kill_at = None;
                tree::signal_descendants(me, Signal::SIGKILL);
                guard.kill_all().await;
            }
            _ = tick(&mut memory_watch), if limitation.is_none() => {
                if let Some(l) = guard.memory_exceeded() {
                    limitation = Some(enforce(me, &guard, l).await);
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
    tracing::info!(?status, ?limitation, "task ended");
    let record = ExitRecord::Ended {
        pid: main.as_raw(),
        status,
        limitation: limitation.clone(),
    };
    // The file first: an agent that dials from now on and finds the socket
    // dead reads it.
    write_json_atomic(&exit_file, &record).map_err(setup("write the exit status"))?;
    if let Some(mut c) = conn {
        if let Err(e) = c.send(&ShimEvent::Exited { status, limitation }).await {
            tracing::info!(error = %e, "agent gone; the exit status is in the sandbox");
        }
        let _ = c.out.shutdown().await;
    }
    drop(listener);
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}

fn connection(stream: UnixStream) -> Conn {
    let (read, write) = stream.into_split();
    Conn {
        lines: BufReader::new(read).lines(),
        out: write,
    }
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
