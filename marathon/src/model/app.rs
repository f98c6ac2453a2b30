//! The app definition, in Marathon's JSON shape.
//!
//! [`AppDefinition`] is both what clients send and what is stored and shown:
//! deserializing fills Marathon's defaults, [`AppDefinition::normalize`] moves
//! legacy fields (`ports`, `uris`, `container.docker.portMappings`,
//! `container.docker.network`) to their current place, and serializing gives
//! the shape `GET /v2/apps/{id}` returns. Fields Agora keeps but does not act
//! on (`ipAddress`, `residency`, `check`, ...) are carried as JSON values.
//!
//! Numbers that have a range (instances, ports, seconds) are signed here so a
//! negative value reaches validation and gets a 422 naming the field instead
//! of a parse error.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::path::PathId;
use super::timestamp::Timestamp;

fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

macro_rules! default_fn {
    ($name:ident, $ty:ty, $value:expr) => {
        fn $name() -> $ty {
            $value
        }
    };
}

default_fn!(default_instances, i64, 1);
default_fn!(default_cpus, f64, 1.0);
default_fn!(default_mem, f64, 128.0);
default_fn!(default_backoff_seconds, i64, 1);
default_fn!(default_backoff_factor, f64, 1.15);
default_fn!(default_max_launch_delay, i64, 300);
default_fn!(default_tcp, String, "tcp".to_string());
default_fn!(default_true, bool, true);
default_fn!(default_one, f64, 1.0);
default_fn!(default_hc_grace, i64, 300);
default_fn!(default_hc_interval, i64, 60);
default_fn!(default_hc_timeout, i64, 20);
default_fn!(default_hc_failures, i64, 3);
default_fn!(default_hc_delay, i64, 15);
default_fn!(default_rc_name, String, "readinessCheck".to_string());
default_fn!(default_rc_protocol, String, "HTTP".to_string());
default_fn!(default_rc_path, String, "/".to_string());
default_fn!(default_rc_port_name, String, "http-api".to_string());
default_fn!(default_rc_interval, i64, 30);
default_fn!(default_rc_timeout, i64, 10);
default_fn!(default_rc_codes, Vec<i64>, vec![200]);

