//! Tests of app and root-group validation.

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
    assert_valid(json!({"id": "/a", "cmd": "x", "container": {"type": "MESOS"}}));
}

#[test]
fn mesos_containers_refuse_what_only_a_container_runtime_does() {
    let message = MESOS_RUNS_ON_THE_HOST;
    assert_violation(
        json!({"id": "/a", "container": {"type": "MESOS", "docker": {"image": "nginx"}}}),
        "/container/docker/image",
        message,
    );
    assert_violation(
        json!({"id": "/a", "cmd": "x", "container": {"type": "MESOS",
            "volumes": [{"containerPath": "/data", "hostPath": "/srv", "mode": "RW"}]}}),
        "/container/volumes(0)",
        message,
    );
    assert_violation(
        json!({"id": "/a", "cmd": "x", "container": {"type": "MESOS"},
            "networks": [{"mode": "container/bridge"}]}),
        "/networks",
        message,
    );
    assert_valid(
        json!({"id": "/a", "container": {"type": "DOCKER", "docker": {"image": "nginx"},
        "volumes": [{"containerPath": "/data", "hostPath": "/srv", "mode": "RW"}]},
        "networks": [{"mode": "container/bridge"}]}),
    );
}

#[test]
fn volumes_nothing_would_carry_out_are_refused() {
    for kind in ["DOCKER", "MESOS"] {
        let app = |volume: Value| {
            json!({"id": "/a", "cmd": "x", "container": {"type": kind,
                "docker": {"image": "nginx"}, "volumes": [volume]}})
        };
        assert_violation(
            app(json!({"containerPath": "data", "mode": "RW", "persistent": {"size": 10}})),
            "/container/volumes(0)/persistent",
            PERSISTENT_VOLUMES,
        );
        assert_violation(
            app(json!({"containerPath": "/data", "mode": "RW",
                "external": {"name": "v", "provider": "dvdi"}})),
            "/container/volumes(0)/external",
            EXTERNAL_VOLUMES,
        );
    }
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
    assert_violation(
        base(json!({"upgradeStrategy": {"progressDeadlineSeconds": 0}})),
        "/upgradeStrategy/progressDeadlineSeconds",
        "got 0, expected 1 or more",
    );
    assert_valid(base(
        json!({"upgradeStrategy": {"progressDeadlineSeconds": 600}}),
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
    assert_valid(json!({"id": "/a", "cmd": "x", "gpus": 1, "container": {"type": "MESOS"}}));
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
    // Named, the mapping is fine (Agora refuses the MESOS container's
    // networks for another reason).
    let found = validate_app(&app(two_networks(
        json!({"containerPort": 80, "hostPort": 0, "networkNames": ["blue"]}),
    )));
    assert!(
        errors_at(&found, "/container/portMappings(0)").is_empty(),
        "{found:#?}"
    );
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

/// The rules themselves are `model::constraint`'s table; here, that a bad
/// one is reported at its path.
#[test]
fn constraint_rules() {
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
