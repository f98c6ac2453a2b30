//! The registrar: one task that owns the registry's stored copy.
//!
//! The master actor queues [`Operation`]s without waiting (it must never
//! block on storage). The registrar applies every operation queued since
//! its last write, then writes only the entries they touched (see
//! [`layout`](super::layout)), so a burst of thousands of registrations costs
//! one round of writes.
//!
//! Fencing: when it starts, and before every batch, the registrar bumps the
//! epoch key with the version it last saw. A new leader bumps it too when it
//! takes over, so a deposed leader's next batch fails its epoch check and
//! the registrar stops for good. (Between the check and the entries' writes
//! there is a small window; ZooKeeper's multi-op will close it.)

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use agora_coord::{Store, StoreError};
use agora_proto::Registry;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, warn};

use super::layout::{self, agent_key, epoch_key, unreachable_key, weights_key};
use super::Operation;

/// How many writes a batch keeps in flight.
const PARALLEL_WRITES: usize = 256;

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

/// Reads the registry and the versions of its keys.
pub async fn recover(store: &dyn Store) -> Result<(Registry, HashMap<String, u64>), StoreError> {
    layout::recover(store).await
}

/// The keys an operation touches.
fn touched(op: &Operation, keys: &mut BTreeSet<String>) {
    match op {
        Operation::AdmitAgent(info) => {
            let id = info.id.as_ref().map(|i| i.value.as_str()).unwrap_or("");
            keys.insert(agent_key(id));
            keys.insert(unreachable_key(id));
        }
        Operation::MarkUnreachable { id, .. } => {
            keys.insert(agent_key(id));
            keys.insert(unreachable_key(id));
        }
        Operation::SetWeight { .. } => {
            keys.insert(weights_key());
        }
    }
}

struct Registrar {
    store: Arc<dyn Store>,
    registry: Registry,
    versions: HashMap<String, u64>,
}

impl Registrar {
    /// Bumps the epoch if nobody else has since we last did.
    async fn check_epoch(&mut self) -> Result<(), StoreError> {
        let key = epoch_key();
        let expected = self.versions.get(&key).copied();
        let version = self.store.put(&key, Vec::new(), expected).await?;
        self.versions.insert(key, version);
        Ok(())
    }

    /// Writes the touched keys so the store matches the registry.
    async fn write(&mut self, keys: BTreeSet<String>) -> Result<(), StoreError> {
        let store = self.store.clone();
        let writes: Vec<_> = keys
            .into_iter()
            .map(|key| {
                let data = layout::encode(&self.registry, &key);
                let version = self.versions.get(&key).copied();
                (key, data, version)
            })
            .filter(|(_, data, version)| data.is_some() || version.is_some())
            .collect();
        let results: Vec<(String, Result<Option<u64>, StoreError>)> = futures::stream::iter(writes)
            .map(|(key, data, version)| {
                let store = store.clone();
                async move {
                    let result = match (data, version) {
                        (Some(data), expected) => store.put(&key, data, expected).await.map(Some),
                        (None, Some(v)) => store.delete(&key, v).await.map(|_| None),
                        (None, None) => Ok(None),
                    };
                    (key, result)
                }
            })
            .buffer_unordered(PARALLEL_WRITES)
            .collect()
            .await;
        for (key, result) in results {
            match result? {
                Some(v) => self.versions.insert(key, v),
                None => self.versions.remove(&key),
            };
        }
        Ok(())
    }
}

