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
/// ids against the group they are in. Agora has no pods: an empty `pods`
/// (what `GET` renders) is accepted, any pod refused
/// ([`GroupUpdate::unsupported`]).
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
    /// Pods: only none (Agora runs no pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Value>,
}

/// What Marathon says of a pod where it runs none.
pub const NO_PODS: &str =
    "Pods are not supported: this Marathon runs apps only (Agora has no pods yet)";

impl GroupUpdate {
    /// What this update asks for that Agora cannot carry out: pods, in this
    /// group or any beneath it (`/pods`, `/groups(0)/pods`, ...).
    pub fn unsupported(&self) -> Vec<Violation> {
        let mut found = Vec::new();
        self.collect_unsupported("", &mut found);
        found
    }

    fn collect_unsupported(&self, path: &str, found: &mut Vec<Violation>) {
        let has_pods = match &self.pods {
            None | Some(Value::Null) => false,
            Some(Value::Array(pods)) => !pods.is_empty(),
            Some(_) => true,
        };
        if has_pods {
            found.push(Violation::new(format!("{path}/pods"), NO_PODS));
        }
        for (i, group) in self.groups.iter().flatten().enumerate() {
            group.collect_unsupported(&format!("{path}/groups({i})"), found);
        }
    }

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
mod tests;
