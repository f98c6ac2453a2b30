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
const CONSTRAINT_OPERATORS: &str = "Constraint operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS";
const HOST_PORT_NEEDS_NETWORK_NAME: &str = "networkNames must be a single item list when hostPort is specified and more than 1 container network is defined";
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

/// The violations found so far.
#[derive(Default)]
struct Report(Vec<Violation>);

impl Report {
    fn add(&mut self, path: impl Into<String>, error: impl Into<String>) {
        self.0.push(Violation::new(path, error));
    }

    /// Records `error` at `path` if there is one.
    fn check(&mut self, path: impl Into<String>, error: Option<String>) {
        if let Some(error) = error {
            self.add(path, error);
        }
    }

    fn finish(self) -> Vec<Violation> {
        merge_violations(self.0)
    }
}

// ---------------------------------------------------------------------------
// Message helpers, in accord's words.

/// A number as the JVM prints it: doubles always with a decimal point.
trait Number: PartialOrd + Copy {
    fn show(self) -> String;
}

impl Number for i64 {
    fn show(self) -> String {
        self.to_string()
    }
}

impl Number for f64 {
    fn show(self) -> String {
        if self.is_finite() && self.fract() == 0.0 {
            format!("{self:.1}")
        } else {
            self.to_string()
        }
    }
}

/// `a < b`, with NaN counting as below anything.
fn below<N: Number>(a: N, b: N) -> bool {
    !matches!(
        a.partial_cmp(&b),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    )
}

fn at_least<N: Number>(value: N, min: N) -> Option<String> {
    below(value, min).then(|| format!("got {}, expected {} or more", value.show(), min.show()))
}

fn at_most<N: Number>(value: N, max: N) -> Option<String> {
    below(max, value).then(|| format!("got {}, expected {} or less", value.show(), max.show()))
}

fn more_than<N: Number>(value: N, min: N) -> Option<String> {
    (!below(min, value)).then(|| format!("got {}, expected more than {}", value.show(), min.show()))
}

fn less_than<N: Number>(value: N, max: N) -> Option<String> {
    (!below(value, max)).then(|| format!("got {}, expected less than {}", value.show(), max.show()))
}

fn between<N: Number>(value: N, low: N, high: N) -> Option<String> {
    (below(value, low) || below(high, value)).then(|| {
        format!(
            "got {}, expected between {} and {}",
            value.show(),
            low.show(),
            high.show()
        )
    })
}

fn port_range(port: i64) -> Option<String> {
    between(port, 0, MAX_PORT)
}

fn one_of(value: &str, allowed: &[&str]) -> Option<String> {
    (!allowed.contains(&value)).then(|| {
        let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
        format!("got '{value}', expected one of {}", quoted.join(", "))
    })
}

fn not_empty(value: &str) -> Option<String> {
    value.is_empty().then(|| "must not be empty".to_string())
}

/// `<what> must be unique.` if an item repeats.
fn unique<T: Ord>(items: impl IntoIterator<Item = T>, what: &str) -> Option<String> {
    let mut seen = BTreeSet::new();
    let repeated = items.into_iter().any(|item| !seen.insert(item));
    repeated.then(|| format!("{what} must be unique."))
}

fn full_match(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("built-in pattern compiles")
}

fn regex_message(pattern: &str) -> String {
    format!("must fully match regular expression '{pattern}'")
}

fn matches_fully(regex: &Regex, pattern: &str, value: &str) -> Option<String> {
    (!regex.is_match(value)).then(|| regex_message(pattern))
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
        r.check(format!("/constraints({i})"), constraint_error(constraint));
    }
}

/// Why a `[field, operator, value?]` constraint is invalid. An empty value
/// counts as no value.
fn constraint_error(constraint: &[String]) -> Option<String> {
    let [field, operator, rest @ ..] = constraint else {
        return Some("Each constraint must have either 2 or 3 fields".to_string());
    };
    if rest.len() > 1 {
        return Some("Each constraint must have either 2 or 3 fields".to_string());
    }
    if field.is_empty() {
        return Some("Missing field and operator".to_string());
    }
    let value = rest.first().map(String::as_str).filter(|v| !v.is_empty());
    match operator.as_str() {
        "UNIQUE" => value.map(|_| "Value specified but not used".to_string()),
        "CLUSTER" | "IS" => value.is_none().then(|| "Missing value".to_string()),
        "GROUP_BY" => value
            .filter(|v| v.parse::<i64>().is_err())
            .map(|_| "Value was specified but is not a number".to_string()),
        "LIKE" | "UNLIKE" => regex_value_error(value),
        "MAX_PER" => match value.and_then(|v| v.parse::<i64>().ok()) {
            Some(max) => more_than(max, 0),
            None => Some("Value was not specified or is not a number".to_string()),
        },
        _ => Some(CONSTRAINT_OPERATORS.to_string()),
    }
}

