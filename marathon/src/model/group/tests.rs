//! Tests of groups: updates, rollback, scaling, rendering.

use super::*;
use serde_json::json;

fn t(n: i64) -> Timestamp {
    Timestamp(1_000_000 + n)
}

fn p(s: &str) -> PathId {
    PathId::parse(s)
}

fn app(id: &str, instances: i64) -> AppDefinition {
    let mut app = AppDefinition::with_id(p(id));
    app.cmd = Some("sleep 100".into());
    app.instances = instances;
    app.normalize(&AppDefaults::default());
    app
}

fn update(body: Value) -> GroupUpdate {
    crate::model::parse_value(body).unwrap()
}

fn ids(root: &RootGroup) -> (Vec<String>, Vec<String>) {
    (
        root.apps.keys().map(|id| id.to_string()).collect(),
        root.groups.keys().map(|id| id.to_string()).collect(),
    )
}

#[test]
fn put_app_stamps_versions_and_creates_groups() {
    let mut root = RootGroup::empty(t(0));
    root.put_app(app("/prod/web/a", 1), t(1));
    let a = root.app(&p("/prod/web/a")).unwrap();
    assert_eq!(a.version, Some(t(1)));
    assert_eq!(
        a.version_info,
        Some(VersionInfo {
            last_scaling_at: t(1),
            last_config_change_at: t(1)
        })
    );
    for g in ["/", "/prod", "/prod/web"] {
        assert_eq!(root.group(&p(g)).unwrap().version, t(1), "{g}");
    }

    // Scale only: the config change time stays.
    root.put_app(app("/prod/web/a", 3), t(2));
    let info = root.app(&p("/prod/web/a")).unwrap().version_info.unwrap();
    assert_eq!(info.last_scaling_at, t(2));
    assert_eq!(info.last_config_change_at, t(1));

    // Upgrade: both move.
    let mut changed = app("/prod/web/a", 3);
    changed.cmd = Some("other".into());
    root.put_app(changed, t(3));
    let a = root.app(&p("/prod/web/a")).unwrap();
    assert_eq!(a.version, Some(t(3)));
    assert_eq!(a.version_info.unwrap().last_config_change_at, t(3));

    // Unchanged through put_app_if_changed: nothing moves.
    assert!(!root.put_app_if_changed(AppDefinition::clone(a), t(4)));
    assert_eq!(root.app(&p("/prod/web/a")).unwrap().version, Some(t(3)));

    assert!(root.restart_app(&p("/prod/web/a"), t(5)));
    let info = root.app(&p("/prod/web/a")).unwrap().version_info.unwrap();
    assert_eq!(info.last_config_change_at, t(5));
    assert!(!root.restart_app(&p("/nope"), t(5)));
}

#[test]
fn remove_apps_and_groups() {
    let mut root = RootGroup::empty(t(0));
    root.put_app(app("/prod/a", 1), t(1));
    root.put_app(app("/prod/sub/b", 1), t(1));
    root.put_app(app("/production/c", 1), t(1));
    root.put_app(app("/top", 1), t(1));

    assert!(root.remove_app(&p("/prod/a"), t(2)).is_some());
    assert!(root.remove_app(&p("/prod/a"), t(2)).is_none());
    assert_eq!(root.group(&p("/prod")).unwrap().version, t(2));
    assert_eq!(root.group(&p("/prod/sub")).unwrap().version, t(1));

    assert!(root.remove_group(&p("/prod"), t(3)));
    assert!(!root.remove_group(&p("/prod"), t(3)));
    let (apps, groups) = ids(&root);
    assert_eq!(apps, vec!["/production/c", "/top"]);
    assert_eq!(groups, vec!["/", "/production"]);
    assert_eq!(root.version(), t(3));

    assert!(root.remove_group(&PathId::root(), t(4)));
    assert_eq!(root, RootGroup::empty(t(4)));
}

