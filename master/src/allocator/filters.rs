//! Decline filters of one framework.
//!
//! When a framework declines (part of) an offer with `refuse_seconds`, Mesos
//! stops offering it that agent's resources for that long, but only as long as
//! what would be offered is *contained in* what was refused: if more resources
//! become free on the agent (a task ended), the larger offer is not filtered,
//! since the framework may want it. We keep those semantics.
//!
//! Filters are kept per agent and expire lazily: an expired filter is dropped
//! the next time it is looked at, so there is no timer and no clock read here;
//! the caller passes `now`.

use std::collections::HashMap;
use std::time::Instant;

use agora_common::resources::Resources;

/// One refusal: `refused` of an agent, for `role`, until `expires`.
#[derive(Debug, Clone)]
struct Filter {
    role: String,
    refused: Resources,
    expires: Instant,
}

/// The live decline filters of one framework, by agent id.
#[derive(Debug, Clone, Default)]
pub struct OfferFilters {
    by_agent: HashMap<String, Vec<Filter>>,
}

impl OfferFilters {
    /// Refuses `refused` of `agent_id` for `role` until `expires`.
    pub fn add(&mut self, agent_id: &str, role: &str, refused: Resources, expires: Instant) {
        self.by_agent
            .entry(agent_id.to_string())
            .or_default()
            .push(Filter {
                role: role.to_string(),
                refused,
                expires,
            });
    }

    /// Whether offering `offer` of `agent_id` for `role` at `now` is filtered.
    /// Drops the agent's expired filters on the way.
    pub fn is_filtered(
        &mut self,
        agent_id: &str,
        role: &str,
        offer: &Resources,
        now: Instant,
    ) -> bool {
        let Some(filters) = self.by_agent.get_mut(agent_id) else {
            return false;
        };
        filters.retain(|f| f.expires > now);
        let filtered = filters
            .iter()
            .any(|f| f.role == role && f.refused.contains(offer));
        if filters.is_empty() {
            self.by_agent.remove(agent_id);
        }
        filtered
    }

    /// Drops every filter on `agent_id` (the agent is gone).
    pub fn remove_agent(&mut self, agent_id: &str) {
        self.by_agent.remove(agent_id);
    }

    /// Drops every filter (the framework revived).
    pub fn clear(&mut self) {
        self.by_agent.clear();
    }

    /// Whether no filter is installed (expired ones may still count).
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_agent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn res(s: &str) -> Resources {
        Resources::parse(s).expect("valid resources")
    }

    #[test]
    fn filters_contained_offers_until_expiry() {
        let now = Instant::now();
        let mut f = OfferFilters::default();
        f.add(
            "a1",
            "web",
            res("cpus:2;mem:512"),
            now + Duration::from_secs(5),
        );
        assert!(f.is_filtered("a1", "web", &res("cpus:2;mem:512"), now));
        assert!(f.is_filtered("a1", "web", &res("cpus:1"), now));
        assert!(
            !f.is_filtered("a2", "web", &res("cpus:1"), now),
            "other agent"
        );
        assert!(
            !f.is_filtered("a1", "batch", &res("cpus:1"), now),
            "other role"
        );
        let later = now + Duration::from_secs(5);
        assert!(!f.is_filtered("a1", "web", &res("cpus:1"), later));
        assert!(f.is_empty(), "expired filters are dropped lazily");
    }

    #[test]
    fn a_larger_offer_is_not_filtered() {
        let now = Instant::now();
        let mut f = OfferFilters::default();
        f.add(
            "a1",
            "web",
            res("cpus:2;mem:512"),
            now + Duration::from_secs(5),
        );
        assert!(!f.is_filtered("a1", "web", &res("cpus:4;mem:512"), now));
        assert!(!f.is_filtered("a1", "web", &res("cpus:1;disk:10"), now));
    }

    #[test]
    fn clear_and_remove_agent() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let mut f = OfferFilters::default();
        f.add("a1", "web", res("cpus:2"), later);
        f.add("a2", "web", res("cpus:2"), later);
        f.remove_agent("a1");
        assert!(!f.is_filtered("a1", "web", &res("cpus:1"), now));
        assert!(f.is_filtered("a2", "web", &res("cpus:1"), now));
        f.clear();
        assert!(f.is_empty());
    }
}