fn regex_value_error(value: Option<&str>) -> Option<String> {
    match value {
        None => Some("A regular expression value must be provided".to_string()),
        Some(pattern) => Regex::new(pattern)
            .err()
            .map(|_| format!("'{pattern}' is not a valid regular expression")),
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

// ---------------------------------------------------------------------------
// Rules across apps and groups.

fn check_ids_distinct(root: &RootGroup, r: &mut Report) {
    for id in root.apps.keys().filter(|id| root.groups.contains_key(*id)) {
        r.add("/", format!("{APP_GROUP_SAME_ID}: {id}"));
    }
}

fn check_dependencies_exist(root: &RootGroup, r: &mut Report) {
    for (id, app) in &root.apps {
        report_missing_dependencies(root, id, app.dependencies.iter(), r);
    }
    for (id, group) in &root.groups {
        report_missing_dependencies(root, id, group.dependencies.iter(), r);
    }
}

fn report_missing_dependencies<'a>(
    root: &RootGroup,
    owner: &PathId,
    dependencies: impl Iterator<Item = &'a PathId>,
    r: &mut Report,
) {
    for (i, dependency) in dependencies.enumerate() {
        let exists = root.apps.contains_key(dependency) || root.groups.contains_key(dependency);
        if !exists {
            r.add(
                format!("/dependencies({i})"),
                format!("Dependency '{dependency}' of '{owner}' does not exist"),
            );
        }
    }
}

/// Which apps each app waits for.
type Graph<'a> = BTreeMap<&'a PathId, BTreeSet<&'a PathId>>;

/// The apps a dependency stands for: the app itself, or every app under the group.
fn dependency_targets<'a>(root: &'a RootGroup, dependency: &PathId) -> Vec<&'a PathId> {
    if let Some((id, _)) = root.apps.get_key_value(dependency) {
        return vec![id];
    }
    if root.groups.contains_key(dependency) {
        return apps_under(root, dependency);
    }
    Vec::new()
}

fn apps_under<'a>(root: &'a RootGroup, group: &PathId) -> Vec<&'a PathId> {
    root.apps
        .keys()
        .filter(|id| id.starts_with(group) && *id != group)
        .collect()
}

/// Edges from every app to the apps it depends on, itself or through an
/// enclosing group's dependencies.
fn dependency_graph(root: &RootGroup) -> Graph<'_> {
    let mut graph: Graph = root.apps.keys().map(|id| (id, BTreeSet::new())).collect();
    for (id, app) in &root.apps {
        let targets = app
            .dependencies
            .iter()
            .flat_map(|d| dependency_targets(root, d));
        graph.entry(id).or_default().extend(targets);
    }
    for (group_id, group) in &root.groups {
        let targets: BTreeSet<&PathId> = group
            .dependencies
            .iter()
            .flat_map(|d| dependency_targets(root, d))
            .collect();
        if targets.is_empty() {
            continue;
        }
        for app_id in apps_under(root, group_id) {
            graph.entry(app_id).or_default().extend(&targets);
        }
    }
    graph
}

/// A cycle as the path that closes it (`[a, b, a]`), if there is one.
fn find_cycle<'a>(graph: &Graph<'a>) -> Option<Vec<&'a PathId>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    let mut marks: HashMap<&PathId, Mark> = HashMap::new();
    for &start in graph.keys() {
        if marks.contains_key(start) {
            continue;
        }
        marks.insert(start, Mark::OnPath);
        let mut path = vec![start];
        let mut pending = vec![graph[start].iter()];
        while let Some(edges) = pending.last_mut() {
            let Some(&next) = edges.next() else {
                pending.pop();
                if let Some(done) = path.pop() {
                    marks.insert(done, Mark::Done);
                }
                continue;
            };
            match marks.get(next) {
                Some(Mark::OnPath) => {
                    let from = path.iter().position(|p| *p == next).unwrap_or(0);
                    let mut cycle = path[from..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    marks.insert(next, Mark::OnPath);
                    path.push(next);
                    pending.push(graph[next].iter());
                }
            }
        }
    }
    None
}

fn check_acyclic(root: &RootGroup, r: &mut Report) {
    if let Some(cycle) = find_cycle(&dependency_graph(root)) {
        let names: Vec<String> = cycle.iter().map(ToString::to_string).collect();
        r.add(
            "/",
            format!("{CYCLIC_DEPENDENCIES}: {}", names.join(" -> ")),
        );
    }
}

fn service_port_path(app: &AppDefinition, index: usize) -> String {
    if app.is_host_networked() {
        format!("/portDefinitions({index})/port")
    } else {
        format!("/container/portMappings({index})/servicePort")
    }
}

