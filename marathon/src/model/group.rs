//! Groups: a tree of apps, held flat (every app and group by its path) so
//! that lookups, storage and diffs are per entry; the nested JSON of
//! `/v2/groups` is rendered on demand.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::app::{AppDefaults, AppDefinition, VersionInfo};
use super::path::PathId;
use super::timestamp::Timestamp;
use crate::error::{ApiError, Violation};

/// What a group holds besides its apps and subgroups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMeta {
    /// Apps or groups that must be deployed before this group's apps.
    #[serde(default)]
    pub dependencies: BTreeSet<PathId>,
    /// When the group last changed.
    pub version: Timestamp,
    /// Whether apps in the group must use the group's role.
    #[serde(default)]
    pub enforce_role: bool,
}

/// The whole state of apps and groups. Every group on the way to an app
/// exists in `groups`; the root `/` always does.
#[derive(Debug, Clone, PartialEq)]
pub struct RootGroup {
    /// Every app by its id.
    pub apps: BTreeMap<PathId, Arc<AppDefinition>>,
    /// Every group by its id, the root included.
    pub groups: BTreeMap<PathId, GroupMeta>,
}

impl GroupMeta {
    /// A group with no dependencies that does not enforce its role.
    pub fn new(version: Timestamp) -> Self {
        GroupMeta {
            dependencies: BTreeSet::new(),
            version,
            enforce_role: false,
        }
    }
}

/// Which collections `GET /v2/groups` embeds in each group.
///
/// A collection that is not embedded is left out of the group's JSON (as
/// Marathon's `GroupInfo` does); Marathon's default, used when the request
/// names no `embed`, embeds all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupEmbed {
    /// `group.apps`: the group's own apps.
    pub apps: bool,
    /// `group.groups`: the subgroups, recursively.
    pub groups: bool,
    /// `group.pods`: the group's pods (always empty in Agora).
    pub pods: bool,
}

impl Default for GroupEmbed {
    fn default() -> Self {
        GroupEmbed {
            apps: true,
            groups: true,
            pods: true,
        }
    }
}

impl GroupEmbed {
    /// From the `embed` query values: none given is the default; otherwise
    /// exactly `group.apps`, `group.groups` and `group.pods` count (the
    /// `group.apps.*` values are about the apps' own JSON, not about groups).
    pub fn from_query<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let values: Vec<&str> = values.into_iter().collect();
        if values.is_empty() {
            return GroupEmbed::default();
        }
        GroupEmbed {
            apps: values.contains(&"group.apps"),
            groups: values.contains(&"group.groups"),
            pods: values.contains(&"group.pods"),
        }
    }
}

/// The body of `POST`/`PUT /v2/groups[/{id}]`.
///
/// Apps are kept as JSON until [`RootGroup::apply_update`] has resolved their
/// ids against the group they are in; pods are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupUpdate {
    /// The group's id, relative to the group the request names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The group's apps (all of them: apps not listed are removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<Value>>,
    /// The group's subgroups (all of them: subgroups not listed are removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupUpdate>>,
    /// The group's dependencies, relative to the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Vec<String>>,
    /// Scale every app beneath the group by this factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_by: Option<f64>,
    /// Roll the group back to this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Timestamp>,
    /// Whether apps in the group must use the group's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_role: Option<bool>,
    /// Pods: accepted, ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Value>,
}

impl GroupUpdate {
    /// Whether the update changes the group's structure (apps, subgroups or dependencies).
    fn is_structural(&self) -> bool {
        self.apps.is_some() || self.groups.is_some() || self.dependencies.is_some()
    }
}

/// Marathon's message for `scaleBy` or `version` given with other fields.
const ONLY_DEFINED: &str = "not allowed in conjunction with other properties.";

/// Marathon's message for an app and a group of the same id.
pub const SAME_IDENTIFIER: &str = "Groups and Applications may not have the same identifier.";

fn not_child(child: &PathId, parent: &PathId) -> String {
    format!("identifier {child} is not child of {parent}. Hint: use relative paths.")
}

