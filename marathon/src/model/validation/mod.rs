//! Validation of app definitions and of the whole root group, with
//! Marathon's paths and messages.
//!
//! Paths are those of Marathon 1.x: a field is `/field/sub`, an array
//! element `/field(i)`, a rule about the whole object `/`. Every range
//! violation reads `got <value>, expected <bound> or more` (`or less`, `more
//! than <bound>`, `less than <bound>`, `between <low> and <high>`), and every
//! enumeration `got '<value>', expected one of '<a>', '<b>'`; floating-point
//! values print with a decimal point (`got 0.0, expected 0.001 or more`).
//!
//! [`validate_app`] takes an app as the client sent it. It first checks how
//! legacy fields conflict with current ones, then checks every rule on the
//! app as [`AppDefinition::normalize`] turns it, so a value given in a
//! legacy field is reported at its current place (`ports[0]` as
//! `/portDefinitions(0)/port`), as Marathon reports after its own
//! normalization. Legacy ports that normalization drops (`ports` with a
//! bridged `container.docker.network`) are accepted, as Marathon accepts
//! them. [`validate_root`] checks stored apps and the rules that span
//! objects: dependencies, cycles, identifiers and service ports.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use regex::Regex;

use super::app::{
    AppDefaults, AppDefinition, ContainerType, DockerContainer, EnvValue, HealthCheck,
    HealthProtocol, NetworkMode, PortDefinition, ReadinessCheck, UnreachableStrategy,
};
use super::group::RootGroup;
use super::path::PathId;
use crate::error::{merge_violations, Violation};

/// What every segment of an app or group id must match.
pub const ID_SEGMENT_PATTERN: &str =
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$";
const PORT_NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const NETWORK_NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$";
const EXECUTOR_PATTERN: &str = r"^(//cmd)|(/?[^/]+(/[^/]+)*)|$";
const RESERVED_ID_KEYWORDS: [&str; 3] = ["restart", "tasks", "versions"];

const PORT_PROTOCOLS: [&str; 3] = ["tcp", "udp", "udp,tcp"];
const READINESS_PROTOCOLS: [&str; 2] = ["HTTP", "HTTPS"];
const IP_PROTOCOLS: [&str; 2] = ["IPv4", "IPv6"];
const DOCKER_NETWORKS: [&str; 4] = ["BRIDGE", "HOST", "NONE", "USER"];
const MAX_PORT: i64 = 65535;
const MIN_CPUS: f64 = 0.001;

const CMD_ARGS_OR_CONTAINER: &str =
    "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.";
const PORTS_AND_DEFINITIONS: &str = "You cannot specify both ports and port definitions";
const URIS_AND_FETCH: &str = "You cannot specify both uris and fetch fields";
const MAPPINGS_NEED_NON_HOST: &str = "portMappings are not allowed with host-networking";
const DEFINITIONS_NEED_HOST: &str = "portDefinitions are only allowed with host-networking";
const PORT_INDEX_OUT_OF_RANGE: &str =
    "Health check port indices must address an element of the ports array or container port mappings.";
const HOST_PORT_NEEDS_NETWORK_NAME: &str = "networkNames must be a single item list when hostPort is specified and more than 1 container network is defined";
/// What Agora's Mesos containerizer cannot do: it runs commands on the
/// host (Marathon's UCR images, host volumes and container networks need a
/// container runtime, here the Docker one).
const MESOS_RUNS_ON_THE_HOST: &str =
    "is not supported for container type MESOS: Agora's Mesos containerizer runs commands on the host; use container type DOCKER";
const PERSISTENT_VOLUMES: &str =
    "persistent volumes are not supported: Agora makes no resource reservations";
const EXTERNAL_VOLUMES: &str = "external volumes are not supported: Agora has no volume drivers";
const DOCKER_SINGLE_CONTAINER_NETWORK: &str =
    "may only specify a single container network when using the Docker container engine";
const IPV6_LIMITATION: &str =
    "IPv6 can only be used for container type DOCKER and Mesos http/https/tcp health checks";
const CYCLIC_DEPENDENCIES: &str = "Dependency graph has cyclic dependencies";
const APP_GROUP_SAME_ID: &str = "Groups and Applications may not have the same identifier";

