//! The registry: what the master persists about agents, so that a new
//! master knows which agents to expect back.
//!
//! Changes are [`Operation`]s with an `apply` (Mesos' registry operations);
//! the [`registrar`] applies them to its copy and writes the entries they
//! touched through the coordination [`Store`](agora_coord::Store) (one key
//! per agent, see [`layout`]), batching every operation queued while a write
//! is in flight into the next round. An epoch key, bumped by each leader,
//! fences a deposed leader's registrar.

pub mod layout;
pub mod registrar;

use agora_proto::registry::{Agent, UnreachableAgent};
use agora_proto::{AgentId, AgentInfo, Registry, TimeInfo};

/// One change to the registry.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// An agent registered (or reregistered): it is admitted.
    AdmitAgent(AgentInfo),
    /// An admitted agent stopped answering at `nanos` (since the epoch).
    MarkUnreachable {
        /// The agent.
        id: String,
        /// When.
        nanos: i64,
    },
    /// The registry's role weights.
    SetWeight {
        /// The role.
        role: String,
        /// Its weight.
        weight: f64,
    },
}

fn agent_id(info: &AgentInfo) -> &str {
    info.id.as_ref().map(|a| a.value.as_str()).unwrap_or("")
}

impl Operation {
    /// Applies the change; returns whether anything changed.
    pub fn apply(&self, registry: &mut Registry) -> bool {
        match self {
            Operation::AdmitAgent(info) => {
                let id = agent_id(info).to_string();
                registry
                    .unreachable
                    .retain(|u| u.id.as_ref().map(|a| a.value.as_str()) != Some(id.as_str()));
                match registry
                    .agents
                    .iter_mut()
                    .find(|a| a.info.as_ref().map(agent_id) == Some(id.as_str()))
                {
                    Some(existing) if existing.info.as_ref() == Some(info) => false,
                    Some(existing) => {
                        existing.info = Some(info.clone());
                        true
                    }
                    None => {
                        registry.agents.push(Agent {
                            info: Some(info.clone()),
                        });
                        true
                    }
                }
            }
            Operation::MarkUnreachable { id, nanos } => {
                let Some(pos) = registry
                    .agents
                    .iter()
                    .position(|a| a.info.as_ref().map(agent_id) == Some(id.as_str()))
                else {
                    return false;
                };
                let agent = registry.agents.remove(pos);
                registry.unreachable.push(UnreachableAgent {
                    id: Some(AgentId { value: id.clone() }),
                    timestamp: Some(TimeInfo {
                        nanoseconds: *nanos,
                    }),
                    info: agent.info,
                });
                true
            }
            Operation::SetWeight { role, weight } => {
                registry.weights.insert(role.clone(), *weight) != Some(*weight)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, host: &str) -> AgentInfo {
        AgentInfo {
            hostname: host.into(),
            id: Some(AgentId { value: id.into() }),
            ..Default::default()
        }
    }

    #[test]
    fn admit_mark_unreachable_and_readmit() {
        let mut r = Registry::default();
        assert!(Operation::AdmitAgent(info("a1", "h1")).apply(&mut r));
        assert!(
            !Operation::AdmitAgent(info("a1", "h1")).apply(&mut r),
            "idempotent"
        );
        assert!(
            Operation::AdmitAgent(info("a1", "h1b")).apply(&mut r),
            "info updated"
        );
        assert_eq!(r.agents.len(), 1);
        let lost = Operation::MarkUnreachable {
            id: "a1".into(),
            nanos: 7,
        };
        assert!(lost.apply(&mut r));
        assert!(!lost.apply(&mut r), "already unreachable");
        assert!(r.agents.is_empty());
        assert_eq!(
            r.unreachable[0].timestamp,
            Some(TimeInfo { nanoseconds: 7 })
        );
        assert!(Operation::AdmitAgent(info("a1", "h1")).apply(&mut r));
        assert!(r.unreachable.is_empty());
        assert_eq!(r.agents.len(), 1);
    }

    #[test]
    fn weights() {
        let mut r = Registry::default();
        let op = Operation::SetWeight {
            role: "web".into(),
            weight: 2.0,
        };
        assert!(op.apply(&mut r));
        assert!(!op.apply(&mut r));
        assert_eq!(r.weights.get("web"), Some(&2.0));
    }
}