#[test]
fn tree_queries_respect_segment_boundaries() {
    let mut root = RootGroup::empty(t(0));
    for id in ["/a/x", "/a/b/y", "/a/b/c/z", "/ab/w", "/q"] {
        root.put_app(app(id, 1), t(1));
    }
    let under_a: Vec<String> = root
        .transitive_apps(&p("/a"))
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(under_a, vec!["/a/b/c/z", "/a/b/y", "/a/x"]);
    assert_eq!(root.transitive_apps(&PathId::root()).count(), 5);
    assert_eq!(root.transitive_apps(&p("/nope")).count(), 0);
    assert_eq!(root.child_groups(&p("/a")), vec![p("/a/b")]);
    assert_eq!(root.child_groups(&PathId::root()), vec![p("/a"), p("/ab")]);
    let direct: Vec<String> = root
        .child_apps(&PathId::root())
        .iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(direct, vec!["/q"]);
}

#[test]
fn renders_marathon_group_json() {
    let mut root = RootGroup::empty(t(0));
    root.put_app(app("/prod/b", 1), t(1));
    root.put_app(app("/prod/a", 1), t(1));
    root.put_app(app("/prod/db/pg", 1), t(2));
    root.groups
        .get_mut(&p("/prod"))
        .unwrap()
        .dependencies
        .insert(p("/infra"));
    let mut app_json = |a: &AppDefinition| json!({"id": a.id.to_string()});

    let all = root
        .render(&PathId::root(), &GroupEmbed::default(), &mut app_json)
        .unwrap();
    assert_eq!(
        all,
        json!({
            "id": "/", "dependencies": [], "version": t(2).to_string(), "enforceRole": false,
            "apps": [], "pods": [],
            "groups": [{
                "id": "/prod", "dependencies": ["/infra"], "version": t(2).to_string(),
                "enforceRole": false, "pods": [],
                "apps": [{"id": "/prod/a"}, {"id": "/prod/b"}],
                "groups": [{
                    "id": "/prod/db", "dependencies": [], "version": t(2).to_string(),
                    "enforceRole": false, "pods": [], "apps": [{"id": "/prod/db/pg"}], "groups": [],
                }],
            }],
        })
    );

    let apps_only = GroupEmbed::from_query(["group.apps"]);
    let prod = root.render(&p("/prod"), &apps_only, &mut app_json).unwrap();
    assert_eq!(prod["apps"].as_array().unwrap().len(), 2);
    assert!(prod.get("groups").is_none());
    assert!(prod.get("pods").is_none());
    assert!(root
        .render(&p("/nope"), &apps_only, &mut app_json)
        .is_none());
}

#[test]
fn embed_from_query() {
    assert_eq!(GroupEmbed::from_query([]), GroupEmbed::default());
    assert_eq!(
        GroupEmbed::from_query(["group.groups", "group.apps.tasks"]),
        GroupEmbed {
            apps: false,
            groups: true,
            pods: false
        }
    );
}

#[test]
fn update_resolves_relative_ids_and_creates_groups() {
    let root = RootGroup::empty(t(0));
    let body = json!({
        "id": "/prod",
        "dependencies": ["../infra"],
        "apps": [{"id": "web", "cmd": "x", "dependencies": ["db/pg", "/infra/dns"]}],
        "groups": [
            {"id": "db", "apps": [{"id": "pg", "cmd": "y", "instances": 2}]},
            {"id": "/prod/cache", "apps": [{"id": "/prod/cache/redis", "cmd": "z"}]},
        ],
    });
    let next = root
        .apply_update(&p("/prod"), update(body), t(1), &AppDefaults::default())
        .unwrap();
    let (apps, groups) = ids(&next);
    assert_eq!(apps, vec!["/prod/cache/redis", "/prod/db/pg", "/prod/web"]);
    assert_eq!(groups, vec!["/", "/prod", "/prod/cache", "/prod/db"]);
    let web = next.app(&p("/prod/web")).unwrap();
    assert_eq!(web.dependencies, vec![p("/prod/db/pg"), p("/infra/dns")]);
    assert_eq!(web.version, Some(t(1)));
    assert_eq!(web.role.as_deref(), Some("*"));
    assert_eq!(next.app(&p("/prod/db/pg")).unwrap().instances, 2);
    let prod = next.group(&p("/prod")).unwrap();
    assert_eq!(prod.dependencies, BTreeSet::from([p("/infra")]));
    assert_eq!(prod.version, t(1));
    assert_eq!(next.version(), t(1));
}

