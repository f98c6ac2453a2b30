//! Decline filters, suppression and revival.

use std::time::{Duration, Instant};

use super::*;

const REFUSE: Duration = Duration::from_secs(10);

#[test]
fn declined_agent_goes_to_another_framework_until_the_filter_expires() {
    let mut a = allocator();
    add_agents(&mut a, 1, "cpus:2;mem:2048");
    add_framework(&mut a, "fw-1", &["r"]);
    add_framework(&mut a, "fw-2", &["r"]);
    let t0 = Instant::now();

    let offer = a.allocate(t0).remove(0);
    assert_eq!(offer.framework_id, "fw-1");
    a.recover(
        &offer.agent_id,
        "fw-1",
        "r",
        &offer.resources,
        Some(REFUSE),
        t0,
    );

    let offer = a.allocate(t0).remove(0);
    assert_eq!(offer.framework_id, "fw-2", "filtered for fw-1 only");
    a.recover(
        &offer.agent_id,
        "fw-2",
        "r",
        &offer.resources,
        Some(REFUSE * 10),
        t0,
    );

    assert!(a.allocate(t0 + REFUSE / 2).is_empty(), "both filtered");
    let offers = a.allocate(t0 + REFUSE);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].framework_id, "fw-1", "fw-1's filter expired");
}

#[test]
fn revive_clears_filters() {
    let mut a = allocator();
    add_agents(&mut a, 1, "cpus:2;mem:2048");
    add_framework(&mut a, "fw", &["r"]);
    let now = Instant::now();
    let offer = a.allocate(now).remove(0);
    a.recover(
        &offer.agent_id,
        "fw",
        "r",
        &offer.resources,
        Some(REFUSE),
        now,
    );
    assert!(a.allocate(now).is_empty());

    a.revive("fw", &[]);

    assert_eq!(a.allocate(now).len(), 1);
}

#[test]
fn more_free_resources_lift_a_filter() {
    let mut a = allocator();
    add_agents(&mut a, 1, "cpus:4;mem:4096");
    add_framework(&mut a, "fw", &["r"]);
    let now = Instant::now();
    let offer = a.allocate(now).remove(0);
    // One task takes half; the other half is declined.
    let half = res("cpus:2;mem:2048");
    a.recover(&offer.agent_id, "fw", "r", &half, Some(REFUSE), now);
    assert!(a.allocate(now).is_empty(), "the same half is filtered");

    // The task finishes: the agent's whole capacity is free again.
    a.recover(&offer.agent_id, "fw", "r", &half, None, now);

    let offers = a.allocate(now);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].resources, res("cpus:4;mem:4096"));
}

#[test]
fn zero_refuse_installs_no_filter() {
    let mut a = allocator();
    add_agents(&mut a, 1, "cpus:1;mem:1024");
    add_framework(&mut a, "fw", &["r"]);
    let now = Instant::now();
    let offers = a.allocate(now);
    a.recover(
        "agent-00",
        "fw",
        "r",
        &offers[0].resources,
        Some(Duration::ZERO),
        now,
    );
    assert_eq!(a.allocate(now).len(), 1);
}

#[test]
fn suppress_and_revive_per_role() {
    let mut a = allocator();
    add_agents(&mut a, 2, "cpus:1;mem:1024");
    add_framework(&mut a, "fw", &["a", "b"]);
    let now = Instant::now();

    a.suppress("fw", &["a".to_string()]);
    let offers = a.allocate(now);
    assert_eq!(offers.len(), 2);
    assert!(offers.iter().all(|o| o.role == "b"), "{offers:?}");
    recover_all(&mut a, &offers, now);

    a.revive("fw", &["a".to_string()]);
    let mut roles: Vec<String> = a.allocate(now).into_iter().map(|o| o.role).collect();
    roles.sort();
    assert_eq!(roles, ["a", "b"]);
}

#[test]
fn suppressing_all_roles_stops_all_offers() {
    let mut a = allocator();
    add_agents(&mut a, 2, "cpus:1;mem:1024");
    add_framework(&mut a, "fw", &["a", "b"]);
    let now = Instant::now();
    a.suppress("fw", &[]);
    assert!(a.allocate(now).is_empty());
    a.revive("fw", &[]);
    assert_eq!(a.allocate(now).len(), 2);
}
