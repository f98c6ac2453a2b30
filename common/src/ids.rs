//! Id generation in Mesos' shapes.
//!
//! A master picks a random id when it starts; framework ids are
//! `<master-id>-NNNN`, agent ids `<master-id>-SN`, offer ids `<master-id>-ON`,
//! so ids from different master incarnations never collide.

use std::sync::atomic::{AtomicU64, Ordering};

/// Hands out the ids one master incarnation creates.
#[derive(Debug)]
pub struct IdGenerator {
    master_id: String,
    next_framework: AtomicU64,
    next_agent: AtomicU64,
    next_offer: AtomicU64,
}

impl IdGenerator {
    /// A generator for the master with id `master_id`.
    pub fn new(master_id: impl Into<String>) -> Self {
        IdGenerator {
            master_id: master_id.into(),
            next_framework: AtomicU64::new(0),
            next_agent: AtomicU64::new(0),
            next_offer: AtomicU64::new(1),
        }
    }

    /// The master id the ids are derived from.
    pub fn master_id(&self) -> &str {
        &self.master_id
    }

    /// A new framework id, `<master>-0000`, `<master>-0001`, ...
    pub fn framework(&self) -> String {
        let n = self.next_framework.fetch_add(1, Ordering::Relaxed);
        format!("{}-{:04}", self.master_id, n)
    }

    /// A new agent id, `<master>-S0`, `<master>-S1`, ...
    pub fn agent(&self) -> String {
        let n = self.next_agent.fetch_add(1, Ordering::Relaxed);
        format!("{}-S{}", self.master_id, n)
    }

    /// A new offer id, `<master>-O1`, `<master>-O2`, ...
    pub fn offer(&self) -> String {
        let n = self.next_offer.fetch_add(1, Ordering::Relaxed);
        format!("{}-O{}", self.master_id, n)
    }
}

/// A fresh random master id (a UUID, as Mesos uses).
pub fn new_master_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_mesos_shapes_and_are_unique() {
        let ids = IdGenerator::new("m");
        assert_eq!(ids.framework(), "m-0000");
        assert_eq!(ids.framework(), "m-0001");
        assert_eq!(ids.agent(), "m-S0");
        assert_eq!(ids.offer(), "m-O1");
        assert_eq!(ids.offer(), "m-O2");
    }
}
