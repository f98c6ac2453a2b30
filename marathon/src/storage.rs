//! Marathon's state in a `coord::Store` (ZooKeeper, or memory for `agora local`).
//!
//! Every object has its own key, so no value grows with the number of apps
//! (Marathon kept the whole root group in one node and hit ZooKeeper's 1 MB
//! limit at a few hundred apps):
//!
//! ```text
//! <root>/framework-id                 the framework id, as text
//! <root>/apps/<app safe id>           the current AppDefinition (JSON)
//! <root>/versions/<safe id>/<millis>  past and current versions of each app (last N kept)
//! <root>/groups/<group safe id|_root> GroupMeta with its id (JSON)
//! <root>/instances/<instance id>      one Instance (JSON)
//! <root>/deployments/<id>             a running deployment: steps and app versions (JSON)
//! <root>/group-versions/<safe id|_root>/<millis>/<n>
//!                                     a group's subtree at a version: its groups and
//!                                     the versions of its apps, in chunks of 2,000 apps
//! <root>/leader-epoch                 bumped by each leader when its term starts and before each batch
//! ```
//!
//! App safe ids (`prod_web`) are unambiguous because `_` cannot appear in a
//! path segment. Writes name the version last seen of their key, so a second
//! writer (a deposed leader) fails instead of overwriting.
//!
//! Fencing: that alone does not stop a deposed leader from writing a key
//! the new leader has only read. So a leader claims the epoch key when its
//! term starts ([`Storage::claim`], before loading), and bumps it with the
//! version it last saw before every batch: once a newer leader has claimed
//! it, the deposed leader's next batch fails on the epoch and writes nothing.
//! (A batch already past its epoch check when the new term starts can still
//! land; the new leader's next write of such a key then fails, and it steps
//! down and reloads. A store with multi-key transactions would close that
//! window.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use agora_coord::{Store, StoreError};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::deploy::plan::{DeploymentPlan, Step};
use crate::model::group::GroupMeta;
use crate::model::{AppDefinition, Instance, PathId, RootGroup, Timestamp};

/// How many writes or reads are in flight at once.
const PARALLELISM: usize = 64;

/// Apps per chunk of a group version (about 100 bytes each: far below 1 MB).
const APPS_PER_CHUNK: usize = 2000;
/// The key each leader bumps (see the module's documentation on fencing).
pub const EPOCH_KEY: &str = "leader-epoch";

/// The epoch is bumped with every batch; ZooKeeper counts versions in 32
/// bits, so the key starts over (deleted and created anew) well before that.
const EPOCH_ROLLOVER: u64 = 1 << 30;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A write before [`Storage::claim`].
    #[error("the leader epoch was not claimed")]
    NotClaimed,
    /// A stored value could not be read.
    #[error("corrupt value at '{key}': {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// A deployment as stored: app versions instead of whole apps.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredDeployment {
    id: String,
    version: Timestamp,
    original: BTreeMap<PathId, Timestamp>,
    target: BTreeMap<PathId, Timestamp>,
    steps: Vec<Step>,
    #[serde(default)]
    current_step: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredGroup {
    id: PathId,
    #[serde(flatten)]
    meta: GroupMeta,
}

/// A group's subtree at one version: app ids map to app versions.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GroupSnapshot {
    /// The groups of the subtree, the group itself included.
    pub groups: BTreeMap<PathId, GroupMeta>,
    /// The apps of the subtree and their versions.
    pub apps: BTreeMap<PathId, Timestamp>,
}

impl GroupSnapshot {
    /// The subtree of `group` in `root`.
    pub fn of(root: &RootGroup, group: &PathId) -> Self {
        GroupSnapshot {
            groups: root
                .groups
                .iter()
                .filter(|(id, _)| id.starts_with(group))
                .map(|(id, meta)| (id.clone(), meta.clone()))
                .collect(),
            apps: root
                .transitive_apps(group)
                .map(|app| (app.id.clone(), app.version_or_epoch()))
                .collect(),
        }
    }
}

