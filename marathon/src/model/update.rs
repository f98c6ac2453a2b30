//! Marathon's partial app update (`PUT /v2/apps/{id}` without
//! `partialUpdate=false`, and `PATCH`), as a merge of JSON objects (pure).
//!
//! Top-level fields of the patch replace the app's; a legacy field
//! replaces its modern form (`ports` → `portDefinitions`, `uris` →
//! `fetch`, `container.docker.network` → `networks`); a change of
//! networking drops the port definitions so normalization recomputes them
//! for the new mode; the version is the change's, never the old one.

use serde_json::{json, Map, Value};

use super::{AppDefinition, PathId};

/// The app resulting from applying `patch` to `current` (absent: a new app).
pub fn merge_update(
    current: Option<&AppDefinition>,
    patch: &Map<String, Value>,
    id: &PathId,
) -> Value {
    let mut base = match current.map(serde_json::to_value) {
        Some(Ok(Value::Object(map))) => map,
        _ => Map::new(),
    };
    base.remove("version");
    base.remove("versionInfo");
    for (legacy, modern) in [("ports", "portDefinitions"), ("uris", "fetch")] {
        if patch.contains_key(legacy) {
            base.remove(modern);
        }
    }
    if patch
        .get("container")
        .and_then(|c| c.get("docker"))
        .and_then(|d| d.get("network"))
        .is_some()
    {
        base.remove("networks");
    }
    if (patch.contains_key("networks") || patch.contains_key("container"))
        && !patch.contains_key("portDefinitions")
        && !patch.contains_key("ports")
    {
        base.remove("portDefinitions");
    }
    for (k, v) in patch {
        base.insert(k.clone(), v.clone());
    }
    base.insert("id".into(), json!(id));
    Value::Object(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> AppDefinition {
        let mut app: AppDefinition = serde_json::from_value(json!({
            "id": "/a", "cmd": "old", "instances": 1,
            "portDefinitions": [{"port": 10000}], "fetch": [{"uri": "http://x/a.tgz"}],
            "networks": [{"mode": "host"}]
        }))
        .expect("an app");
        app.normalize(&Default::default());
        app
    }

    /// A patch, the fields absent after it, fields with their value after it.
    type Case = (Value, &'static [&'static str], Vec<(&'static str, Value)>);

    #[test]
    fn a_patch_replaces_top_level_fields_and_legacy_forms() {
        let table: [Case; 6] = [
            (
                json!({"instances": 3}),
                &["version", "versionInfo"],
                vec![("cmd", json!("old")), ("instances", json!(3))],
            ),
            (
                json!({"ports": [0, 0]}),
                &["portDefinitions"],
                vec![("ports", json!([0, 0]))],
            ),
            (json!({"uris": ["http://y"]}), &["fetch"], vec![]),
            (
                json!({"container": {"type": "DOCKER", "docker": {"image": "x", "network": "BRIDGE"}}}),
                &["networks", "portDefinitions"],
                vec![],
            ),
            (
                json!({"networks": [{"mode": "container/bridge"}]}),
                &["portDefinitions"],
                vec![("networks", json!([{"mode": "container/bridge"}]))],
            ),
            (
                json!({"networks": [{"mode": "host"}], "portDefinitions": [{"port": 0}]}),
                &[],
                vec![("portDefinitions", json!([{"port": 0}]))],
            ),
        ];
        let app = current();
        for (patch, absent, present) in table {
            let patch = patch.as_object().cloned().expect("an object");
            let merged = merge_update(Some(&app), &patch, &app.id);
            for field in absent {
                assert!(merged.get(*field).is_none(), "{field} after {patch:?}");
            }
            for (field, value) in present {
                assert_eq!(merged[field], value, "{field} after {patch:?}");
            }
            assert_eq!(merged["id"], "/a");
        }
        let fresh = merge_update(None, &Map::new(), &PathId::parse("/new"));
        assert_eq!(fresh, json!({"id": "/new"}));
    }
}
