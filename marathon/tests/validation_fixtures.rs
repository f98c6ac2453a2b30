//! The app bodies of the request examples in Marathon's published API spec
//! (`POST /v2/apps`, which is also `PUT /v2/apps/{app_id}`; `PUT` and `PATCH
//! /v2/apps`; `PATCH /v2/apps/{app_id}`; the apps nested in the `/v2/groups`
//! example), copied verbatim so the test needs no file outside the
//! repository. Each must parse, and validate clean once the spec's own slips
//! are corrected.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use agora_marathon::error::Violation;
use agora_marathon::model::group::GroupMeta;
use agora_marathon::model::validation::{validate_app, validate_root};
use agora_marathon::model::{parse_json, AppDefaults, AppDefinition, PathId, RootGroup, Timestamp};
use serde_json::{json, Value};

/// `POST /v2/apps` request example.
const POST_APP: &str = r#"{
  "id": "/foo",
  "instances": 2,
  "cmd": "sleep 1000",
  "cpus": 0.1,
  "disk": 0,
  "mem": 16,
  "acceptedResourceRoles": ["mesos_role"],
  "args": ["sleep", "100"],
  "backoffFactor": 1.15,
  "backoffSeconds": 1,
  "constraints": [["hostname", "LIKE", "srv2.*"]],
  "container": {
    "docker": {
      "forcePullImage": false,
      "image": "mesosphere:marathon/latest",
      "network": "BRIDGE",
      "parameters": [{"key": "name", "value": "kdc"}],
      "portMappings": [
        {
          "containerPort": 80,
          "hostPort": 0,
          "protocol": "tcp",
          "servicePort": 10019,
          "name": "http",
          "labels": {"vip": "192.168.0.1:80"}
        }
      ],
      "privileged": false
    },
    "type": "DOCKER",
    "volumes": [
      {"containerPath": "/docker_storage", "hostPath": "/hdd/tools/docker/registry", "mode": "RW"}
    ]
  },
  "dependencies": ["/prod/group"],
  "env": {
    "XPS1": "Test",
    "XPS2": "Rest",
    "PASSWORD": {"secret": "/db/password"}
  },
  "executor": "",
  "healthChecks": [
    {
      "gracePeriodSeconds": 300,
      "ignoreHttp1xx": false,
      "intervalSeconds": 20,
      "maxConsecutiveFailures": 3,
      "path": "/",
      "portIndex": 0,
      "protocol": "HTTP",
      "timeoutSeconds": 20
    }
  ],
  "readinessChecks": [
    {
      "name": "myReadyCheck",
      "protocol": "HTTP",
      "path": "/v1/plan",
      "portName": "http",
      "intervalSeconds": 10,
      "timeoutSeconds": 3,
      "httpStatusCodesForReady": [200],
      "preserveLastResponse": true
    }
  ],
  "labels": {"owner": "zeus", "note": "Away from olympus"},
  "maxLaunchDelaySeconds": 3600,
  "ipAddress": {
    "discovery": {"ports": [{"number": 8080, "name": "rest-endpoint", "protocol": "tcp"}]},
    "groups": ["dev"],
    "labels": {"environment": "dev"}
  },
  "portDefinitions": [
    {"port": 0, "protocol": "tcp", "name": "http", "labels": {"vip": "192.168.0.1:80"}}
  ],
  "requirePorts": false,
  "upgradeStrategy": {"maximumOverCapacity": 1, "minimumHealthCapacity": 1},
  "fetch": [
    {"uri": "https://foo.com/setup.py"},
    {
      "uri": "https://foo.com/archive.zip",
      "executable": false,
      "extract": true,
      "cache": true,
      "destPath": "newname.zip"
    }
  ],
  "user": "root",
  "secrets": {
    "secret1": {"source": "/db/password"},
    "secret3": {"source": "/foo2"}
  },
  "taskKillGracePeriodSeconds": 30,
  "tty": true
}"#;

/// `PUT /v2/apps` request example.
const PUT_APPS: &str = r#"[
  {
    "id": "/test/sleep60",
    "cmd": "sleep 60",
    "cpus": 0.3,
    "instances": 2,
    "mem": 9,
    "dependencies": ["/test/sleep120", "/other/namespace/or/app"]
  },
  {
    "id": "/test/sleep120",
    "cmd": "sleep 120",
    "cpus": 0.3,
    "instances": 2,
    "mem": 9
  }
]"#;