#[test]
fn update_replaces_listed_collections_and_keeps_unchanged_apps() {
    let mut root = RootGroup::empty(t(0));
    root.put_app(app("/prod/keep", 1), t(1));
    root.put_app(app("/prod/change", 1), t(1));
    root.put_app(app("/prod/drop", 1), t(1));
    root.put_app(app("/prod/old/x", 1), t(1));
    root.put_app(app("/prod/stay/y", 1), t(1));
    root.put_app(app("/other/z", 1), t(1));

    let body = json!({
        "apps": [
            {"id": "keep", "cmd": "sleep 100", "version": "2001-01-01T00:00:00.000Z"},
            {"id": "change", "cmd": "sleep 100", "instances": 4},
        ],
        "groups": [{"id": "stay"}, {"id": "new", "apps": [{"id": "n", "cmd": "c"}]}],
    });
    let next = root
        .apply_update(&p("/prod"), update(body), t(2), &AppDefaults::default())
        .unwrap();
    let (apps, groups) = ids(&next);
    assert_eq!(
        apps,
        vec![
            "/other/z",
            "/prod/change",
            "/prod/keep",
            "/prod/new/n",
            "/prod/stay/y"
        ]
    );
    assert_eq!(
        groups,
        vec!["/", "/other", "/prod", "/prod/new", "/prod/stay"]
    );
    assert_eq!(next.app(&p("/prod/keep")).unwrap().version, Some(t(1)));
    let change = next.app(&p("/prod/change")).unwrap();
    assert_eq!(change.version, Some(t(2)));
    assert_eq!(change.version_info.unwrap().last_config_change_at, t(1));
    // Untouched subtree apps keep their version, listed groups get the new one.
    assert_eq!(next.app(&p("/prod/stay/y")).unwrap().version, Some(t(1)));
    assert_eq!(next.group(&p("/prod/stay")).unwrap().version, t(2));
    assert_eq!(next.group(&p("/other")).unwrap().version, t(1));

    // Only dependencies: apps and groups stay.
    let next2 = next
        .apply_update(
            &p("/prod"),
            update(json!({"dependencies": ["/other"]})),
            t(3),
            &AppDefaults::default(),
        )
        .unwrap();
    assert_eq!(ids(&next2), ids(&next));
    assert_eq!(
        next2.group(&p("/prod")).unwrap().dependencies,
        BTreeSet::from([p("/other")])
    );
}

