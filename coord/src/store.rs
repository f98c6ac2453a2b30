//! A versioned key-value store.
//!
//! Every value carries a version that a write must name (`None` to create).
//! A write naming a stale version fails with [`StoreError::VersionMismatch`]:
//! that is how a deposed leader's writes are fenced off.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

/// A value with the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The stored bytes.
    pub data: Vec<u8>,
    /// Incremented by every successful write of the key.
    pub version: u64,
}

/// Errors from a [`Store`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    /// The key changed (or was created/deleted) since the version the writer named.
    #[error("version mismatch on '{key}': expected {expected:?}, found {found:?}")]
    VersionMismatch {
        /// The key written.
        key: String,
        /// The version the writer expected (`None`: absent).
        expected: Option<u64>,
        /// The version found (`None`: absent).
        found: Option<u64>,
    },
    /// The value is larger than the backend accepts (chunk it).
    #[error("value for '{key}' is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The key written.
        key: String,
        /// The value's size.
        size: usize,
        /// The largest size accepted.
        limit: usize,
    },
    /// The key is not an absolute `/`-separated path.
    #[error("invalid key '{0}': keys are absolute paths such as /a/b")]
    InvalidKey(String),
    /// The backend could not be reached or failed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// A versioned key-value store; keys are `/`-separated paths.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads a key.
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError>;
    /// Writes a key if its current version is `expected` (`None`: must not
    /// exist). Returns the new version.
    async fn put(&self, key: &str, data: Vec<u8>, expected: Option<u64>)
        -> Result<u64, StoreError>;
    /// Deletes a key if its current version is `expected`.
    async fn delete(&self, key: &str, expected: u64) -> Result<(), StoreError>;
    /// The keys directly or indirectly under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// The in-memory store used by `agora local` and tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<BTreeMap<String, Versioned>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Versioned>> {
        // A poisoned lock only means another thread panicked mid-operation;
        // every operation leaves the map consistent, so carry on.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.entries().get(key).cloned())
    }

    async fn put(
        &self,
        key: &str,
        data: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        let mut entries = self.entries();
        let found = entries.get(key).map(|v| v.version);
        if found != expected {
            return Err(StoreError::VersionMismatch {
                key: key.to_string(),
                expected,
                found,
            });
        }
        let version = found.map_or(0, |v| v + 1);
        entries.insert(key.to_string(), Versioned { data, version });
        Ok(version)
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<(), StoreError> {
        let mut entries = self.entries();
        let found = entries.get(key).map(|v| v.version);
        if found != Some(expected) {
            return Err(StoreError::VersionMismatch {
                key: key.to_string(),
                expected: Some(expected),
                found,
            });
        }
        entries.remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let dir = format!("{}/", prefix.trim_end_matches('/'));
        Ok(self
            .entries()
            .range(dir.clone()..)
            .take_while(|(k, _)| k.starts_with(&dir))
            .map(|(k, _)| k.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn versions_fence_stale_writers() {
        let store = MemoryStore::new();
        assert_eq!(store.put("/a", b"1".to_vec(), None).await, Ok(0));
        assert!(matches!(
            store.put("/a", b"x".to_vec(), None).await,
            Err(StoreError::VersionMismatch { .. })
        ));
        assert_eq!(store.put("/a", b"2".to_vec(), Some(0)).await, Ok(1));
        // A writer still holding version 0 is refused.
        assert!(store.put("/a", b"3".to_vec(), Some(0)).await.is_err());
        let v = store.get("/a").await.expect("get").expect("present");
        assert_eq!((v.data.as_slice(), v.version), (&b"2"[..], 1));
        assert!(store.delete("/a", 0).await.is_err());
        store.delete("/a", 1).await.expect("delete");
        assert_eq!(store.get("/a").await, Ok(None));
    }

    #[tokio::test]
    async fn lists_keys_under_a_prefix() {
        let store = MemoryStore::new();
        for k in ["/r/agents/1", "/r/agents/2", "/r/weights", "/rx"] {
            store.put(k, vec![], None).await.expect("put");
        }
        assert_eq!(
            store.list("/r").await.expect("list"),
            ["/r/agents/1", "/r/agents/2", "/r/weights"]
        );
        assert_eq!(store.list("/r/agents/").await.expect("list").len(), 2);
    }
}