static ID_SEGMENT: LazyLock<Regex> = LazyLock::new(|| full_match(ID_SEGMENT_PATTERN));
static PORT_NAME: LazyLock<Regex> = LazyLock::new(|| full_match(PORT_NAME_PATTERN));
static NETWORK_NAME: LazyLock<Regex> = LazyLock::new(|| full_match(NETWORK_NAME_PATTERN));
static EXECUTOR: LazyLock<Regex> = LazyLock::new(|| full_match(EXECUTOR_PATTERN));

/// Validates an app as the client sent it (before AppDefinition::normalize; legacy fields may be present).
pub fn validate_app(app: &AppDefinition) -> Vec<Violation> {
    let mut report = Report::default();
    check_legacy_fields(app, &mut report);
    let mut normalized = app.clone();
    normalized.normalize(&AppDefaults::default());
    check_app(&normalized, &mut report);
    report.finish()
}

/// Validates the whole target state: every app (as stored, normalized) plus cross-object rules.
pub fn validate_root(root: &RootGroup) -> Vec<Violation> {
    let mut report = Report::default();
    for app in root.apps.values() {
        check_app(app, &mut report);
    }
    check_ids_distinct(root, &mut report);
    check_dependencies_exist(root, &mut report);
    check_acyclic(root, &mut report);
    check_service_ports_distinct(root, &mut report);
    report.finish()
}

/// Checks one path segment / a whole id (used for group ids too); returns the violation message if invalid.
pub fn check_path_id(id: &PathId) -> Option<String> {
    if id.segments().iter().any(|s| !ID_SEGMENT.is_match(s)) {
        return Some(regex_message(ID_SEGMENT_PATTERN));
    }
    RESERVED_ID_KEYWORDS.contains(&id.name()).then(|| {
        format!(
            "must not end with any of the following reserved keywords: {}",
            RESERVED_ID_KEYWORDS.join(", ")
        )
    })
}

// ---------------------------------------------------------------------------
// Legacy fields, checked on the app as sent.

fn check_legacy_fields(app: &AppDefinition, r: &mut Report) {
    if let (Some(ports), Some(definitions)) = (&app.ports, &app.port_definitions) {
        let same = ports.len() == definitions.len()
            && ports.iter().zip(definitions).all(|(p, d)| *p == d.port);
        if !same {
            r.add("/", PORTS_AND_DEFINITIONS);
        }
    }
    if !app.uris.is_empty() && !app.fetch.is_empty() {
        r.add("/", URIS_AND_FETCH);
    }
    let explicit_non_host = app.networks.iter().any(|n| n.mode != NetworkMode::Host);
    if explicit_non_host && app.port_definitions.as_ref().is_some_and(|d| !d.is_empty()) {
        r.add("/", DEFINITIONS_NEED_HOST);
    }
    let Some(container) = &app.container else {
        return;
    };
    let Some(docker) = &container.docker else {
        return;
    };
    if let Some(network) = &docker.network {
        r.check(
            "/container/docker/network",
            one_of(network, &DOCKER_NETWORKS),
        );
        if !app.networks.is_empty() {
            r.add(
                "/",
                "must not specify both container.docker.network and networks",
            );
        }
    }
    let non_empty = |m: &Option<Vec<_>>| m.as_ref().is_some_and(|m| !m.is_empty());
    if non_empty(&container.port_mappings) && non_empty(&docker.port_mappings) {
        r.add(
            "/",
            "cannot specify both portMappings and docker.portMappings",
        );
    }
}

// ---------------------------------------------------------------------------
// One app, normalized.

fn check_app(app: &AppDefinition, r: &mut Report) {
    check_id(app, r);
    check_command(app, r);
    check_resources(app, r);
    check_strategies(app, r);
    check_constraints(app, r);
    check_roles(app, r);
    check_env_and_secrets(app, r);
    check_labels(app, r);
    check_fetch(app, r);
    check_networks(app, r);
    check_container(app, r);
    check_ports(app, r);
    check_health_checks(app, r);
    check_readiness_checks(app, r);
    check_dependencies(app, r);
}

fn check_id(app: &AppDefinition, r: &mut Report) {
    if app.id.is_root() {
        r.add("/id", "Path must contain at least one path element");
    }
    r.check("/id", check_path_id(&app.id));
}

