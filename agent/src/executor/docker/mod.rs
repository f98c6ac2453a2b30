//! The shim's Docker mode: one container, created (or adopted) and
//! supervised through the engine's API.
//!
//! * **Start.** A container of the run's name already there is *adopted*
//!   (this shim replaces one that died: the container ran on without it);
//!   otherwise the image is pulled when the engine lacks it or the task
//!   forces a pull, and the container created and started. Any refusal is a
//!   failed launch carrying the engine's message (`No such image`, a pull
//!   that cannot reach a registry, an unknown user), so a task never waits
//!   in STAGING for something that cannot happen.
//! * **Output.** The engine's logs API, followed, is copied into the
//!   sandbox's `stdout` and `stderr` ([`output`]); an adopted container's
//!   copy resumes after the last line the shim before copied, which every
//!   shim records as it goes.
//! * **End.** The engine's wait API says when the container stops (no
//!   polling); if the engine's connection drops the wait is renewed once it
//!   answers again. A kill sends the container's stop signal (the image's,
//!   SIGTERM by default), then SIGKILL after the grace period, both
//!   carried out here so the grace period holds while the agent is down.
//!   An OOM kill is the memory limitation; an exit code of 128 + n after
//!   the shim sent signal n reads as that signal, as a native task's would.
//!   The container is removed once its output is copied. Every call the
//!   supervision waits on is bounded, and a container SIGKILLed whose end
//!   the engine does not report (an engine under load can lose one: its
//!   state left "running", every call on it hanging) is taken to have
//!   ended once the host shows its process gone.

mod output;
mod target;

use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, ContainerWaitResponse};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, KillContainerOptions, RemoveContainerOptions,
    WaitContainerOptions,
};
use bollard::Docker;
use futures::{Stream, StreamExt};
use nix::sys::signal::Signal;
use tokio::net::UnixListener;
use tokio::time::{sleep, sleep_until, Instant};

use super::health;
use super::protocol::{ExitStatus, ShimConfig, ShimRequest};
use super::session::Session;
use super::{Ending, SessionEnd};
use crate::containerizer::docker::{engine, DockerRun};
use crate::containerizer::{Limitation, LimitedResource};

/// How long a call to the engine that the supervision waits on may take.
const ENGINE_CALL: Duration = Duration::from_secs(10);
/// How long after a SIGKILL the shim asks the host whether the container's
/// process is gone, when the engine has not reported its end.
const KILL_CONFIRMATION: Duration = Duration::from_secs(5);
/// How long the output copy may take to drain once the container stopped.
const OUTPUT_DRAIN: Duration = Duration::from_secs(5);
/// Between attempts to reach an engine that stopped answering.
const ENGINE_RETRY: Duration = Duration::from_secs(1);
const MB: i64 = 1024 * 1024;

type WaitStream = Pin<Box<dyn Stream<Item = Result<ContainerWaitResponse, Error>> + Send>>;