/// One write of a batch.
#[derive(Debug, Clone)]
pub enum Write {
    /// The current version of an app (also recorded among its versions).
    App(Arc<AppDefinition>),
    /// An app was removed (its versions go too).
    DeleteApp(PathId),
    /// A group's metadata.
    Group(PathId, GroupMeta),
    /// A group was removed.
    DeleteGroup(PathId),
    /// An instance.
    Instance(Box<Instance>),
    /// An instance was expunged.
    DeleteInstance(String),
    /// A deployment started or advanced.
    Deployment(Box<DeploymentPlan>, usize),
    /// A deployment ended.
    DeleteDeployment(String),
    /// The framework id.
    FrameworkId(String),
    /// A group's subtree at a version (for `/v2/groups/{id}/versions` and rollback).
    GroupVersion(PathId, Timestamp, Box<GroupSnapshot>),
}

/// Everything loaded at startup.
#[derive(Debug)]
pub struct Loaded {
    /// The framework id, if one was stored.
    pub framework_id: Option<String>,
    /// Apps and groups.
    pub root: RootGroup,
    /// Instances by id.
    pub instances: BTreeMap<String, Instance>,
    /// Unfinished deployments with their current step.
    pub deployments: Vec<(DeploymentPlan, usize)>,
}

/// The typed view of Marathon's keys.
pub struct Storage {
    store: Arc<dyn Store>,
    root: String,
    max_versions: usize,
    /// The store version of every key this process read or wrote.
    versions: Mutex<HashMap<String, u64>>,
    /// The epoch's version at which it starts over (see [`EPOCH_ROLLOVER`]).
    epoch_rollover: u64,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("root", &self.root).finish()
    }
}

fn group_key_name(id: &PathId) -> String {
    if id.is_root() {
        "_root".to_string()
    } else {
        id.safe()
    }
}

impl Storage {
    /// Storage under `root` (e.g. `/marathon/state`), keeping `max_versions` versions per app.
    pub fn new(store: Arc<dyn Store>, root: &str, max_versions: usize) -> Self {
        Storage {
            store,
            root: root.trim_end_matches('/').to_string(),
            max_versions: max_versions.max(1),
            versions: Mutex::new(HashMap::new()),
            epoch_rollover: EPOCH_ROLLOVER,
        }
    }

    fn key(&self, tail: &str) -> String {
        format!("{}/{tail}", self.root)
    }

    fn known_version(&self, key: &str) -> Option<u64> {
        self.lock().get(key).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.versions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn epoch_key(&self) -> String {
        self.key(EPOCH_KEY)
    }

    /// Starts a term: forgets every version seen in an earlier term (another
    /// leader may have written since) and claims the epoch, so that a
    /// deposed leader's next batch fails. Call before [`Storage::load`].
    pub async fn claim(&self) -> Result<(), StorageError> {
        self.lock().clear();
        let key = self.epoch_key();
        let current = self.store.get(&key).await?.map(|v| v.version);
        let version = self.store.put(&key, Vec::new(), current).await?;
        self.lock().insert(key, version);
        Ok(())
    }

    /// Bumps the epoch with the version this term last saw: fails once a
    /// newer leader has claimed it.
    async fn check_epoch(&self) -> Result<(), StorageError> {
        let key = self.epoch_key();
        let Some(expected) = self.known_version(&key) else {
            return Err(StorageError::NotClaimed);
        };
        let version = if expected >= self.epoch_rollover {
            // Start over before the store's counter overflows: deleting
            // with the version seen fences exactly like bumping does, and
            // whoever re-creates the key first holds it.
            self.store.delete(&key, expected).await?;
            self.store.put(&key, Vec::new(), None).await?
        } else {
            self.store.put(&key, Vec::new(), Some(expected)).await?
        };
        self.lock().insert(key, version);
        Ok(())
    }

    async fn put(&self, key: String, data: Vec<u8>) -> Result<(), StorageError> {
        let expected = self.known_version(&key);
        let version = self.store.put(&key, data, expected).await?;
        self.lock().insert(key, version);
        Ok(())
    }

    async fn put_once(&self, key: String, data: Vec<u8>) -> Result<(), StorageError> {
        match self.store.put(&key, data, None).await {
            Ok(version) => {
                self.lock().insert(key, version);
                Ok(())
            }
            // Written before (by this leader or an earlier one): versions never change.
            Err(StoreError::VersionMismatch { found: Some(v), .. }) => {
                self.lock().insert(key, v);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: String) -> Result<(), StorageError> {
        let Some(expected) = self.known_version(&key) else {
            return Ok(());
        };
        self.store.delete(&key, expected).await?;
        self.lock().remove(&key);
        Ok(())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
    ) -> Result<Option<T>, StorageError> {
        let Some(v) = self.store.get(&key).await? else {
            return Ok(None);
        };
        self.lock().insert(key.clone(), v.version);
        serde_json::from_slice(&v.data)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                key,
                reason: e.to_string(),
            })
    }

    async fn get_all<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        prefix: &str,
    ) -> Result<Vec<T>, StorageError> {
        let keys = self.store.list(&self.key(prefix)).await?;
        stream::iter(keys)
            .map(|key| self.get_json::<T>(key))
            .buffer_unordered(PARALLELISM)
            .try_filter_map(|v| async move { Ok(v) })
            .try_collect()
            .await
    }

