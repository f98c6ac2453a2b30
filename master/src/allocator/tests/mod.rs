//! Behaviour tests of the allocator: plain calls, a fixed clock, no runtime.
//!
//! Each file covers one concern: `fairness` (DRF order and weights), `quota`,
//! `offer_filters` (decline filters, suppress and revive), `lifecycle` (agents
//! and frameworks coming and going, reservations), `bench` (an ignored timing
//! run of a large cycle).

mod bench;
mod fairness;
mod lifecycle;
mod offer_filters;
mod quota;

use std::collections::BTreeMap;
use std::time::Instant;

use agora_common::resources::Resources;

use super::{Allocation, Allocator};

fn res(s: &str) -> Resources {
    Resources::parse(s).expect("valid resources")
}

fn allocator() -> Allocator {
    Allocator::new(Vec::new()).expect("no weights is valid")
}

/// Adds `n` agents `agent-00`, `agent-01`, ... of `total` each; returns their ids.
fn add_agents(a: &mut Allocator, n: usize, total: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = format!("agent-{i:02}");
            a.add_agent(&id, res(total), Vec::new());
            id
        })
        .collect()
}

/// Adds an active framework subscribed to `roles`, nothing suppressed.
fn add_framework(a: &mut Allocator, id: &str, roles: &[&str]) {
    let roles = roles.iter().map(|r| r.to_string()).collect();
    a.add_framework(id, roles, Vec::new(), true);
}

/// How many allocations went to each framework.
fn count_by_framework(allocations: &[Allocation]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for a in allocations {
        *out.entry(a.framework_id.clone()).or_insert(0) += 1;
    }
    out
}

/// Gives every allocation back, without filters.
fn recover_all(a: &mut Allocator, allocations: &[Allocation], now: Instant) {
    for x in allocations {
        a.recover(
            &x.agent_id,
            &x.framework_id,
            &x.role,
            &x.resources,
            None,
            now,
        );
    }
}