fn check_service_ports_distinct(root: &RootGroup, r: &mut Report) {
    let mut owners: BTreeMap<i64, &PathId> = BTreeMap::new();
    for (id, app) in &root.apps {
        for (i, port) in app.service_ports().into_iter().enumerate() {
            if port == 0 {
                continue;
            }
            let owner = *owners.entry(port).or_insert(id);
            if owner != id {
                r.add(
                    service_port_path(app, i),
                    format!(
                        "Requested service port {port} conflicts with a service port in use by app {owner}"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use serde_json::{json, Value};

    use super::*;
    use crate::model::group::GroupMeta;
    use crate::model::{parse_value, Timestamp};

    fn app(json: Value) -> AppDefinition {
        parse_value(json).expect("test app parses")
    }

    /// `{"id": "/app", "cmd": "sleep 1"}` with `fields` set on top.
    fn base(fields: Value) -> Value {
        let mut app = json!({"id": "/app", "cmd": "sleep 1"});
        let (Some(target), Value::Object(fields)) = (app.as_object_mut(), fields) else {
            panic!("objects expected");
        };
        target.extend(fields);
        app
    }

    fn errors_at(violations: &[Violation], path: &str) -> Vec<String> {
        violations
            .iter()
            .filter(|v| v.path == path)
            .flat_map(|v| v.errors.clone())
            .collect()
    }

    #[track_caller]
    fn assert_violation(json: Value, path: &str, message: &str) {
        let found = validate_app(&app(json));
        assert!(
            errors_at(&found, path).iter().any(|e| e == message),
            "expected {path:?}: {message:?}; got {found:#?}"
        );
    }

    #[track_caller]
    fn assert_valid(json: Value) {
        let found = validate_app(&app(json));
        assert!(found.is_empty(), "unexpected violations: {found:#?}");
    }

    fn docker(image: &str) -> Value {
        json!({"type": "DOCKER", "docker": {"image": image}})
    }

    fn bridge_app(mappings: Value) -> Value {
        json!({
            "id": "/web",
            "container": {"type": "DOCKER", "docker": {"image": "nginx"}, "portMappings": mappings},
            "networks": [{"mode": "container/bridge"}]
        })
    }

    #[test]
    fn minimal_apps_are_valid() {
        assert_valid(base(json!({})));
        assert_valid(json!({"id": "/a", "args": ["sleep", "1"]}));
        assert_valid(json!({"id": "/a", "container": docker("nginx")}));
        assert_valid(
            json!({"id": "/a", "container": {"type": "MESOS", "docker": {"image": "nginx"}}}),
        );
    }

    #[test]
    fn ids_follow_marathon_segment_syntax() {
        let message = format!("must fully match regular expression '{ID_SEGMENT_PATTERN}'");
        assert_violation(json!({"id": "/prod/Web_1", "cmd": "x"}), "/id", &message);
        assert_violation(json!({"id": "/-web", "cmd": "x"}), "/id", &message);
        assert_violation(json!({"id": "/web-", "cmd": "x"}), "/id", &message);
        assert_violation(
            json!({"id": "/", "cmd": "x"}),
            "/id",
            "Path must contain at least one path element",
        );
        assert_violation(
            json!({"id": "/prod/tasks", "cmd": "x"}),
            "/id",
            "must not end with any of the following reserved keywords: restart, tasks, versions",
        );
        assert_valid(json!({"id": "/prod/web-1.v2/x", "cmd": "x"}));
    }

    #[test]
    fn check_path_id_accepts_groups_and_root() {
        assert_eq!(check_path_id(&PathId::root()), None);
        assert_eq!(check_path_id(&PathId::parse("/prod/eu-1")), None);
        assert_eq!(check_path_id(&PathId::parse("/a.b.c")), None);
        assert!(check_path_id(&PathId::parse("/a..b")).is_some());
        assert!(check_path_id(&PathId::parse("/a/B")).is_some());
        assert!(check_path_id(&PathId::parse("/a/x y")).is_some());
    }

    #[test]
    fn command_rules() {
        assert_violation(json!({"id": "/a"}), "/", CMD_ARGS_OR_CONTAINER);
        assert_violation(
            base(json!({"args": ["sleep", "1"]})),
            "/",
            CMD_ARGS_OR_CONTAINER,
        );
        assert_violation(
            json!({"id": "/a", "container": {"type": "MESOS"}}),
            "/",
            CMD_ARGS_OR_CONTAINER,
        );
        assert_violation(
            json!({"id": "/a", "cmd": "", "container": docker("x")}),
            "/cmd",
            "must not be an empty string",
        );
        assert_valid(json!({"id": "/a", "cmd": "run", "container": docker("x")}));
    }

    #[test]
    fn resource_ranges() {
        let cases = [
            ("instances", json!(-1), "got -1, expected 0 or more"),
            ("cpus", json!(0), "got 0.0, expected 0.001 or more"),
            ("cpus", json!(-0.5), "got -0.5, expected 0.001 or more"),
            ("mem", json!(-1), "got -1.0, expected 0.0 or more"),
            ("disk", json!(-2.5), "got -2.5, expected 0.0 or more"),
            ("gpus", json!(-1), "got -1, expected 0 or more"),
            ("backoffSeconds", json!(-1), "got -1, expected 0 or more"),
            ("backoffFactor", json!(0.5), "got 0.5, expected 1.0 or more"),
            (
                "maxLaunchDelaySeconds",
                json!(-1),
                "got -1, expected 0 or more",
            ),
            (
                "taskKillGracePeriodSeconds",
                json!(-1),
                "got -1, expected 0 or more",
            ),
        ];
        for (field, value, message) in cases {
            assert_violation(base(json!({ field: value })), &format!("/{field}"), message);
        }
        assert_valid(base(
            json!({"instances": 0, "cpus": 0.001, "mem": 0, "backoffFactor": 1}),
        ));
    }

    #[test]
    fn upgrade_strategy_capacities_are_shares() {
        assert_violation(
            base(json!({"upgradeStrategy": {"minimumHealthCapacity": 1.5}})),
            "/upgradeStrategy/minimumHealthCapacity",
            "got 1.5, expected between 0.0 and 1.0",
        );
        assert_violation(
            base(json!({"upgradeStrategy": {"maximumOverCapacity": -0.1}})),
            "/upgradeStrategy/maximumOverCapacity",
            "got -0.1, expected between 0.0 and 1.0",
        );
        assert_valid(base(
            json!({"upgradeStrategy": {"minimumHealthCapacity": 0, "maximumOverCapacity": 1}}),
        ));
    }

    #[test]
    fn unreachable_strategy_ranges() {
        assert_violation(
            base(json!({"unreachableStrategy": {"inactiveAfterSeconds": -1}})),
            "/unreachableStrategy/inactiveAfterSeconds",
            "got -1, expected 0 or more",
        );
        assert_violation(
            base(json!({"unreachableStrategy":
                {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 5}})),
            "/unreachableStrategy/expungeAfterSeconds",
            "got 5, expected 10 or more",
        );
        assert_valid(base(json!({"unreachableStrategy": "disabled"})));
        assert_valid(base(
            json!({"unreachableStrategy": {"inactiveAfterSeconds": 5, "expungeAfterSeconds": 5}}),
        ));
    }

    #[test]
    fn gpus_only_without_docker() {
        assert_violation(
            json!({"id": "/a", "gpus": 1, "container": docker("cuda")}),
            "/",
            "GPU resources only work with the Mesos containerizer",
        );
        assert_valid(json!({"id": "/a", "gpus": 1, "container":
            {"type": "MESOS", "docker": {"image": "cuda"}}}));
        assert_valid(base(json!({"gpus": 2})));
    }

    #[test]
    fn legacy_fields_conflict_with_current_ones() {
        assert_violation(
            base(json!({"ports": [80], "portDefinitions": [{"port": 81}]})),
            "/",
            PORTS_AND_DEFINITIONS,
        );
        assert_valid(base(
            json!({"ports": [80], "portDefinitions": [{"port": 80}]}),
        ));
        assert_violation(
            base(json!({"uris": ["http://a/b"], "fetch": [{"uri": "http://a/c"}]})),
            "/",
            URIS_AND_FETCH,
        );
        assert_violation(
            json!({"id": "/a", "networks": [{"mode": "container/bridge"}],
                   "container": {"docker": {"image": "x", "network": "BRIDGE"}}}),
            "/",
            "must not specify both container.docker.network and networks",
        );
        assert_violation(
            json!({"id": "/a", "container": {"docker": {"image": "x", "network": "OVERLAY"}}}),
            "/container/docker/network",
            "got 'OVERLAY', expected one of 'BRIDGE', 'HOST', 'NONE', 'USER'",
        );
        assert_violation(
            json!({"id": "/a", "networks": [{"mode": "container/bridge"}], "container": {
                "docker": {"image": "x", "portMappings": [{"containerPort": 80}]},
                "portMappings": [{"containerPort": 81}]}}),
            "/",
            "cannot specify both portMappings and docker.portMappings",
        );
    }

    #[test]
    fn legacy_values_are_reported_where_they_move() {
        assert_violation(
            base(json!({"ports": [70000]})),
            "/portDefinitions(0)/port",
            "got 70000, expected between 0 and 65535",
        );
        assert_violation(
            base(json!({"uris": [""]})),
            "/fetch(0)/uri",
            "must not be empty",
        );
        assert_valid(base(
            json!({"ports": [0, 8080], "uris": ["http://a/b.tgz"]}),
        ));
        // Ports with a legacy bridged network are dropped, as Marathon drops them.
        assert_valid(
            json!({"id": "/r", "ports": [5000], "container": {"docker": {
            "image": "registry", "network": "BRIDGE",
            "portMappings": [{"containerPort": 5000, "servicePort": 5000}]}}}),
        );
    }

    #[test]
    fn port_definitions() {
        let path = "/portDefinitions(0)";
        assert_violation(
            base(json!({"portDefinitions": [{"port": -1}]})),
            &format!("{path}/port"),
            "got -1, expected between 0 and 65535",
        );
        assert_violation(
            base(json!({"portDefinitions": [{"port": 80}, {"port": 80}]})),
            "/portDefinitions",
            "Ports must be unique.",
        );
        assert_violation(
            base(json!({"portDefinitions": [{"name": "web"}, {"name": "web"}]})),
            "/portDefinitions",
            "Port names must be unique.",
        );
        assert_violation(
            base(json!({"portDefinitions": [{"name": "Web"}]})),
            &format!("{path}/name"),
            &format!("must fully match regular expression '{PORT_NAME_PATTERN}'"),
        );
        assert_violation(
            base(json!({"portDefinitions": [{"protocol": "sctp"}]})),
            &format!("{path}/protocol"),
            "got 'sctp', expected one of 'tcp', 'udp', 'udp,tcp'",
        );
        assert_violation(
            base(json!({"requirePorts": true, "portDefinitions": [{"port": 0}]})),
            &format!("{path}/port"),
            "must be a fixed port (not 0) when requirePorts is true",
        );
        assert_valid(base(json!({"requirePorts": true, "portDefinitions": [
            {"port": 8080, "name": "http", "protocol": "udp,tcp"}, {"port": 8081}]})));
        assert_valid(base(json!({"portDefinitions": [{"port": 0}, {"port": 0}]})));
        assert_valid(base(json!({"portDefinitions": []})));
    }

    #[test]
    fn port_mappings() {
        let path = "/container/portMappings(0)";
        let found = validate_app(&app(bridge_app(json!([{"containerPort": -1,
            "hostPort": 70000, "servicePort": 65536, "name": "A", "protocol": "x"}]))));
        let range = |v: i64| format!("got {v}, expected between 0 and 65535");
        assert_eq!(
            errors_at(&found, &format!("{path}/containerPort")),
            [range(-1)]
        );
        assert_eq!(
            errors_at(&found, &format!("{path}/hostPort")),
            [range(70000)]
        );
        assert_eq!(
            errors_at(&found, &format!("{path}/servicePort")),
            [range(65536)]
        );
        assert_eq!(errors_at(&found, &format!("{path}/name")).len(), 1);
        assert_eq!(errors_at(&found, &format!("{path}/protocol")).len(), 1);
        let duplicates = bridge_app(json!([
            {"containerPort": 80, "servicePort": 10000, "name": "web"},
            {"containerPort": 81, "servicePort": 10000, "name": "web"}]));
        let found = validate_app(&app(duplicates));
        assert_eq!(
            errors_at(&found, "/container/portMappings"),
            [
                "Port names must be unique.",
                "Service ports must be unique."
            ]
        );
        assert_valid(bridge_app(json!([
            {"containerPort": 80, "hostPort": 0, "name": "http"},
            {"containerPort": 53, "protocol": "udp"}])));
    }

    #[test]
    fn ports_must_fit_the_networking_mode() {
        assert_violation(
            json!({"id": "/a", "networks": [{"mode": "host"}],
                   "container": {"docker": {"image": "x"}, "portMappings": [{"containerPort": 80}]}}),
            "/",
            MAPPINGS_NEED_NON_HOST,
        );
        assert_violation(
            json!({"id": "/a", "networks": [{"mode": "container/bridge"}],
                   "container": docker("x"), "portDefinitions": [{"port": 80}]}),
            "/",
            DEFINITIONS_NEED_HOST,
        );
    }

    #[test]
    fn port_mapping_network_names() {
        let two_networks = |mapping: Value| {
            json!({"id": "/a", "container": {"type": "MESOS", "docker": {"image": "x"},
                "portMappings": [mapping]},
                "networks": [{"mode": "container", "name": "blue"},
                             {"mode": "container", "name": "green"}]})
        };
        assert_violation(
            two_networks(json!({"containerPort": 80, "networkNames": ["red"]})),
            "/container/portMappings(0)/networkNames(0)",
            "got 'red', expected the name of one of the app's networks",
        );
        assert_violation(
            two_networks(json!({"containerPort": 80, "hostPort": 0})),
            "/container/portMappings(0)",
            HOST_PORT_NEEDS_NETWORK_NAME,
        );
        assert_valid(two_networks(
            json!({"containerPort": 80, "hostPort": 0, "networkNames": ["blue"]}),
        ));
    }

    #[test]
    fn networks() {
        let with = |networks: Value| base(json!({ "networks": networks }));
        assert_violation(
            with(json!([{"mode": "host"}, {"mode": "container", "name": "a"}])),
            "/networks",
            "May specify a single host network, single bridge network, or else 1-to-n container networks",
        );
        assert_violation(
            with(json!([{"mode": "host"}, {"mode": "host"}])),
            "/networks",
            "May specify a single host network, single bridge network, or else 1-to-n container networks",
        );
        assert_violation(
            with(json!([{"mode": "host", "name": "a"}])),
            "/networks",
            "Host networks may not have names or labels",
        );
        assert_violation(
            with(json!([{"mode": "container/bridge", "name": "a"}])),
            "/networks",
            "Bridge networks may not have names",
        );
        assert_violation(
            with(json!([{"mode": "container"}, {"mode": "container"}])),
            "/networks",
            "Network name must be specified when container network is selected.",
        );
        assert_violation(
            with(json!([{"mode": "container", "name": "a"}, {"mode": "container", "name": "a"}])),
            "/networks",
            "Duplicate networks are not allowed",
        );
        assert_violation(
            with(json!([{"mode": "container", "name": "Blue"}])),
            "/networks(0)/name",
            &format!("must fully match regular expression '{NETWORK_NAME_PATTERN}'"),
        );
        assert_valid(with(json!([{"mode": "container"}])));
        assert_valid(with(json!([{"mode": "container", "name": "my_net-1"},
                                 {"mode": "container", "name": "b"}])));
        assert_valid(with(json!([{"mode": "container/bridge"}])));
    }

    #[test]
    fn docker_engine_joins_one_container_network() {
        assert_violation(
            json!({"id": "/a", "container": docker("x"), "networks": [
                {"mode": "container", "name": "a"}, {"mode": "container", "name": "b"}]}),
            "/",
            DOCKER_SINGLE_CONTAINER_NETWORK,
        );
    }

    #[test]
    fn containers() {
        assert_violation(
            json!({"id": "/a", "cmd": "x", "container": {"type": "DOCKER"}}),
            "/container/docker",
            "must be defined for container type DOCKER",
        );
        assert_violation(
            json!({"id": "/a", "container": docker("")}),
            "/container/docker/image",
            "must not be empty",
        );
        assert_violation(
            json!({"id": "/a", "container": {"type": "DOCKER", "docker": {"image": "x",
                "parameters": [{"key": "", "value": "v"}]}}}),
            "/container/docker/parameters(0)/key",
            "must not be empty",
        );
        assert_violation(
            json!({"id": "/a", "container": {"type": "MESOS", "docker": {"image": "x",
                "parameters": [{"key": "k", "value": "v"}]}}}),
            "/container/docker/parameters",
            "must be empty for container type MESOS",
        );
        assert_violation(
            json!({"id": "/a", "container": {"type": "DOCKER", "docker": {"image": "x",
                "pullConfig": {"secret": "s"}}}}),
            "/container/docker/pullConfig",
            "pullConfig is not supported with Docker containerizer",
        );
        assert_valid(base(json!({"container": {"type": "MESOS"}})));
    }

    #[test]
    fn constraint_rules() {
        let cases: [(&[&str], Option<&str>); 20] = [
            (
                &["hostname"],
                Some("Each constraint must have either 2 or 3 fields"),
            ),
            (
                &["hostname", "CLUSTER", "a", "b"],
                Some("Each constraint must have either 2 or 3 fields"),
            ),
            (&["", "UNIQUE"], Some("Missing field and operator")),
            (&["hostname", "FOO"], Some(CONSTRAINT_OPERATORS)),
            (&["hostname", "UNIQUE"], None),
            (&["hostname", "UNIQUE", ""], None),
            (
                &["hostname", "UNIQUE", "x"],
                Some("Value specified but not used"),
            ),
            (&["rack", "CLUSTER"], Some("Missing value")),
            (&["rack", "CLUSTER", "r1"], None),
            (&["rack", "IS", ""], Some("Missing value")),
            (&["rack", "IS", "r1"], None),
            (&["rack", "GROUP_BY"], None),
            (&["rack", "GROUP_BY", "3"], None),
            (
                &["rack", "GROUP_BY", "x"],
                Some("Value was specified but is not a number"),
            ),
            (
                &["hostname", "LIKE"],
                Some("A regular expression value must be provided"),
            ),
            (&["hostname", "LIKE", "srv2.*"], None),
            (
                &["hostname", "UNLIKE", "("],
                Some("'(' is not a valid regular expression"),
            ),
            (
                &["hostname", "MAX_PER", "x"],
                Some("Value was not specified or is not a number"),
            ),
            (
                &["hostname", "MAX_PER", "0"],
                Some("got 0, expected more than 0"),
            ),
            (&["hostname", "MAX_PER", "2"], None),
        ];
        for (constraint, expected) in cases {
            let constraint: Vec<String> = constraint.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                constraint_error(&constraint).as_deref(),
                expected,
                "{constraint:?}"
            );
        }
        assert_violation(
            base(json!({"constraints": [["hostname", "UNIQUE"], ["hostname", "LIKE"]]})),
            "/constraints(1)",
            "A regular expression value must be provided",
        );
    }

    #[test]
    fn roles() {
        let cases = [
            ("", r#"A role name must not be ""."#),
            (".", r#"A role name must not be "."."#),
            ("..", r#"A role name must not be ".."."#),
            ("-dev", "A role name must not start with a '-'."),
            (
                "a b",
                r"A role name must not include a space (\x20) character.",
            ),
            (
                "a\tb",
                r"A role name must not include a horizontal tab (\x09) character.",
            ),
            (
                "/dev",
                r"A role name must not start or end with a slash (\x2f).",
            ),
            (
                "dev/",
                r"A role name must not start or end with a slash (\x2f).",
            ),
            (
                "a//b",
                "A role name must not contain an empty segment (//).",
            ),
            ("a/..", r#"A role name segment must not be ".."."#),
        ];
        for (role, message) in cases {
            assert_eq!(role_error(role).as_deref(), Some(message), "{role:?}");
            assert_violation(base(json!({ "role": role })), "/role", message);
        }
        for role in ["*", "dev", "dev/web", "slave_public", "a.b"] {
            assert_eq!(role_error(role), None, "{role:?}");
        }
    }

    #[test]
    fn accepted_resource_roles() {
        assert_violation(
            base(json!({"acceptedResourceRoles": []})),
            "/acceptedResourceRoles",
            "must not be empty",
        );
        assert_violation(
            base(json!({"acceptedResourceRoles": ["*", "*"]})),
            "/acceptedResourceRoles",
            "Accepted resource roles must be unique.",
        );
        assert_violation(
            base(json!({"acceptedResourceRoles": ["*", "a b"]})),
            "/acceptedResourceRoles(1)",
            r"A role name must not include a space (\x20) character.",
        );
        assert_valid(base(json!({"acceptedResourceRoles": ["*", "public"]})));
    }

    #[test]
    fn env_labels_and_secrets() {
        assert_violation(
            base(json!({"env": {"": "x"}})),
            "/env",
            "Environment variable names must not be empty",
        );
        assert_violation(
            base(json!({"env": {"PASSWORD": {"secret": "pw"}}})),
            "/env/PASSWORD",
            "references an undefined secret",
        );
        assert_violation(
            base(json!({"secrets": {"pw": {"source": ""}}})),
            "/secrets/pw/source",
            "must not be empty",
        );
        assert_violation(
            base(json!({"labels": {"": "x"}})),
            "/labels",
            "Label names must not be empty",
        );
        assert_valid(base(
            json!({"env": {"PASSWORD": {"secret": "pw"}, "A": "1"},
                                 "secrets": {"pw": {"source": "/db/password"}},
                                 "labels": {"owner": "zeus"}}),
        ));
    }

    #[test]
    fn fetch() {
        let fetch = |artifact: Value| base(json!({ "fetch": [artifact] }));
        assert_violation(
            fetch(json!({"uri": ""})),
            "/fetch(0)/uri",
            "must not be empty",
        );
        assert_violation(
            fetch(json!({"uri": "http://a/b c"})),
            "/fetch(0)/uri",
            "URI has invalid syntax.",
        );
        for dest in ["/etc/x", "../x", "a/../../x"] {
            assert_violation(
                fetch(json!({"uri": "http://a/b", "destPath": dest})),
                "/fetch(0)/destPath",
                "must be a relative path without '..' segments",
            );
        }
        assert_valid(fetch(json!({"uri": "http://a/b", "destPath": "sub/b.tgz"})));
    }

    #[test]
    fn executor_pattern() {
        let message = format!("must fully match regular expression '{EXECUTOR_PATTERN}'");
        for executor in ["/", "a//b", "x/"] {
            assert_violation(base(json!({ "executor": executor })), "/executor", &message);
        }
        for executor in ["", "//cmd", "/opt/executor", "bin/exec"] {
            assert_valid(base(json!({ "executor": executor })));
        }
    }

    #[test]
    fn health_check_ports() {
        let checks = |checks: Value| base(json!({ "healthChecks": checks }));
        assert_valid(checks(
            json!([{"protocol": "HTTP"}, {"protocol": "TCP", "portIndex": 0}]),
        ));
        assert_violation(
            checks(json!([{"protocol": "HTTP"}, {"protocol": "HTTP", "portIndex": 1}])),
            "/healthChecks(1)/portIndex",
            PORT_INDEX_OUT_OF_RANGE,
        );
        assert_violation(
            checks(json!([{"protocol": "HTTP", "port": 8080, "portIndex": 0}])),
            "/healthChecks(0)",
            "HealthCheck must specify either a port or a portIndex",
        );
        assert_violation(
            checks(json!([{"protocol": "TCP", "port": 70000}])),
            "/healthChecks(0)/port",
            "got 70000, expected between 0 and 65535",
        );
        // An app without ports has no port to check.
        let mut portless = bridge_app(json!([]));
        portless["healthChecks"] = json!([{"protocol": "MESOS_HTTP"}]);
        assert_violation(
            portless,
            "/healthChecks(0)/portIndex",
            PORT_INDEX_OUT_OF_RANGE,
        );
    }

    #[test]
    fn health_check_commands_and_paths() {
        let check = |check: Value| base(json!({ "healthChecks": [check] }));
        assert_violation(
            check(json!({"protocol": "COMMAND"})),
            "/healthChecks(0)/command",
            "must be defined for COMMAND health checks",
        );
        assert_violation(
            check(json!({"protocol": "COMMAND", "command": {"value": ""}})),
            "/healthChecks(0)/command/value",
            "must not be empty",
        );
        assert_violation(
            check(json!({"protocol": "HTTP", "command": {"value": "true"}})),
            "/healthChecks(0)/command",
            "is only allowed for COMMAND health checks",
        );
        assert_violation(
            check(json!({"protocol": "TCP", "path": "/health"})),
            "/healthChecks(0)/path",
            "is only allowed for HTTP, HTTPS, MESOS_HTTP and MESOS_HTTPS health checks",
        );
        assert_valid(check(
            json!({"protocol": "COMMAND", "command": {"value": "true"}}),
        ));
        assert_valid(check(json!({"protocol": "MESOS_HTTPS", "path": "/health"})));
    }

    #[test]
    fn health_check_timing() {
        for field in [
            "gracePeriodSeconds",
            "intervalSeconds",
            "timeoutSeconds",
            "maxConsecutiveFailures",
            "delaySeconds",
        ] {
            assert_violation(
                base(json!({"healthChecks": [{ field: -1 }]})),
                &format!("/healthChecks(0)/{field}"),
                "got -1, expected 0 or more",
            );
        }
        // Marathon does not compare a health check's timeout with its interval.
        assert_valid(base(
            json!({"healthChecks": [{"timeoutSeconds": 30, "intervalSeconds": 10}]}),
        ));
    }

    #[test]
    fn mesos_health_checks_and_ip_protocols() {
        assert_violation(
            base(json!({"healthChecks": [{"protocol": "MESOS_HTTP"}, {"protocol": "MESOS_TCP"}]})),
            "/",
            "AppDefinition can contain at most one Mesos health check",
        );
        assert_violation(
            base(json!({"healthChecks": [{"ipProtocol": "IPv6"}]})),
            "/healthChecks(0)",
            IPV6_LIMITATION,
        );
        assert_violation(
            base(json!({"healthChecks": [{"ipProtocol": "IPv5"}]})),
            "/healthChecks(0)/ipProtocol",
            "got 'IPv5', expected one of 'IPv4', 'IPv6'",
        );
        assert_valid(json!({"id": "/a", "container": docker("x"),
            "healthChecks": [{"protocol": "MESOS_HTTP", "ipProtocol": "IPv6"}]}));
    }

    fn with_readiness(check: Value) -> Value {
        base(json!({"portDefinitions": [{"port": 0, "name": "http-api"}],
                    "readinessChecks": [check]}))
    }

    #[test]
    fn readiness_checks() {
        assert_valid(with_readiness(json!({})));
        let path = "/readinessChecks(0)";
        let cases = [
            (json!({"name": ""}), "name", "must not be empty"),
            (
                json!({"protocol": "TCP"}),
                "protocol",
                "got 'TCP', expected one of 'HTTP', 'HTTPS'",
            ),
            (json!({"path": ""}), "path", "must not be empty"),
            (
                json!({"portName": "admin"}),
                "portName",
                "No port definition reference for portName admin",
            ),
            (
                json!({"intervalSeconds": 0, "timeoutSeconds": 1}),
                "intervalSeconds",
                "got 0, expected more than 0",
            ),
            (
                json!({"timeoutSeconds": 0}),
                "timeoutSeconds",
                "got 0, expected 1 or more",
            ),
            (
                json!({"timeoutSeconds": 10, "intervalSeconds": 5}),
                "timeoutSeconds",
                "got 10, expected less than 5",
            ),
            (
                json!({"httpStatusCodesForReady": []}),
                "httpStatusCodesForReady",
                "must not be empty",
            ),
            (
                json!({"httpStatusCodesForReady": [200, 200]}),
                "httpStatusCodesForReady",
                "Status codes must be unique.",
            ),
            (
                json!({"httpStatusCodesForReady": [200, 99]}),
                "httpStatusCodesForReady(1)",
                "got 99, expected between 100 and 999",
            ),
        ];
        for (check, field, message) in cases {
            assert_violation(with_readiness(check), &format!("{path}/{field}"), message);
        }
    }

    #[test]
    fn readiness_checks_need_ports_and_come_alone() {
        let mut portless = bridge_app(json!([]));
        portless["readinessChecks"] = json!([{}]);
        assert_violation(
            portless,
            "/readinessChecks(0)/portName",
            "No port definition reference for portName http-api",
        );
        let two = base(json!({"portDefinitions": [{"port": 0, "name": "http-api"}],
                              "readinessChecks": [{}, {}]}));
        let found = validate_app(&app(two));
        assert_eq!(
            errors_at(&found, "/readinessChecks"),
            [
                "got 2, expected 1 or less",
                "Readiness check names must be unique."
            ]
        );
        let mapped = bridge_app(json!([{"containerPort": 80, "name": "http-api"}]));
        let mut mapped = mapped;
        mapped["readinessChecks"] = json!([{}]);
        assert_valid(mapped);
    }

    #[test]
    fn dependencies() {
        assert_violation(
            base(json!({"dependencies": ["/db", "/Cache"]})),
            "/dependencies(1)",
            &format!("must fully match regular expression '{ID_SEGMENT_PATTERN}'"),
        );
        assert_violation(
            base(json!({"dependencies": ["/app"]})),
            "/dependencies(0)",
            "An app cannot depend on itself",
        );
        assert_valid(base(json!({"dependencies": ["/db", "/prod/cache"]})));
    }

    #[test]
    fn violations_are_merged_by_path() {
        let found = validate_app(&app(
            json!({"id": "/a", "gpus": 1, "container": {"type": "DOCKER"}}),
        ));
        let roots: Vec<&Violation> = found.iter().filter(|v| v.path == "/").collect();
        assert_eq!(roots.len(), 1);
        assert_eq!(
            roots[0].errors,
            [
                CMD_ARGS_OR_CONTAINER,
                "GPU resources only work with the Mesos containerizer"
            ]
        );
    }

    #[test]
    fn normalized_apps_validate_like_the_sent_ones() {
        let sent = app(base(json!({"ports": [0, 8080], "uris": ["http://a/b"],
                                   "healthChecks": [{"protocol": "HTTP", "portIndex": 1}]})));
        let mut stored = sent.clone();
        stored.normalize(&AppDefaults::default());
        assert!(validate_app(&sent).is_empty());
        assert!(validate_app(&stored).is_empty());
    }

    // -----------------------------------------------------------------------
    // The root group.

    fn meta(dependencies: &[&str]) -> GroupMeta {
        GroupMeta {
            dependencies: dependencies.iter().map(|d| PathId::parse(d)).collect(),
            version: Timestamp::default(),
            enforce_role: false,
        }
    }

    fn stored(json: Value) -> AppDefinition {
        let mut app = app(json);
        app.normalize(&AppDefaults::default());
        app
    }

    /// A root holding `apps`, every group on their way, and `groups` (id, dependencies).
    fn root_of(apps: Vec<Value>, groups: &[(&str, &[&str])]) -> RootGroup {
        let apps: BTreeMap<PathId, Arc<AppDefinition>> = apps
            .into_iter()
            .map(|json| {
                let app = stored(json);
                (app.id.clone(), Arc::new(app))
            })
            .collect();
        let mut all_groups: BTreeMap<PathId, GroupMeta> = BTreeMap::new();
        all_groups.insert(PathId::root(), meta(&[]));
        for id in apps.keys() {
            for ancestor in id.ancestors() {
                all_groups.entry(ancestor).or_insert_with(|| meta(&[]));
            }
        }
        for (id, dependencies) in groups {
            all_groups.insert(PathId::parse(id), meta(dependencies));
        }
        RootGroup {
            apps,
            groups: all_groups,
        }
    }

    fn cmd_app(id: &str, dependencies: &[&str]) -> Value {
        json!({"id": id, "cmd": "sleep 1", "dependencies": dependencies})
    }

    #[test]
    fn valid_root() {
        let root = root_of(
            vec![
                cmd_app("/db", &[]),
                cmd_app("/prod/web", &["/db"]),
                cmd_app("/prod/api", &["/db", "/prod/web"]),
            ],
            &[("/prod", &["/db"])],
        );
        assert_eq!(validate_root(&root), []);
        let empty = root_of(vec![], &[]);
        assert_eq!(validate_root(&empty), []);
    }

    #[test]
    fn root_reports_invalid_apps() {
        let root = root_of(vec![base(json!({"cpus": -1}))], &[]);
        assert_eq!(
            validate_root(&root),
            [Violation::new("/cpus", "got -1.0, expected 0.001 or more")]
        );
    }

    #[test]
    fn dependencies_must_exist() {
        let root = root_of(
            vec![cmd_app("/a", &["/db", "/missing"]), cmd_app("/db", &[])],
            &[("/g", &["/gone"])],
        );
        let found = validate_root(&root);
        assert_eq!(
            errors_at(&found, "/dependencies(1)"),
            ["Dependency '/missing' of '/a' does not exist"]
        );
        assert_eq!(
            errors_at(&found, "/dependencies(0)"),
            ["Dependency '/gone' of '/g' does not exist"]
        );
    }

    #[test]
    fn cycles_are_named() {
        let root = root_of(vec![cmd_app("/a", &["/b"]), cmd_app("/b", &["/a"])], &[]);
        assert_eq!(
            validate_root(&root),
            [Violation::new(
                "/",
                "Dependency graph has cyclic dependencies: /a -> /b -> /a"
            )]
        );
        let through_groups = root_of(
            vec![cmd_app("/g/a", &["/h"]), cmd_app("/h/b", &[])],
            &[("/h", &["/g"])],
        );
        assert_eq!(
            errors_at(&validate_root(&through_groups), "/"),
            ["Dependency graph has cyclic dependencies: /g/a -> /h/b -> /g/a"]
        );
        let on_own_group = root_of(vec![cmd_app("/g/a", &["/g"])], &[]);
        assert_eq!(
            errors_at(&validate_root(&on_own_group), "/"),
            ["Dependency graph has cyclic dependencies: /g/a -> /g/a"]
        );
    }

    #[test]
    fn apps_and_groups_have_distinct_ids() {
        let root = root_of(vec![cmd_app("/x", &[])], &[("/x", &[])]);
        assert_eq!(
            validate_root(&root),
            [Violation::new(
                "/",
                "Groups and Applications may not have the same identifier: /x"
            )]
        );
    }

    #[test]
    fn service_ports_are_unique_across_apps() {
        let host = |id: &str, port: i64| json!({"id": id, "cmd": "x", "portDefinitions": [{"port": 0}, {"port": port}]});
        let mut bridged = bridge_app(json!([{"containerPort": 80, "servicePort": 10001}]));
        bridged["id"] = json!("/c");
        let root = root_of(vec![host("/a", 10001), host("/b", 10001), bridged], &[]);
        let found = validate_root(&root);
        let message = "Requested service port 10001 conflicts with a service port in use by app /a";
        assert_eq!(errors_at(&found, "/portDefinitions(1)/port"), [message]);
        assert_eq!(
            errors_at(&found, "/container/portMappings(0)/servicePort"),
            [message]
        );
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn numbers_print_like_the_jvm() {
        assert_eq!(1.0f64.show(), "1.0");
        assert_eq!(0.001f64.show(), "0.001");
        assert_eq!((-2i64).show(), "-2");
        assert!(at_least(f64::NAN, 0.0).is_some());
    }
}
