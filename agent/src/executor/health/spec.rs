//! A task's checks as its supervisor runs them: Mesos' `HealthCheck` and
//! `CheckInfo` read once, with Mesos' defaults, into plain values carried in
//! `shim.json` (pure; what cannot be carried out is refused by name).

use std::time::Duration;

use agora_proto::health_check::Type as HealthType;
use agora_proto::{check_info, CheckInfo, HealthCheck, TaskInfo};
use serde::{Deserialize, Serialize};

/// Mesos' defaults for both kinds of check.
const DEFAULT_DELAY: f64 = 15.0;
const DEFAULT_INTERVAL: f64 = 10.0;
const DEFAULT_TIMEOUT: f64 = 20.0;
/// Mesos' defaults for health checks.
const DEFAULT_CONSECUTIVE_FAILURES: u32 = 3;
const DEFAULT_GRACE_PERIOD: f64 = 10.0;

/// One probe of the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Probe {
    /// A command, successful when it exits 0 (run where the task runs:
    /// in its sandbox on the host, inside its Docker container).
    Command {
        /// Run through `/bin/sh -c`.
        script: String,
        /// Variables beyond the task's own.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        env: Vec<(String, String)>,
    },
    /// An HTTP(S) GET, successful on a status in `statuses` (when given),
    /// else from 200 to 399.
    Http {
        /// `https` asks over TLS (certificates are not verified, as Mesos' `curl -k`).
        https: bool,
        /// The port, on the task's network.
        port: u16,
        /// The path asked for.
        path: String,
        /// The statuses that count as healthy; empty means 200 to 399.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        statuses: Vec<u16>,
    },
    /// A TCP connection, successful once established.
    Tcp {
        /// The port, on the task's network.
        port: u16,
    },
}

/// When a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// From the task's start to the first probe.
    #[serde(with = "millis")]
    pub delay: Duration,
    /// From the end of one probe to the start of the next.
    #[serde(with = "millis")]
    pub interval: Duration,
    /// How long one probe may take before it counts as failed.
    #[serde(with = "millis")]
    pub timeout: Duration,
}

/// A health check: its probe, its schedule and when it kills the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSpec {
    /// What is probed.
    pub probe: Probe,
    /// When.
    pub schedule: Schedule,
    /// Failures in a row, outside the grace period, that kill the task
    /// (0: never).
    pub consecutive_failures: u32,
    /// From the task's start: failures are not counted until it is over
    /// or until the first success.
    #[serde(with = "millis")]
    pub grace_period: Duration,
}

/// A general check: reported, never acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// What is probed.
    pub probe: Probe,
    /// When.
    pub schedule: Schedule,
}

/// Everything a supervisor checks of one task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checks {
    /// The health check, if the task has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSpec>,
    /// The general check, if the task has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckSpec>,
    /// The grace period of a kill for failing health checks (the task's
    /// kill policy, else the agent's default).
    #[serde(default, with = "millis")]
    pub kill_grace: Duration,
}

impl Checks {
    /// Whether there is anything to run.
    pub fn is_empty(&self) -> bool {
        self.health.is_none() && self.check.is_none()
    }
}

/// A check that cannot be carried out as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {problem}")]
pub struct CheckError {
    /// `health check` or `check`.
    pub what: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// The checks of `task`; `kill_grace` is the grace period of a health kill.
pub fn of_task(task: &TaskInfo, kill_grace: Duration) -> Result<Checks, CheckError> {
    let health = task
        .health_check
        .as_ref()
        .map(health)
        .transpose()
        .map_err(|problem| CheckError {
            what: "health check",
            problem,
        })?;
    let check = task
        .check
        .as_ref()
        .map(check)
        .transpose()
        .map_err(|problem| CheckError {
            what: "check",
            problem,
        })?;
    Ok(Checks {
        health,
        check,
        kill_grace,
    })
}

fn seconds(
    value: Option<f64>,
    default: f64,
    field: &str,
    zero_ok: bool,
) -> Result<Duration, String> {
    let value = value.unwrap_or(default);
    if !value.is_finite() || value < 0.0 || (!zero_ok && value == 0.0) {
        let bound = if zero_ok { "not negative" } else { "positive" };
        return Err(format!("{field} must be {bound}, not {value}"));
    }
    Ok(Duration::from_secs_f64(value))
}

fn port(port: u32) -> Result<u16, String> {
    match u16::try_from(port) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port {port} is not a port")),
    }
}

fn path(path: Option<&str>) -> Result<String, String> {
    match path.filter(|p| !p.is_empty()) {
        None => Ok("/".into()),
        Some(p) if p.starts_with('/') && !p.contains(char::is_whitespace) => Ok(p.to_string()),
        Some(p) => Err(format!("path '{p}' must start with '/' and hold no spaces")),
    }
}