/// Puts `prefix` in front of every violation's path (`/cmd` under
/// `/apps(0)` is `/apps(0)/cmd`; the whole object `/` is the prefix itself).
fn prefix_error(err: ApiError, prefix: &str) -> ApiError {
    let prefixed = |violations: Vec<Violation>| {
        violations
            .into_iter()
            .map(|v| Violation {
                path: if v.path == "/" || v.path.is_empty() {
                    prefix.to_string()
                } else {
                    format!("{prefix}{}", v.path)
                },
                errors: v.errors,
            })
            .collect()
    };
    match err {
        ApiError::Invalid(v) => ApiError::Invalid(prefixed(v)),
        ApiError::InvalidJson(v) => ApiError::InvalidJson(prefixed(v)),
        other => other,
    }
}

/// Whether two apps are the same definition, versions aside.
fn same_definition(a: &AppDefinition, b: &AppDefinition) -> bool {
    let unversioned = |app: &AppDefinition| {
        let mut app = app.clone();
        app.version = None;
        app.version_info = None;
        app
    };
    unversioned(a) == unversioned(b)
}

impl RootGroup {
    /// Just the root group, at `version`.
    pub fn empty(version: Timestamp) -> Self {
        let mut groups = BTreeMap::new();
        groups.insert(PathId::root(), GroupMeta::new(version));
        RootGroup {
            apps: BTreeMap::new(),
            groups,
        }
    }

    /// The version of the root group.
    pub fn version(&self) -> Timestamp {
        self.groups
            .get(&PathId::root())
            .map(|g| g.version)
            .unwrap_or_default()
    }

    /// The app of this id.
    pub fn app(&self, id: &PathId) -> Option<&Arc<AppDefinition>> {
        self.apps.get(id)
    }

    /// The group of this id.
    pub fn group(&self, id: &PathId) -> Option<&GroupMeta> {
        self.groups.get(id)
    }

    /// Creates `id` and the groups above it where missing, and sets the
    /// version of all of them to `version`.
    fn touch_group(&mut self, id: &PathId, version: Timestamp) {
        for group in id
            .ancestors()
            .into_iter()
            .chain(std::iter::once(id.clone()))
        {
            self.groups
                .entry(group)
                .and_modify(|g| g.version = version)
                .or_insert_with(|| GroupMeta::new(version));
        }
    }

    /// Stores `app` as of `version`: `version` becomes the app's version;
    /// a new app or an upgrade of the stored one changes both times of
    /// `versionInfo`, a change of `instances` only (or none) changes
    /// `lastScalingAt` and keeps `lastConfigChangeAt`. Missing groups above
    /// the app are created and every group above it gets `version`.
    pub fn put_app(&mut self, mut app: AppDefinition, version: Timestamp) {
        let config_change_at = match self.apps.get(&app.id) {
            Some(stored) if stored.is_only_scale_change(&app) => stored
                .version_info
                .map(|v| v.last_config_change_at)
                .or(stored.version)
                .unwrap_or(version),
            _ => version,
        };
        app.version = Some(version);
        app.version_info = Some(VersionInfo {
            last_scaling_at: version,
            last_config_change_at: config_change_at,
        });
        self.touch_group(&app.id.parent(), version);
        self.apps.insert(app.id.clone(), Arc::new(app));
    }

    /// Like [`RootGroup::put_app`], but an app equal to the stored one
    /// (versions aside) is left as stored, its version kept. Returns whether
    /// the app was stored anew.
    pub fn put_app_if_changed(&mut self, app: AppDefinition, version: Timestamp) -> bool {
        if let Some(stored) = self.apps.get(&app.id) {
            if same_definition(stored, &app) {
                return false;
            }
        }
        self.put_app(app, version);
        true
    }

    /// Marks the app for a restart: same definition, new version, and
    /// `lastConfigChangeAt` = `version` so the planner replaces its instances.
    /// Returns false if there is no such app.
    pub fn restart_app(&mut self, id: &PathId, version: Timestamp) -> bool {
        let Some(stored) = self.apps.get(id) else {
            return false;
        };
        let mut app = AppDefinition::clone(stored);
        app.version = Some(version);
        app.version_info = Some(VersionInfo {
            last_scaling_at: version,
            last_config_change_at: version,
        });
        self.touch_group(&id.parent(), version);
        self.apps.insert(id.clone(), Arc::new(app));
        true
    }

    /// Removes the app; the groups above it get `version`.
    pub fn remove_app(&mut self, id: &PathId, version: Timestamp) -> Option<Arc<AppDefinition>> {
        let removed = self.apps.remove(id)?;
        for group in id.ancestors() {
            if let Some(meta) = self.groups.get_mut(&group) {
                meta.version = version;
            }
        }
        Some(removed)
    }