/// An app: a command or container run as `instances` identical tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDefinition {
    /// The app's absolute path id.
    #[serde(default)]
    pub id: PathId,
    /// Shell command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Argv (instead of `cmd`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<String>,
    /// The user to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Environment: plain values or `{"secret": "name"}` references.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env: BTreeMap<String, EnvValue>,
    /// How many instances to run.
    #[serde(default = "default_instances")]
    pub instances: i64,
    /// Cpus per instance.
    #[serde(default = "default_cpus")]
    pub cpus: f64,
    /// Memory per instance, MiB.
    #[serde(default = "default_mem")]
    pub mem: f64,
    /// Disk per instance, MiB.
    #[serde(default)]
    pub disk: f64,
    /// GPUs per instance.
    #[serde(default)]
    pub gpus: i64,
    /// Executor: `""` (the command executor), `//cmd`, or a path.
    #[serde(default, deserialize_with = "null_default")]
    pub executor: String,
    /// Placement constraints: `[field, operator]` or `[field, operator, value]`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub constraints: Vec<super::constraint::Constraint>,
    /// Only offers of these roles are used (`*` for unreserved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_resource_roles: Option<Vec<String>>,
    /// The Mesos role the app's tasks run under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Free-form labels.
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    /// Artifacts fetched into the sandbox before the task starts.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fetch: Vec<Artifact>,
    /// Legacy form of `fetch`; moved there by [`AppDefinition::normalize`].
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub uris: Vec<String>,
    /// Ports in host networking (`None`: not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_definitions: Option<Vec<PortDefinition>>,
    /// Legacy form of `portDefinitions`; moved there by [`AppDefinition::normalize`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<i64>>,
    /// Use exactly the declared host ports.
    #[serde(default)]
    pub require_ports: bool,
    /// Container (MESOS or DOCKER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Networks the app joins (default: host).
    #[serde(default, deserialize_with = "null_default")]
    pub networks: Vec<Network>,
    /// Health checks (stored; run by the health-check component).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub health_checks: Vec<HealthCheck>,
    /// Readiness checks (stored).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub readiness_checks: Vec<ReadinessCheck>,
    /// Apps or groups that must be deployed before this one.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dependencies: Vec<PathId>,
    /// How a new version replaces the old instances.
    #[serde(default, deserialize_with = "null_default")]
    pub upgrade_strategy: UpgradeStrategy,
    /// First relaunch delay after a failure.
    #[serde(default = "default_backoff_seconds")]
    pub backoff_seconds: i64,
    /// Growth of the delay after each further failure.
    #[serde(default = "default_backoff_factor")]
    pub backoff_factor: f64,
    /// Upper bound of the relaunch delay.
    #[serde(default = "default_max_launch_delay")]
    pub max_launch_delay_seconds: i64,
    /// Which instances go first when scaling down.
    #[serde(default, deserialize_with = "null_default")]
    pub kill_selection: KillSelection,
    /// What to do with unreachable instances.
    #[serde(default, deserialize_with = "null_default")]
    pub unreachable_strategy: UnreachableStrategy,
    /// Time between SIGTERM and SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<i64>,
    /// Secrets referenced from `env`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub secrets: BTreeMap<String, SecretDef>,
    /// This version's timestamp (set when stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Timestamp>,
    /// When the app was last scaled and last changed otherwise (set when stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_info: Option<VersionInfo>,
    /// Deprecated IP-per-task settings, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<Value>,
    /// Resident-app settings, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residency: Option<Value>,
    /// Mesos check, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Value>,
    /// Resource limits, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_limits: Option<Value>,
    /// Executor resources, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_resources: Option<Value>,
    /// Allocate a TTY, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
}

/// An environment value: plain, or a reference to a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// A plain value.
    Value(String),
    /// `{"secret": "<name in secrets>"}`.
    Secret {
        /// The name of the secret in the app's `secrets`.
        secret: String,
    },
}

/// A secret definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretDef {
    /// Where the secret comes from.
    pub source: String,
}

/// An artifact to fetch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// What to fetch.
    pub uri: String,
    /// Unpack archives.
    #[serde(default = "default_true")]
    pub extract: bool,
    /// Mark the file executable.
    #[serde(default)]
    pub executable: bool,
    /// Keep it in the agent's cache.
    #[serde(default)]
    pub cache: bool,
    /// File name in the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_path: Option<String>,
}

/// A port in host networking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    /// The service port (0: assign one).
    #[serde(default)]
    pub port: i64,
    /// `tcp`, `udp` or `udp,tcp`.
    #[serde(default = "default_tcp")]
    pub protocol: String,
    /// Port name (becomes `PORT_<NAME>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

/// The container engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ContainerType {
    /// Mesos' own containerizer.
    #[serde(rename = "MESOS")]
    Mesos,
    /// The Docker engine.
    #[default]
    #[serde(rename = "DOCKER")]
    Docker,
}

/// An app's container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The engine (default DOCKER, as Marathon).
    #[serde(rename = "type", default)]
    pub kind: ContainerType,
    /// Docker settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerContainer>,
    /// Volumes, kept as given.
    #[serde(default, deserialize_with = "null_default")]
    pub volumes: Vec<Value>,
    /// Port mappings for container networking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
    /// Linux settings, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_info: Option<Value>,
}