fn check_command(app: &AppDefinition, r: &mut Report) {
    let cmd = app.cmd.is_some();
    let args = !app.args.is_empty();
    let image = app.container.as_ref().is_some_and(|c| c.docker.is_some());
    if (cmd && args) || !(cmd || args || image) {
        r.add("/", CMD_ARGS_OR_CONTAINER);
    }
    if app.cmd.as_deref() == Some("") {
        r.add("/cmd", "must not be an empty string");
    }
}

fn is_docker(app: &AppDefinition) -> bool {
    app.container
        .as_ref()
        .is_some_and(|c| c.kind == ContainerType::Docker)
}

fn check_resources(app: &AppDefinition, r: &mut Report) {
    r.check("/instances", at_least(app.instances, 0));
    r.check("/cpus", at_least(app.cpus, MIN_CPUS));
    r.check("/mem", at_least(app.mem, 0.0));
    r.check("/disk", at_least(app.disk, 0.0));
    r.check("/gpus", at_least(app.gpus, 0));
    if app.gpus > 0 && is_docker(app) {
        r.add("/", "GPU resources only work with the Mesos containerizer");
    }
}

fn check_strategies(app: &AppDefinition, r: &mut Report) {
    r.check("/backoffSeconds", at_least(app.backoff_seconds, 0));
    r.check("/backoffFactor", at_least(app.backoff_factor, 1.0));
    r.check(
        "/maxLaunchDelaySeconds",
        at_least(app.max_launch_delay_seconds, 0),
    );
    if let Some(grace) = app.task_kill_grace_period_seconds {
        r.check("/taskKillGracePeriodSeconds", at_least(grace, 0));
    }
    let upgrade = &app.upgrade_strategy;
    r.check(
        "/upgradeStrategy/minimumHealthCapacity",
        between(upgrade.minimum_health_capacity, 0.0, 1.0),
    );
    r.check(
        "/upgradeStrategy/maximumOverCapacity",
        between(upgrade.maximum_over_capacity, 0.0, 1.0),
    );
    if let Some(deadline) = upgrade.progress_deadline_seconds {
        r.check(
            "/upgradeStrategy/progressDeadlineSeconds",
            at_least(deadline, 1),
        );
    }
    if let UnreachableStrategy::Enabled {
        inactive_after_seconds: inactive,
        expunge_after_seconds: expunge,
    } = app.unreachable_strategy
    {
        r.check(
            "/unreachableStrategy/inactiveAfterSeconds",
            at_least(inactive, 0),
        );
        r.check(
            "/unreachableStrategy/expungeAfterSeconds",
            at_least(expunge, inactive.max(0)),
        );
    }
    r.check(
        "/executor",
        matches_fully(&EXECUTOR, EXECUTOR_PATTERN, &app.executor),
    );
}

fn check_constraints(app: &AppDefinition, r: &mut Report) {
    for (i, constraint) in app.constraints.iter().enumerate() {
        r.check(
            format!("/constraints({i})"),
            constraint.rule().err().map(String::from),
        );
    }
}

fn check_roles(app: &AppDefinition, r: &mut Report) {
    if let Some(role) = &app.role {
        r.check("/role", role_error(role));
    }
    let Some(roles) = &app.accepted_resource_roles else {
        return;
    };
    if roles.is_empty() {
        r.add("/acceptedResourceRoles", "must not be empty");
    }
    for (i, role) in roles.iter().enumerate() {
        r.check(format!("/acceptedResourceRoles({i})"), role_error(role));
    }
    r.check(
        "/acceptedResourceRoles",
        unique(roles, "Accepted resource roles"),
    );
}