fn command_probe(command: Option<&agora_proto::CommandInfo>) -> Result<Probe, String> {
    let command = command.ok_or("a COMMAND check needs its command")?;
    let script = match (command.shell.unwrap_or(true), command.value.as_deref()) {
        (true, Some(value)) if !value.trim().is_empty() => value.to_string(),
        (true, _) => return Err("the command is empty".into()),
        (false, _) => return Err("only shell commands (shell: true) can be checks here".into()),
    };
    let env = command
        .environment
        .iter()
        .flat_map(|e| e.variables.iter())
        .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
        .collect();
    Ok(Probe::Command { script, env })
}

fn health(h: &HealthCheck) -> Result<HealthSpec, String> {
    let probe = match HealthType::try_from(h.r#type).unwrap_or(HealthType::Unknown) {
        HealthType::Command => command_probe(h.command.as_ref())?,
        HealthType::Http => {
            let http = h
                .http
                .as_ref()
                .ok_or("an HTTP check needs its http settings")?;
            let https = match http.scheme.as_deref().unwrap_or("http") {
                "http" => false,
                "https" => true,
                other => return Err(format!("scheme '{other}' is not http or https")),
            };
            let statuses = http
                .statuses
                .iter()
                .map(|s| {
                    u16::try_from(*s)
                        .ok()
                        .filter(|s| (100..600).contains(s))
                        .ok_or_else(|| format!("status {s} is not an HTTP status"))
                })
                .collect::<Result<_, _>>()?;
            Probe::Http {
                https,
                port: port(http.port)?,
                path: path(http.path.as_deref())?,
                statuses,
            }
        }
        HealthType::Tcp => Probe::Tcp {
            port: port(
                h.tcp
                    .as_ref()
                    .ok_or("a TCP check needs its tcp settings")?
                    .port,
            )?,
        },
        HealthType::Unknown => return Err("its type must be COMMAND, HTTP or TCP".into()),
    };
    Ok(HealthSpec {
        probe,
        schedule: Schedule {
            delay: seconds(h.delay_seconds, DEFAULT_DELAY, "delay_seconds", true)?,
            interval: seconds(
                h.interval_seconds,
                DEFAULT_INTERVAL,
                "interval_seconds",
                false,
            )?,
            timeout: seconds(h.timeout_seconds, DEFAULT_TIMEOUT, "timeout_seconds", false)?,
        },
        consecutive_failures: h
            .consecutive_failures
            .unwrap_or(DEFAULT_CONSECUTIVE_FAILURES),
        grace_period: seconds(
            h.grace_period_seconds,
            DEFAULT_GRACE_PERIOD,
            "grace_period_seconds",
            true,
        )?,
    })
}

fn check(c: &CheckInfo) -> Result<CheckSpec, String> {
    let probe = match check_info::Type::try_from(c.r#type).unwrap_or(check_info::Type::Unknown) {
        check_info::Type::Command => {
            command_probe(c.command.as_ref().and_then(|c| c.command.as_ref()))?
        }
        check_info::Type::Http => {
            let http = c
                .http
                .as_ref()
                .ok_or("an HTTP check needs its http settings")?;
            Probe::Http {
                https: false,
                port: port(http.port)?,
                path: path(http.path.as_deref())?,
                statuses: Vec::new(),
            }
        }
        check_info::Type::Tcp => Probe::Tcp {
            port: port(
                c.tcp
                    .as_ref()
                    .ok_or("a TCP check needs its tcp settings")?
                    .port,
            )?,
        },
        check_info::Type::Unknown => return Err("its type must be COMMAND, HTTP or TCP".into()),
    };
    Ok(CheckSpec {
        probe,
        schedule: Schedule {
            delay: seconds(c.delay_seconds, DEFAULT_DELAY, "delay_seconds", true)?,
            interval: seconds(
                c.interval_seconds,
                DEFAULT_INTERVAL,
                "interval_seconds",
                false,
            )?,
            timeout: seconds(c.timeout_seconds, DEFAULT_TIMEOUT, "timeout_seconds", false)?,
        },
    })
}

