//! Agents and frameworks coming and going, reservations, minimum offers.

use std::time::Instant;

use super::*;

#[test]
fn reserved_resources_only_go_to_their_role() {
    let mut a = allocator();
    a.add_agent(
        "agent-00",
        res("cpus:1;mem:512;cpus(ops):2;mem(ops):1024"),
        Vec::new(),
    );
    add_framework(&mut a, "fw-dev", &["dev"]);

    let offers = a.allocate(Instant::now());
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].resources, res("cpus:1;mem:512"));
    assert_eq!(a.available_on("agent-00"), res("cpus(ops):2;mem(ops):1024"));

    add_framework(&mut a, "fw-ops", &["ops"]);
    let offers = a.allocate(Instant::now());
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].framework_id, "fw-ops");
    assert_eq!(offers[0].resources, res("cpus(ops):2;mem(ops):1024"));
    assert!(a.available_on("agent-00").is_empty());
}

#[test]
fn the_rest_of_an_agent_goes_on_to_the_role_it_is_reserved_for() {
    let mut a = allocator();
    a.add_agent("agent-00", res("cpus:1;mem:512;cpus(ops):2"), Vec::new());
    add_framework(&mut a, "fw-dev", &["dev"]);
    add_framework(&mut a, "fw-ops", &["ops"]);

    let offers = a.allocate(Instant::now());

    // dev comes first by name and takes the unreserved part; ops its own.
    assert_eq!(offers.len(), 2, "{offers:?}");
    assert_eq!(offers[0].framework_id, "fw-dev");
    assert_eq!(offers[0].resources, res("cpus:1;mem:512"));
    assert_eq!(offers[1].framework_id, "fw-ops");
    assert_eq!(offers[1].resources, res("cpus(ops):2"));
}

#[test]
fn sub_roles_may_use_their_parents_reservations() {
    let mut a = allocator();
    a.add_agent("agent-00", res("cpus(eng):2;mem(eng):1024"), Vec::new());
    add_framework(&mut a, "fw-web", &["eng/web"]);

    let offers = a.allocate(Instant::now());

    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].role, "eng/web");
}

#[test]
fn deactivated_agents_get_no_offers() {
    let mut a = allocator();
    add_agents(&mut a, 2, "cpus:1;mem:1024");
    add_framework(&mut a, "fw", &["r"]);
    a.deactivate_agent("agent-00");
    let now = Instant::now();

    let offers = a.allocate(now);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].agent_id, "agent-01");
    assert_eq!(
        a.cluster_total(),
        res("cpus:1;mem:1024"),
        "inactive agents leave the total"
    );

    a.activate_agent("agent-00");
    let offers = a.allocate(now);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].agent_id, "agent-00");
}

#[test]
fn deactivated_frameworks_get_nothing() {
    let mut a = allocator();
    add_agents(&mut a, 2, "cpus:1;mem:1024");
    add_framework(&mut a, "fw", &["r"]);
    a.add_framework("fw-idle", vec!["r".into()], Vec::new(), false);
    let now = Instant::now();

    a.deactivate_framework("fw");
    assert!(a.allocate(now).is_empty());

    a.activate_framework("fw-idle");
    let counts = count_by_framework(&a.allocate(now));
    assert_eq!(counts.get("fw-idle"), Some(&2));
}

#[test]
fn remove_framework_frees_its_resources_for_others() {
    let mut a = allocator();
    add_agents(&mut a, 1, "cpus:1;mem:1024");
    add_framework(&mut a, "fw-1", &["r"]);
    let now = Instant::now();
    assert_eq!(a.allocate(now)[0].framework_id, "fw-1");
    add_framework(&mut a, "fw-2", &["r"]);
    assert!(a.allocate(now).is_empty(), "fw-1 holds everything");

    a.remove_framework("fw-1");

    assert_eq!(a.framework_share("fw-1"), 0.0);
    let offers = a.allocate(now);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].framework_id, "fw-2");
}

