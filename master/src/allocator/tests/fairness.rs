//! DRF order between roles and between frameworks of a role, and weights.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;

#[test]
fn two_roles_sharing_ten_agents_alternate() {
    let mut a = allocator();
    add_agents(&mut a, 10, "cpus:4;mem:4096");
    add_framework(&mut a, "fw-a", &["a"]);
    add_framework(&mut a, "fw-b", &["b"]);

    let offers = a.allocate(Instant::now());

    assert_eq!(offers.len(), 10, "every agent is offered");
    for pair in offers.windows(2) {
        assert_ne!(pair[0].role, pair[1].role, "roles alternate: {offers:?}");
    }
    let counts = count_by_framework(&offers);
    assert_eq!(counts["fw-a"], 5);
    assert_eq!(counts["fw-b"], 5);
    assert!((a.role_share("a") - a.role_share("b")).abs() < 1e-9);
}

/// The example of the DRF paper (Ghodsi et al., 2011): 9 CPUs and 18 GB; A
/// runs tasks of <1 CPU, 4 GB>, B tasks of <3 CPUs, 1 GB>. DRF gives A three
/// tasks and B two, equalising their dominant shares (memory for A, CPU for
/// B) at 2/3. Each framework launches one task per offer and gives the rest
/// back, declining for good an offer it cannot use.
fn drf_paper_example(role_a: &str, role_b: &str) {
    let mut a = allocator();
    a.add_agent("big", res("cpus:9;mem:18432"), Vec::new());
    add_framework(&mut a, "A", &[role_a]);
    add_framework(&mut a, "B", &[role_b]);
    let demand = BTreeMap::from([("A", res("cpus:1;mem:4096")), ("B", res("cpus:3;mem:1024"))]);
    let mut tasks = BTreeMap::from([("A", 0), ("B", 0)]);
    let now = Instant::now();

    for _round in 0..20 {
        let offers = a.allocate(now);
        if offers.is_empty() {
            break;
        }
        for offer in offers {
            let fw = offer.framework_id.as_str();
            let task = &demand[fw];
            let (rest, refuse) = if offer.resources.contains(task) {
                *tasks.get_mut(fw).expect("known framework") += 1;
                let mut rest = offer.resources.clone();
                rest.subtract(task);
                (rest, None)
            } else {
                (offer.resources.clone(), Some(Duration::from_secs(3600)))
            };
            a.recover("big", fw, &offer.role, &rest, refuse, now);
        }
    }

    assert_eq!(tasks, BTreeMap::from([("A", 3), ("B", 2)]));
    assert!((a.framework_share("A") - 2.0 / 3.0).abs() < 1e-3);
    assert!((a.framework_share("B") - 2.0 / 3.0).abs() < 1e-3);
}

#[test]
fn drf_paper_example_between_frameworks_of_one_role() {
    drf_paper_example("dev", "dev");
}

#[test]
fn drf_paper_example_between_roles() {
    drf_paper_example("analytics", "web");
}

#[test]
fn role_with_weight_three_gets_three_times_the_agents() {
    let mut a = Allocator::new([("heavy".to_string(), 3.0)]).expect("valid weight");
    add_agents(&mut a, 12, "cpus:2;mem:2048");
    add_framework(&mut a, "fw-heavy", &["heavy"]);
    add_framework(&mut a, "fw-light", &["light"]);

    let counts = count_by_framework(&a.allocate(Instant::now()));

    assert_eq!(counts["fw-heavy"], 9);
    assert_eq!(counts["fw-light"], 3);
    assert_eq!(a.weights().get("heavy"), Some(&3.0));
}

#[test]
fn changing_a_weight_reorders_roles() {
    let mut a = allocator();
    add_agents(&mut a, 8, "cpus:2;mem:2048");
    add_framework(&mut a, "fw-x", &["x"]);
    add_framework(&mut a, "fw-y", &["y"]);
    a.set_weight("y", 3.0).expect("valid weight");

    let counts = count_by_framework(&a.allocate(Instant::now()));

    assert_eq!(counts["fw-y"], 6);
    assert_eq!(counts["fw-x"], 2);
}

#[test]
fn invalid_weights_are_rejected() {
    let mut a = allocator();
    assert!(a.set_weight("x", 0.0).is_err());
    assert!(a.set_weight("x", f64::NAN).is_err());
    assert!(Allocator::new([("x".to_string(), -1.0)]).is_err());
    assert!(a.weights().is_empty());
}

#[test]
fn the_first_agent_served_rotates_between_cycles() {
    let mut a = allocator();
    add_agents(&mut a, 3, "cpus:1;mem:1024");
    add_framework(&mut a, "fw", &["r"]);
    let now = Instant::now();

    let first = a.allocate(now);
    recover_all(&mut a, &first, now);
    let second = a.allocate(now);

    assert_eq!(first.len(), 3);
    assert_eq!(second.len(), 3);
    assert_ne!(first[0].agent_id, second[0].agent_id);
}