/// `PATCH /v2/apps` request example: changes to the apps of [`PUT_APPS`].
const PATCH_APPS: &str = r#"[
  {"id": "/test/sleep60", "cpus": 0.3},
  {"id": "/test/sleep120", "instances": 2}
]"#;

/// `PATCH /v2/apps/{app_id}` request example: a change to [`POST_APP`].
const PATCH_APP: &str = r#"{"id": "/foo", "instances": 2}"#;

/// The apps of the `POST /v2/groups` request example (also `PUT /v2/groups`
/// and both methods on `/v2/groups/{group_id}`).
const GROUP_APPS: &str = r#"[
  {
    "id": "/tools/oauth-server",
    "instances": 2,
    "cpus": 1,
    "mem": 1024,
    "disk": 0,
    "constraints": [["hostname", "UNIQUE"]],
    "uris": [],
    "ports": [1980],
    "requirePorts": false,
    "backoffSeconds": 1,
    "backoffFactor": 1.15,
    "maxLaunchDelaySeconds": 3600,
    "container": {
      "type": "DOCKER",
      "volumes": [],
      "docker": {
        "image": "docker-registry/oauth_server:6d7d463cb8b1517002080a81cf23f9cf7b7fc774",
        "network": "HOST",
        "privileged": false,
        "parameters": [],
        "forcePullImage": false
      }
    },
    "healthChecks": [
      {
        "path": "/",
        "protocol": "HTTP",
        "portIndex": 0,
        "gracePeriodSeconds": 300,
        "intervalSeconds": 20,
        "timeoutSeconds": 20,
        "maxConsecutiveFailures": 3,
        "ignoreHttp1xx": false
      }
    ],
    "dependencies": [],
    "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0},
    "version": "2015-09-28T19:47:37.681Z",
    "versionInfo": {
      "lastScalingAt": "2015-09-28T19:47:37.681Z",
      "lastConfigChangeAt": "2015-09-28T19:47:37.681Z"
    }
  },
  {
    "id": "/tools/datadog-agent",
    "instances": 5,
    "cpus": 1,
    "mem": 512,
    "disk": 0,
    "executor": "",
    "constraints": [["hostname", "UNIQUE"]],
    "uris": [],
    "ports": [10018],
    "requirePorts": false,
    "backoffSeconds": 1,
    "backoffFactor": 1.15,
    "maxLaunchDelaySeconds": 3600,
    "container": {
      "type": "DOCKER",
      "volumes": [
        {"containerPath": "/var/run/docker.sock", "hostPath": "/var/run/docker.sock", "mode": "RW"},
        {"containerPath": "/host/proc/mounts", "hostPath": "/proc/mounts", "mode": "RO"},
        {"containerPath": "/host/sys/fs/cgroup", "hostPath": "/sys/fs/cgroup/", "mode": "RO"}
      ],
      "docker": {
        "image": "datadog/docker-dd-agent:latest",
        "network": "HOST",
        "privileged": true,
        "parameters": [],
        "forcePullImage": false
      }
    },
    "healthChecks": [],
    "dependencies": [],
    "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0},
    "version": "2015-08-26T22:33:24.225Z",
    "versionInfo": {
      "lastScalingAt": "2015-08-26T22:33:24.225Z",
      "lastConfigChangeAt": "2015-05-19T13:59:18.899Z"
    }
  },
  {
    "id": "/tools/docker/registry",
    "instances": 1,
    "cpus": 0.5,
    "mem": 4096,
    "disk": 0,
    "executor": "",
    "constraints": [],
    "uris": [],
    "ports": [5000],
    "requirePorts": false,
    "backoffSeconds": 1,
    "backoffFactor": 1.15,
    "maxLaunchDelaySeconds": 3600,
    "container": {
      "type": "DOCKER",
      "volumes": [
        {"containerPath": "/docker_storage", "hostPath": "/hdd/tools/docker/registry", "mode": "RW"}
      ],
      "docker": {
        "image": "registry",
        "network": "BRIDGE",
        "portMappings": [
          {"containerPort": 5000, "hostPort": 0, "servicePort": 5000, "protocol": "tcp"}
        ],
        "privileged": false,
        "parameters": [],
        "forcePullImage": false
      }
    },
    "healthChecks": [],
    "dependencies": [],
    "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    "version": "2015-08-19T21:26:47.616Z",
    "versionInfo": {
      "lastScalingAt": "2015-08-19T21:26:47.616Z",
      "lastConfigChangeAt": "2015-08-19T21:00:54.621Z"
    }
  }
]"#;

