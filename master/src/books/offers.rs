//! Outstanding offers.

use std::collections::HashMap;
use std::time::Instant;

use agora_common::resources::Resources;

/// An offer made and not yet answered.
#[derive(Debug, Clone)]
pub struct OfferEntry {
    /// The framework it went to.
    pub framework_id: String,
    /// The agent whose resources it holds.
    pub agent_id: String,
    /// The role the resources are allocated to.
    pub role: String,
    /// The resources, normalized.
    pub resources: Resources,
    /// When it was made, for `--offer-timeout`.
    pub created: Instant,
}

/// Offers by id.
#[derive(Debug, Default)]
pub struct OfferBook {
    offers: HashMap<String, OfferEntry>,
}

impl OfferBook {
    /// Records an offer.
    pub fn insert(&mut self, id: String, entry: OfferEntry) {
        self.offers.insert(id, entry);
    }

    /// Looks an offer up.
    pub fn get(&self, id: &str) -> Option<&OfferEntry> {
        self.offers.get(id)
    }

    /// Removes an offer (used, declined, rescinded).
    pub fn remove(&mut self, id: &str) -> Option<OfferEntry> {
        self.offers.remove(id)
    }

    /// How many are outstanding.
    pub fn len(&self) -> usize {
        self.offers.len()
    }

    /// Whether none are outstanding.
    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }

    /// Ids of offers created before `cutoff`.
    pub fn older_than(&self, cutoff: Instant) -> Vec<String> {
        self.offers
            .iter()
            .filter(|(_, o)| o.created < cutoff)
            .map(|(id, _)| id.clone())
            .collect()
    }
}