    /// Writes a batch, in parallel, after checking the epoch; the first
    /// failure is returned.
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), StorageError> {
        self.check_epoch().await?;
        let mut expanded = Vec::new();
        for write in writes {
            self.expand(write, &mut expanded).await?;
        }
        // A key written twice in one batch keeps its last write only: writes
        // of one batch run in parallel and must not race on a key.
        let mut last: HashMap<String, usize> = HashMap::new();
        for (i, op) in expanded.iter().enumerate() {
            last.insert(op.key().to_string(), i);
        }
        let ops: Vec<Op> = expanded
            .into_iter()
            .enumerate()
            .filter(|(i, op)| last.get(op.key()) == Some(i))
            .map(|(_, op)| op)
            .collect();
        stream::iter(ops)
            .map(|op| async move {
                match op {
                    Op::Put(key, data) => self.put(key, data).await,
                    Op::PutOnce(key, data) => self.put_once(key, data).await,
                    Op::Delete(key) => self.delete(key).await,
                }
            })
            .buffer_unordered(PARALLELISM)
            .try_collect::<()>()
            .await
    }

    async fn expand(&self, write: Write, ops: &mut Vec<Op>) -> Result<(), StorageError> {
        match write {
            Write::App(app) => {
                let data = to_json(&*app);
                let safe = app.id.safe();
                let version = app.version_or_epoch().millis();
                ops.push(Op::Put(self.key(&format!("apps/{safe}")), data.clone()));
                let versions_key = self.key(&format!("versions/{safe}/{version}"));
                // A version is immutable: written once (perhaps by an earlier
                // leader, e.g. the original of a rollback), never again; a
                // write that finds it stored keeps it (`put_once`).
                if self.known_version(&versions_key).is_none() {
                    ops.push(Op::PutOnce(versions_key, data));
                }
                for old in self.versions_to_prune(&app.id, version).await? {
                    ops.push(Op::Delete(old));
                }
            }
            Write::DeleteApp(id) => {
                let safe = id.safe();
                ops.push(Op::Delete(self.key(&format!("apps/{safe}"))));
                for key in self
                    .store
                    .list(&self.key(&format!("versions/{safe}")))
                    .await?
                {
                    self.remember(&key).await?;
                    ops.push(Op::Delete(key));
                }
            }
            Write::Group(id, meta) => ops.push(Op::Put(
                self.key(&format!("groups/{}", group_key_name(&id))),
                to_json(&StoredGroup { id, meta }),
            )),
            Write::DeleteGroup(id) => ops.push(Op::Delete(
                self.key(&format!("groups/{}", group_key_name(&id))),
            )),
            Write::Instance(instance) => ops.push(Op::Put(
                self.key(&format!("instances/{}", instance.instance_id)),
                to_json(&*instance),
            )),
            Write::DeleteInstance(id) => ops.push(Op::Delete(self.key(&format!("instances/{id}")))),
            Write::Deployment(plan, current_step) => {
                let stored = StoredDeployment {
                    id: plan.id.clone(),
                    version: plan.version,
                    original: versions_of(&plan.original),
                    target: versions_of(&plan.target),
                    steps: plan.steps.clone(),
                    current_step,
                };
                ops.push(Op::Put(
                    self.key(&format!("deployments/{}", plan.id)),
                    to_json(&stored),
                ));
            }
            Write::DeleteDeployment(id) => {
                ops.push(Op::Delete(self.key(&format!("deployments/{id}"))))
            }
            Write::FrameworkId(id) => {
                ops.push(Op::Put(self.key("framework-id"), id.into_bytes()));
            }
            Write::GroupVersion(id, version, snapshot) => {
                let prefix = self.group_versions_key(&id);
                let millis = version.millis();
                let apps: Vec<(PathId, Timestamp)> = snapshot.apps.into_iter().collect();
                let chunks: Vec<&[(PathId, Timestamp)]> = if apps.is_empty() {
                    vec![&[]]
                } else {
                    apps.chunks(APPS_PER_CHUNK).collect()
                };
                for (n, chunk) in chunks.into_iter().enumerate() {
                    let part = GroupSnapshot {
                        groups: if n == 0 {
                            snapshot.groups.clone()
                        } else {
                            BTreeMap::new()
                        },
                        apps: chunk.iter().cloned().collect(),
                    };
                    ops.push(Op::Put(format!("{prefix}/{millis}/{n}"), to_json(&part)));
                }
                let versions = self.group_versions(&id).await?;
                let mut all: BTreeSet<i64> = versions.iter().map(|v| v.millis()).collect();
                all.insert(millis);
                let excess = all.len().saturating_sub(self.max_versions);
                for old in all.into_iter().take(excess) {
                    for key in self.store.list(&format!("{prefix}/{old}")).await? {
                        self.remember(&key).await?;
                        ops.push(Op::Delete(key));
                    }
                }
            }
        }
        Ok(())
    }

    fn group_versions_key(&self, id: &PathId) -> String {
        self.key(&format!("group-versions/{}", group_key_name(id)))
    }

    /// The stored versions of a group, oldest first.
    pub async fn group_versions(&self, id: &PathId) -> Result<Vec<Timestamp>, StorageError> {
        let prefix = self.group_versions_key(id);
        let versions: BTreeSet<i64> = self
            .store
            .list(&prefix)
            .await?
            .iter()
            .filter_map(|k| k.strip_prefix(&format!("{prefix}/")))
            .filter_map(|rest| rest.split('/').next()?.parse().ok())
            .collect();
        Ok(versions.into_iter().map(Timestamp).collect())
    }

    /// A group's subtree as it was at `version`, with its apps' definitions
    /// (`None` if that version is not stored, or an app version was pruned).
    pub async fn group_at(
        &self,
        id: &PathId,
        version: Timestamp,
    ) -> Result<Option<RootGroup>, StorageError> {
        let prefix = format!("{}/{}", self.group_versions_key(id), version.millis());
        let keys = self.store.list(&prefix).await?;
        if keys.is_empty() {
            return Ok(None);
        }
        let mut snapshot = GroupSnapshot::default();
        for key in keys {
            if let Some(part) = self.get_json::<GroupSnapshot>(key).await? {
                snapshot.groups.extend(part.groups);
                snapshot.apps.extend(part.apps);
            }
        }
        let mut root = RootGroup::empty(version);
        root.groups.extend(snapshot.groups);
        for ancestor in id.ancestors() {
            root.groups
                .entry(ancestor)
                .or_insert_with(|| GroupMeta::new(version));
        }
        for (app, app_version) in snapshot.apps {
            match self.app_version(&app, app_version).await? {
                Some(definition) => {
                    root.apps.insert(app, Arc::new(definition));
                }
                None => return Ok(None),
            }
        }
        Ok(Some(root))
    }

    /// Learns the store version of a key written by an earlier leader.
    async fn remember(&self, key: &str) -> Result<(), StorageError> {
        if self.known_version(key).is_none() {
            if let Some(v) = self.store.get(key).await? {
                self.lock().insert(key.to_string(), v.version);
            }
        }
        Ok(())
    }

    async fn versions_to_prune(
        &self,
        app: &PathId,
        adding: i64,
    ) -> Result<Vec<String>, StorageError> {
        let prefix = self.key(&format!("versions/{}", app.safe()));
        let mut keys: BTreeSet<(i64, String)> = self
            .store
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|k| {
                let millis = k.rsplit('/').next()?.parse::<i64>().ok()?;
                Some((millis, k))
            })
            .collect();
        keys.insert((adding, format!("{prefix}/{adding}")));
        let excess = keys.len().saturating_sub(self.max_versions);
        let mut prune = Vec::new();
        for (_, key) in keys.into_iter().take(excess) {
            self.remember(&key).await?;
            prune.push(key);
        }
        Ok(prune)
    }

    /// The stored versions of an app, oldest first.
    pub async fn app_versions(&self, app: &PathId) -> Result<Vec<Timestamp>, StorageError> {
        let prefix = self.key(&format!("versions/{}", app.safe()));
        let mut versions: Vec<Timestamp> = self
            .store
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|k| k.rsplit('/').next()?.parse::<i64>().ok().map(Timestamp))
            .collect();
        versions.sort();
        Ok(versions)
    }

    /// One stored version of an app.
    pub async fn app_version(
        &self,
        app: &PathId,
        version: Timestamp,
    ) -> Result<Option<AppDefinition>, StorageError> {
        self.get_json(self.key(&format!("versions/{}/{}", app.safe(), version.millis())))
            .await
    }

    /// Loads the whole state.
    pub async fn load(&self) -> Result<Loaded, StorageError> {
        let framework_id = match self.store.get(&self.key("framework-id")).await? {
            Some(v) => {
                self.lock().insert(self.key("framework-id"), v.version);
                Some(String::from_utf8_lossy(&v.data).into_owned())
            }
            None => None,
        };
        let apps: Vec<AppDefinition> = self.get_all("apps").await?;
        let groups: Vec<StoredGroup> = self.get_all("groups").await?;
        let instances: Vec<Instance> = self.get_all("instances").await?;
        let stored_deployments: Vec<StoredDeployment> = self.get_all("deployments").await?;
        let mut root = RootGroup::empty(Timestamp(0));
        for g in groups {
            root.groups.insert(g.id, g.meta);
        }
        for app in apps {
            root.apps.insert(app.id.clone(), Arc::new(app));
        }
        let mut deployments = Vec::new();
        for d in stored_deployments {
            let original = self.resolve(&d.original).await?;
            let target = self.resolve(&d.target).await?;
            deployments.push((
                DeploymentPlan {
                    id: d.id,
                    version: d.version,
                    original,
                    target,
                    steps: d.steps,
                },
                d.current_step,
            ));
        }
        deployments.sort_by_key(|(d, _)| d.version);
        Ok(Loaded {
            framework_id,
            root,
            instances: instances
                .into_iter()
                .map(|i| (i.instance_id.clone(), i))
                .collect(),
            deployments,
        })
    }

    async fn resolve(
        &self,
        versions: &BTreeMap<PathId, Timestamp>,
    ) -> Result<BTreeMap<PathId, Arc<AppDefinition>>, StorageError> {
        let mut apps = BTreeMap::new();
        for (id, version) in versions {
            if let Some(app) = self.app_version(id, *version).await? {
                apps.insert(id.clone(), Arc::new(app));
            }
        }
        Ok(apps)
    }
}

