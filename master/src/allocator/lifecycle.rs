//! Lifecycle events fed to the allocator: agents and frameworks coming and
//! going, suppression and revival, resources given back.
//!
//! Each event ends in the helpers of `bookkeeping.rs`, which hold the
//! invariants. The master may race with itself (an offer declined after its
//! agent was removed), so unknown ids are logged at debug level and ignored.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use agora_common::resources::Resources;
use tracing::debug;

use super::sorter::Quantities;
use super::{Agent, Allocator, Framework};

/// Refusals are capped, as in Mesos, so `now + refuse` cannot overflow.
const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);

impl Allocator {
    /// Adds an agent, active, with `used` = (framework id, role, resources) of
    /// tasks already running on it (an agent re-registering after a master
    /// fail-over). The frameworks need not be known yet: their resources count
    /// in their role's share from now on. Re-adding a known agent replaces it.
    pub fn add_agent(
        &mut self,
        agent_id: &str,
        total: Resources,
        used: Vec<(String, String, Resources)>,
    ) {
        if self.agents.contains_key(agent_id) {
            debug!(agent_id, "agent added twice: replacing it");
            self.remove_agent(agent_id);
        }
        self.total.add(&Quantities::of(&total));
        self.stale = true;
        let agent = Agent {
            available: total.clone(),
            total,
            allocations: Default::default(),
            active: true,
        };
        self.agents.insert(agent_id.to_string(), agent);
        for (framework_id, role, resources) in used {
            self.track(agent_id, &framework_id, &role, &resources);
        }
        self.update_free(agent_id);
    }

    /// Removes an agent: its allocations no longer count for anybody.
    pub fn remove_agent(&mut self, agent_id: &str) {
        let Some(agent) = self.agents.remove(agent_id) else {
            debug!(agent_id, "removing unknown agent: ignored");
            return;
        };
        if agent.active {
            self.total.subtract(&Quantities::of(&agent.total));
            self.stale = true;
        }
        self.free.remove(agent_id);
        for held in agent.allocations {
            let q = Quantities::of(&held.resources);
            self.role_sorter.unallocated(&held.role, &q, &self.total);
            if let Some(frameworks) = self.roles.get_mut(&held.role) {
                frameworks.unallocated(&held.framework_id, &q, &self.total);
            }
            self.sync(&held.framework_id, &held.role);
        }
        for framework in self.frameworks.values_mut() {
            framework.filters.remove_agent(agent_id);
        }
    }

    /// Makes an agent eligible for offers again.
    pub fn activate_agent(&mut self, agent_id: &str) {
        self.set_agent_active(agent_id, true);
    }

    /// Stops offers of an agent's resources; its allocations stay, its total
    /// leaves the cluster total.
    pub fn deactivate_agent(&mut self, agent_id: &str) {
        self.set_agent_active(agent_id, false);
    }