/// Runs the container of `run` until it ends.
pub(super) async fn supervise(
    config: &ShimConfig,
    run: &DockerRun,
    listener: UnixListener,
) -> (Ending, SessionEnd) {
    let failed = |message: String, listener| {
        (
            Ending::LaunchFailed(message),
            SessionEnd::Listening(listener),
        )
    };
    let docker = match engine::connect(&run.socket, run.api_version) {
        Ok(d) => d,
        Err(message) => return failed(message, listener),
    };
    // Made before the container starts, as for a native task: the task may
    // look for them in its sandbox.
    let outputs = match output::Outputs::open(&config.sandbox) {
        Ok(outputs) => outputs,
        Err(e) => {
            return failed(
                format!("cannot open the sandbox's output files: {e}"),
                listener,
            )
        }
    };
    let (info, adopted) = match start(config, &docker, run).await {
        Ok(started) => started,
        Err(message) => return failed(message, listener),
    };
    let pid = info
        .state
        .as_ref()
        .and_then(|s| s.pid)
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or_default();
    let stop_signal = info
        .config
        .as_ref()
        .and_then(|c| c.stop_signal.as_deref())
        .and_then(parse_signal)
        .unwrap_or(Signal::SIGTERM);
    tracing::info!(container = %run.name, pid, adopted, "container running");
    // A new container's output is copied from its start; an adopted one's
    // from where the shim before this one left off.
    let resume = if adopted {
        output::Position::recorded(&config.sandbox)
    } else {
        output::Position::Start
    };
    let output = tokio::spawn(output::copy(
        docker.clone(),
        run.name.clone(),
        outputs,
        resume,
    ));
    let host_network = info
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.as_deref())
        == Some("host");
    let mut checks = (!config.checks.is_empty()).then(|| {
        let target = Arc::new(target::DockerTarget {
            docker: docker.clone(),
            name: run.name.clone(),
            netns: (!host_network).then(|| PathBuf::from(format!("/proc/{pid}/ns/net"))),
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
        pid,
        engine::networks(&info),
        checks.as_ref().map(|c| c.status.clone()),
    );
    let mut unhealthy: Option<String> = None;

    // The container's main process as the host sees it, to tell whether
    // it is still there when the engine does not say.
    let main = HostProcess::of(pid);
    let mut wait = wait_for(&docker, &run.name);
    let mut kill_at: Option<Instant> = None;
    let mut confirm_at: Option<Instant> = None;
    let mut signalled: Option<Signal> = None;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let code = loop {
        tokio::select! {
            item = wait.next() => match item {
                Some(Ok(answer)) => break Some(answer.status_code),
                Some(Err(Error::DockerContainerWaitError { code, .. })) => break Some(code),
                other => {
                    // The engine went away (restarted, socket reset): find
                    // out where the container stands once it answers again.
                    if let Some(Err(e)) = other {
                        tracing::warn!(error = %e, "waiting on the container failed");
                    }
                    match standing(&docker, &run.name).await {
                        Standing::Running => wait = wait_for(&docker, &run.name),
                        Standing::Stopped(code) => break Some(code),
                        Standing::Gone => break None,
                    }
                }
            },
            request = session.request() => match request {
                ShimRequest::Kill { grace_ms } => {
                    let grace = Duration::from_millis(grace_ms);
                    tracing::info!(?grace, "killing the container");
                    let signal = if grace.is_zero() { Signal::SIGKILL } else { stop_signal };
                    send_signal(&docker, &run.name, signal).await;
                    signalled = Some(signal);
                    if grace.is_zero() {
                        confirm_at = Some(Instant::now() + KILL_CONFIRMATION);
                    } else {
                        // A second kill may shorten the grace, never lengthen it.
                        let at = Instant::now() + grace;
                        kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                    }
                }
            },
            cause = super::health_kill(&mut checks), if unhealthy.is_none() => {
                let grace = config.checks.kill_grace;
                let signal = if grace.is_zero() { Signal::SIGKILL } else { stop_signal };
                send_signal(&docker, &run.name, signal).await;
                signalled = Some(signal);
                if grace.is_zero() {
                    confirm_at = Some(Instant::now() + KILL_CONFIRMATION);
                } else {
                    let at = Instant::now() + grace;
                    kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                }
                unhealthy = Some(cause);
            }
            _ = sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() => {
                tracing::info!("grace period over; SIGKILL");
                kill_at = None;
                send_signal(&docker, &run.name, Signal::SIGKILL).await;
                signalled = Some(Signal::SIGKILL);
                confirm_at = Some(Instant::now() + KILL_CONFIRMATION);
            }
            // SIGKILLed a while ago and the engine still reports nothing:
            // under load an engine can lose a container's exit (its shim
            // gone, its state left "running", every call on it hanging).
            // The host says whether the process is gone.
            _ = sleep_until(confirm_at.unwrap_or(far)), if confirm_at.is_some() => {
                if main.as_ref().is_some_and(HostProcess::is_gone) {
                    tracing::error!(container = %run.name, "the engine did not report the end of the container, whose process is gone");
                    break Some(128 + Signal::SIGKILL as i64);
                }
                confirm_at = Some(Instant::now() + KILL_CONFIRMATION);
            }
        }
    };
    let Some(code) = code else {
        output.abort();
        return (
            Ending::Unknown("the container vanished from the engine".into()),
            SessionEnd::Serving(session),
        );
    };
    let oom_killed = tokio::time::timeout(ENGINE_CALL, docker.inspect_container(&run.name, None))
        .await
        .ok()
        .and_then(Result::ok)
        .and_then(|i| i.state)
        .and_then(|s| s.oom_killed)
        .unwrap_or(false);
    // The log stream ends with the container; give it the time to drain.
    let mut output = output;
    if tokio::time::timeout(OUTPUT_DRAIN, &mut output)
        .await
        .is_err()
    {
        tracing::warn!("the container's output did not drain in time");
        output.abort();
    }
    remove(&docker, &run.name).await;
    let limitation = oom_killed.then(|| Limitation {
        resource: LimitedResource::Memory,
        message: match run.body.host_config.as_ref().and_then(|h| h.memory) {
            Some(bytes) => format!("Memory limit exceeded: {} MB", (bytes + MB - 1) / MB),
            None => "Memory limit exceeded".to_string(),
        },
    });
    drop(checks);
    let ending = Ending::Ended {
        pid,
        status: exit_status(code, signalled),
        limitation,
        unhealthy,
    };
    (ending, SessionEnd::Serving(session))
}

/// Adopts the container of this name, or fetches the task's URIs into
/// the sandbox and makes and starts it; returns its state once running, and
/// whether it was adopted. A container this returns an error for is gone:
/// none is left that nobody supervises.
async fn start(
    config: &ShimConfig,
    docker: &Docker,
    run: &DockerRun,
) -> Result<(ContainerInspectResponse, bool), String> {
    let adopted = match docker.inspect_container(&run.name, None).await {
        Ok(info) => {
            // Adopted as it is: its sandbox (fetched files included) is the
            // one the container has been using.
            let created = info
                .state
                .as_ref()
                .and_then(|s| s.status)
                .is_some_and(|s| s == ContainerStateStatusEnum::CREATED);
            if created {
                // Made by a shim that died before starting it.
                start_container(docker, run).await?;
            }
            true
        }
        Err(e) if engine::is_not_found(&e) => {
            super::launch::fetch(config).await?;
            ensure_image(docker, run).await?;
            let options = CreateContainerOptions {
                name: Some(run.name.clone()),
                ..Default::default()
            };
            docker
                .create_container(Some(options), run.body.clone())
                .await
                .map_err(|e| format!("cannot create the container: {}", engine::message(&e)))?;
            start_container(docker, run).await?;
            false
        }
        Err(e) => {
            return Err(format!(
                "cannot inspect container {}: {}",
                run.name,
                engine::message(&e)
            ))
        }
    };
    match docker.inspect_container(&run.name, None).await {
        Ok(info) => Ok((info, adopted)),
        Err(e) => {
            remove(docker, &run.name).await;
            Err(format!(
                "cannot inspect container {}: {}",
                run.name,
                engine::message(&e)
            ))
        }
    }
}

async fn start_container(docker: &Docker, run: &DockerRun) -> Result<(), String> {
    if let Err(e) = docker.start_container(&run.name, None).await {
        let message = format!("cannot start the container: {}", engine::message(&e));
        remove(docker, &run.name).await;
        return Err(message);
    }
    Ok(())
}

/// Pulls the image when the engine lacks it, or always with `force_pull`.
async fn ensure_image(docker: &Docker, run: &DockerRun) -> Result<(), String> {
    if !run.force_pull {
        match docker.inspect_image(&run.image).await {
            Ok(_) => return Ok(()),
            Err(e) if engine::is_not_found(&e) => {}
            Err(e) => {
                return Err(format!(
                    "cannot inspect image '{}': {}",
                    run.image,
                    engine::message(&e)
                ))
            }
        }
    }
    let reference = pull_reference(&run.image);
    tracing::info!(image = %reference, force = run.force_pull, "pulling the image");
    let options = CreateImageOptions {
        from_image: Some(reference),
        ..Default::default()
    };
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(item) = progress.next().await {
        item.map_err(|e| format!("cannot pull image '{}': {}", run.image, engine::message(&e)))?;
    }
    Ok(())
}

fn wait_for(docker: &Docker, name: &str) -> WaitStream {
    let options = WaitContainerOptions {
        condition: "not-running".into(),
    };
    Box::pin(docker.wait_container(name, Some(options)))
}

enum Standing {
    Running,
    Stopped(i64),
    Gone,
}

/// Where the container stands, asking until the engine answers.
async fn standing(docker: &Docker, name: &str) -> Standing {
    loop {
        match docker.inspect_container(name, None).await {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                return if state.running.unwrap_or(false) {
                    Standing::Running
                } else {
                    Standing::Stopped(state.exit_code.unwrap_or(-1))
                };
            }
            Err(e) if engine::is_not_found(&e) => return Standing::Gone,
            Err(e) => {
                tracing::warn!(error = %e, "the engine does not answer; retrying");
                sleep(ENGINE_RETRY).await;
            }
        }
    }
}

/// Bounded: the supervision loop waits on it, and a kill must not stall
/// the loop (or the next kill) behind an engine that hangs.
async fn send_signal(docker: &Docker, name: &str, signal: Signal) {
    let options = KillContainerOptions {
        signal: signal.as_str().to_string(),
    };
    match tokio::time::timeout(ENGINE_CALL, docker.kill_container(name, Some(options))).await {
        Ok(Ok(())) => tracing::debug!(%signal, "signalled the container"),
        // It stopped meanwhile: its exit is on its way.
        Ok(Err(e)) if engine::is_conflict(&e) || engine::is_not_found(&e) => {}
        Ok(Err(e)) => tracing::warn!(%signal, error = %e, "cannot signal the container"),
        Err(_) => tracing::warn!(%signal, "the engine did not answer the signal in time"),
    }
}

async fn remove(docker: &Docker, name: &str) {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match tokio::time::timeout(ENGINE_CALL, docker.remove_container(name, Some(options))).await {
        Ok(Ok(())) => tracing::debug!(container = %name, "container removed"),
        Ok(Err(e)) if engine::is_not_found(&e) => {}
        Ok(Err(e)) => tracing::warn!(container = %name, error = %e, "cannot remove the container"),
        // The agent removes it at its next start, as an orphan.
        Err(_) => {
            tracing::warn!(container = %name, "the engine did not remove the container in time")
        }
    }
}

/// A process of the host, told apart from a later one with the same pid
/// by its start time (`/proc/<pid>/stat`, field 22).
struct HostProcess {
    pid: i32,
    started: u64,
}

impl HostProcess {
    /// `pid` as this host sees it now; `None` when it cannot be seen (an
    /// engine on another host, or in another pid namespace).
    fn of(pid: i32) -> Option<Self> {
        let started = Self::start_time(pid)?;
        Some(HostProcess { pid, started })
    }

    fn start_time(pid: i32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command's name, which may hold spaces and parentheses.
        let rest = stat.rsplit_once(')')?.1;
        rest.split_whitespace().nth(19)?.parse().ok()
    }

    /// Whether the process has ended (a zombie has ended too).
    fn is_gone(&self) -> bool {
        let state = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| Some(s.rsplit_once(')')?.1.trim_start().chars().next()? == 'Z'));
        state.unwrap_or(true) || Self::start_time(self.pid) != Some(self.started)
    }
}