fn parse(body: &str) -> AppDefinition {
    parse_json::<AppDefinition>(body.as_bytes()).expect("spec example parses")
}

fn parse_all(body: &str) -> Vec<AppDefinition> {
    let values: Vec<Value> = serde_json::from_str(body).expect("spec example is a JSON array");
    values.iter().map(|v| parse(&v.to_string())).collect()
}

fn normalized(app: &AppDefinition) -> AppDefinition {
    let mut app = app.clone();
    app.normalize(&AppDefaults::default());
    app
}

#[track_caller]
fn assert_clean(app: &AppDefinition) {
    assert_eq!(validate_app(app), [], "{}", app.id);
    let stored = normalized(app);
    assert_eq!(validate_app(&stored), [], "{} (normalized)", app.id);
}

/// A root holding `apps` (normalized) and every group on their way.
fn root_of(apps: &[AppDefinition]) -> RootGroup {
    let meta = || GroupMeta {
        dependencies: BTreeSet::new(),
        version: Timestamp::default(),
        enforce_role: false,
    };
    let mut groups = BTreeMap::from([(PathId::root(), meta())]);
    for app in apps {
        for ancestor in app.id.ancestors() {
            groups.entry(ancestor).or_insert_with(meta);
        }
    }
    let apps = apps
        .iter()
        .map(|app| (app.id.clone(), Arc::new(normalized(app))))
        .collect();
    RootGroup { apps, groups }
}

/// Applies a `PATCH` body to an app as JSON: the fields given replace the app's.
fn patched(app: &AppDefinition, patch: &Value) -> AppDefinition {
    let mut json = serde_json::to_value(app).expect("app serializes");
    let (Some(target), Some(fields)) = (json.as_object_mut(), patch.as_object()) else {
        panic!("objects expected");
    };
    target.extend(fields.clone());
    parse(&json.to_string())
}

/// The `POST /v2/apps` example with the slips corrected that make Marathon
/// reject it too: it gives both `cmd` and `args`, and its env refers to the
/// secret by its source instead of its name in `secrets`.
fn corrected_post_app() -> AppDefinition {
    let mut json: Value = serde_json::from_str(POST_APP).expect("example is JSON");
    json.as_object_mut().expect("object").remove("args");
    json["env"]["PASSWORD"] = json!({"secret": "secret1"});
    parse(&json.to_string())
}

#[test]
fn post_app_example_as_published_has_two_slips() {
    let found = validate_app(&parse(POST_APP));
    assert_eq!(
        found,
        [
            Violation::new(
                "/",
                "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
            ),
            Violation::new("/env/PASSWORD", "references an undefined secret"),
        ]
    );
}

#[test]
fn post_app_example_corrected_is_valid() {
    let app = corrected_post_app();
    assert_clean(&app);
    let stored = normalized(&app);
    assert_eq!(stored.port_mappings()[0].name.as_deref(), Some("http"));
    assert_eq!(stored.port_definitions, Some(vec![]));
}

#[test]
fn patch_app_example_applies_cleanly() {
    let app = patched(
        &corrected_post_app(),
        &serde_json::from_str(PATCH_APP).unwrap(),
    );
    assert_eq!(app.instances, 2);
    assert_clean(&app);
}

#[test]
fn put_apps_example_is_valid() {
    let apps = parse_all(PUT_APPS);
    assert_eq!(apps.len(), 2);
    for app in &apps {
        assert_clean(app);
    }
    // As a whole target state, the dependency outside the example is missing.
    assert_eq!(
        validate_root(&root_of(&apps)),
        [Violation::new(
            "/dependencies(1)",
            "Dependency '/other/namespace/or/app' of '/test/sleep60' does not exist"
        )]
    );
}

#[test]
fn patch_apps_example_applies_cleanly() {
    let apps = parse_all(PUT_APPS);
    let patches: Vec<Value> = serde_json::from_str(PATCH_APPS).unwrap();
    for patch in &patches {
        let target = apps
            .iter()
            .find(|a| a.id.to_string() == patch["id"])
            .expect("the patch names an app of the PUT example");
        assert_clean(&patched(target, patch));
    }
}

#[test]
fn group_example_apps_are_valid() {
    let apps = parse_all(GROUP_APPS);
    assert_eq!(apps.len(), 3);
    for app in &apps {
        assert_clean(app);
    }
    assert_eq!(validate_root(&root_of(&apps)), []);
}
