//! What the agent and an executor shim say to each other, and the two files
//! the shim reads and writes in the sandbox.
//!
//! **Socket protocol.** The shim listens on a Unix stream socket (path in
//! its [`ShimConfig`]); the agent dials it after launching the shim and again
//! after every agent restart. Both directions carry newline-delimited JSON,
//! one [`ShimEvent`] or [`ShimRequest`] per line:
//!
//! ```text
//! shim -> agent  {"type":"started","pid":4242}                      (first line of every connection;
//!                                                                    a container on a network of its own
//!                                                                    adds "networks":[{"name":..,"ip":..}])
//! shim -> agent  {"type":"health","status":{"healthy":false,"cause":".."}}  (when a check's verdict changes)
//! shim -> agent  {"type":"exited","status":{"exited":0}}            (then the shim exits)
//! agent -> shim  {"type":"kill","grace_ms":3000}                    (SIGTERM now, SIGKILL after grace)
//! ```
//!
//! One agent connection at a time: a new one replaces the old (the agent
//! that dialled last is the live one). JSON rather than protobuf because the
//! messages are tiny and an operator can talk to a shim with `socat`.
//!
//! **Fetching.** The shim binds its socket first, then fetches the task's
//! URIs, then starts the task: the agent's dial succeeds at once and waits
//! for `started` however long the download takes (the agent's actor is never
//! blocked, and no start timeout is needed for slow downloads). A failed
//! fetch is recorded as `launch_failed` and the socket closed, which the
//! agent reads as a failed launch.
//!
//! **Files**, under `<sandbox>/.agora/`: `shim.json` (the [`ShimConfig`],
//! written by the agent before it starts the shim) and `exit_status` (the
//! [`ExitRecord`], written atomically by the shim once the task's process
//! tree is gone). The exit record is how an agent that was down when the
//! task ended learns its outcome.

use std::io;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use agora_proto::command_info::Uri;

use crate::containerizer::docker::DockerRun;
use crate::containerizer::{
    CommandSpec, ContainerNetwork, ContainerResources, Limitation, Termination,
};
use crate::executor::health::Checks;
use crate::isolation::policy::ShimIsolation;

/// The directory of the shim's files inside a sandbox.
pub const SHIM_DIR: &str = ".agora";
/// The shim's configuration file, inside [`SHIM_DIR`].
pub const CONFIG_FILE: &str = "shim.json";
/// The exit record, inside [`SHIM_DIR`].
pub const EXIT_FILE: &str = "exit_status";
/// The shim's own log (its stdout and stderr), inside [`SHIM_DIR`].
pub const LOG_FILE: &str = "shim.log";

/// Everything a shim needs to run one task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShimConfig {
    /// The container's id (for logs).
    pub container_id: String,
    /// The sandbox: the task's working directory and home of its output.
    pub sandbox: PathBuf,
    /// Where the shim listens.
    pub socket: PathBuf,
    /// What runs: a host command, or a Docker container.
    pub command: Command,
    /// The task's complete environment.
    pub env: Vec<(String, String)>,
    /// URIs to fetch into the sandbox before the task starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<FetchUri>,
    /// The agent's fetcher cache (for URIs with `cache: true`).
    #[serde(default)]
    pub fetch_cache: Option<PathBuf>,
    /// The isolation to apply (none when absent).
    #[serde(default)]
    pub isolation: ShimIsolation,
    /// The task's resources, the limits of its isolation.
    #[serde(default)]
    pub resources: ContainerResources,
    /// The task's health check and general check, run by the shim.
    #[serde(default, skip_serializing_if = "Checks::is_empty")]
    pub checks: Checks,
}

/// A `CommandInfo.URI` as it is written to `shim.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FetchUri {
    /// The URI.
    pub value: String,
    /// Make the file executable.
    #[serde(default)]
    pub executable: Option<bool>,
    /// Extract archives (Mesos' default: yes).
    #[serde(default)]
    pub extract: Option<bool>,
    /// Go through the agent's cache.
    #[serde(default)]
    pub cache: Option<bool>,
    /// The file name in the sandbox.
    #[serde(default)]
    pub output_file: Option<String>,
}