/// Durations as whole milliseconds in `shim.json`.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::health_check::{HttpCheckInfo, TcpCheckInfo};
    use agora_proto::CommandInfo;

    fn with_health(h: HealthCheck) -> TaskInfo {
        TaskInfo {
            health_check: Some(h),
            ..Default::default()
        }
    }

    fn http(port: u32, path: Option<&str>, scheme: Option<&str>) -> HealthCheck {
        HealthCheck {
            r#type: HealthType::Http as i32,
            http: Some(HttpCheckInfo {
                scheme: scheme.map(String::from),
                port,
                path: path.map(String::from),
                statuses: Vec::new(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn mesos_defaults_fill_what_is_not_given() {
        let checks =
            of_task(&with_health(http(8080, None, None)), Duration::from_secs(3)).expect("valid");
        let h = checks.health.expect("a health check");
        assert_eq!(
            h.probe,
            Probe::Http {
                https: false,
                port: 8080,
                path: "/".into(),
                statuses: vec![]
            }
        );
        assert_eq!(h.schedule.delay, Duration::from_secs(15));
        assert_eq!(h.schedule.interval, Duration::from_secs(10));
        assert_eq!(h.schedule.timeout, Duration::from_secs(20));
        assert_eq!(h.consecutive_failures, 3);
        assert_eq!(h.grace_period, Duration::from_secs(10));
        assert_eq!(checks.kill_grace, Duration::from_secs(3));
        assert!(checks.check.is_none());
        assert!(of_task(&TaskInfo::default(), Duration::ZERO)
            .expect("none")
            .is_empty());
    }

    #[test]
    fn every_probe_kind_is_read() {
        let command = HealthCheck {
            r#type: HealthType::Command as i32,
            command: Some(CommandInfo {
                value: Some("test -f ready".into()),
                ..Default::default()
            }),
            delay_seconds: Some(0.0),
            interval_seconds: Some(0.5),
            consecutive_failures: Some(0),
            ..Default::default()
        };
        let h = of_task(&with_health(command), Duration::ZERO)
            .expect("valid")
            .health
            .expect("health");
        assert_eq!(
            h.probe,
            Probe::Command {
                script: "test -f ready".into(),
                env: vec![]
            }
        );
        assert_eq!(h.schedule.delay, Duration::ZERO);
        assert_eq!(h.schedule.interval, Duration::from_millis(500));
        assert_eq!(h.consecutive_failures, 0, "0: never kill");

        let tcp = HealthCheck {
            r#type: HealthType::Tcp as i32,
            tcp: Some(TcpCheckInfo { port: 31000 }),
            ..Default::default()
        };
        let h = of_task(&with_health(tcp), Duration::ZERO)
            .expect("valid")
            .health
            .expect("health");
        assert_eq!(h.probe, Probe::Tcp { port: 31000 });

        let https = of_task(
            &with_health(http(443, Some("/health"), Some("https"))),
            Duration::ZERO,
        )
        .expect("valid")
        .health
        .expect("health");
        assert!(
            matches!(https.probe, Probe::Http { https: true, ref path, .. } if path == "/health")
        );

        let check = TaskInfo {
            check: Some(CheckInfo {
                r#type: check_info::Type::Tcp as i32,
                tcp: Some(check_info::Tcp { port: 9000 }),
                interval_seconds: Some(1.0),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = of_task(&check, Duration::ZERO)
            .expect("valid")
            .check
            .expect("check");
        assert_eq!(c.probe, Probe::Tcp { port: 9000 });
        assert_eq!(c.schedule.interval, Duration::from_secs(1));
    }

    #[test]
    fn what_cannot_be_carried_out_is_refused_by_name() {
        let refused: Vec<(HealthCheck, &str)> = vec![
            (
                HealthCheck::default(),
                "health check: its type must be COMMAND, HTTP or TCP",
            ),
            (http(0, None, None), "health check: port 0 is not a port"),
            (
                http(70000, None, None),
                "health check: port 70000 is not a port",
            ),
            (
                http(80, Some("health"), None),
                "health check: path 'health' must start with '/'",
            ),
            (
                http(80, None, Some("ftp")),
                "health check: scheme 'ftp' is not http or https",
            ),
            (
                HealthCheck {
                    interval_seconds: Some(0.0),
                    ..http(80, None, None)
                },
                "health check: interval_seconds must be positive, not 0",
            ),
            (
                HealthCheck {
                    timeout_seconds: Some(-1.0),
                    ..http(80, None, None)
                },
                "health check: timeout_seconds must be positive, not -1",
            ),
            (
                HealthCheck {
                    r#type: HealthType::Command as i32,
                    ..Default::default()
                },
                "health check: a COMMAND check needs its command",
            ),
            (
                HealthCheck {
                    r#type: HealthType::Command as i32,
                    command: Some(CommandInfo {
                        shell: Some(false),
                        value: Some("/bin/true".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                "health check: only shell commands (shell: true) can be checks here",
            ),
            (
                HealthCheck {
                    r#type: HealthType::Tcp as i32,
                    ..Default::default()
                },
                "health check: a TCP check needs its tcp settings",
            ),
        ];
        for (h, message) in refused {
            let err = of_task(&with_health(h), Duration::ZERO)
                .expect_err(message)
                .to_string();
            assert!(err.starts_with(message), "{err}");
        }
    }

    #[test]
    fn checks_round_trip_through_shim_json() {
        let checks = of_task(
            &with_health(http(8080, Some("/ping"), None)),
            Duration::from_millis(1500),
        )
        .expect("valid");
        let text = serde_json::to_string(&checks).expect("serializes");
        assert!(text.contains(r#""kill_grace":1500"#), "{text}");
        assert_eq!(
            serde_json::from_str::<Checks>(&text).expect("parses"),
            checks
        );
    }
}