/// Why `role` is not a valid Mesos role name (`*` and hierarchical `a/b` are valid).
fn role_error(role: &str) -> Option<String> {
    if role.is_empty() {
        return Some(r#"A role name must not be ""."#.to_string());
    }
    if let Some(name) = role.chars().find_map(forbidden_role_char) {
        return Some(format!("A role name must not include a {name} character."));
    }
    if role.starts_with('/') || role.ends_with('/') {
        return Some(r"A role name must not start or end with a slash (\x2f).".to_string());
    }
    let what = if role.contains('/') {
        "A role name segment"
    } else {
        "A role name"
    };
    role.split('/').find_map(|segment| match segment {
        "" => Some("A role name must not contain an empty segment (//).".to_string()),
        "." | ".." => Some(format!("{what} must not be \"{segment}\".")),
        s if s.starts_with('-') => Some(format!("{what} must not start with a '-'.")),
        _ => None,
    })
}

fn forbidden_role_char(c: char) -> Option<&'static str> {
    Some(match c {
        '\t' => r"horizontal tab (\x09)",
        '\n' => r"line feed (\x0a)",
        '\u{0b}' => r"vertical tab (\x0b)",
        '\u{0c}' => r"form feed (\x0c)",
        '\r' => r"carriage return (\x0d)",
        ' ' => r"space (\x20)",
        '\u{7f}' => r"backspace (\x7f)",
        c if c.is_whitespace() || c.is_control() => "whitespace or control",
        _ => return None,
    })
}

fn check_env_and_secrets(app: &AppDefinition, r: &mut Report) {
    if app.env.keys().any(String::is_empty) {
        r.add("/env", "Environment variable names must not be empty");
    }
    for (name, value) in &app.env {
        if let EnvValue::Secret { secret } = value {
            if !app.secrets.contains_key(secret) {
                r.add(format!("/env/{name}"), "references an undefined secret");
            }
        }
    }
    if app.secrets.keys().any(String::is_empty) {
        r.add("/secrets", "Secret names must not be empty");
    }
    for (name, secret) in &app.secrets {
        r.check(format!("/secrets/{name}/source"), not_empty(&secret.source));
    }
}

fn check_labels(app: &AppDefinition, r: &mut Report) {
    if app.labels.keys().any(String::is_empty) {
        r.add("/labels", "Label names must not be empty");
    }
}

fn check_fetch(app: &AppDefinition, r: &mut Report) {
    for (i, artifact) in app.fetch.iter().enumerate() {
        r.check(format!("/fetch({i})/uri"), uri_error(&artifact.uri));
        if let Some(dest) = &artifact.dest_path {
            r.check(format!("/fetch({i})/destPath"), dest_path_error(dest));
        }
    }
}

fn uri_error(uri: &str) -> Option<String> {
    not_empty(uri).or_else(|| {
        uri.contains(char::is_whitespace)
            .then(|| "URI has invalid syntax.".to_string())
    })
}

fn dest_path_error(dest: &str) -> Option<String> {
    not_empty(dest).or_else(|| {
        (dest.starts_with('/') || dest.split('/').any(|s| s == ".."))
            .then(|| "must be a relative path without '..' segments".to_string())
    })
}

fn count_networks(app: &AppDefinition, mode: NetworkMode) -> usize {
    app.networks.iter().filter(|n| n.mode == mode).count()
}

fn check_networks(app: &AppDefinition, r: &mut Report) {
    let networks = &app.networks;
    let host = count_networks(app, NetworkMode::Host);
    let bridge = count_networks(app, NetworkMode::Bridge);
    let container = count_networks(app, NetworkMode::Container);
    let named = |mode| {
        networks
            .iter()
            .any(|n| n.mode == mode && n.name.as_ref().is_some_and(|s| !s.is_empty()))
    };
    let host_labelled = networks
        .iter()
        .any(|n| n.mode == NetworkMode::Host && !n.labels.is_empty());
    if named(NetworkMode::Host) || host_labelled {
        r.add("/networks", "Host networks may not have names or labels");
    }
    if named(NetworkMode::Bridge) {
        r.add("/networks", "Bridge networks may not have names");
    }
    let unnamed_container = networks
        .iter()
        .filter(|n| n.mode == NetworkMode::Container && n.name.is_none())
        .count();
    let names = networks.iter().filter_map(|n| n.name.as_deref());
    if unnamed_container > 1 || unique(names, "Networks").is_some() {
        r.add("/networks", "Duplicate networks are not allowed");
    }
    let one_kind = (bridge == 0 && container == 0 && host <= 1)
        || (host == 0 && container == 0 && bridge <= 1)
        || (host == 0 && bridge == 0);
    if !one_kind {
        r.add(
            "/networks",
            "May specify a single host network, single bridge network, or else 1-to-n container networks",
        );
    }
    if container > 1 && unnamed_container > 0 {
        r.add(
            "/networks",
            "Network name must be specified when container network is selected.",
        );
    }
    for (i, network) in networks.iter().enumerate() {
        if let Some(name) = &network.name {
            r.check(
                format!("/networks({i})/name"),
                matches_fully(&NETWORK_NAME, NETWORK_NAME_PATTERN, name),
            );
        }
    }
}