impl From<&Uri> for FetchUri {
    fn from(uri: &Uri) -> Self {
        FetchUri {
            value: uri.value.clone(),
            executable: uri.executable,
            extract: uri.extract,
            cache: uri.cache,
            output_file: uri.output_file.clone(),
        }
    }
}

impl From<&FetchUri> for Uri {
    fn from(uri: &FetchUri) -> Self {
        Uri {
            value: uri.value.clone(),
            executable: uri.executable,
            extract: uri.extract,
            cache: uri.cache,
            output_file: uri.output_file.clone(),
        }
    }
}

/// What a shim runs, as it is written to `shim.json`: a [`CommandSpec`] on
/// the host, or a Docker container the shim creates and supervises through
/// the engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// A Docker container (see [`crate::executor`]'s Docker mode).
    Docker {
        /// The container, fully described.
        run: Box<DockerRun>,
    },
    /// `/bin/sh -c <script>`.
    Shell {
        /// The script.
        script: String,
    },
    /// A program exec'd directly.
    Exec {
        /// Path or name of the program.
        program: String,
        /// `argv[0]`, when not the program.
        argv0: Option<String>,
        /// `argv[1..]`.
        args: Vec<String>,
    },
}

impl From<&CommandSpec> for Command {
    fn from(spec: &CommandSpec) -> Self {
        match spec.clone() {
            CommandSpec::Shell(script) => Command::Shell { script },
            CommandSpec::Exec {
                program,
                argv0,
                args,
            } => Command::Exec {
                program,
                argv0,
                args,
            },
        }
    }
}

/// How the task's main process ended, as JSON.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// Exit code.
    Exited(i32),
    /// Number of the signal that ended it.
    Signaled(i32),
}

impl From<ExitStatus> for Termination {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Exited(code) => Termination::Exited(code),
            ExitStatus::Signaled(n) => {
                Termination::Signaled(Signal::try_from(n).unwrap_or(Signal::SIGKILL))
            }
        }
    }
}

/// What the agent reports for a task that ended with `status`, killed or
/// not for exceeding `limitation` or for failing its health checks
/// (`unhealthy`, the cause).
pub fn termination(
    status: ExitStatus,
    limitation: Option<Limitation>,
    unhealthy: Option<String>,
) -> Termination {
    match (limitation, unhealthy) {
        (Some(l), _) => Termination::Limited(l),
        (None, Some(cause)) => Termination::Unhealthy(cause),
        (None, None) => status.into(),
    }
}

/// A task's health and general check as its supervisor last found them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// Healthy or not; `None` until the health check has a verdict (or
    /// when the task has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Why it is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The general check's last result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckResult>,
}

/// A general check's result, as `TaskStatus.check_status` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckResult {
    /// A command check: its exit code (none when it timed out).
    Command {
        /// The exit code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
    },
    /// An HTTP check: the answer's status (none without an answer).
    Http {
        /// The status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status_code: Option<u16>,
    },
    /// A TCP check: whether the connection was made.
    Tcp {
        /// Connected.
        succeeded: bool,
    },
}

impl CheckResult {
    /// `TaskStatus.check_status`.
    pub fn to_proto(self) -> agora_proto::CheckStatusInfo {
        use agora_proto::check_info::Type;
        use agora_proto::check_status_info::{Command, Http, Tcp};
        let mut info = agora_proto::CheckStatusInfo::default();
        match self {
            CheckResult::Command { exit_code } => {
                info.r#type = Type::Command as i32;
                info.command = Some(Command { exit_code });
            }
            CheckResult::Http { status_code } => {
                info.r#type = Type::Http as i32;
                info.http = Some(Http {
                    status_code: status_code.map(u32::from),
                });
            }
            CheckResult::Tcp { succeeded } => {
                info.r#type = Type::Tcp as i32;
                info.tcp = Some(Tcp {
                    succeeded: Some(succeeded),
                });
            }
        }
        info
    }
}

/// Shim to agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShimEvent {
    /// The task runs as `pid` (its process group id as well).
    Started {
        /// The task's main pid.
        pid: i32,
        /// The container's addresses, when it has a network of its own.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        networks: Vec<ContainerNetwork>,
        /// Its checks' state now (a reconnecting agent learns it without
        /// taking it for a change).
        #[serde(default, skip_serializing_if = "is_default")]
        health: HealthStatus,
    },
    /// The task's health or general check changed.
    Health {
        /// The new state.
        status: HealthStatus,
    },
    /// The task ended and every process it started is gone.
    Exited {
        /// How its main process ended.
        status: ExitStatus,
        /// The limit it was killed for exceeding, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limitation: Option<Limitation>,
        /// Why it was killed for failing its health checks, if it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unhealthy: Option<String>,
    },
}

