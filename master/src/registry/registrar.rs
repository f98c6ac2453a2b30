//! The registrar: one task that owns the registry's stored copy.
//!
//! The master actor queues [`Operation`]s without waiting (it must never
//! block on storage); the registrar applies every operation queued since
//! its last write and stores the registry in one write, so a burst of
//! thousands of registrations costs a handful of writes. A write that fails
//! its version check means another master has written since: this master is
//! no longer the leader, and the registrar stops writing.

use std::sync::Arc;

use agora_coord::{Store, StoreError};
use agora_proto::Registry;
use prost::Message;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, warn};

use super::Operation;

/// Where the registry lives in the store.
pub const REGISTRY_KEY: &str = "/agora/registry";

/// A handle for queueing operations.
#[derive(Debug, Clone)]
pub struct RegistrarHandle {
    tx: mpsc::UnboundedSender<Operation>,
    written: watch::Receiver<u64>,
}

impl RegistrarHandle {
    /// Queues an operation; it is stored with the next batch.
    pub fn apply(&self, op: Operation) {
        let _ = self.tx.send(op);
    }

    /// How many operations have been stored so far (for tests and metrics).
    pub fn stored_operations(&self) -> u64 {
        *self.written.borrow()
    }

    /// Whether the registrar has stopped (it lost the right to write).
    pub fn is_stopped(&self) -> bool {
        self.tx.is_closed()
    }

    /// A watch of the stored-operation count.
    pub fn watch_stored(&self) -> watch::Receiver<u64> {
        self.written.clone()
    }
}

/// Reads the registry (empty if absent) with its version.
pub async fn recover(store: &dyn Store) -> Result<(Registry, Option<u64>), StoreError> {
    match store.get(REGISTRY_KEY).await? {
        None => Ok((Registry::default(), None)),
        Some(v) => {
            let registry = Registry::decode(v.data.as_slice())
                .map_err(|e| StoreError::Unavailable(format!("corrupt registry: {e}")))?;
            Ok((registry, Some(v.version)))
        }
    }
}

/// Starts the registrar from a recovered registry and its version.
pub fn spawn(store: Arc<dyn Store>, registry: Registry, version: Option<u64>) -> RegistrarHandle {
    let (tx, mut rx) = mpsc::unbounded_channel::<Operation>();
    let (written_tx, written) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut registry = registry;
        let mut version = version;
        let mut stored = 0u64;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(op) = rx.try_recv() {
                batch.push(op);
            }
            let count = batch.len() as u64;
            let changed = batch
                .iter()
                .fold(false, |changed, op| op.apply(&mut registry) | changed);
            if changed {
                let bytes = registry.encode_to_vec();
                match store.put(REGISTRY_KEY, bytes, version).await {
                    Ok(v) => {
                        debug!(operations = count, version = v, "registry stored");
                        version = Some(v);
                    }
                    Err(e @ StoreError::VersionMismatch { .. }) => {
                        error!(error = %e, "registry was written by another master; no longer writing");
                        return;
                    }
                    Err(e) => {
                        // Keep the change in memory: the next batch writes it again.
                        warn!(error = %e, "registry write failed; will retry with the next batch");
                        continue;
                    }
                }
            }
            stored += count;
            written_tx.send_replace(stored);
        }
    });
    RegistrarHandle { tx, written }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_coord::MemoryStore;
    use agora_proto::{AgentId, AgentInfo};

    fn admit(id: &str) -> Operation {
        Operation::AdmitAgent(AgentInfo {
            hostname: "h".into(),
            id: Some(AgentId { value: id.into() }),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn batches_operations_into_the_store_and_recovers_them() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (registry, version) = recover(store.as_ref()).await.expect("recover");
        let registrar = spawn(store.clone(), registry, version);
        for i in 0..100 {
            registrar.apply(admit(&format!("a{i}")));
        }
        let mut stored = registrar.watch_stored();
        stored.wait_for(|n| *n == 100).await.expect("stored");
        let (registry, version) = recover(store.as_ref()).await.expect("recover");
        assert_eq!(registry.agents.len(), 100);
        assert!(version.expect("written") < 100, "writes were batched");
    }

    #[tokio::test]
    async fn a_stale_registrar_stops_writing() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let old = spawn(store.clone(), Registry::default(), None);
        old.apply(admit("a1"));
        old.watch_stored()
            .wait_for(|n| *n == 1)
            .await
            .expect("stored");
        // A new leader recovers and writes.
        let (registry, version) = recover(store.as_ref()).await.expect("recover");
        let new = spawn(store.clone(), registry, version);
        new.apply(admit("a2"));
        new.watch_stored()
            .wait_for(|n| *n == 1)
            .await
            .expect("stored");
        // The deposed one's write is refused; the stored registry is the new leader's.
        old.apply(admit("a3"));
        while !old.is_stopped() {
            tokio::task::yield_now().await;
        }
        assert_eq!(old.stored_operations(), 1);
        let (registry, _) = recover(store.as_ref()).await.expect("recover");
        let ids: Vec<String> = registry
            .agents
            .iter()
            .filter_map(|a| a.info.as_ref()?.id.as_ref().map(|i| i.value.clone()))
            .collect();
        assert_eq!(ids, ["a1", "a2"]);
    }
}