enum Op {
    Put(String, Vec<u8>),
    /// An immutable value (an app version): written if absent, else kept.
    PutOnce(String, Vec<u8>),
    Delete(String),
}

impl Op {
    fn key(&self) -> &str {
        match self {
            Op::Put(key, _) | Op::PutOnce(key, _) | Op::Delete(key) => key,
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("model types serialize")
}

fn versions_of(apps: &BTreeMap<PathId, Arc<AppDefinition>>) -> BTreeMap<PathId, Timestamp> {
    apps.iter()
        .map(|(id, app)| (id.clone(), app.version_or_epoch()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_coord::MemoryStore;

    fn app(id: &str, version: i64) -> Arc<AppDefinition> {
        let mut app = AppDefinition::with_id(PathId::parse(id));
        app.version = Some(Timestamp(version));
        Arc::new(app)
    }

    fn mismatch(result: Result<(), StorageError>) -> bool {
        matches!(
            result,
            Err(StorageError::Store(StoreError::VersionMismatch { .. }))
        )
    }

    #[tokio::test]
    async fn a_new_term_fences_the_last_leader_off() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let old = Storage::new(store.clone(), "/state", 5);
        old.claim().await.expect("claim");
        old.load().await.expect("load");
        old.write(vec![Write::App(app("/a", 1))])
            .await
            .expect("the leader writes");

        let new = Storage::new(store.clone(), "/state", 5);
        new.claim().await.expect("claim");
        let loaded = new.load().await.expect("load");
        assert_eq!(loaded.root.apps.len(), 1);

        // The deposed leader's next batch fails on the epoch, even for a key
        // the new leader has not written: nothing of it lands.
        assert!(mismatch(
            old.write(vec![
                Write::App(app("/b", 2)),
                Write::DeleteApp(PathId::parse("/a"))
            ])
            .await
        ));
        assert_eq!(store.get("/state/apps/b").await.expect("get"), None);
        assert!(store.get("/state/apps/a").await.expect("get").is_some());
        new.write(vec![Write::App(app("/c", 3))])
            .await
            .expect("the new leader writes");
    }

    #[tokio::test]
    async fn the_epoch_starts_over_and_still_fences() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut old = Storage::new(store.clone(), "/state", 5);
        old.epoch_rollover = 2;
        old.claim().await.expect("claim");
        for i in 0..5 {
            old.write(vec![Write::FrameworkId(format!("f{i}"))])
                .await
                .expect("the leader writes across rollovers");
        }
        let epoch = store.get("/state/leader-epoch").await.expect("get");
        assert!(epoch.expect("epoch").version <= 2);
        let new = Storage::new(store.clone(), "/state", 5);
        new.claim().await.expect("claim");
        for _ in 0..3 {
            assert!(mismatch(
                old.write(vec![Write::FrameworkId("stale".into())]).await
            ));
        }
        new.load().await.expect("load");
        new.write(vec![Write::FrameworkId("g".into())])
            .await
            .expect("the new leader writes");
    }

    #[tokio::test]
    async fn writes_before_claiming_are_refused() {
        let storage = Storage::new(Arc::new(MemoryStore::new()), "/state", 5);
        assert!(matches!(
            storage.write(vec![Write::FrameworkId("f".into())]).await,
            Err(StorageError::NotClaimed)
        ));
    }

    #[tokio::test]
    async fn a_term_does_not_trust_versions_seen_in_an_earlier_one() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let first = Storage::new(store.clone(), "/state", 5);
        first.claim().await.expect("claim");
        first.load().await.expect("load");
        first
            .write(vec![
                Write::App(app("/a", 1)),
                Write::FrameworkId("f".into()),
            ])
            .await
            .expect("write");

        // Another leader changes what the first had written.
        let other = Storage::new(store.clone(), "/state", 5);
        other.claim().await.expect("claim");
        other.load().await.expect("load");
        other
            .write(vec![
                Write::App(app("/a", 2)),
                Write::FrameworkId("g".into()),
            ])
            .await
            .expect("write");

        // The first leads again: it writes over what the other wrote, and
        // writing a version stored earlier (a rollback) is no conflict.
        first.claim().await.expect("claim");
        let loaded = first.load().await.expect("load");
        assert_eq!(loaded.framework_id.as_deref(), Some("g"));
        first
            .write(vec![
                Write::App(app("/a", 1)),
                Write::FrameworkId("h".into()),
            ])
            .await
            .expect("a new term writes");
        let versions = first
            .app_versions(&PathId::parse("/a"))
            .await
            .expect("versions");
        assert_eq!(versions, vec![Timestamp(1), Timestamp(2)]);
    }
}