/// Docker settings of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerContainer {
    /// The image.
    #[serde(default)]
    pub image: String,
    /// Pull even when the image is present.
    #[serde(default)]
    pub force_pull_image: bool,
    /// Run privileged.
    #[serde(default)]
    pub privileged: bool,
    /// Extra `docker run` parameters.
    #[serde(default, deserialize_with = "null_default")]
    pub parameters: Vec<DockerParameter>,
    /// Legacy network mode (`BRIDGE`, `HOST`, `NONE`, `USER`); moved to `networks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Legacy place of port mappings; moved to the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
    /// Deprecated credentials, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Value>,
    /// Pull configuration, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_config: Option<Value>,
}

/// A `docker run` parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerParameter {
    /// Parameter name.
    pub key: String,
    /// Parameter value.
    pub value: String,
}

/// A container port mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port inside the container.
    #[serde(default)]
    pub container_port: i64,
    /// Host port (0: any; absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i64>,
    /// Service port (0: assign one).
    #[serde(default)]
    pub service_port: i64,
    /// `tcp`, `udp` or `udp,tcp`.
    #[serde(default = "default_tcp")]
    pub protocol: String,
    /// Port name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Networks the mapping applies to.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub network_names: Vec<String>,
}

/// How an app is networked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum NetworkMode {
    /// A named container network.
    #[default]
    #[serde(rename = "container")]
    Container,
    /// The bridge network.
    #[serde(rename = "container/bridge")]
    Bridge,
    /// The host's network.
    #[serde(rename = "host")]
    Host,
}

/// A network an app joins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// Network name (container mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The mode.
    #[serde(default)]
    pub mode: NetworkMode,
    /// Labels.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

impl Network {
    /// Host networking.
    pub fn host() -> Self {
        Network {
            name: None,
            mode: NetworkMode::Host,
            labels: BTreeMap::new(),
        }
    }
}

/// Health check protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthProtocol {
    /// HTTP from Marathon.
    #[default]
    Http,
    /// HTTPS from Marathon.
    Https,
    /// TCP connect from Marathon.
    Tcp,
    /// A command run by the executor.
    Command,
    /// TCP from the agent.
    MesosTcp,
    /// HTTP from the agent.
    MesosHttp,
    /// HTTPS from the agent.
    MesosHttps,
}

impl HealthProtocol {
    /// Whether the agent runs the check (Mesos checks: `MESOS_*` and
    /// `COMMAND`), rather than Marathon itself.
    pub fn is_mesos(self) -> bool {
        matches!(
            self,
            HealthProtocol::Command
                | HealthProtocol::MesosTcp
                | HealthProtocol::MesosHttp
                | HealthProtocol::MesosHttps
        )
    }
}

/// A health check command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandCheck {
    /// The shell command.
    pub value: String,
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// How the check is made.
    #[serde(default)]
    pub protocol: HealthProtocol,
    /// HTTP path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Index into the app's ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<i64>,
    /// A fixed port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// The command, for COMMAND checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandCheck>,
    /// Failures ignored after the start.
    #[serde(default = "default_hc_grace")]
    pub grace_period_seconds: i64,
    /// Time between checks.
    #[serde(default = "default_hc_interval")]
    pub interval_seconds: i64,
    /// Time a check may take.
    #[serde(default = "default_hc_timeout")]
    pub timeout_seconds: i64,
    /// Failures in a row before the task is killed (0: never).
    #[serde(default = "default_hc_failures")]
    pub max_consecutive_failures: i64,
    /// Delay before the first check (Mesos checks).
    #[serde(default = "default_hc_delay")]
    pub delay_seconds: i64,
    /// Treat 1xx answers as neither healthy nor unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_http1xx: Option<bool>,
    /// `IPv4` or `IPv6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_protocol: Option<String>,
}

/// A readiness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheck {
    /// Its name.
    #[serde(default = "default_rc_name")]
    pub name: String,
    /// `HTTP` or `HTTPS`.
    #[serde(default = "default_rc_protocol")]
    pub protocol: String,
    /// Path asked.
    #[serde(default = "default_rc_path")]
    pub path: String,
    /// The port (by name) asked.
    #[serde(default = "default_rc_port_name")]
    pub port_name: String,
    /// Time between checks.
    #[serde(default = "default_rc_interval")]
    pub interval_seconds: i64,
    /// Time a check may take.
    #[serde(default = "default_rc_timeout")]
    pub timeout_seconds: i64,
    /// Answers that mean ready.
    #[serde(default = "default_rc_codes")]
    pub http_status_codes_for_ready: Vec<i64>,
    /// Keep the last answer.
    #[serde(default)]
    pub preserve_last_response: bool,
}