#[test]
fn update_errors_carry_paths() {
    let mut root = RootGroup::empty(t(0));
    root.put_app(app("/prod/web", 1), t(1));
    let defaults = AppDefaults::default();

    let err = root
        .apply_update(
            &p("/prod"),
            update(json!({"apps": [{"id": "a", "cmd": "x"}, {"id": "b", "cmd": 5}]})),
            t(2),
            &defaults,
        )
        .unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(err.body()["details"][0]["path"], "/apps(1)/cmd");

    let err = root
        .apply_update(
            &p("/"),
            update(json!({"groups": [{"id": "g", "apps": [{"id": "a", "instances": "x"}]}]})),
            t(2),
            &defaults,
        )
        .unwrap_err();
    assert_eq!(
        err.body()["details"][0]["path"],
        "/groups(0)/apps(0)/instances"
    );

    let err = root
        .apply_update(
            &p("/group"),
            update(json!({"apps": [{"id": "/app", "cmd": "x"}]})),
            t(2),
            &defaults,
        )
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::invalid(
            "/apps(0)/id",
            "identifier /app is not child of /group. Hint: use relative paths."
        )
    );

    let err = root
        .apply_update(
            &p("/prod"),
            update(json!({"groups": [{"id": "a/b"}]})),
            t(2),
            &defaults,
        )
        .unwrap_err();
    assert_eq!(err.body()["details"][0]["path"], "/groups(0)/id");

    // An app where a group goes, and a group where an app is.
    let err = root
        .apply_update(
            &PathId::root(),
            update(json!({"apps": [{"id": "prod", "cmd": "x"}]})),
            t(2),
            &defaults,
        )
        .unwrap_err();
    assert_eq!(err, ApiError::invalid("/", SAME_IDENTIFIER));
    let err = root
        .apply_update(&p("/prod/web"), update(json!({})), t(2), &defaults)
        .unwrap_err();
    assert_eq!(err, ApiError::invalid("/", SAME_IDENTIFIER));

    let err = root
        .apply_update(
            &p("/prod"),
            update(json!({"scaleBy": 2, "apps": []})),
            t(2),
            &defaults,
        )
        .unwrap_err();
    assert_eq!(err, ApiError::invalid("/scaleBy", ONLY_DEFINED));
    let err = root
        .apply_update(
            &p("/prod"),
            update(json!({"version": "2020-01-01T00:00:00Z", "groups": []})),
            t(2),
            &defaults,
        )
        .unwrap_err();
    assert_eq!(err.status(), 422);
    let err = root
        .apply_update(
            &p("/prod"),
            update(json!({"version": "2020-01-01T00:00:00Z"})),
            t(2),
            &defaults,
        )
        .unwrap_err();
    assert_eq!(err.status(), 500);
}

#[test]
fn scale_by_scales_every_app_beneath() {
    let mut root = RootGroup::empty(t(0));
    root.put_app(app("/prod/a", 3), t(1));
    root.put_app(app("/prod/sub/b", 0), t(1));
    root.put_app(app("/prod/sub/c", 10), t(1));
    root.put_app(app("/other", 2), t(1));
    let next = root
        .apply_update(
            &p("/prod"),
            update(json!({"scaleBy": 1.5})),
            t(2),
            &AppDefaults::default(),
        )
        .unwrap();
    let n = |id: &str| next.app(&p(id)).unwrap().instances;
    assert_eq!(
        (n("/prod/a"), n("/prod/sub/b"), n("/prod/sub/c")),
        (5, 0, 15)
    );
    assert_eq!(n("/other"), 2);
    let a = next.app(&p("/prod/a")).unwrap().version_info.unwrap();
    assert_eq!((a.last_scaling_at, a.last_config_change_at), (t(2), t(1)));
    assert_eq!(next.group(&p("/prod")).unwrap().version, t(2));

    let down = root.scale_group(&PathId::root(), 0.7, t(3));
    assert_eq!(down.app(&p("/prod/sub/c")).unwrap().instances, 7);
    assert_eq!(down.app(&p("/prod/a")).unwrap().instances, 3);
    assert_eq!(down.app(&p("/other")).unwrap().instances, 2);
}

#[test]
fn enforced_role_is_the_default_role() {
    let root = RootGroup::empty(t(0));
    let next = root
        .apply_update(
            &p("/dev"),
            update(
                json!({"enforceRole": true, "apps": [{"id": "a", "cmd": "x"}],
                "groups": [{"id": "sub", "apps": [{"id": "b", "cmd": "x", "role": "*"}]}]}),
            ),
            t(1),
            &AppDefaults::default(),
        )
        .unwrap();
    assert!(next.group(&p("/dev")).unwrap().enforce_role);
    assert_eq!(next.app(&p("/dev/a")).unwrap().role.as_deref(), Some("dev"));
    assert_eq!(
        next.app(&p("/dev/sub/b")).unwrap().role.as_deref(),
        Some("*")
    );
    assert_eq!(next.enforced_role(&p("/dev/sub/c")).as_deref(), Some("dev"));
    assert_eq!(next.enforced_role(&p("/dev")), None);
    // Not given: kept.
    let again = next
        .apply_update(&p("/dev"), update(json!({})), t(2), &AppDefaults::default())
        .unwrap();
    assert!(again.group(&p("/dev")).unwrap().enforce_role);
}

