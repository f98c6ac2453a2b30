//! Quota: guarantees served first, and their headroom kept from other roles.

use std::time::Instant;

use super::*;

#[test]
fn quota_role_is_served_first_even_with_a_higher_share() {
    let mut a = allocator();
    add_framework(&mut a, "fw-q", &["q"]);
    add_framework(&mut a, "fw-b", &["b"]);
    let total = "cpus:1;mem:1024";
    // fw-q already runs a task filling one agent: by DRF alone, b would come first.
    a.add_agent(
        "agent-00",
        res(total),
        vec![("fw-q".into(), "q".into(), res(total))],
    );
    for i in 1..4 {
        a.add_agent(&format!("agent-{i:02}"), res(total), Vec::new());
    }
    a.set_quota("q", res("cpus:2"));

    let offers = a.allocate(Instant::now());

    assert_eq!(
        offers[0].framework_id, "fw-q",
        "the guarantee is served first: {offers:?}"
    );
    let counts = count_by_framework(&offers);
    assert_eq!(counts["fw-q"], 1);
    assert_eq!(counts["fw-b"], 2);
    assert!((a.role_share("q") - 0.5).abs() < 1e-9);
}

#[test]
fn other_roles_cannot_eat_the_headroom_of_an_unmet_guarantee() {
    let mut a = allocator();
    add_agents(&mut a, 4, "cpus:1;mem:1024");
    // The quota role's framework does not want offers right now.
    a.add_framework("fw-q", vec!["q".into()], vec!["q".into()], true);
    add_framework(&mut a, "fw-b", &["b"]);
    a.set_quota("q", res("cpus:2"));
    let now = Instant::now();

    let offers = a.allocate(now);
    assert_eq!(
        count_by_framework(&offers)["fw-b"],
        2,
        "two agents are held for q"
    );
    assert!(a.allocate(now).is_empty(), "still held in the next cycle");

    a.revive("fw-q", &[]);
    let offers = a.allocate(now);
    assert_eq!(count_by_framework(&offers)["fw-q"], 2);
}

#[test]
fn headroom_is_held_for_a_quota_role_without_frameworks() {
    let mut a = allocator();
    add_agents(&mut a, 4, "cpus:1;mem:1024");
    add_framework(&mut a, "fw-b", &["b"]);
    a.set_quota("q", res("cpus:3;mem:1024"));

    let offers = a.allocate(Instant::now());

    assert_eq!(offers.len(), 1, "only one agent is beyond q's guarantee");
}

#[test]
fn reserved_resources_are_not_held_as_headroom() {
    let mut a = allocator();
    a.add_agent(
        "agent-00",
        res("cpus(b):1;mem(b):1024;cpus:1;mem:1024"),
        Vec::new(),
    );
    add_framework(&mut a, "fw-b", &["b"]);
    a.set_quota("q", res("cpus:1"));

    let offers = a.allocate(Instant::now());

    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].resources, res("cpus(b):1;mem(b):1024"));
}

#[test]
fn an_empty_guarantee_removes_the_quota() {
    let mut a = allocator();
    a.set_quota("q", res("cpus:2;ports:[1-2]"));
    assert_eq!(
        a.quotas()["q"],
        res("cpus:2"),
        "only scalars are guaranteed"
    );
    a.set_quota("q", Resources::new());
    assert!(a.quotas().is_empty());
}
