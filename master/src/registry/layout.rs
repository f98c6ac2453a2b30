//! How the registry lies in the store: one key per entry, so no value nears
//! ZooKeeper's 1 MB limit however many agents there are.
//!
//! ```text
//! <root>/epoch              bumped by the leader before every batch of writes
//! <root>/agents/<id>        Registry.Agent (an admitted agent)
//! <root>/unreachable/<id>   Registry.UnreachableAgent
//! <root>/weights            Registry with only `weights`
//! ```

use std::collections::HashMap;

use agora_coord::{Store, StoreError};
use agora_proto::registry::{Agent, UnreachableAgent};
use agora_proto::Registry;
use futures::{StreamExt, TryStreamExt};
use prost::Message;

/// Where the registry lives.
pub const ROOT: &str = "/agora/registry";

/// How many reads recovery keeps in flight.
const PARALLEL_READS: usize = 256;

/// The epoch key.
pub fn epoch_key() -> String {
    format!("{ROOT}/epoch")
}

/// The key of an admitted agent.
pub fn agent_key(id: &str) -> String {
    format!("{ROOT}/agents/{id}")
}

/// The key of an unreachable agent.
pub fn unreachable_key(id: &str) -> String {
    format!("{ROOT}/unreachable/{id}")
}

/// The weights key.
pub fn weights_key() -> String {
    format!("{ROOT}/weights")
}

/// What the store holds for `key` given the registry, or `None` when the
/// key should not exist.
pub fn encode(registry: &Registry, key: &str) -> Option<Vec<u8>> {
    let id_of = |info: &Option<agora_proto::AgentInfo>| {
        info.as_ref()
            .and_then(|i| i.id.as_ref())
            .map(|i| i.value.clone())
            .unwrap_or_default()
    };
    if let Some(id) = key.strip_prefix(&format!("{ROOT}/agents/")) {
        return registry
            .agents
            .iter()
            .find(|a| id_of(&a.info) == id)
            .map(Message::encode_to_vec);
    }
    if let Some(id) = key.strip_prefix(&format!("{ROOT}/unreachable/")) {
        return registry
            .unreachable
            .iter()
            .find(|u| u.id.as_ref().map(|i| i.value.as_str()) == Some(id))
            .map(Message::encode_to_vec);
    }
    if key == weights_key() {
        return (!registry.weights.is_empty()).then(|| {
            Registry {
                weights: registry.weights.clone(),
                ..Default::default()
            }
            .encode_to_vec()
        });
    }
    None
}

fn corrupt(key: &str, e: prost::DecodeError) -> StoreError {
    StoreError::Unavailable(format!("corrupt registry entry '{key}': {e}"))
}

/// Reads the whole registry, with the version of every key read.
pub async fn recover(store: &dyn Store) -> Result<(Registry, HashMap<String, u64>), StoreError> {
    let mut versions = HashMap::new();
    let mut registry = Registry::default();
    let read_all = |prefix: String| async move {
        let keys = store.list(&prefix).await?;
        futures::stream::iter(keys)
            .map(|key| async move { Ok::<_, StoreError>((store.get(&key).await?, key)) })
            .buffer_unordered(PARALLEL_READS)
            .try_collect::<Vec<_>>()
            .await
    };
    for (value, key) in read_all(format!("{ROOT}/agents")).await? {
        if let Some(v) = value {
            registry
                .agents
                .push(Agent::decode(v.data.as_slice()).map_err(|e| corrupt(&key, e))?);
            versions.insert(key, v.version);
        }
    }
    for (value, key) in read_all(format!("{ROOT}/unreachable")).await? {
        if let Some(v) = value {
            registry
                .unreachable
                .push(UnreachableAgent::decode(v.data.as_slice()).map_err(|e| corrupt(&key, e))?);
            versions.insert(key, v.version);
        }
    }
    for key in [weights_key(), epoch_key()] {
        if let Some(v) = store.get(&key).await? {
            if key == weights_key() {
                let w = Registry::decode(v.data.as_slice()).map_err(|e| corrupt(&key, e))?;
                registry.weights = w.weights;
            }
            versions.insert(key, v.version);
        }
    }
    // Stable order: the store does not keep the order agents were admitted in.
    let id = |a: &Agent| {
        a.info
            .as_ref()
            .and_then(|i| i.id.as_ref())
            .map(|i| i.value.clone())
            .unwrap_or_default()
    };
    registry.agents.sort_by_key(id);
    Ok((registry, versions))
}
