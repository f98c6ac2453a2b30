//! The master's allocator: which framework gets which agent's free resources.
//!
//! A pure core in the style of raft-rs: no I/O, no runtime, no clock reads (the
//! caller passes `now`). The master actor feeds it lifecycle events (agents and
//! frameworks coming and going, offers declined, tasks finished) and calls
//! [`Allocator::allocate`] periodically; each returned [`Allocation`] becomes an
//! offer.
//!
//! # Policy: two-level DRF, as in Mesos' hierarchical allocator
//!
//! * Roles are ordered by weighted dominant share (their scalar allocation over
//!   the cluster total, maximised over resource names, divided by the role's
//!   weight); within a role, frameworks are ordered by their dominant share of
//!   what they hold in that role. Ties go by name. Hierarchical role names
//!   (`eng/web`) matter for reservations (`eng/web` may use resources reserved
//!   for `eng`); for ordering every role is a flat client.
//! * For each free agent, the walk goes down the roles and offers the first
//!   eligible framework of each role everything on the agent that role may use
//!   ([`Resources::usable_by`]); what is left (resources reserved for other
//!   roles) goes on to the next roles.
//! * Quota (see `cycle.rs`): roles below their guarantee are served first, and
//!   later grants never consume the unreserved headroom still needed by
//!   guarantees that are not yet met.
//! * Decline filters (`filters.rs`) follow Mesos: a refused offer is not made
//!   again until the filter expires, unless more has become free on the agent.
//!   [`Allocator::suppress`] stops offers for some roles of a framework,
//!   [`Allocator::revive`] resumes them and clears the filters.
//!
//! # Bookkeeping
//!
//! The allocator does not distinguish offered from used resources: both are
//! "allocated" until they come back through [`Allocator::recover`]. Per agent it
//! keeps exact [`Resources`] per (framework, role); the sorters (`sorter.rs`)
//! keep scalar sums. Everything is updated incrementally (`bookkeeping.rs`):
//! the sorters move one entry per grant, and the set of agents with something
//! to offer is maintained on every change, so a cycle visits only those.
//!
//! # Files
//!
//! `mod.rs` holds the types and accessors, `lifecycle.rs` the events,
//! `bookkeeping.rs` the invariants they share, `cycle.rs` the allocation cycle,
//! `sorter.rs` and `filters.rs` the two data structures, `tests/` the
//! behaviour tests.

mod bookkeeping;
mod cycle;
mod filters;
mod lifecycle;
mod sorter;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use agora_common::resources::Resources;

use filters::OfferFilters;
use sorter::{Quantities, Sorter};

/// Resources of one agent granted to one framework for one role: an offer to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// The framework to offer to.
    pub framework_id: String,
    /// The agent the resources are on.
    pub agent_id: String,
    /// The role the resources are allocated to (set as `allocation_info`).
    pub role: String,
    /// What is offered.
    pub resources: Resources,
}

/// A role as the master's state and metrics endpoints show it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleInfo {
    /// The role name.
    pub name: String,
    /// Its weight (1.0 unless set).
    pub weight: f64,
    /// Its weighted dominant share of the cluster.
    pub share: f64,
    /// What it holds, as scalar sums over agents (ranges such as ports do not
    /// add up across agents and are left out).
    pub allocated: Resources,
    /// Frameworks subscribed to it or still holding resources in it, sorted.
    pub frameworks: Vec<String>,
}

/// An invalid allocator setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocatorError {
    /// Weights must be finite and positive: they divide shares.
    #[error("invalid weight {weight} for role '{role}': must be a finite number > 0")]
    InvalidWeight {
        /// The role.
        role: String,
        /// The rejected weight.
        weight: f64,
    },
}

/// Offers below this are not worth making (Mesos' default minimum allocatable).
const MIN_CPUS: f64 = 0.01;
/// Offers below this are not worth making (Mesos' default minimum allocatable).
const MIN_MEM: f64 = 32.0;

/// Whether `r` is worth offering: at least some CPU or some memory.
fn allocatable(r: &Resources) -> bool {
    r.scalar("cpus") >= MIN_CPUS || r.scalar("mem") >= MIN_MEM
}

/// Resources of an agent held by one (framework, role).
#[derive(Debug, Clone)]
struct Held {
    framework_id: String,
    role: String,
    resources: Resources,
}

/// An agent known to the allocator.
#[derive(Debug, Clone)]
struct Agent {
    total: Resources,
    /// `total` minus everything held, kept because every cycle starts from it.
    available: Resources,
    /// Exact resources per (framework, role); frameworks need not be known.
    /// A short vector: an agent hosts few frameworks, and a grant must not pay
    /// for building maps (it is the hot path of a cycle).
    allocations: Vec<Held>,
    /// Deactivated agents get no offers but keep their allocations.
    active: bool,
}

/// A framework known to the allocator.
#[derive(Debug, Clone, Default)]
struct Framework {
    roles: BTreeSet<String>,
    suppressed: BTreeSet<String>,
    active: bool,
    filters: OfferFilters,
}

