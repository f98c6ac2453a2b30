//! A timing run of one large cycle, for the record rather than as a gate:
//! `cargo test --release -p agora-master -- --ignored --nocapture allocate_10k`.

use std::time::Instant;

use super::*;

/// 10,000 agents with free resources, 1,000 frameworks in 10 roles.
pub(super) fn large_cluster() -> Allocator {
    let mut a = allocator();
    let total = res("cpus:16;mem:65536;disk:100000;ports:[31000-32000]");
    for i in 0..10_000 {
        a.add_agent(&format!("agent-{i:05}"), total.clone(), Vec::new());
    }
    for i in 0..1_000 {
        add_framework(
            &mut a,
            &format!("fw-{i:04}"),
            &[&format!("role-{}", i % 10)],
        );
    }
    a
}

#[test]
#[ignore = "timing run; use --release"]
fn allocate_10k_agents_1k_frameworks() {
    let mut a = large_cluster();
    let now = Instant::now();

    let started = Instant::now();
    let offers = a.allocate(now);
    let first = started.elapsed();

    assert_eq!(offers.len(), 10_000);
    let counts = count_by_framework(&offers);
    assert_eq!(counts.len(), 1_000, "every framework is offered something");
    assert!(counts.values().all(|&n| n == 10), "{counts:?}");

    // Later cycles over the same cluster, everything given back in between.
    let mut later = Vec::new();
    let mut offers = offers;
    for _ in 0..3 {
        recover_all(&mut a, &offers, now);
        let started = Instant::now();
        offers = a.allocate(now);
        later.push(started.elapsed());
        assert_eq!(offers.len(), 10_000);
    }

    println!("allocate(10k agents, 1k frameworks, 10 roles): first {first:?}, then {later:?}");
}