fn check_container(app: &AppDefinition, r: &mut Report) {
    let Some(container) = &app.container else {
        return;
    };
    match (&container.docker, container.kind) {
        (Some(docker), kind) => check_docker(docker, kind, r),
        (None, ContainerType::Docker) => {
            r.add(
                "/container/docker",
                "must be defined for container type DOCKER",
            );
        }
        (None, ContainerType::Mesos) => {}
    }
    if container.kind == ContainerType::Docker && count_networks(app, NetworkMode::Container) > 1 {
        r.add("/", DOCKER_SINGLE_CONTAINER_NETWORK);
    }
    if container.kind == ContainerType::Mesos {
        if container
            .docker
            .as_ref()
            .is_some_and(|d| !d.image.is_empty())
        {
            r.add("/container/docker/image", MESOS_RUNS_ON_THE_HOST);
        }
        // Persistent and external volumes are refused below, for any type.
        for (i, volume) in container.volumes.iter().enumerate() {
            if volume.get("persistent").is_none() && volume.get("external").is_none() {
                r.add(format!("/container/volumes({i})"), MESOS_RUNS_ON_THE_HOST);
            }
        }
        if !app.is_host_networked() {
            r.add("/networks", MESOS_RUNS_ON_THE_HOST);
        }
    }
    // Nothing would carry them out: no resource reservations (persistent
    // volumes) and no volume drivers (external volumes).
    for (i, volume) in container.volumes.iter().enumerate() {
        if volume.get("persistent").is_some() {
            r.add(
                format!("/container/volumes({i})/persistent"),
                PERSISTENT_VOLUMES,
            );
        }
        if volume.get("external").is_some() {
            r.add(
                format!("/container/volumes({i})/external"),
                EXTERNAL_VOLUMES,
            );
        }
    }
}

fn check_docker(docker: &DockerContainer, kind: ContainerType, r: &mut Report) {
    r.check("/container/docker/image", not_empty(&docker.image));
    for (i, parameter) in docker.parameters.iter().enumerate() {
        r.check(
            format!("/container/docker/parameters({i})/key"),
            not_empty(&parameter.key),
        );
    }
    match kind {
        ContainerType::Docker if docker.pull_config.is_some() => r.add(
            "/container/docker/pullConfig",
            "pullConfig is not supported with Docker containerizer",
        ),
        ContainerType::Mesos if !docker.parameters.is_empty() => r.add(
            "/container/docker/parameters",
            "must be empty for container type MESOS",
        ),
        _ => {}
    }
}

fn check_ports(app: &AppDefinition, r: &mut Report) {
    let definitions = app.port_definitions.as_deref().unwrap_or(&[]);
    check_port_definitions(definitions, app.require_ports, r);
    check_port_mappings(app, r);
    if app.is_host_networked() && !app.port_mappings().is_empty() {
        r.add("/", MAPPINGS_NEED_NON_HOST);
    }
    if !app.is_host_networked() && !definitions.is_empty() {
        r.add("/", DEFINITIONS_NEED_HOST);
    }
}

fn check_port_definitions(definitions: &[PortDefinition], require_ports: bool, r: &mut Report) {
    for (i, definition) in definitions.iter().enumerate() {
        let path = format!("/portDefinitions({i})");
        r.check(format!("{path}/port"), port_range(definition.port));
        if require_ports && definition.port == 0 {
            r.add(
                format!("{path}/port"),
                "must be a fixed port (not 0) when requirePorts is true",
            );
        }
        check_port_name_and_protocol(&path, definition.name.as_deref(), &definition.protocol, r);
    }
    let names = definitions.iter().filter_map(|d| d.name.as_deref());
    r.check("/portDefinitions", unique(names, "Port names"));
    let ports = definitions.iter().map(|d| d.port).filter(|p| *p != 0);
    r.check("/portDefinitions", unique(ports, "Ports"));
}

