//! Building the Mesos TaskInfo of an instance.
//!
//! The TaskInfo is Marathon's: the task is named after the app id
//! (`/prod/web` → `web.prod`), runs under the command executor, gets the
//! environment Marathon documents (`MARATHON_APP_*`, `HOST`, `PORT0`...,
//! `PORT_<n>`, `PORT_<NAME>`, then the app's own `env`, which wins), the
//! app's fetch URIs, labels, kill grace period, container and discovery info.
//! Health checks stay out: Marathon-side checks are run by another component.

use std::collections::BTreeMap;

use agora_proto::command_info::Uri;
use agora_proto::container_info::{self, docker_info, DockerInfo, MesosInfo};
use agora_proto::environment::{variable, Variable};
use agora_proto::{
    discovery_info, image, network_info, volume, CommandInfo, ContainerInfo, DiscoveryInfo,
    DurationInfo, Environment, Image, KillPolicy, Label, Labels, NetworkInfo, Offer, Parameter,
    Port, Ports, Resource, TaskId, TaskInfo, Volume,
};

use super::ports::{host_port_requests, HostPort};
use crate::model::app::{ContainerType, EnvValue, NetworkMode, PortMapping};
use crate::model::{AppDefinition, Instance, PathId};

/// Variables of Marathon's labels longer than this are left out.
const MAX_ENV_LENGTH: usize = 512;
const LABEL_PREFIX: &str = "MARATHON_APP_LABEL_";

/// The name of an app's tasks, as Marathon's `PathId.toHostname`: the
/// segments in reverse order joined by dots (`/prod/web` → `web.prod`).
pub fn task_name(app_id: &PathId) -> String {
    let mut segments: Vec<&str> = app_id.segments().iter().map(String::as_str).collect();
    segments.reverse();
    segments.join(".")
}

/// A double as the JVM prints it (`1.0`, `128.0`, `0.5`, `1.0E7`), which is
/// how Marathon shows resources in `MARATHON_APP_RESOURCE_*`.
pub fn java_double(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    if (1e-3..1e7).contains(&v.abs()) {
        return format!("{v:?}");
    }
    let s = format!("{v:e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    if mantissa.contains('.') {
        format!("{mantissa}E{exponent}")
    } else {
        format!("{mantissa}.0E{exponent}")
    }
}

/// Marathon's escaping of label names into variable names: runs of anything
/// but ASCII letters, digits and `_` become one `_`, then upper case.
pub fn env_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            out.push(ch.to_ascii_uppercase());
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// Spreads the host ports a launch got (`host_ports`, in port order, only
/// for ports that want one) over all the app's ports.
pub fn aligned_host_ports(app: &AppDefinition, host_ports: &[u32]) -> Vec<Option<u32>> {
    let mut assigned = host_ports.iter().copied();
    host_port_requests(app)
        .into_iter()
        .map(|request| match request {
            HostPort::None => None,
            HostPort::Any | HostPort::Fixed(_) => assigned.next(),
        })
        .collect()
}

/// The app's docker image, if any (DOCKER containers, or MESOS ones with a
/// docker image).
fn docker_image(app: &AppDefinition) -> Option<&str> {
    app.container
        .as_ref()
        .and_then(|c| c.docker.as_ref())
        .map(|d| d.image.as_str())
        .filter(|image| !image.is_empty())
}

fn is_docker(app: &AppDefinition) -> bool {
    app.container
        .as_ref()
        .is_some_and(|c| c.kind == ContainerType::Docker)
}

