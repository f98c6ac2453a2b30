//! Groups: a tree of apps, held flat (every app and group by its path) so
//! that lookups, storage and diffs are per entry; the nested JSON of
//! `/v2/groups` is rendered on demand.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::app::AppDefinition;
use super::path::PathId;
use super::timestamp::Timestamp;

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