fn check_port_mappings(app: &AppDefinition, r: &mut Report) {
    let mappings = app.port_mappings();
    let network_names: Vec<&str> = app
        .networks
        .iter()
        .filter_map(|n| n.name.as_deref())
        .collect();
    let container_networks = count_networks(app, NetworkMode::Container);
    for (i, mapping) in mappings.iter().enumerate() {
        let path = format!("/container/portMappings({i})");
        r.check(
            format!("{path}/containerPort"),
            port_range(mapping.container_port),
        );
        if let Some(host_port) = mapping.host_port {
            r.check(format!("{path}/hostPort"), port_range(host_port));
        }
        r.check(
            format!("{path}/servicePort"),
            port_range(mapping.service_port),
        );
        check_port_name_and_protocol(&path, mapping.name.as_deref(), &mapping.protocol, r);
        for (j, name) in mapping.network_names.iter().enumerate() {
            if !network_names.contains(&name.as_str()) {
                r.add(
                    format!("{path}/networkNames({j})"),
                    format!("got '{name}', expected the name of one of the app's networks"),
                );
            }
        }
        if container_networks > 1 && mapping.host_port.is_some() && mapping.network_names.len() != 1
        {
            r.add(&path, HOST_PORT_NEEDS_NETWORK_NAME);
        }
    }
    let names = mappings.iter().filter_map(|m| m.name.as_deref());
    r.check("/container/portMappings", unique(names, "Port names"));
    let service_ports = mappings.iter().map(|m| m.service_port).filter(|p| *p != 0);
    r.check(
        "/container/portMappings",
        unique(service_ports, "Service ports"),
    );
}

fn check_port_name_and_protocol(path: &str, name: Option<&str>, protocol: &str, r: &mut Report) {
    if let Some(name) = name {
        r.check(
            format!("{path}/name"),
            matches_fully(&PORT_NAME, PORT_NAME_PATTERN, name),
        );
    }
    r.check(
        format!("{path}/protocol"),
        one_of(protocol, &PORT_PROTOCOLS),
    );
}

fn is_mesos_check(protocol: HealthProtocol) -> bool {
    matches!(
        protocol,
        HealthProtocol::MesosHttp | HealthProtocol::MesosHttps | HealthProtocol::MesosTcp
    )
}

fn check_health_checks(app: &AppDefinition, r: &mut Report) {
    let port_count = app.service_ports().len();
    let docker = is_docker(app);
    for (i, check) in app.health_checks.iter().enumerate() {
        let path = format!("/healthChecks({i})");
        check_health_check_port(&path, check, port_count, r);
        check_health_check_command(&path, check, r);
        check_health_check_path(&path, check, r);
        check_health_check_timing(&path, check, r);
        check_health_check_ip_protocol(&path, check, docker, r);
    }
    let mesos_checks = app
        .health_checks
        .iter()
        .filter(|c| is_mesos_check(c.protocol))
        .count();
    if mesos_checks > 1 {
        r.add(
            "/",
            "AppDefinition can contain at most one Mesos health check",
        );
    }
}

fn check_health_check_port(path: &str, check: &HealthCheck, port_count: usize, r: &mut Report) {
    if check.protocol == HealthProtocol::Command {
        return;
    }
    if check.port.is_some() && check.port_index.is_some() {
        r.add(
            path,
            "HealthCheck must specify either a port or a portIndex",
        );
    }
    if let Some(port) = check.port {
        r.check(format!("{path}/port"), port_range(port));
    }
    if let Some(index) = check.port_index {
        let addressed = usize::try_from(index).is_ok_and(|i| i < port_count);
        if !addressed {
            r.add(format!("{path}/portIndex"), PORT_INDEX_OUT_OF_RANGE);
        }
    }
}

fn check_health_check_command(path: &str, check: &HealthCheck, r: &mut Report) {
    let command_path = format!("{path}/command");
    match (&check.command, check.protocol == HealthProtocol::Command) {
        (None, true) => r.add(command_path, "must be defined for COMMAND health checks"),
        (Some(command), true) => {
            r.check(format!("{command_path}/value"), not_empty(&command.value))
        }
        (Some(_), false) => r.add(command_path, "is only allowed for COMMAND health checks"),
        (None, false) => {}
    }
}