/// The ports environment of Marathon's `EnvironmentHelper.portsEnv`:
/// `PORT<i>` per port, `PORT_<requested>` per port (the container port in
/// container networking, the port definition's port otherwise; the host
/// port if that is 0), `PORT_<NAME>` per named port, `PORT` and `PORTS`.
fn ports_env(app: &AppDefinition, host_ports: &[Option<u32>], env: &mut BTreeMap<String, String>) {
    let requested: Vec<(Option<&str>, i64)> = if app.is_host_networked() {
        app.port_definitions
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|pd| (pd.name.as_deref(), pd.port))
            .collect()
    } else {
        app.port_mappings()
            .iter()
            .map(|pm| (pm.name.as_deref(), pm.container_port))
            .collect()
    };
    if host_ports.is_empty() {
        return;
    }
    let mut all_assigned = Vec::new();
    for (index, (effective, (name, port))) in host_ports.iter().zip(&requested).enumerate() {
        let value = match (*effective, *port) {
            (Some(host), _) => {
                all_assigned.push(host.to_string());
                host.to_string()
            }
            // A container-only mapping: the container port itself.
            (None, port) if port > 0 => port.to_string(),
            (None, _) => continue,
        };
        env.insert(format!("PORT{index}"), value.clone());
        let number = if *port > 0 {
            port.to_string()
        } else {
            value.clone()
        };
        env.insert(format!("PORT_{number}"), value.clone());
        if let Some(name) = name {
            let upper = name.to_uppercase();
            let escaped = env_name(name);
            if escaped != upper {
                env.insert(format!("PORT_{escaped}"), value.clone());
            }
            env.insert(format!("PORT_{upper}"), value);
        }
    }
    if let Some(first) = all_assigned.first() {
        env.insert("PORT".into(), first.clone());
    }
    env.insert("PORTS".into(), all_assigned.join(","));
}

/// The task's environment: Marathon's variables, then the app's plain `env`
/// values (secret references are left out), which override them.
pub fn task_env(
    app: &AppDefinition,
    task_id: &str,
    host: &str,
    host_ports: &[Option<u32>],
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("MESOS_TASK_ID".into(), task_id.to_string());
    env.insert("MARATHON_APP_ID".into(), app.id.to_string());
    env.insert(
        "MARATHON_APP_VERSION".into(),
        app.version_or_epoch().to_string(),
    );
    if let Some(image) = docker_image(app) {
        env.insert("MARATHON_APP_DOCKER_IMAGE".into(), image.to_string());
    }
    env.insert("MARATHON_APP_RESOURCE_CPUS".into(), java_double(app.cpus));
    env.insert("MARATHON_APP_RESOURCE_MEM".into(), java_double(app.mem));
    env.insert("MARATHON_APP_RESOURCE_DISK".into(), java_double(app.disk));
    env.insert("MARATHON_APP_RESOURCE_GPUS".into(), app.gpus.to_string());
    let prefix_room = MAX_ENV_LENGTH - LABEL_PREFIX.len();
    let mut label_names = Vec::new();
    for (key, value) in &app.labels {
        if key.len() < prefix_room && value.len() < MAX_ENV_LENGTH {
            let name = env_name(key);
            env.insert(format!("{LABEL_PREFIX}{name}"), value.clone());
            label_names.push(name);
        }
    }
    env.insert("MARATHON_APP_LABELS".into(), label_names.join(" "));
    ports_env(app, host_ports, &mut env);
    env.insert("HOST".into(), host.to_string());
    for (name, value) in &app.env {
        if let EnvValue::Value(value) = value {
            env.insert(name.clone(), value.clone());
        }
    }
    env
}

fn labels(map: &BTreeMap<String, String>) -> Option<Labels> {
    (!map.is_empty()).then(|| Labels {
        labels: map
            .iter()
            .map(|(key, value)| Label {
                key: key.clone(),
                value: Some(value.clone()),
            })
            .collect(),
    })
}

fn protocols(protocol: &str) -> impl Iterator<Item = &str> {
    protocol.split(',').map(str::trim).filter(|p| !p.is_empty())
}