fn is_default(status: &HealthStatus) -> bool {
    *status == HealthStatus::default()
}

/// Agent to shim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShimRequest {
    /// SIGTERM every process of the task now, SIGKILL them after `grace_ms`.
    Kill {
        /// The grace period in milliseconds (0: SIGKILL at once).
        grace_ms: u64,
    },
}

/// The `exit_status` file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ExitRecord {
    /// The task ran as `pid` and ended with `status`.
    Ended {
        /// Its main pid.
        pid: i32,
        /// How it ended.
        status: ExitStatus,
        /// The limit it was killed for exceeding, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limitation: Option<Limitation>,
        /// Why it was killed for failing its health checks, if it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unhealthy: Option<String>,
    },
    /// The task could not be started.
    LaunchFailed {
        /// Why.
        message: String,
    },
}

/// `<sandbox>/.agora/<name>`.
pub fn shim_file(sandbox: &Path, name: &str) -> PathBuf {
    sandbox.join(SHIM_DIR).join(name)
}

/// Writes `value` as JSON to `path` atomically: a temporary file renamed
/// over it, so a reader (or a crash) never sees half a file.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    crate::checkpoint::write_atomic(path, &bytes)
}

/// Reads a JSON file; `Ok(None)` if it does not exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// One protocol line (without the newline).
pub fn encode<T: Serialize>(message: &T) -> String {
    // Serialising these plain enums cannot fail (no maps with non-string
    // keys, no custom serialisers).
    serde_json::to_string(message).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_the_documented_json() {
        assert_eq!(
            encode(&ShimEvent::Started {
                pid: 42,
                networks: Vec::new(),
                health: HealthStatus::default(),
            }),
            r#"{"type":"started","pid":42}"#
        );
        assert_eq!(
            encode(&ShimEvent::Health {
                status: HealthStatus {
                    healthy: Some(false),
                    cause: Some("refused".into()),
                    check: Some(CheckResult::Tcp { succeeded: false }),
                },
            }),
            r#"{"type":"health","status":{"healthy":false,"cause":"refused","check":{"type":"tcp","succeeded":false}}}"#
        );
        assert_eq!(
            encode(&ShimEvent::Started {
                pid: 42,
                networks: vec![ContainerNetwork {
                    name: "bridge".into(),
                    ip: "172.17.0.2".parse().expect("ip"),
                }],
                health: HealthStatus::default(),
            }),
            r#"{"type":"started","pid":42,"networks":[{"name":"bridge","ip":"172.17.0.2"}]}"#
        );
        assert_eq!(
            encode(&ShimEvent::Exited {
                status: ExitStatus::Exited(0),
                limitation: None,
                unhealthy: None,
            }),
            r#"{"type":"exited","status":{"exited":0}}"#
        );
        assert_eq!(
            encode(&ShimRequest::Kill { grace_ms: 3000 }),
            r#"{"type":"kill","grace_ms":3000}"#
        );
        let back: ShimRequest =
            serde_json::from_str(r#"{"type":"kill","grace_ms":5}"#).expect("parses");
        assert_eq!(back, ShimRequest::Kill { grace_ms: 5 });
    }

    #[test]
    fn exit_record_round_trips_through_the_file() {
        let dir = std::env::temp_dir().join(format!("agora-proto-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(EXIT_FILE);
        assert_eq!(
            read_json::<ExitRecord>(&path).expect("absent is fine"),
            None
        );
        let record = ExitRecord::Ended {
            pid: 7,
            status: ExitStatus::Signaled(9),
            limitation: None,
            unhealthy: None,
        };
        write_json_atomic(&path, &record).expect("write");
        assert_eq!(read_json(&path).expect("read"), Some(record));
        assert_eq!(
            Termination::from(ExitStatus::Signaled(9)),
            Termination::Signaled(Signal::SIGKILL)
        );
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
