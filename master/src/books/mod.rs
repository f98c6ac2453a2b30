//! The master's books: what it knows of agents, frameworks, tasks and offers.
//!
//! Plain data owned by the master actor; the actor is the only writer, so
//! nothing here locks. Lifecycles are enums ([`AgentState`],
//! [`FrameworkState`]) so that every place that acts on them must say what
//! happens in each state.

mod agents;
mod frameworks;
mod offers;

pub use agents::{Agent, AgentConn, AgentState, UnreachableAgent};
pub use frameworks::{roles_of as frameworks_roles_of, Framework, FrameworkConn, FrameworkState};
pub use offers::{OfferBook, OfferEntry};

use agora_common::resources::{Resources, UNRESERVED};
use agora_proto::Task;

/// The role a task's resources are allocated to: their allocation info, else
/// their reservation, else `fallback` (the framework's first role).
pub fn task_role(task: &Task, fallback: &str) -> String {
    task.resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
        .or_else(|| {
            task.resources
                .iter()
                .map(agora_common::resources::reservation_role)
                .find(|r| *r != UNRESERVED)
                .map(str::to_string)
        })
        .unwrap_or_else(|| fallback.to_string())
}

/// A task's resources as a normalized bag.
pub fn task_resources(task: &Task) -> Resources {
    Resources::from_vec(task.resources.iter().cloned())
}
