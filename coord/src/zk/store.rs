//! The versioned key-value [`Store`] over ZooKeeper.
//!
//! A key `/a/b` is the znode `<root>/a/b` and its version is the znode's
//! version, so `put(.., Some(v))` is ZooKeeper's conditional `setData`:
//! a deposed leader writing with the version it last saw is refused by the
//! ensemble itself. Parents are created on demand (persistent, empty).
//!
//! `list` walks the tree: it returns the descendants that hold data or have
//! no children, so the empty folders made for a key's parents are not
//! mistaken for keys (an empty value stored at a key that also has keys
//! beneath it is the one case it cannot tell apart).
//!
//! ZooKeeper refuses requests over 1 MB (`jute.maxbuffer`); values above
//! [`MAX_VALUE_BYTES`] are refused here with [`StoreError::TooLarge`]
//! instead of breaking the connection. Chunking is the caller's concern.

use async_trait::async_trait;
use zookeeper_client::{Client, CreateMode, Error as ZkErr};

use super::client::ZkClient;
use crate::store::{Store, StoreError, Versioned};

/// The largest value stored, leaving room under ZooKeeper's 1 MB request
/// limit for the path and the request's framing.
pub const MAX_VALUE_BYTES: usize = 900 * 1024;

/// A [`Store`] keeping each key as a znode under a root folder.
#[derive(Debug, Clone)]
pub struct ZkStore {
    client: ZkClient,
    root: String,
}

impl ZkStore {
    /// A store under `root` (an absolute path; `/` for none). The root must
    /// not be an election group folder: only election nodes live there.
    pub fn new(client: ZkClient, root: impl Into<String>) -> Self {
        let root: String = root.into();
        ZkStore {
            client,
            root: root.trim_end_matches('/').to_string(),
        }
    }

    fn path(&self, key: &str) -> Result<String, StoreError> {
        let valid =
            key.starts_with('/') && key.len() > 1 && !key.ends_with('/') && !key.contains("//");
        if !valid {
            return Err(StoreError::InvalidKey(key.to_string()));
        }
        Ok(format!("{}{key}", self.root))
    }

    fn zk(&self) -> Client {
        self.client.session().client
    }

    /// The version found at `key` now, to report a mismatch.
    async fn found(&self, zk: &Client, key: &str, path: &str) -> Result<Option<u64>, StoreError> {
        match zk.check_stat(path).await {
            Ok(stat) => Ok(stat.map(|s| version(s.version))),
            Err(e) => Err(unavailable("stat", key, e)),
        }
    }
}

fn version(v: i32) -> u64 {
    // ZooKeeper versions start at 0 and only grow; a negative one would be
    // a server bug, read as 0.
    u64::try_from(v).unwrap_or(0)
}

fn unavailable(op: &str, key: &str, e: ZkErr) -> StoreError {
    StoreError::Unavailable(format!("zookeeper {op} of '{key}': {e}"))
}

#[async_trait]
impl Store for ZkStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let path = self.path(key)?;
        match self.zk().get_data(&path).await {
            Ok((data, stat)) => Ok(Some(Versioned {
                data,
                version: version(stat.version),
            })),
            Err(ZkErr::NoNode) => Ok(None),
            Err(e) => Err(unavailable("read", key, e)),
        }
    }

    async fn put(
        &self,
        key: &str,
        data: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let path = self.path(key)?;
        if data.len() > MAX_VALUE_BYTES {
            return Err(StoreError::TooLarge {
                key: key.to_string(),
                size: data.len(),
                limit: MAX_VALUE_BYTES,
            });
        }
        let zk = self.zk();
        let mismatch = |found| StoreError::VersionMismatch {
            key: key.to_string(),
            expected,
            found,
        };
        match expected {
            None => {
                let options = CreateMode::Persistent.with_acls(self.client.acls(false));
                let mut created = zk.create(&path, &data, &options).await;
                if matches!(created, Err(ZkErr::NoNode)) {
                    // The parent is missing: make it (and its own), then retry once.
                    if let Some((parent, _)) = path.rsplit_once('/').filter(|(p, _)| !p.is_empty())
                    {
                        match zk.mkdir(parent, &options).await {
                            Ok(()) | Err(ZkErr::NodeExists) => {}
                            Err(e) => return Err(unavailable("create parents", key, e)),
                        }
                    }
                    created = zk.create(&path, &data, &options).await;
                }
                match created {
                    Ok(_) => Ok(0),
                    Err(ZkErr::NodeExists) => Err(mismatch(self.found(&zk, key, &path).await?)),
                    Err(e) => Err(unavailable("create", key, e)),
                }
            }
            Some(v) => {
                let Ok(v32) = i32::try_from(v) else {
                    return Err(mismatch(self.found(&zk, key, &path).await?));
                };
                match zk.set_data(&path, &data, Some(v32)).await {
                    Ok(stat) => Ok(version(stat.version)),
                    Err(ZkErr::NoNode) => Err(mismatch(None)),
                    Err(ZkErr::BadVersion) => Err(mismatch(self.found(&zk, key, &path).await?)),
                    Err(e) => Err(unavailable("write", key, e)),
                }
            }
        }
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let zk = self.zk();
        let mismatch = |found| StoreError::VersionMismatch {
            key: key.to_string(),
            expected: Some(expected),
            found,
        };
        let Ok(v32) = i32::try_from(expected) else {
            return Err(mismatch(self.found(&zk, key, &path).await?));
        };
        match zk.delete(&path, Some(v32)).await {
            Ok(()) => Ok(()),
            Err(ZkErr::NoNode) => Err(mismatch(None)),
            Err(ZkErr::BadVersion) => Err(mismatch(self.found(&zk, key, &path).await?)),
            Err(ZkErr::NotEmpty) => Err(StoreError::Unavailable(format!(
                "cannot delete '{key}': keys live beneath it"
            ))),
            Err(e) => Err(unavailable("delete", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let trimmed = prefix.trim_end_matches('/');
        let start = if trimmed.is_empty() {
            self.root.clone()
        } else {
            self.path(trimmed)?
        };
        let start = if start.is_empty() {
            "/".to_string()
        } else {
            start
        };
        let zk = self.zk();
        let mut keys = Vec::new();
        // Breadth first, one level at a time: the client pipelines the
        // requests of a level, so a wide tree costs round trips per level,
        // not per node.
        let mut level: Vec<String> = match zk.list_children(&start).await {
            Ok(children) => children.iter().map(|c| join(&start, c)).collect(),
            Err(ZkErr::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(unavailable("list", prefix, e)),
        };
        while !level.is_empty() {
            let replies = futures::future::join_all(level.iter().map(|p| zk.get_children(p))).await;
            let mut next = Vec::new();
            for (path, reply) in level.iter().zip(replies) {
                match reply {
                    Ok((children, stat)) => {
                        if children.is_empty() || stat.data_length > 0 {
                            keys.push(path[self.root.len()..].to_string());
                        }
                        next.extend(children.iter().map(|c| join(path, c)));
                    }
                    Err(ZkErr::NoNode) => {} // deleted while listing
                    Err(e) => return Err(unavailable("list", prefix, e)),
                }
            }
            level = next;
        }
        keys.sort();
        Ok(keys)
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}