fn command(app: &AppDefinition, env: BTreeMap<String, String>) -> CommandInfo {
    let mut command = CommandInfo {
        environment: Some(Environment {
            variables: env
                .into_iter()
                .map(|(name, value)| Variable {
                    name,
                    r#type: variable::Type::Value as i32,
                    value: Some(value),
                })
                .collect(),
        }),
        uris: app
            .fetch
            .iter()
            .map(|a| Uri {
                value: a.uri.clone(),
                executable: Some(a.executable),
                extract: Some(a.extract),
                cache: Some(a.cache),
                output_file: a.dest_path.clone(),
            })
            .collect(),
        user: app.user.clone(),
        ..Default::default()
    };
    match app.cmd.as_deref() {
        Some(cmd) if !cmd.is_empty() => {
            command.shell = Some(true);
            command.value = Some(cmd.to_string());
        }
        _ => command.shell = Some(false),
    }
    if !app.args.is_empty() {
        command.shell = Some(false);
        command.arguments = app.args.clone();
        // With an image, the image's entrypoint runs the arguments.
        command.value = match docker_image(app) {
            Some(_) => None,
            None if is_docker(app) => None,
            None => Some(app.args[0].clone()),
        };
    }
    command
}

/// Host volumes (`containerPath`, `hostPath`, `mode`) of the container
/// (validation refuses persistent and external ones, which nothing here
/// would carry out).
fn volumes(values: &[serde_json::Value]) -> Vec<Volume> {
    values
        .iter()
        .filter(|v| v.get("persistent").is_none() && v.get("external").is_none())
        .filter_map(|v| {
            let container_path = v.get("containerPath")?.as_str()?.to_string();
            let host_path = v.get("hostPath").and_then(|p| p.as_str()).map(String::from);
            let mode = match v.get("mode").and_then(|m| m.as_str()) {
                Some("RO") => volume::Mode::Ro,
                _ => volume::Mode::Rw,
            };
            Some(Volume {
                mode: mode as i32,
                container_path,
                host_path,
            })
        })
        .collect()
}

/// The port mappings bound to host ports: Marathon uses the host port as
/// container port when the container port is 0.
fn bound_mappings<'a>(
    mappings: &'a [PortMapping],
    host_ports: &'a [Option<u32>],
) -> impl Iterator<Item = (&'a PortMapping, u32, u32)> {
    mappings.iter().zip(host_ports).filter_map(|(pm, host)| {
        let host = (*host)?;
        let container = match u32::try_from(pm.container_port) {
            Ok(0) | Err(_) => host,
            Ok(port) => port,
        };
        Some((pm, host, container))
    })
}

fn network_port_mappings<'a>(
    mappings: impl Iterator<Item = (&'a PortMapping, u32, u32)>,
) -> Vec<network_info::PortMapping> {
    let mut out = Vec::new();
    for (pm, host_port, container_port) in mappings {
        for protocol in protocols(&pm.protocol) {
            out.push(network_info::PortMapping {
                host_port,
                container_port,
                protocol: Some(protocol.to_string()),
            });
        }
    }
    out
}