/// The allocator. See the module documentation for the policy.
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    agents: HashMap<String, Agent>,
    frameworks: HashMap<String, Framework>,
    /// Roles ordered by weighted dominant share; a role is a client while it
    /// has subscribed frameworks or allocations (i.e. while `roles` has it).
    role_sorter: Sorter,
    /// The frameworks of each role, ordered within it.
    roles: HashMap<String, Sorter>,
    weights: BTreeMap<String, f64>,
    /// Guarantees: only scalars can be guaranteed.
    quotas: BTreeMap<String, Quantities>,
    /// Scalar sum of active agents' totals: the denominator of every share.
    total: Quantities,
    /// Set when `total` changed: shares are recomputed at the next cycle.
    stale: bool,
    /// Active agents with unallocated resources: the only ones a cycle visits.
    free: BTreeSet<String>,
    /// Rotates the cycle's starting agent so no agent is always served first.
    rotation: usize,
}

impl Allocator {
    /// An allocator with initial role weights (roles not listed weigh 1.0).
    pub fn new(weights: impl IntoIterator<Item = (String, f64)>) -> Result<Self, AllocatorError> {
        let mut allocator = Allocator::default();
        for (role, weight) in weights {
            allocator.set_weight(&role, weight)?;
        }
        Ok(allocator)
    }

    /// Sets the weight of `role`: its share is divided by it, so a role of
    /// weight 3 ends up with about three times the resources of a role of weight 1.
    pub fn set_weight(&mut self, role: &str, weight: f64) -> Result<(), AllocatorError> {
        if !weight.is_finite() || weight <= 0.0 {
            return Err(AllocatorError::InvalidWeight {
                role: role.to_string(),
                weight,
            });
        }
        self.weights.insert(role.to_string(), weight);
        self.role_sorter.set_weight(role, weight, &self.total);
        Ok(())
    }

    /// Sets the guarantee of `role` (only its scalars count); an empty
    /// guarantee removes the quota.
    pub fn set_quota(&mut self, role: &str, guarantee: Resources) {
        let scalars = Quantities::of(&guarantee);
        if scalars.is_empty() {
            self.quotas.remove(role);
        } else {
            self.quotas.insert(role.to_string(), scalars);
        }
    }

    /// The explicitly set role weights.
    pub fn weights(&self) -> &BTreeMap<String, f64> {
        &self.weights
    }

    /// The quota guarantees by role (scalars).
    pub fn quotas(&self) -> BTreeMap<String, Resources> {
        self.quotas
            .iter()
            .map(|(role, q)| (role.clone(), q.to_resources()))
            .collect()
    }

    /// The weighted dominant share of `role` (0 for an unknown role).
    pub fn role_share(&self, role: &str) -> f64 {
        self.role_sorter.share(role, &self.total)
    }

    /// The dominant share of everything `framework_id` holds, over all roles.
    pub fn framework_share(&self, framework_id: &str) -> f64 {
        self.framework_allocation(framework_id)
            .dominant_share(&self.total)
    }

    /// What is allocated (offered or in use) on `agent_id`.
    pub fn allocated_on(&self, agent_id: &str) -> Resources {
        self.agents
            .get(agent_id)
            .map(|a| {
                let mut allocated = a.total.clone();
                allocated.subtract(&a.available);
                allocated
            })
            .unwrap_or_default()
    }

    /// What is not allocated on `agent_id` (whether or not the agent is active).
    pub fn available_on(&self, agent_id: &str) -> Resources {
        self.agents
            .get(agent_id)
            .map(|a| a.available.clone())
            .unwrap_or_default()
    }

    /// The scalar sum of the active agents' totals.
    pub fn cluster_total(&self) -> Resources {
        self.total.to_resources()
    }

    /// The roles that have frameworks or allocations, sorted by name.
    pub fn roles(&self) -> Vec<RoleInfo> {
        let mut out: Vec<RoleInfo> = self
            .roles
            .iter()
            .map(|(name, frameworks)| {
                let mut names: Vec<String> = frameworks.names().map(str::to_string).collect();
                names.sort();
                RoleInfo {
                    name: name.clone(),
                    weight: self.weight(name),
                    share: self.role_share(name),
                    allocated: self
                        .role_sorter
                        .allocation(name)
                        .map(Quantities::to_resources)
                        .unwrap_or_default(),
                    frameworks: names,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The weight of `role`.
    fn weight(&self, role: &str) -> f64 {
        self.weights.get(role).copied().unwrap_or(1.0)
    }

    /// The scalar sum of what `framework_id` holds in any role.
    fn framework_allocation(&self, framework_id: &str) -> Quantities {
        let mut sum = Quantities::default();
        for frameworks in self.roles.values() {
            if let Some(q) = frameworks.allocation(framework_id) {
                sum.add(q);
            }
        }
        sum
    }
}