    /// Removes the group with its subgroups and all apps beneath; the groups
    /// above it get `version`. The root is emptied (and reset) rather than
    /// removed. Returns false if there is no such group.
    pub fn remove_group(&mut self, id: &PathId, version: Timestamp) -> bool {
        if id.is_root() {
            *self = RootGroup::empty(version);
            return true;
        }
        if !self.groups.contains_key(id) {
            return false;
        }
        self.groups.retain(|g, _| !g.starts_with(id));
        self.apps.retain(|a, _| !a.starts_with(id));
        for group in id.ancestors() {
            if let Some(meta) = self.groups.get_mut(&group) {
                meta.version = version;
            }
        }
        true
    }

    /// Every app beneath `group`, at any depth, by id.
    pub fn transitive_apps(&self, group: &PathId) -> impl Iterator<Item = &Arc<AppDefinition>> {
        let prefix = group.clone();
        self.apps
            .range(group.clone()..)
            .take_while(move |(id, _)| id.starts_with(&prefix))
            .map(|(_, app)| app)
    }

    /// The direct subgroups of `group`, by id.
    pub fn child_groups(&self, group: &PathId) -> Vec<PathId> {
        self.groups
            .range(group.clone()..)
            .take_while(|(id, _)| id.starts_with(group))
            .filter(|(id, _)| id.segments().len() == group.segments().len() + 1)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The apps directly in `group`, by id.
    pub fn child_apps(&self, group: &PathId) -> Vec<&Arc<AppDefinition>> {
        self.transitive_apps(group)
            .filter(|app| app.id.segments().len() == group.segments().len() + 1)
            .collect()
    }

    /// The role an app of id `app_id` must use if its top-level group
    /// enforces its role: the top-level group's name. `None` for apps
    /// directly in the root and in groups that do not enforce their role.
    pub fn enforced_role(&self, app_id: &PathId) -> Option<String> {
        let segments = app_id.segments();
        if segments.len() < 2 {
            return None;
        }
        let top = PathId::from_segments(vec![segments[0].clone()]);
        self.groups
            .get(&top)
            .filter(|g| g.enforce_role)
            .map(|_| segments[0].clone())
    }

    /// The defaults to normalize the app `app_id` with: in a top-level group
    /// that enforces its role, the group's name is the default role.
    pub fn app_defaults_for(&self, app_id: &PathId, defaults: &AppDefaults) -> AppDefaults {
        let mut defaults = defaults.clone();
        if let Some(role) = self.enforced_role(app_id) {
            defaults.role = role;
        }
        defaults
    }

    /// Marathon's group JSON: `{"id", "dependencies", "version",
    /// "enforceRole", "apps", "groups", "pods"}`, the embedded collections
    /// only (see [`GroupEmbed`]). Apps are rendered by `app_json`, subgroups
    /// recursively with the same embed, both sorted by id. `None` if there is
    /// no such group.
    pub fn render(
        &self,
        group: &PathId,
        embed: &GroupEmbed,
        app_json: &mut dyn FnMut(&AppDefinition) -> Value,
    ) -> Option<Value> {
        let meta = self.groups.get(group)?;
        let mut obj = serde_json::Map::new();
        obj.insert("id".into(), Value::String(group.to_string()));
        obj.insert(
            "dependencies".into(),
            Value::Array(
                meta.dependencies
                    .iter()
                    .map(|d| Value::String(d.to_string()))
                    .collect(),
            ),
        );
        obj.insert("version".into(), Value::String(meta.version.to_string()));
        obj.insert("enforceRole".into(), Value::Bool(meta.enforce_role));
        if embed.apps {
            let apps = self
                .child_apps(group)
                .into_iter()
                .map(|app| app_json(app))
                .collect();
            obj.insert("apps".into(), Value::Array(apps));
        }
        if embed.groups {
            let groups = self
                .child_groups(group)
                .iter()
                .filter_map(|child| self.render(child, embed, app_json))
                .collect();
            obj.insert("groups".into(), Value::Array(groups));
        }
        if embed.pods {
            obj.insert("pods".into(), Value::Array(Vec::new()));
        }
        Some(Value::Object(obj))
    }

    /// The root group after `update` of the group `group_id`, as Marathon's
    /// `POST`/`PUT /v2/groups`.
    ///
    /// `update.id` is not looked at: the caller resolves it (against the
    /// group the request names) into `group_id`. The group (and the groups
    /// above it) is created if missing. Ids inside
    /// the update are relative to the group they are in: an app's `id` and
    /// `dependencies` to its group, a subgroup's `id` to its parent, the
    /// group's `dependencies` to the group itself. `apps` replaces the
    /// group's own apps, `groups` its subgroups (recursively; unlisted ones
    /// are removed with all beneath), `dependencies` its dependencies;
    /// absent fields keep what is there. Changed and new apps are stamped
    /// with `version` ([`RootGroup::put_app`]), unchanged ones keep theirs.
    ///
    /// `scaleBy` alone scales every app beneath ([`RootGroup::scale_group`]);
    /// in a subgroup it is refused. A subgroup's `version` is ignored (a
    /// group's JSON as `GET` gives it can be sent back).
    /// A `version` (rollback) needs the group's history: the caller fetches
    /// the old root group and uses [`RootGroup::with_group_from`]; here it is
    /// only checked to stand alone.
    ///
    /// Errors: a 400/422 from parsing an app with the path prefixed
    /// (`/apps(0)/cmd`, `/groups(1)/apps(0)/id`); 422 for an app or subgroup
    /// id outside its group, for `scaleBy`/`version` with structural fields,
    /// and for an app and a group of the same id.
    pub fn apply_update(
        &self,
        group_id: &PathId,
        update: GroupUpdate,
        version: Timestamp,
        defaults: &AppDefaults,
    ) -> Result<RootGroup, ApiError> {
        if update.version.is_some() {
            if update.is_structural() {
                return Err(ApiError::invalid("/version", ONLY_DEFINED));
            }
            return Err(ApiError::Internal(
                "a group rollback is applied with RootGroup::with_group_from".into(),
            ));
        }
        if let Some(factor) = update.scale_by {
            if update.is_structural() {
                return Err(ApiError::invalid("/scaleBy", ONLY_DEFINED));
            }
            return Ok(self.scale_group(group_id, factor, version));
        }
        let mut root = self.clone();
        root.touch_group(group_id, version);
        root.update_structure(group_id, update, version, defaults, "")?;
        root.check_ids()?;
        Ok(root)
    }

    fn update_structure(
        &mut self,
        gid: &PathId,
        update: GroupUpdate,
        version: Timestamp,
        defaults: &AppDefaults,
        prefix: &str,
    ) -> Result<(), ApiError> {
        {
            let meta = self
                .groups
                .entry(gid.clone())
                .or_insert_with(|| GroupMeta::new(version));
            meta.version = version;
            if let Some(deps) = &update.dependencies {
                meta.dependencies = deps
                    .iter()
                    .map(|d| PathId::parse_relative(d, gid))
                    .collect();
            }
            if let Some(enforce) = update.enforce_role {
                meta.enforce_role = enforce;
            }
        }

        if let Some(apps) = update.apps {
            let app_defaults = self.app_defaults_for(&gid.child("app"), defaults);
            let mut new_apps = Vec::with_capacity(apps.len());
            for (i, json) in apps.into_iter().enumerate() {
                let at = format!("{prefix}/apps({i})");
                let app =
                    parse_nested_app(json, gid, &app_defaults).map_err(|e| prefix_error(e, &at))?;
                new_apps.push(app);
            }
            let listed: BTreeSet<PathId> = new_apps.iter().map(|a| a.id.clone()).collect();
            let stale: Vec<PathId> = self
                .child_apps(gid)
                .into_iter()
                .map(|a| a.id.clone())
                .filter(|id| !listed.contains(id))
                .collect();
            for id in stale {
                self.remove_app(&id, version);
            }
            for app in new_apps {
                self.put_app_if_changed(app, version);
            }
        }

        if let Some(groups) = update.groups {
            let mut resolved = Vec::with_capacity(groups.len());
            for (i, sub) in groups.into_iter().enumerate() {
                let at = format!("{prefix}/groups({i})");
                if sub.scale_by.is_some() {
                    return Err(ApiError::invalid(format!("{at}/scaleBy"), ONLY_DEFINED));
                }
                let Some(raw_id) = sub.id.as_deref() else {
                    return Err(ApiError::invalid(format!("{at}/id"), "error.path.missing"));
                };
                let sub_id = PathId::parse_relative(raw_id, gid);
                if sub_id.is_root() || sub_id.parent() != *gid {
                    return Err(ApiError::invalid(
                        format!("{at}/id"),
                        not_child(&sub_id, gid),
                    ));
                }
                resolved.push((sub_id, sub, at));
            }
            let listed: BTreeSet<PathId> = resolved.iter().map(|(id, _, _)| id.clone()).collect();
            for child in self.child_groups(gid) {
                if !listed.contains(&child) {
                    self.remove_group(&child, version);
                }
            }
            for (sub_id, sub, at) in resolved {
                self.update_structure(&sub_id, sub, version, defaults, &at)?;
            }
        }
        Ok(())
    }

    /// 422 if an app and a group share an id.
    fn check_ids(&self) -> Result<(), ApiError> {
        if self.apps.keys().any(|id| self.groups.contains_key(id)) {
            return Err(ApiError::invalid("/", SAME_IDENTIFIER));
        }
        Ok(())
    }

    /// This root group with the group `group_id` (its subgroups and apps
    /// included) replaced by its content in `old`, a previous root group:
    /// Marathon's group rollback. Apps that differ from the current ones are
    /// stamped with `version` as by [`RootGroup::put_app`], equal ones are
    /// kept; the group and those above it get `version`. If `old` has no
    /// such group, the group is left empty.
    pub fn with_group_from(
        &self,
        group_id: &PathId,
        old: &RootGroup,
        version: Timestamp,
    ) -> RootGroup {
        let mut root = self.clone();
        let old_apps: Vec<&Arc<AppDefinition>> = old.transitive_apps(group_id).collect();
        let old_ids: BTreeSet<&PathId> = old_apps.iter().map(|app| &app.id).collect();
        root.apps
            .retain(|id, _| !id.starts_with(group_id) || old_ids.contains(id));
        root.groups
            .retain(|id, _| id.is_root() || !id.starts_with(group_id));
        for (id, meta) in old.groups.range(group_id.clone()..) {
            if !id.starts_with(group_id) {
                break;
            }
            root.groups.insert(id.clone(), meta.clone());
        }
        root.touch_group(group_id, version);
        for app in old_apps {
            root.put_app_if_changed(AppDefinition::clone(app), version);
        }
        root
    }

    /// This root group with every app beneath `group_id` scaled to
    /// `ceil(instances * factor)` instances (never below 0); scaled apps are
    /// stamped as scale changes, and the group and those above it get `version`.
    pub fn scale_group(&self, group_id: &PathId, factor: f64, version: Timestamp) -> RootGroup {
        let mut root = self.clone();
        let apps: Vec<Arc<AppDefinition>> = self.transitive_apps(group_id).cloned().collect();
        for app in apps {
            let scaled = ((app.instances as f64) * factor - 1e-9).ceil().max(0.0) as i64;
            if scaled != app.instances {
                let mut app = AppDefinition::clone(&app);
                app.instances = scaled;
                root.put_app(app, version);
            }
        }
        if root.groups.contains_key(group_id) {
            root.touch_group(group_id, version);
        }
        root
    }
}

/// Parses one app of a group update: its `id` and `dependencies` are
/// resolved against the group `gid` first, then it is parsed and normalized.
fn parse_nested_app(
    mut json: Value,
    gid: &PathId,
    defaults: &AppDefaults,
) -> Result<AppDefinition, ApiError> {
    if let Some(obj) = json.as_object_mut() {
        if let Some(Value::String(id)) = obj.get("id") {
            let resolved = PathId::parse_relative(id, gid).to_string();
            obj.insert("id".into(), Value::String(resolved));
        }
        if let Some(Value::Array(deps)) = obj.get_mut("dependencies") {
            for dep in deps.iter_mut() {
                if let Value::String(d) = dep {
                    *d = PathId::parse_relative(d, gid).to_string();
                }
            }
        }
    }
    let mut app: AppDefinition = super::parse_value(json)?;
    if app.id.is_root() || app.id.parent() != *gid {
        return Err(ApiError::invalid("/id", not_child(&app.id, gid)));
    }
    app.version = None;
    app.version_info = None;
    app.normalize(defaults);
    Ok(app)
}

#[cfg(test)]
mod tests {
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
}
