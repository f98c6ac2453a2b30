//! One allocation cycle: quota first, then DRF, never eating quota headroom.
//!
//! The cycle visits only the agents in the free set (active, with something
//! worth offering), starting at a rotating position so that no agent is always
//! served first. It runs in two stages, as Mesos' hierarchical allocator does:
//!
//! 1. **Quota.** For each agent, roles whose allocation is below their
//!    guarantee (for some guaranteed scalar) are offered, in ascending order of
//!    quota share (allocation over guarantee), everything on the agent they may
//!    use. This may overshoot the guarantee by part of an agent: simple, and
//!    the surplus is only ever what one agent holds.
//! 2. **Fair share.** For each agent, roles in DRF order, and frameworks in
//!    DRF order within each role, are offered what they may use, except that
//!    *unreserved* resources are held back when granting them would leave less
//!    free unreserved capacity than the guarantees still unmet need (the
//!    headroom). A grant to a role with an unmet guarantee counts towards its
//!    own need. Reserved resources are never held back: they belong to their
//!    role anyway. Headroom is held for a quota role even if it currently has
//!    no framework wanting offers, as Mesos does: a guarantee is a promise.
//!
//! In both stages a framework is skipped if it is inactive or suppressed for
//! the role (then it is not in the sorter's order at all) or if a decline
//! filter covers what would be offered.

use std::sync::Arc;
use std::time::Instant;

use agora_common::resources::{reservation_role, role_may_use, Resources, UNRESERVED};
use agora_proto::Resource;

use super::sorter::{Key, Quantities, Share, Sorter};
use super::{allocatable, Allocation, Allocator};

/// Tolerance for comparing quantities rounded to three decimals.
const EPSILON: f64 = 1e-6;

/// Unreserved capacity the unmet guarantees still need, and what is free.
#[derive(Debug, Clone)]
struct Headroom {
    /// Sum over quota roles of (guarantee - allocation), per scalar.
    required: Quantities,
    /// Free unreserved scalars on the agents of the cycle.
    available: Quantities,
}

impl Headroom {
    /// Whether granting `granted` unreserved scalars to a role that still needs
    /// `need` for its guarantee leaves enough for the other guarantees.
    fn allows(&self, granted: &Quantities, need: &Quantities) -> bool {
        granted.iter().all(|(name, g)| {
            let required = self.required.get(name) - g.min(need.get(name));
            self.available.get(name) - g >= required - EPSILON
        })
    }

    /// Accounts for a grant checked by [`Headroom::allows`].
    fn consume(&mut self, granted: &Quantities, need: &Quantities) {
        self.available.subtract(granted);
        self.required.subtract(&granted.min(need));
    }
}

impl Allocator {
    /// Runs one allocation cycle at `now` and returns the offers to make.
    pub fn allocate(&mut self, now: Instant) -> Vec<Allocation> {
        if self.stale {
            // The cluster total changed since the last cycle: every share did.
            self.role_sorter.refresh(&self.total);
            for frameworks in self.roles.values_mut() {
                frameworks.refresh(&self.total);
            }
            self.stale = false;
        }
        let agents = self.cycle_agents();
        let mut out = Vec::new();
        if !self.quotas.is_empty() {
            for agent_id in &agents {
                self.allocate_quota(agent_id, now, &mut out);
            }
        }
        let mut headroom = self.headroom();
        for agent_id in &agents {
            self.allocate_fair(agent_id, now, headroom.as_mut(), &mut out);
        }
        out
    }

    /// The free agents, rotated by one more position each cycle.
    fn cycle_agents(&mut self) -> Vec<String> {
        let mut agents: Vec<String> = self.free.iter().cloned().collect();
        if !agents.is_empty() {
            let start = self.rotation % agents.len();
            agents.rotate_left(start);
        }
        self.rotation = self.rotation.wrapping_add(1);
        agents
    }

    /// Stage 1 on one agent: roles below their guarantee, least satisfied first.
    fn allocate_quota(&mut self, agent_id: &str, now: Instant, out: &mut Vec<Allocation>) {
        let mut pending: Vec<Key> = self
            .quotas
            .iter()
            .filter_map(|(role, guarantee)| {
                let held = self.role_sorter.allocation(role)?;
                let unmet = guarantee.iter().any(|(name, g)| held.get(name) < g);
                unmet.then(|| {
                    (
                        Share(held.dominant_share(guarantee)),
                        Arc::from(role.as_str()),
                    )
                })
            })
            .collect();
        pending.sort();
        for (_, role) in pending {
            self.offer_to_role(agent_id, &role, None, now, out);
        }
    }

