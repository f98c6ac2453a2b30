//! The bookkeeping every lifecycle event and every grant ends in, so that the
//! invariants live in one place:
//! * [`Allocator::track`] / [`Allocator::untrack`] move resources between an
//!   agent's free and allocated parts and update both sorters;
//! * [`Allocator::sync`] makes a framework's membership of a role's sorter match
//!   its state: a client while subscribed or holding resources there, active
//!   (visited by cycles) only while the framework is active, subscribed and not
//!   suppressed; a role disappears when it has no clients left;
//! * [`Allocator::update_free`] keeps the set of agents a cycle visits.

use agora_common::resources::Resources;

use super::sorter::{Quantities, Sorter};
use super::{allocatable, Allocator, Held};

impl Allocator {
    /// Records `resources` of `agent_id` as allocated to (framework, role).
    pub(super) fn track(
        &mut self,
        agent_id: &str,
        framework_id: &str,
        role: &str,
        resources: &Resources,
    ) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        agent.available.subtract(resources);
        let held = agent
            .allocations
            .iter_mut()
            .find(|h| h.framework_id == framework_id && h.role == role);
        match held {
            Some(held) => held.resources.add(resources),
            None => agent.allocations.push(Held {
                framework_id: framework_id.to_string(),
                role: role.to_string(),
                resources: resources.clone(),
            }),
        }
        let q = Quantities::of(resources);
        let known = self
            .roles
            .get(role)
            .is_some_and(|s| s.contains(framework_id));
        if !known {
            self.ensure_client(framework_id, role);
        }
        self.role_sorter.allocated(role, &q, &self.total);
        if let Some(frameworks) = self.roles.get_mut(role) {
            frameworks.allocated(framework_id, &q, &self.total);
        }
        self.update_free(agent_id);
    }

    /// Releases what of `resources` (framework, role) holds on `agent_id`;
    /// false if it holds nothing there.
    pub(super) fn untrack(
        &mut self,
        agent_id: &str,
        framework_id: &str,
        role: &str,
        resources: &Resources,
    ) -> bool {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return false;
        };
        let Some(pos) = agent
            .allocations
            .iter()
            .position(|h| h.framework_id == framework_id && h.role == role)
        else {
            return false;
        };
        let held = &mut agent.allocations[pos].resources;
        // Only what is actually held comes back (held ∩ resources), so that a
        // duplicate recover cannot drive shares negative or free twice.
        let mut rest = held.clone();
        rest.subtract(resources);
        let mut released = held.clone();
        released.subtract(&rest);
        *held = rest;
        if held.is_empty() {
            agent.allocations.swap_remove(pos);
        }
        agent.available.add(&released);
        let q = Quantities::of(&released);
        self.role_sorter.unallocated(role, &q, &self.total);
        if let Some(frameworks) = self.roles.get_mut(role) {
            frameworks.unallocated(framework_id, &q, &self.total);
        }
        self.sync(framework_id, role);
        self.update_free(agent_id);
        true
    }

    /// Makes (framework, role) a client of the sorters if it is not yet one.
    fn ensure_client(&mut self, framework_id: &str, role: &str) {
        if !self.roles.contains_key(role) {
            self.roles.insert(role.to_string(), Sorter::default());
            self.role_sorter.ensure(role, self.weight(role));
            self.role_sorter.set_active(role, true, &self.total);
        }
        let active = self.active_in(framework_id, role);
        if let Some(frameworks) = self.roles.get_mut(role) {
            if !frameworks.contains(framework_id) {
                frameworks.ensure(framework_id, 1.0);
                frameworks.set_active(framework_id, active, &self.total);
            }
        }
    }

    /// Whether cycles should visit `framework_id` for `role`.
    fn active_in(&self, framework_id: &str, role: &str) -> bool {
        self.frameworks
            .get(framework_id)
            .is_some_and(|f| f.active && f.roles.contains(role) && !f.suppressed.contains(role))
    }

    /// Makes the sorters reflect the state of (framework, role); see the module doc.
    pub(super) fn sync(&mut self, framework_id: &str, role: &str) {
        let subscribed = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.roles.contains(role));
        if subscribed {
            self.ensure_client(framework_id, role);
        }
        let active = self.active_in(framework_id, role);
        let Some(frameworks) = self.roles.get_mut(role) else {
            return;
        };
        let holds_nothing = frameworks
            .allocation(framework_id)
            .is_some_and(Quantities::is_empty);
        if !subscribed && holds_nothing {
            frameworks.remove(framework_id);
        } else {
            frameworks.set_active(framework_id, active, &self.total);
        }
        if frameworks.is_empty() {
            self.roles.remove(role);
            self.role_sorter.remove(role);
        }
    }

    /// Keeps `free` = active agents with something worth offering. An agent
    /// whose leftovers are not allocatable (only ports, say) cannot yield an
    /// offer, so it stays out of cycles until resources come back.
    pub(super) fn update_free(&mut self, agent_id: &str) {
        let worth = self
            .agents
            .get(agent_id)
            .is_some_and(|a| a.active && allocatable(&a.available));
        if worth {
            if !self.free.contains(agent_id) {
                self.free.insert(agent_id.to_string());
            }
        } else {
            self.free.remove(agent_id);
        }
    }
}