/// How instances of a new version replace the old.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    /// Share of `instances` that must stay healthy during an upgrade.
    #[serde(default = "default_one")]
    pub minimum_health_capacity: f64,
    /// Share of `instances` that may run on top during an upgrade.
    #[serde(default = "default_one")]
    pub maximum_over_capacity: f64,
    /// Agora's extension: a deployment of the app that makes no progress
    /// (no new instance healthy and ready, no step done) for this many
    /// seconds fails and is rolled back. Absent: it waits forever, as
    /// Marathon's do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i64>,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
            progress_deadline_seconds: None,
        }
    }
}

/// Which instances are killed first when scaling down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillSelection {
    /// The most recently started first.
    #[default]
    YoungestFirst,
    /// The longest running first.
    OldestFirst,
}

/// What happens to unreachable instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableStrategy {
    /// Never replaced nor expunged.
    Disabled,
    /// Replaced after `inactive_after_seconds`, forgotten after `expunge_after_seconds`.
    Enabled {
        /// Seconds until a replacement is launched.
        inactive_after_seconds: i64,
        /// Seconds until the instance is forgotten (and killed if it returns).
        expunge_after_seconds: i64,
    },
}

impl Default for UnreachableStrategy {
    fn default() -> Self {
        UnreachableStrategy::Enabled {
            inactive_after_seconds: 0,
            expunge_after_seconds: 0,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnreachableEnabledJson {
    #[serde(default)]
    inactive_after_seconds: i64,
    #[serde(default)]
    expunge_after_seconds: i64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UnreachableJson {
    Word(String),
    Enabled(UnreachableEnabledJson),
}

impl Serialize for UnreachableStrategy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            UnreachableStrategy::Disabled => serializer.serialize_str("disabled"),
            UnreachableStrategy::Enabled {
                inactive_after_seconds,
                expunge_after_seconds,
            } => UnreachableEnabledJson {
                inactive_after_seconds,
                expunge_after_seconds,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for UnreachableStrategy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match UnreachableJson::deserialize(deserializer)? {
            UnreachableJson::Word(w) if w == "disabled" => Ok(UnreachableStrategy::Disabled),
            UnreachableJson::Word(_) => Err(serde::de::Error::custom(
                "error.expected.disabled.or.object",
            )),
            UnreachableJson::Enabled(e) => Ok(UnreachableStrategy::Enabled {
                inactive_after_seconds: e.inactive_after_seconds,
                expunge_after_seconds: e.expunge_after_seconds,
            }),
        }
    }
}

/// When an app was last scaled and last changed otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// Last change of `instances` (or any change).
    pub last_scaling_at: Timestamp,
    /// Last change of anything but `instances`.
    pub last_config_change_at: Timestamp,
}

/// What [`AppDefinition::normalize`] fills in from Marathon's configuration.
#[derive(Debug, Clone)]
pub struct AppDefaults {
    /// `--mesos-role`: the role apps run under when they name none.
    pub role: String,
}

impl Default for AppDefaults {
    fn default() -> Self {
        AppDefaults {
            role: "*".to_string(),
        }
    }
}

impl AppDefinition {
    /// An app with Marathon's defaults and the given id (what `{"id": ...}` parses to).
    pub fn with_id(id: PathId) -> Self {
        let mut app: AppDefinition =
            serde_json::from_value(serde_json::json!({})).expect("defaults parse");
        app.id = id;
        app
    }

    /// Moves legacy fields to their current place and fills defaults that
    /// depend on other fields. Idempotent.
    pub fn normalize(&mut self, defaults: &AppDefaults) {
        if self.fetch.is_empty() && !self.uris.is_empty() {
            self.fetch = self
                .uris
                .iter()
                .map(|uri| Artifact {
                    uri: uri.clone(),
                    extract: true,
                    executable: false,
                    cache: false,
                    dest_path: None,
                })
                .collect();
        }
        self.uris.clear();
        if let Some(container) = self.container.as_mut() {
            if let Some(docker) = container.docker.as_mut() {
                if let Some(mappings) = docker.port_mappings.take() {
                    if container.port_mappings.is_none() {
                        container.port_mappings = Some(mappings);
                    }
                }
                if let Some(network) = docker.network.take() {
                    if self.networks.is_empty() {
                        let mode = match network.as_str() {
                            "BRIDGE" => Some(NetworkMode::Bridge),
                            "USER" => Some(NetworkMode::Container),
                            "HOST" => Some(NetworkMode::Host),
                            _ => None,
                        };
                        if let Some(mode) = mode {
                            self.networks.push(Network {
                                name: None,
                                mode,
                                labels: BTreeMap::new(),
                            });
                        }
                    }
                }
            }
        }
        if self.networks.is_empty() {
            self.networks.push(Network::host());
        }
        if let Some(ports) = self.ports.take() {
            if self.port_definitions.is_none() {
                self.port_definitions = Some(
                    ports
                        .into_iter()
                        .map(|port| PortDefinition {
                            port,
                            protocol: "tcp".to_string(),
                            name: None,
                            labels: BTreeMap::new(),
                        })
                        .collect(),
                );
            }
        }
        if self.is_host_networked() {
            if self.port_definitions.is_none() {
                self.port_definitions = Some(vec![PortDefinition {
                    port: 0,
                    protocol: "tcp".to_string(),
                    name: Some("default".to_string()),
                    labels: BTreeMap::new(),
                }]);
            }
        } else {
            self.port_definitions = Some(Vec::new());
            if let Some(container) = self.container.as_mut() {
                if container.port_mappings.is_none() {
                    container.port_mappings = Some(Vec::new());
                }
            }
        }
        if self.role.is_none() {
            self.role = Some(defaults.role.clone());
        }
        for check in &mut self.health_checks {
            let marathon_side = matches!(
                check.protocol,
                HealthProtocol::Http
                    | HealthProtocol::Https
                    | HealthProtocol::Tcp
                    | HealthProtocol::MesosHttp
                    | HealthProtocol::MesosHttps
                    | HealthProtocol::MesosTcp
            );
            if marathon_side && check.port.is_none() && check.port_index.is_none() {
                check.port_index = Some(0);
            }
            if matches!(
                check.protocol,
                HealthProtocol::Http
                    | HealthProtocol::Https
                    | HealthProtocol::MesosHttp
                    | HealthProtocol::MesosHttps
            ) && check.path.is_none()
            {
                check.path = Some("/".to_string());
            }
        }
    }

    /// Whether the app uses the host's network (ports come from `portDefinitions`).
    pub fn is_host_networked(&self) -> bool {
        self.networks.is_empty() || self.networks.iter().all(|n| n.mode == NetworkMode::Host)
    }

    /// The ports the app asks for, in order: port definitions in host
    /// networking, else the container's port mappings.
    pub fn port_mappings(&self) -> &[PortMapping] {
        self.container
            .as_ref()
            .and_then(|c| c.port_mappings.as_deref())
            .unwrap_or(&[])
    }

    /// The app's service ports, in port order.
    pub fn service_ports(&self) -> Vec<i64> {
        if self.is_host_networked() {
            self.port_definitions
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .map(|p| p.port)
                .collect()
        } else {
            self.port_mappings()
                .iter()
                .map(|p| p.service_port)
                .collect()
        }
    }

    /// Whether `other` differs from `self` only in `instances` (and version
    /// bookkeeping): such a change scales rather than restarts.
    pub fn is_only_scale_change(&self, other: &AppDefinition) -> bool {
        let mut a = self.clone();
        let mut b = other.clone();
        for app in [&mut a, &mut b] {
            app.instances = 0;
            app.version = None;
            app.version_info = None;
        }
        a == b
    }

    /// Whether `other` needs its instances replaced (any change but scaling).
    pub fn is_upgrade(&self, other: &AppDefinition) -> bool {
        !self.is_only_scale_change(other)
    }

    /// The version, or the epoch if the app was never stored.
    pub fn version_or_epoch(&self) -> Timestamp {
        self.version.unwrap_or_default()
    }

    /// The task kill grace period, if set.
    pub fn kill_grace_period(&self) -> Option<std::time::Duration> {
        self.task_kill_grace_period_seconds
            .filter(|s| *s >= 0)
            .map(|s| std::time::Duration::from_secs(s as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_marathon() {
        let mut app: AppDefinition =
            serde_json::from_str(r#"{"id": "/foo", "cmd": "sleep 1", "args": null}"#).unwrap();
        app.normalize(&AppDefaults::default());
        assert_eq!(app.instances, 1);
        assert_eq!(app.cpus, 1.0);
        assert_eq!(app.mem, 128.0);
        assert_eq!(app.backoff_factor, 1.15);
        assert_eq!(app.max_launch_delay_seconds, 300);
        assert_eq!(app.networks, vec![Network::host()]);
        let json = serde_json::to_value(&app).unwrap();
        assert_eq!(json["upgradeStrategy"]["minimumHealthCapacity"], 1.0);
        assert_eq!(json["killSelection"], "YOUNGEST_FIRST");
        assert_eq!(json["unreachableStrategy"]["inactiveAfterSeconds"], 0);
        assert_eq!(json["portDefinitions"][0]["name"], "default");
        assert_eq!(json["role"], "*");
        assert!(json.get("args").is_none());
        assert!(json.get("ports").is_none());
        assert!(json.get("uris").is_none());
    }

    #[test]
    fn legacy_fields_move() {
        let mut app: AppDefinition = serde_json::from_str(
            r#"{"id": "/foo", "cmd": "x", "ports": [0, 8080], "uris": ["http://a/b.tgz"],
                "unreachableStrategy": "disabled"}"#,
        )
        .unwrap();
        app.normalize(&AppDefaults::default());
        let pds = app.port_definitions.as_ref().unwrap();
        assert_eq!(pds.len(), 2);
        assert_eq!(pds[1].port, 8080);
        assert_eq!(app.fetch[0].uri, "http://a/b.tgz");
        assert!(app.fetch[0].extract);
        assert_eq!(app.unreachable_strategy, UnreachableStrategy::Disabled);
        let json = serde_json::to_value(&app).unwrap();
        assert_eq!(json["unreachableStrategy"], "disabled");
    }

    #[test]
    fn docker_bridge_moves_port_mappings() {
        let mut app: AppDefinition = serde_json::from_str(
            r#"{"id": "/web", "container": {"type": "DOCKER", "docker": {"image": "nginx",
                "network": "BRIDGE", "portMappings": [{"containerPort": 80, "hostPort": 0}]}}}"#,
        )
        .unwrap();
        app.normalize(&AppDefaults::default());
        assert_eq!(app.networks[0].mode, NetworkMode::Bridge);
        assert_eq!(app.port_mappings().len(), 1);
        assert_eq!(app.port_definitions, Some(vec![]));
        assert!(!app.is_host_networked());
    }

    #[test]
    fn scale_versus_upgrade() {
        let a = AppDefinition::with_id(PathId::parse("/a"));
        let mut b = a.clone();
        b.instances = 5;
        assert!(a.is_only_scale_change(&b));
        b.cmd = Some("other".into());
        assert!(a.is_upgrade(&b));
    }
}