/// Starts the registrar from a recovered registry and its key versions. It
/// first claims the epoch; if another master claimed it meanwhile, it stops.
/// It ends once every handle is dropped and the queued operations are
/// stored: the returned task says when (a new term of the same master must
/// not start while the old registrar still writes, or they fence each other).
pub fn spawn(
    store: Arc<dyn Store>,
    registry: Registry,
    versions: HashMap<String, u64>,
) -> (RegistrarHandle, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Operation>();
    let (written_tx, written) = watch::channel(0u64);
    let task = tokio::spawn(async move {
        let mut registrar = Registrar {
            store,
            registry,
            versions,
        };
        if let Err(e) = registrar.check_epoch().await {
            error!(error = %e, "cannot claim the registry epoch; not writing");
            return;
        }
        let mut stored = 0u64;
        let mut pending = BTreeSet::new();
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(op) = rx.try_recv() {
                batch.push(op);
            }
            for op in &batch {
                if op.apply(&mut registrar.registry) {
                    touched(op, &mut pending);
                }
            }
            if !pending.is_empty() {
                if let Err(e) = registrar.check_epoch().await {
                    match e {
                        StoreError::VersionMismatch { .. } => {
                            error!(error = %e, "another master owns the registry; no longer writing");
                            return;
                        }
                        other => {
                            warn!(error = %other, "registry unavailable; will retry with the next batch");
                            continue;
                        }
                    }
                }
                let keys = std::mem::take(&mut pending);
                let count = keys.len();
                if let Err(e) = registrar.write(keys.clone()).await {
                    // Keep the keys: the next batch writes them again.
                    warn!(error = %e, "registry write failed; will retry with the next batch");
                    pending = keys;
                    continue;
                }
                debug!(operations = batch.len(), keys = count, "registry stored");
            }
            stored += batch.len() as u64;
            written_tx.send_replace(stored);
        }
    });
    (RegistrarHandle { tx, written }, task)
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

    fn ids(registry: &Registry) -> Vec<String> {
        registry
            .agents
            .iter()
            .filter_map(|a| a.info.as_ref()?.id.as_ref().map(|i| i.value.clone()))
            .collect()
    }

    #[tokio::test]
    async fn one_key_per_agent_written_in_batches_and_recovered() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (registry, versions) = recover(store.as_ref()).await.expect("recover");
        let (registrar, _) = spawn(store.clone(), registry, versions);
        for i in 0..100 {
            registrar.apply(admit(&format!("a{i:03}")));
        }
        registrar
            .watch_stored()
            .wait_for(|n| *n == 100)
            .await
            .expect("stored");
        let keys = store.list(layout::ROOT).await.expect("list");
        assert_eq!(keys.iter().filter(|k| k.contains("/agents/")).count(), 100);
        let epoch = store.get(&epoch_key()).await.expect("get").expect("epoch");
        assert!(
            epoch.version < 100,
            "writes were batched: epoch {}",
            epoch.version
        );
        registrar.apply(Operation::MarkUnreachable {
            id: "a007".into(),
            nanos: 5,
        });
        registrar
            .watch_stored()
            .wait_for(|n| *n == 101)
            .await
            .expect("stored");
        let (registry, _) = recover(store.as_ref()).await.expect("recover");
        assert_eq!(registry.agents.len(), 99);
        assert_eq!(registry.unreachable.len(), 1);
        assert!(store.get(&agent_key("a007")).await.expect("get").is_none());
    }

    #[tokio::test]
    async fn a_deposed_registrar_stops_writing() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (old, _) = spawn(store.clone(), Registry::default(), HashMap::new());
        old.apply(admit("a1"));
        old.watch_stored()
            .wait_for(|n| *n == 1)
            .await
            .expect("stored");
        // A new leader recovers and claims the epoch.
        let (registry, versions) = recover(store.as_ref()).await.expect("recover");
        let (new, _) = spawn(store.clone(), registry, versions);
        new.apply(admit("a2"));
        new.watch_stored()
            .wait_for(|n| *n == 1)
            .await
            .expect("stored");
        // The deposed one's next batch fails its epoch check.
        old.apply(admit("a3"));
        while !old.is_stopped() {
            tokio::task::yield_now().await;
        }
        assert_eq!(old.stored_operations(), 1);
        let (registry, _) = recover(store.as_ref()).await.expect("recover");
        assert_eq!(ids(&registry), ["a1", "a2"]);
    }
}