    /// Stage 2 on one agent: roles in DRF order until nothing worth offering is left.
    fn allocate_fair(
        &mut self,
        agent_id: &str,
        now: Instant,
        mut headroom: Option<&mut Headroom>,
        out: &mut Vec<Allocation>,
    ) {
        let mut cursor: Option<Key> = None;
        while self
            .agents
            .get(agent_id)
            .is_some_and(|a| allocatable(&a.available))
        {
            // A cursor, not an iterator: each grant moves its role further on.
            let Some(key) = self.role_sorter.next_after(cursor.as_ref()).cloned() else {
                break;
            };
            if self.roles.get(&*key.1).is_some_and(Sorter::has_active) {
                self.offer_to_role(agent_id, &key.1, headroom.as_deref_mut(), now, out);
            }
            cursor = Some(key);
        }
    }

    /// Offers what `role` may use on `agent_id` to the first eligible framework
    /// of the role, within `headroom` if given.
    fn offer_to_role(
        &mut self,
        agent_id: &str,
        role: &str,
        headroom: Option<&mut Headroom>,
        now: Instant,
        out: &mut Vec<Allocation>,
    ) {
        let need = match headroom {
            Some(_) => self.quota_need(role),
            None => Quantities::default(),
        };
        let Some((offer, taken)) = self.carve_offer(agent_id, role, headroom.as_deref(), &need)
        else {
            return;
        };
        let picked = match allocatable(&offer) {
            true => self.pick_framework(agent_id, role, &offer, now),
            false => None,
        };
        let Some(framework_id) = picked else {
            if let Some(agent) = self.agents.get_mut(agent_id).filter(|_| taken) {
                agent.available = offer;
            }
            return;
        };
        if let Some(headroom) = headroom {
            headroom.consume(&Quantities::of(&offer.unreserved()), &need);
        }
        self.track(agent_id, &framework_id, role, &offer);
        out.push(Allocation {
            framework_id,
            agent_id: agent_id.to_string(),
            role: role.to_string(),
            resources: offer,
        });
    }

    /// What `role` may be offered on `agent_id`: everything free it may use,
    /// or only the reserved part if the unreserved part would eat `headroom`
    /// (`need` being what the role itself still lacks of its guarantee).
    ///
    /// When the offer is everything free on the agent (the common case) it is
    /// moved out rather than copied, since copying was a third of a cycle's
    /// time; the flag says so, and the caller puts it back if nobody takes it.
    fn carve_offer(
        &mut self,
        agent_id: &str,
        role: &str,
        headroom: Option<&Headroom>,
        need: &Quantities,
    ) -> Option<(Resources, bool)> {
        let agent = self.agents.get_mut(agent_id)?;
        let usable = |r: &Resource| role_may_use(role, reservation_role(r));
        let unreserved = |r: &Resource| reservation_role(r) == UNRESERVED;
        if let Some(headroom) = headroom {
            let wanted = agent.available.filter(|r| usable(r) && unreserved(r));
            if !headroom.allows(&Quantities::of(&wanted), need) {
                let reserved = agent.available.filter(|r| usable(r) && !unreserved(r));
                return Some((reserved, false));
            }
        }
        if agent.available.iter().all(usable) {
            Some((std::mem::take(&mut agent.available), true))
        } else {
            Some((agent.available.usable_by(role), false))
        }
    }

    /// The first framework of `role`, in order, that is not filtered for `offer`.
    fn pick_framework(
        &mut self,
        agent_id: &str,
        role: &str,
        offer: &Resources,
        now: Instant,
    ) -> Option<String> {
        let frameworks = self.roles.get(role)?;
        for framework_id in frameworks.active_in_order() {
            // Clients in the order are always known frameworks (see `sync`).
            let Some(framework) = self.frameworks.get_mut(framework_id) else {
                continue;
            };
            if !framework.filters.is_filtered(agent_id, role, offer, now) {
                return Some(framework_id.to_string());
            }
        }
        None
    }

    /// What `role` still lacks of its guarantee, per scalar (empty if none).
    fn quota_need(&self, role: &str) -> Quantities {
        let Some(guarantee) = self.quotas.get(role) else {
            return Quantities::default();
        };
        let mut need = guarantee.clone();
        if let Some(held) = self.role_sorter.allocation(role) {
            need.subtract(held);
        }
        need
    }

    /// The headroom for stage 2, or `None` if every guarantee is met.
    fn headroom(&self) -> Option<Headroom> {
        let mut required = Quantities::default();
        for role in self.quotas.keys() {
            required.add(&self.quota_need(role));
        }
        if required.is_empty() {
            return None;
        }
        let mut available = Quantities::default();
        for agent in self.free.iter().filter_map(|id| self.agents.get(id)) {
            available.add(&Quantities::of(&agent.available.unreserved()));
        }
        Some(Headroom {
            required,
            available,
        })
    }
}