#[test]
fn marathon_request_example_applies() {
    let body = json!({
        "id": "/",
        "apps": [],
        "groups": [{
            "id": "/tools",
            "apps": [{
                "id": "/tools/oauth-server", "instances": 2, "cpus": 1, "mem": 1024,
                "ports": [1980], "container": {"type": "DOCKER", "volumes": [],
                    "docker": {"image": "oauth", "network": "HOST"}},
                "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0},
                "version": "2015-09-28T19:47:37.681Z",
                "versionInfo": {"lastScalingAt": "2015-09-28T19:47:37.681Z",
                    "lastConfigChangeAt": "2015-09-28T19:47:37.681Z"}
            }],
            "groups": [{"id": "/tools/log", "apps": [], "groups": [], "dependencies": [],
                "version": "2015-09-17T10:38:20.875Z"}],
            "dependencies": []
        }],
        "pods": []
    });
    let next = RootGroup::empty(t(0))
        .apply_update(&PathId::root(), update(body), t(5), &AppDefaults::default())
        .unwrap();
    let oauth = next.app(&p("/tools/oauth-server")).unwrap();
    assert_eq!(oauth.version, Some(t(5)));
    assert_eq!(oauth.port_definitions.as_ref().unwrap()[0].port, 1980);
    assert!(next.group(&p("/tools/log")).is_some());
}

#[test]
fn rollback_takes_the_old_subtree() {
    let mut old = RootGroup::empty(t(0));
    old.put_app(app("/prod/a", 1), t(1));
    old.put_app(app("/prod/sub/b", 2), t(1));
    old.put_app(app("/other/c", 1), t(1));
    old.groups.get_mut(&p("/prod")).unwrap().enforce_role = true;

    let mut current = old.clone();
    current.put_app(app("/prod/a", 1), t(2)); // same definition, new version
    current.put_app(app("/prod/sub/b", 5), t(2));
    current.put_app(app("/prod/new/d", 1), t(2));
    current.remove_group(&p("/prod/sub"), t(2));
    current.put_app(app("/prod/sub/b", 5), t(2));
    current.put_app(app("/other/c", 9), t(2));
    current.groups.get_mut(&p("/prod")).unwrap().enforce_role = false;

    let back = current.with_group_from(&p("/prod"), &old, t(3));
    let (apps, groups) = ids(&back);
    assert_eq!(apps, vec!["/other/c", "/prod/a", "/prod/sub/b"]);
    assert_eq!(groups, vec!["/", "/other", "/prod", "/prod/sub"]);
    // Equal to the current one: kept as is.
    assert_eq!(back.app(&p("/prod/a")).unwrap().version, Some(t(2)));
    let b = back.app(&p("/prod/sub/b")).unwrap();
    assert_eq!((b.instances, b.version), (2, Some(t(3))));
    assert_eq!(back.app(&p("/other/c")).unwrap().instances, 9);
    let prod = back.group(&p("/prod")).unwrap();
    assert!(prod.enforce_role);
    assert_eq!(prod.version, t(3));
    assert_eq!(back.version(), t(3));

    let whole = current.with_group_from(&PathId::root(), &old, t(4));
    assert_eq!(ids(&whole), ids(&old));
}

#[test]
fn pods_anywhere_in_an_update_are_refused_by_path_and_none_accepted() {
    let update =
        |v: serde_json::Value| -> GroupUpdate { serde_json::from_value(v).expect("update") };
    let none = update(json!({"id": "/a", "pods": [], "groups": [{"id": "b", "pods": null}]}));
    assert!(none.unsupported().is_empty());
    assert!(update(json!({"id": "/a"})).unsupported().is_empty());
    let some = update(json!({
        "pods": [{"id": "p"}],
        "groups": [{"id": "x"}, {"id": "y", "groups": [{"id": "z", "pods": {"id": "q"}}]}]
    }));
    let paths: Vec<String> = some.unsupported().into_iter().map(|v| v.path).collect();
    assert_eq!(paths, ["/pods", "/groups(1)/groups(0)/pods"]);
    assert_eq!(some.unsupported()[0].errors, [NO_PODS]);
}