/// What to pull for `image`: as given when it names a tag or a digest,
/// else its `latest` tag (as `docker pull` does; without a tag the engine's
/// API pulls every tag of the repository).
fn pull_reference(image: &str) -> String {
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || name.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// `SIGTERM`, `TERM` or `15`.
fn parse_signal(text: &str) -> Option<Signal> {
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).ok()
}

/// The container's exit code, read as a native task's wait status would be.
fn exit_status(code: i64, signalled: Option<Signal>) -> ExitStatus {
    match signalled {
        Some(signal) if code == 128 + signal as i64 => ExitStatus::Signaled(signal as i32),
        _ => ExitStatus::Exited(i32::try_from(code).unwrap_or(-1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_read_like_native_wait_statuses() {
        let table = [
            (0, None, ExitStatus::Exited(0)),
            (3, None, ExitStatus::Exited(3)),
            (137, None, ExitStatus::Exited(137)),
            (143, Some(Signal::SIGTERM), ExitStatus::Signaled(15)),
            (137, Some(Signal::SIGKILL), ExitStatus::Signaled(9)),
            // Exited of its own after the signal.
            (0, Some(Signal::SIGTERM), ExitStatus::Exited(0)),
            (130, Some(Signal::SIGTERM), ExitStatus::Exited(130)),
        ];
        for (code, signalled, want) in table {
            assert_eq!(exit_status(code, signalled), want, "{code} {signalled:?}");
        }
    }

    #[test]
    fn an_image_without_a_tag_is_pulled_as_latest() {
        let table = [
            ("busybox", "busybox:latest"),
            ("busybox:1.36", "busybox:1.36"),
            (
                "registry.local:5000/team/app",
                "registry.local:5000/team/app:latest",
            ),
            (
                "registry.local:5000/team/app:v2",
                "registry.local:5000/team/app:v2",
            ),
            ("app@sha256:0123", "app@sha256:0123"),
        ];
        for (image, reference) in table {
            assert_eq!(pull_reference(image), reference, "{image}");
        }
    }

    #[test]
    fn a_host_process_is_gone_once_it_ended() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn");
        let process = HostProcess::of(child.id() as i32).expect("visible");
        assert!(!process.is_gone());
        child.kill().expect("kill");
        let _ = child.wait();
        assert!(process.is_gone());
        assert!(HostProcess::of(i32::MAX).is_none());
    }

    #[test]
    fn stop_signals_in_every_spelling() {
        assert_eq!(parse_signal("SIGTERM"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("int"), Some(Signal::SIGINT));
        assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("SIGBOGUS"), None);
    }
}