    fn set_agent_active(&mut self, agent_id: &str, active: bool) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            debug!(agent_id, active, "(de)activating unknown agent: ignored");
            return;
        };
        if agent.active != active {
            agent.active = active;
            let q = Quantities::of(&agent.total);
            if active {
                self.total.add(&q);
            } else {
                self.total.subtract(&q);
            }
            self.stale = true;
        }
        self.update_free(agent_id);
    }

    /// Adds a framework subscribed to `roles`, with offers for
    /// `suppressed_roles` suppressed. Re-adding a known framework updates it
    /// and keeps its filters.
    pub fn add_framework(
        &mut self,
        framework_id: &str,
        roles: Vec<String>,
        suppressed_roles: Vec<String>,
        active: bool,
    ) {
        let old = self.frameworks.remove(framework_id).unwrap_or_default();
        let roles: BTreeSet<String> = roles.into_iter().collect();
        let suppressed = suppressed_roles
            .into_iter()
            .filter(|r| roles.contains(r))
            .collect();
        let touched: Vec<String> = old.roles.union(&roles).cloned().collect();
        let framework = Framework {
            roles,
            suppressed,
            active,
            filters: old.filters,
        };
        self.frameworks.insert(framework_id.to_string(), framework);
        for role in &touched {
            self.sync(framework_id, role);
        }
    }

    /// Replaces the roles of a framework (keeping suppression of roles it keeps).
    pub fn update_framework_roles(&mut self, framework_id: &str, roles: Vec<String>) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            debug!(framework_id, "updating roles of unknown framework: ignored");
            return;
        };
        let roles: BTreeSet<String> = roles.into_iter().collect();
        let touched: Vec<String> = framework.roles.union(&roles).cloned().collect();
        framework.suppressed.retain(|r| roles.contains(r));
        framework.roles = roles;
        for role in &touched {
            self.sync(framework_id, role);
        }
    }

    /// Makes a framework eligible for offers again (it reconnected).
    pub fn activate_framework(&mut self, framework_id: &str) {
        self.set_framework_active(framework_id, true);
    }

    /// Stops offers to a framework (it disconnected); its allocations stay.
    pub fn deactivate_framework(&mut self, framework_id: &str) {
        self.set_framework_active(framework_id, false);
    }

    fn set_framework_active(&mut self, framework_id: &str, active: bool) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            debug!(
                framework_id,
                active, "(de)activating unknown framework: ignored"
            );
            return;
        };
        framework.active = active;
        let roles: Vec<String> = framework.roles.iter().cloned().collect();
        for role in &roles {
            self.sync(framework_id, role);
        }
    }

    /// Removes a framework and frees everything allocated to it.
    pub fn remove_framework(&mut self, framework_id: &str) {
        let Some(framework) = self.frameworks.remove(framework_id) else {
            debug!(framework_id, "removing unknown framework: ignored");
            return;
        };
        // A scan over agents rather than a reverse index: removal is rare, and
        // the index would cost on every grant of the hot path.
        let held: Vec<(String, String, Resources)> = self
            .agents
            .iter()
            .flat_map(|(agent_id, agent)| {
                agent
                    .allocations
                    .iter()
                    .filter(|h| h.framework_id == framework_id)
                    .map(move |h| (agent_id.clone(), h.role.clone(), h.resources.clone()))
            })
            .collect();
        for (agent_id, role, resources) in held {
            self.untrack(&agent_id, framework_id, &role, &resources);
        }
        for role in &framework.roles {
            self.sync(framework_id, role);
        }
    }

    /// Stops offers to a framework for `roles` (empty: all its roles).
    pub fn suppress(&mut self, framework_id: &str, roles: &[String]) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            debug!(framework_id, "suppressing unknown framework: ignored");
            return;
        };
        let chosen = chosen_roles(framework, roles);
        framework.suppressed.extend(chosen.iter().cloned());
        for role in &chosen {
            self.sync(framework_id, role);
        }
    }

    /// Clears all decline filters of a framework and resumes offers for
    /// `roles` (empty: all its roles).
    pub fn revive(&mut self, framework_id: &str, roles: &[String]) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            debug!(framework_id, "reviving unknown framework: ignored");
            return;
        };
        framework.filters.clear();
        let chosen = chosen_roles(framework, roles);
        for role in &chosen {
            framework.suppressed.remove(role);
        }
        for role in &chosen {
            self.sync(framework_id, role);
        }
    }

    /// Gives back resources allocated to (framework, role) on an agent: a
    /// declined or rescinded offer, the unused part of an accepted one, or the
    /// resources of a finished task. With `refuse`, the framework is not offered
    /// that agent's resources again before `now + refuse` as long as the offer
    /// would be contained in `resources`.
    pub fn recover(
        &mut self,
        agent_id: &str,
        framework_id: &str,
        role: &str,
        resources: &Resources,
        refuse: Option<Duration>,
        now: Instant,
    ) {
        if !self.untrack(agent_id, framework_id, role, resources) {
            debug!(
                agent_id,
                framework_id, role, "recovering resources not allocated: ignored"
            );
            return;
        }
        let Some(refuse) = refuse.filter(|d| !d.is_zero()) else {
            return;
        };
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            let expires = now + refuse.min(MAX_REFUSE);
            framework
                .filters
                .add(agent_id, role, resources.clone(), expires);
        }
    }
}

/// The framework's roles named in `roles`, or all of them if `roles` is empty.
fn chosen_roles(framework: &Framework, roles: &[String]) -> Vec<String> {
    if roles.is_empty() {
        framework.roles.iter().cloned().collect()
    } else {
        roles
            .iter()
            .filter(|r| framework.roles.contains(*r))
            .cloned()
            .collect()
    }
}