fn container(app: &AppDefinition, host_ports: &[Option<u32>]) -> Option<ContainerInfo> {
    let c = app.container.as_ref()?;
    let mode = app
        .networks
        .first()
        .map(|n| n.mode)
        .unwrap_or(NetworkMode::Host);
    let container_networks: Vec<_> = app
        .networks
        .iter()
        .filter(|n| n.mode == NetworkMode::Container)
        .collect();
    let mappings = if mode == NetworkMode::Host {
        &[][..]
    } else {
        app.port_mappings()
    };
    let mut info = ContainerInfo {
        volumes: volumes(&c.volumes),
        ..Default::default()
    };
    match c.kind {
        ContainerType::Docker => {
            info.r#type = container_info::Type::Docker as i32;
            let docker = c.docker.as_ref();
            let network = match mode {
                NetworkMode::Host => docker_info::Network::Host,
                NetworkMode::Bridge => docker_info::Network::Bridge,
                NetworkMode::Container => docker_info::Network::User,
            };
            let mut port_mappings = Vec::new();
            for (pm, host_port, container_port) in bound_mappings(mappings, host_ports) {
                for protocol in protocols(&pm.protocol) {
                    port_mappings.push(docker_info::PortMapping {
                        host_port,
                        container_port,
                        protocol: Some(protocol.to_string()),
                    });
                }
            }
            info.docker = Some(DockerInfo {
                image: docker.map(|d| d.image.clone()).unwrap_or_default(),
                network: network as i32,
                port_mappings,
                privileged: Some(docker.is_some_and(|d| d.privileged)),
                parameters: docker
                    .map(|d| {
                        d.parameters
                            .iter()
                            .map(|p| Parameter {
                                key: p.key.clone(),
                                value: p.value.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                force_pull_image: Some(docker.is_some_and(|d| d.force_pull_image)),
            });
            info.network_infos = container_networks
                .iter()
                .map(|n| NetworkInfo {
                    name: n.name.clone(),
                    labels: labels(&n.labels),
                    ..Default::default()
                })
                .collect();
        }
        ContainerType::Mesos => {
            info.r#type = container_info::Type::Mesos as i32;
            let image = c
                .docker
                .as_ref()
                .filter(|d| !d.image.is_empty())
                .map(|d| Image {
                    r#type: image::Type::Docker as i32,
                    docker: Some(image::Docker {
                        name: d.image.clone(),
                    }),
                    cached: Some(!d.force_pull_image),
                });
            info.mesos = Some(MesosInfo { image });
            info.network_infos = match mode {
                NetworkMode::Host => Vec::new(),
                NetworkMode::Bridge => vec![NetworkInfo {
                    name: Some("mesos-bridge".into()),
                    port_mappings: network_port_mappings(bound_mappings(mappings, host_ports)),
                    ..Default::default()
                }],
                NetworkMode::Container => container_networks
                    .iter()
                    .map(|n| {
                        let applies = |pm: &PortMapping| {
                            pm.network_names.is_empty()
                                || n.name
                                    .as_ref()
                                    .is_some_and(|name| pm.network_names.contains(name))
                        };
                        NetworkInfo {
                            name: n.name.clone(),
                            labels: labels(&n.labels),
                            port_mappings: network_port_mappings(
                                bound_mappings(mappings, host_ports)
                                    .filter(|(pm, _, _)| applies(pm)),
                            ),
                            ..Default::default()
                        }
                    })
                    .collect(),
            };
        }
    }
    Some(info)
}

fn discovery(app: &AppDefinition, host_ports: &[Option<u32>]) -> DiscoveryInfo {
    let mut ports = Vec::new();
    if app.is_host_networked() {
        let definitions = app.port_definitions.as_deref().unwrap_or(&[]);
        for (pd, host) in definitions.iter().zip(host_ports) {
            let Some(number) = *host else { continue };
            for protocol in protocols(&pd.protocol) {
                ports.push(Port {
                    number,
                    name: pd.name.clone(),
                    protocol: Some(protocol.to_string()),
                    labels: labels(&pd.labels),
                });
            }
        }
    } else {
        for (pm, host) in app.port_mappings().iter().zip(host_ports) {
            let (number, scope) = match *host {
                Some(port) => (port, "host"),
                None => (u32::try_from(pm.container_port).unwrap_or(0), "container"),
            };
            let mut port_labels = pm.labels.clone();
            port_labels.insert("network-scope".into(), scope.into());
            for protocol in protocols(&pm.protocol) {
                ports.push(Port {
                    number,
                    name: pm.name.clone(),
                    protocol: Some(protocol.to_string()),
                    labels: labels(&port_labels),
                });
            }
        }
    }
    DiscoveryInfo {
        visibility: discovery_info::Visibility::Framework as i32,
        name: Some(task_name(&app.id)),
        ports: Some(Ports { ports }),
        ..Default::default()
    }
}

/// The TaskInfo launching instance `instance_id` of `app` on `offer`'s agent
/// with `resources` (taken from the offer) and `host_ports` (the host ports
/// picked for the app's ports that want one, in port order).
pub fn build_task(
    app: &AppDefinition,
    instance_id: &str,
    offer: &Offer,
    resources: Vec<Resource>,
    host_ports: &[u32],
) -> TaskInfo {
    let task_id = Instance::task_id_for(instance_id);
    let aligned = aligned_host_ports(app, host_ports);
    let env = task_env(app, &task_id, &offer.hostname, &aligned);
    TaskInfo {
        name: task_name(&app.id),
        task_id: Some(TaskId {
            value: task_id.clone(),
        }),
        agent_id: offer.agent_id.clone(),
        resources,
        command: Some(command(app, env)),
        container: container(app, &aligned),
        kill_policy: app.kill_grace_period().map(|grace| KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX),
            }),
        }),
        labels: labels(&app.labels),
        discovery: Some(discovery(app, &aligned)),
        health_check: super::health_check::mesos_health_check(app, &aligned),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppDefaults, Timestamp};
    use agora_proto::AgentId;

    fn app(json: serde_json::Value) -> AppDefinition {
        let mut app: AppDefinition = serde_json::from_value(json).expect("app");
        app.normalize(&AppDefaults::default());
        app
    }

    fn offer() -> Offer {
        Offer {
            agent_id: Some(AgentId {
                value: "agent-1".into(),
            }),
            hostname: "node1".into(),
            ..Default::default()
        }
    }

    fn env_of(task: &TaskInfo) -> BTreeMap<String, String> {
        task.command
            .as_ref()
            .and_then(|c| c.environment.as_ref())
            .map(|e| {
                e.variables
                    .iter()
                    .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn names_and_numbers_like_marathon() {
        assert_eq!(task_name(&PathId::parse("/prod/web")), "web.prod");
        assert_eq!(task_name(&PathId::parse("/web")), "web");
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(128.0), "128.0");
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(12345678.0), "1.2345678E7");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(env_name("com.example/team"), "COM_EXAMPLE_TEAM");
        assert_eq!(env_name("a--b_c"), "A_B_C");
    }

    #[test]
    fn shell_command_task_with_marathon_environment() {
        let mut a = app(serde_json::json!({
            "id": "/prod/web", "cmd": "python -m http.server $PORT0",
            "cpus": 0.5, "mem": 64, "disk": 10,
            "env": {"FOO": "bar", "HOST": "mine", "SECRET": {"secret": "s1"}},
            "labels": {"team": "core", "com.example/tier": "front"},
            "portDefinitions": [{"port": 10000, "name": "http"}, {"port": 10001}],
            "fetch": [{"uri": "http://x/a.tgz", "destPath": "a.tgz"}],
            "taskKillGracePeriodSeconds": 7,
            "user": "nobody"
        }));
        a.version = Timestamp::parse("2015-02-03T12:30:00.000Z");
        let task = build_task(&a, "prod_web.instance-1", &offer(), vec![], &[31000, 31001]);
        assert_eq!(task.name, "web.prod");
        assert_eq!(
            task.task_id.as_ref().unwrap().value,
            "prod_web.instance-1._app.1"
        );
        assert_eq!(task.agent_id.as_ref().unwrap().value, "agent-1");
        let cmd = task.command.as_ref().unwrap();
        assert_eq!(cmd.shell, Some(true));
        assert_eq!(cmd.value.as_deref(), Some("python -m http.server $PORT0"));
        assert_eq!(cmd.user.as_deref(), Some("nobody"));
        assert_eq!(cmd.uris.len(), 1);
        assert_eq!(cmd.uris[0].value, "http://x/a.tgz");
        assert_eq!(cmd.uris[0].extract, Some(true));
        assert_eq!(cmd.uris[0].output_file.as_deref(), Some("a.tgz"));
        let env = env_of(&task);
        let expect = [
            ("MESOS_TASK_ID", "prod_web.instance-1._app.1"),
            ("MARATHON_APP_ID", "/prod/web"),
            ("MARATHON_APP_VERSION", "2015-02-03T12:30:00.000Z"),
            ("MARATHON_APP_RESOURCE_CPUS", "0.5"),
            ("MARATHON_APP_RESOURCE_MEM", "64.0"),
            ("MARATHON_APP_RESOURCE_DISK", "10.0"),
            ("MARATHON_APP_RESOURCE_GPUS", "0"),
            ("MARATHON_APP_LABELS", "COM_EXAMPLE_TIER TEAM"),
            ("MARATHON_APP_LABEL_TEAM", "core"),
            ("MARATHON_APP_LABEL_COM_EXAMPLE_TIER", "front"),
            ("PORT0", "31000"),
            ("PORT1", "31001"),
            ("PORT", "31000"),
            ("PORTS", "31000,31001"),
            ("PORT_10000", "31000"),
            ("PORT_10001", "31001"),
            ("PORT_HTTP", "31000"),
            ("FOO", "bar"),
            // The app's own env wins.
            ("HOST", "mine"),
        ];
        for (k, v) in expect {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(!env.contains_key("SECRET"));
        assert!(!env.contains_key("MARATHON_APP_DOCKER_IMAGE"));
        assert_eq!(env.len(), expect.len());
        let labels: Vec<_> = task
            .labels
            .as_ref()
            .unwrap()
            .labels
            .iter()
            .map(|l| l.key.as_str())
            .collect();
        assert_eq!(labels, ["com.example/tier", "team"]);
        assert_eq!(
            task.kill_policy.unwrap().grace_period.unwrap().nanoseconds,
            7_000_000_000
        );
        assert!(task.container.is_none());
        assert!(task.health_check.is_none());
        let discovery = task.discovery.unwrap();
        assert_eq!(discovery.name.as_deref(), Some("web.prod"));
        assert_eq!(
            discovery.visibility,
            discovery_info::Visibility::Framework as i32
        );
        let ports = discovery.ports.unwrap().ports;
        assert_eq!(ports.len(), 2);
        assert_eq!(
            (ports[0].number, ports[0].name.as_deref()),
            (31000, Some("http"))
        );
        assert_eq!(ports[1].protocol.as_deref(), Some("tcp"));
    }

    #[test]
    fn host_from_offer_and_no_ports() {
        let a = app(serde_json::json!({"id": "/a", "cmd": "x", "portDefinitions": []}));
        let task = build_task(&a, "a.instance-1", &offer(), vec![], &[]);
        let env = env_of(&task);
        assert_eq!(env["HOST"], "node1");
        assert_eq!(env["MARATHON_APP_LABELS"], "");
        assert_eq!(env["MARATHON_APP_VERSION"], "1970-01-01T00:00:00.000Z");
        assert!(!env.contains_key("PORTS"));
        assert!(task.kill_policy.is_none());
        assert!(task.labels.is_none());
    }

    #[test]
    fn args_run_without_shell() {
        let a = app(serde_json::json!({"id": "/a", "args": ["/bin/sleep", "100"]}));
        let cmd = build_task(&a, "a.instance-1", &offer(), vec![], &[0])
            .command
            .unwrap();
        assert_eq!(cmd.shell, Some(false));
        assert_eq!(cmd.value.as_deref(), Some("/bin/sleep"));
        assert_eq!(cmd.arguments, ["/bin/sleep", "100"]);
    }

    #[test]
    fn docker_bridge_task() {
        let a = app(serde_json::json!({
            "id": "/web", "networks": [{"mode": "container/bridge"}],
            "container": {"type": "DOCKER",
                "docker": {"image": "nginx:1", "privileged": true, "forcePullImage": true,
                    "parameters": [{"key": "label", "value": "x=y"}]},
                "volumes": [{"containerPath": "/data", "hostPath": "/srv", "mode": "RO"}],
                "portMappings": [
                    {"containerPort": 80, "hostPort": 0, "servicePort": 10000, "name": "http"},
                    {"containerPort": 0, "hostPort": 31500, "protocol": "udp,tcp"},
                    {"containerPort": 9000}]}
        }));
        let task = build_task(&a, "web.instance-1", &offer(), vec![], &[31000, 31500]);
        let cmd = task.command.as_ref().unwrap();
        assert_eq!(cmd.shell, Some(false));
        assert_eq!(cmd.value, None);
        let c = task.container.as_ref().unwrap();
        assert_eq!(c.r#type, container_info::Type::Docker as i32);
        assert_eq!(c.volumes.len(), 1);
        assert_eq!(c.volumes[0].mode, volume::Mode::Ro as i32);
        let d = c.docker.as_ref().unwrap();
        assert_eq!(d.image, "nginx:1");
        assert_eq!(d.network, docker_info::Network::Bridge as i32);
        assert_eq!((d.privileged, d.force_pull_image), (Some(true), Some(true)));
        assert_eq!(d.parameters[0].key, "label");
        let mappings: Vec<(u32, u32, &str)> = d
            .port_mappings
            .iter()
            .map(|m| {
                (
                    m.host_port,
                    m.container_port,
                    m.protocol.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            mappings,
            [
                (31000, 80, "tcp"),
                (31500, 31500, "udp"),
                (31500, 31500, "tcp")
            ]
        );
        let env = env_of(&task);
        assert_eq!(env["MARATHON_APP_DOCKER_IMAGE"], "nginx:1");
        assert_eq!(env["PORT0"], "31000");
        assert_eq!(env["PORT1"], "31500");
        assert_eq!(env["PORT2"], "9000");
        assert_eq!(env["PORT_80"], "31000");
        assert_eq!(env["PORT_31500"], "31500");
        assert_eq!(env["PORT_9000"], "9000");
        assert_eq!(env["PORT_HTTP"], "31000");
        assert_eq!(env["PORTS"], "31000,31500");
        let ports = task.discovery.unwrap().ports.unwrap().ports;
        assert_eq!(ports.len(), 4);
        let scope = |p: &Port| {
            p.labels
                .as_ref()
                .unwrap()
                .labels
                .iter()
                .find(|l| l.key == "network-scope")
                .and_then(|l| l.value.clone())
                .unwrap()
        };
        assert_eq!(
            (ports[0].number, scope(&ports[0]).as_str()),
            (31000, "host")
        );
        assert_eq!(
            (ports[3].number, scope(&ports[3]).as_str()),
            (9000, "container")
        );
    }

    #[test]
    fn docker_user_network_and_mesos_containers() {
        let a = app(serde_json::json!({
            "id": "/web", "networks": [{"mode": "container", "name": "overlay"}],
            "container": {"type": "DOCKER", "docker": {"image": "nginx"},
                "portMappings": [{"containerPort": 80}]}
        }));
        let task = build_task(&a, "web.instance-1", &offer(), vec![], &[]);
        let c = task.container.unwrap();
        assert_eq!(c.docker.unwrap().network, docker_info::Network::User as i32);
        assert_eq!(c.network_infos[0].name.as_deref(), Some("overlay"));

        let a = app(serde_json::json!({
            "id": "/m", "cmd": "run",
            "container": {"type": "MESOS", "docker": {"image": "alpine"}}
        }));
        let task = build_task(&a, "m.instance-1", &offer(), vec![], &[31000]);
        let c = task.container.unwrap();
        assert_eq!(c.r#type, container_info::Type::Mesos as i32);
        let image = c.mesos.unwrap().image.unwrap();
        assert_eq!(image.r#type, image::Type::Docker as i32);
        assert_eq!(image.docker.unwrap().name, "alpine");
        assert_eq!(image.cached, Some(true));
        assert!(c.network_infos.is_empty());
        let cmd = task.command.unwrap();
        assert_eq!((cmd.shell, cmd.value.as_deref()), (Some(true), Some("run")));

        let a = app(serde_json::json!({
            "id": "/m", "cmd": "run", "networks": [{"mode": "container/bridge"}],
            "container": {"type": "MESOS", "portMappings": [{"containerPort": 80, "hostPort": 0}]}
        }));
        let task = build_task(&a, "m.instance-1", &offer(), vec![], &[31007]);
        let c = task.container.unwrap();
        assert!(c.mesos.unwrap().image.is_none());
        assert_eq!(c.network_infos[0].name.as_deref(), Some("mesos-bridge"));
        assert_eq!(c.network_infos[0].port_mappings[0].host_port, 31007);
        assert_eq!(c.network_infos[0].port_mappings[0].container_port, 80);
    }
}