#[test]
fn reregistered_agent_counts_used_resources_in_shares() {
    let mut a = allocator();
    let total = "cpus:2;mem:2048";
    // The agent reports a task of a framework that has not re-registered yet.
    let used = vec![("fw-old".to_string(), "a".to_string(), res(total))];
    a.add_agent("agent-00", res(total), used);
    a.add_agent("agent-01", res(total), Vec::new());
    assert_eq!(a.allocated_on("agent-00"), res(total));
    assert!((a.role_share("a") - 0.5).abs() < 1e-9);

    add_framework(&mut a, "fw-old", &["a"]);
    add_framework(&mut a, "fw-new", &["b"]);
    let offers = a.allocate(Instant::now());

    assert_eq!(offers.len(), 1);
    assert_eq!(
        offers[0].framework_id, "fw-new",
        "a is ahead by the running task"
    );
    assert!((a.framework_share("fw-old") - 0.5).abs() < 1e-9);
}

#[test]
fn remove_agent_drops_its_allocations_from_shares() {
    let mut a = allocator();
    add_agents(&mut a, 2, "cpus:1;mem:1024");
    add_framework(&mut a, "fw", &["r"]);
    a.allocate(Instant::now());
    assert!((a.role_share("r") - 1.0).abs() < 1e-9);

    a.remove_agent("agent-00");
    a.allocate(Instant::now());

    assert!(
        (a.role_share("r") - 1.0).abs() < 1e-9,
        "one agent of one, fully held"
    );
    assert!(a.allocated_on("agent-00").is_empty());
    assert_eq!(a.roles()[0].allocated, res("cpus:1;mem:1024"));
}

#[test]
fn recovering_more_than_held_frees_only_what_is_held() {
    let mut a = allocator();
    add_agents(&mut a, 1, "cpus:4;mem:4096");
    add_framework(&mut a, "fw", &["r"]);
    let now = Instant::now();
    a.allocate(now);
    let most = res("cpus:3;mem:3072");

    a.recover("agent-00", "fw", "r", &most, None, now);
    // The master raced and recovers the same resources again.
    a.recover("agent-00", "fw", "r", &most, None, now);
    a.recover("agent-00", "fw", "r", &most, None, now);

    assert!(a.allocated_on("agent-00").is_empty());
    assert_eq!(a.available_on("agent-00"), res("cpus:4;mem:4096"));
    assert_eq!(a.role_share("r"), 0.0);
    assert_eq!(a.allocate(now)[0].resources, res("cpus:4;mem:4096"));
}

#[test]
fn unknown_ids_are_ignored() {
    let mut a = allocator();
    let now = Instant::now();
    a.recover("nope", "nope", "r", &res("cpus:1"), None, now);
    a.remove_agent("nope");
    a.remove_framework("nope");
    a.activate_agent("nope");
    a.deactivate_framework("nope");
    a.suppress("nope", &[]);
    a.revive("nope", &[]);
    a.update_framework_roles("nope", vec!["r".into()]);
    assert!(a.allocate(now).is_empty());
    assert!(a.roles().is_empty());
}

#[test]
fn updated_roles_take_effect() {
    let mut a = allocator();
    add_agents(&mut a, 1, "cpus:1;mem:1024");
    add_framework(&mut a, "fw", &["a"]);
    let now = Instant::now();
    let offers = a.allocate(now);
    assert_eq!(offers[0].role, "a");
    recover_all(&mut a, &offers, now);

    a.update_framework_roles("fw", vec!["b".into()]);

    let offers = a.allocate(now);
    assert_eq!(offers[0].role, "b");
    let roles: Vec<String> = a.roles().into_iter().map(|r| r.name).collect();
    assert_eq!(
        roles,
        ["b"],
        "a has neither frameworks nor allocations left"
    );
}

#[test]
fn offers_below_the_minimum_are_not_made() {
    let mut a = allocator();
    a.add_agent("tiny", res("cpus:0.005;mem:16;disk:100"), Vec::new());
    add_framework(&mut a, "fw", &["r"]);
    assert!(a.allocate(Instant::now()).is_empty());
}

#[test]
fn roles_report_weights_shares_and_frameworks() {
    let mut a = Allocator::new([("r".to_string(), 2.0)]).expect("valid weight");
    add_agents(&mut a, 2, "cpus:1;mem:1024");
    add_framework(&mut a, "fw-2", &["r"]);
    add_framework(&mut a, "fw-1", &["r"]);
    a.allocate(Instant::now());

    let roles = a.roles();

    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].frameworks, ["fw-1", "fw-2"]);
    assert_eq!(roles[0].weight, 2.0);
    assert!(
        (roles[0].share - 0.5).abs() < 1e-9,
        "full share halved by weight"
    );
    assert_eq!(roles[0].allocated, res("cpus:2;mem:2048"));
}