fn check_health_check_path(path: &str, check: &HealthCheck, r: &mut Report) {
    let Some(http_path) = &check.path else {
        return;
    };
    let http = matches!(
        check.protocol,
        HealthProtocol::Http
            | HealthProtocol::Https
            | HealthProtocol::MesosHttp
            | HealthProtocol::MesosHttps
    );
    if http {
        r.check(format!("{path}/path"), not_empty(http_path));
    } else {
        r.add(
            format!("{path}/path"),
            "is only allowed for HTTP, HTTPS, MESOS_HTTP and MESOS_HTTPS health checks",
        );
    }
}

fn check_health_check_timing(path: &str, check: &HealthCheck, r: &mut Report) {
    let fields = [
        ("gracePeriodSeconds", check.grace_period_seconds),
        ("intervalSeconds", check.interval_seconds),
        ("timeoutSeconds", check.timeout_seconds),
        ("maxConsecutiveFailures", check.max_consecutive_failures),
        ("delaySeconds", check.delay_seconds),
    ];
    for (field, value) in fields {
        r.check(format!("{path}/{field}"), at_least(value, 0));
    }
}

fn check_health_check_ip_protocol(path: &str, check: &HealthCheck, docker: bool, r: &mut Report) {
    let Some(ip) = check.ip_protocol.as_deref() else {
        return;
    };
    r.check(format!("{path}/ipProtocol"), one_of(ip, &IP_PROTOCOLS));
    if ip == "IPv6" && !(docker && is_mesos_check(check.protocol)) {
        r.add(path, IPV6_LIMITATION);
    }
}

/// The names of the ports readiness checks can name.
fn port_names(app: &AppDefinition) -> Vec<&str> {
    if app.is_host_networked() {
        let definitions = app.port_definitions.as_deref().unwrap_or(&[]);
        definitions
            .iter()
            .filter_map(|d| d.name.as_deref())
            .collect()
    } else {
        let mappings = app.port_mappings();
        mappings.iter().filter_map(|m| m.name.as_deref()).collect()
    }
}

fn check_readiness_checks(app: &AppDefinition, r: &mut Report) {
    let checks = &app.readiness_checks;
    r.check("/readinessChecks", at_most(checks.len() as i64, 1));
    let names = checks.iter().map(|c| c.name.as_str());
    r.check("/readinessChecks", unique(names, "Readiness check names"));
    let ports = port_names(app);
    for (i, check) in checks.iter().enumerate() {
        check_readiness_check(&format!("/readinessChecks({i})"), check, &ports, r);
    }
}

fn check_readiness_check(path: &str, check: &ReadinessCheck, ports: &[&str], r: &mut Report) {
    r.check(format!("{path}/name"), not_empty(&check.name));
    r.check(
        format!("{path}/protocol"),
        one_of(&check.protocol, &READINESS_PROTOCOLS),
    );
    r.check(format!("{path}/path"), not_empty(&check.path));
    if !ports.contains(&check.port_name.as_str()) {
        r.add(
            format!("{path}/portName"),
            format!(
                "No port definition reference for portName {}",
                check.port_name
            ),
        );
    }
    r.check(
        format!("{path}/intervalSeconds"),
        more_than(check.interval_seconds, 0),
    );
    let timeout = format!("{path}/timeoutSeconds");
    r.check(&timeout, at_least(check.timeout_seconds, 1));
    r.check(
        &timeout,
        less_than(check.timeout_seconds, check.interval_seconds),
    );
    let codes_path = format!("{path}/httpStatusCodesForReady");
    let codes = &check.http_status_codes_for_ready;
    if codes.is_empty() {
        r.add(&codes_path, "must not be empty");
    }
    for (j, code) in codes.iter().enumerate() {
        r.check(format!("{codes_path}({j})"), between(*code, 100, 999));
    }
    r.check(&codes_path, unique(codes, "Status codes"));
}

fn check_dependencies(app: &AppDefinition, r: &mut Report) {
    for (i, dependency) in app.dependencies.iter().enumerate() {
        let path = format!("/dependencies({i})");
        r.check(&path, check_path_id(dependency));
        if *dependency == app.id {
            r.add(path, "An app cannot depend on itself");
        }
    }
}

mod messages;
mod root;
#[cfg(test)]
mod tests;

use messages::*;
use root::{
    check_acyclic, check_dependencies_exist, check_ids_distinct, check_service_ports_distinct,
};
