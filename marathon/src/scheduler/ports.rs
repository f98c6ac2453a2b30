//! Host and service ports.
//!
//! Host ports are what a task binds on its agent, taken from the offer's
//! `ports` resource; service ports are cluster-wide numbers Marathon assigns
//! to an app (from 10000–20000 by default) for load balancers and discovery.
//!
//! What each of an app's ports asks of the agent ([`host_port_requests`]):
//! in host networking one host port per port definition, exactly the
//! definition's port with `requirePorts`, else any; in container networking
//! one per port mapping with a `hostPort` (`0`: any), none without.

use std::collections::BTreeSet;

use rand::Rng;

use crate::model::AppDefinition;

/// What one of an app's ports needs from the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPort {
    /// Any free offered port.
    Any,
    /// Exactly this port.
    Fixed(u32),
    /// No host port (a container-only port mapping).
    None,
}

/// What each of the app's ports (port definitions in host networking, port
/// mappings otherwise) needs from the agent, in port order.
pub fn host_port_requests(app: &AppDefinition) -> Vec<HostPort> {
    if app.is_host_networked() {
        app.port_definitions
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|pd| match u32::try_from(pd.port) {
                Ok(port) if app.require_ports && port > 0 => HostPort::Fixed(port),
                _ => HostPort::Any,
            })
            .collect()
    } else {
        app.port_mappings()
            .iter()
            .map(|pm| match pm.host_port {
                None => HostPort::None,
                Some(0) => HostPort::Any,
                Some(port) => u32::try_from(port)
                    .map(HostPort::Fixed)
                    .unwrap_or(HostPort::Fixed(u32::MAX)),
            })
            .collect()
    }
}

/// Inclusive port ranges, sorted and merged.
fn normalize(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = ranges.iter().copied().filter(|(b, e)| b <= e).collect();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (b, e) in v {
        match out.last_mut() {
            Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((b, e)),
        }
    }
    out
}

/// Removes `port` from `ranges` (sorted, inclusive); whether it was there.
pub fn take_port(ranges: &mut Vec<(u64, u64)>, port: u64) -> bool {
    let Some(i) = ranges.iter().position(|&(b, e)| b <= port && port <= e) else {
        return false;
    };
    let (b, e) = ranges[i];
    match (b == port, e == port) {
        (true, true) => {
            ranges.remove(i);
        }
        (true, false) => ranges[i].0 = port + 1,
        (false, true) => ranges[i].1 = port - 1,
        (false, false) => {
            ranges[i].1 = port - 1;
            ranges.insert(i + 1, (port + 1, e));
        }
    }
    true
}

/// Picks a host port for each request from `available` (inclusive ranges):
/// fixed ports first, then uniformly random free ones; no port is picked
/// twice. `None` if some request cannot be met. The result is aligned with
/// `requests` (`None` where no host port is wanted).
pub fn pick_host_ports<R: Rng + ?Sized>(
    requests: &[HostPort],
    available: &[(u64, u64)],
    rng: &mut R,
) -> Option<Vec<Option<u32>>> {
    let mut free = normalize(available);
    let mut out = vec![None; requests.len()];
    for (slot, request) in out.iter_mut().zip(requests) {
        if let HostPort::Fixed(port) = *request {
            if !take_port(&mut free, u64::from(port)) {
                return None;
            }
            *slot = Some(port);
        }
    }
    for (slot, request) in out.iter_mut().zip(requests) {
        if *request != HostPort::Any {
            continue;
        }
        let total: u64 = free.iter().map(|(b, e)| e - b + 1).sum();
        if total == 0 {
            return None;
        }
        let mut index = rng.random_range(0..total);
        let mut chosen = None;
        for &(b, e) in &free {
            let size = e - b + 1;
            if index < size {
                chosen = Some(b + index);
                break;
            }
            index -= size;
        }
        let port = chosen?;
        take_port(&mut free, port);
        *slot = Some(u32::try_from(port).ok()?);
    }
    Some(out)
}

/// Gives every port definition and port mapping whose service port is `0`
/// the lowest port of `range` (inclusive) that is neither in `used` (service
/// ports of other apps) nor already one of the app's. Fails when the range
/// has no free port left.
pub fn assign_service_ports(
    app: &mut AppDefinition,
    used: &BTreeSet<i64>,
    range: (i64, i64),
) -> Result<(), String> {
    let mut taken: BTreeSet<i64> = used.clone();
    if let Some(pds) = &app.port_definitions {
        taken.extend(pds.iter().map(|pd| pd.port).filter(|p| *p != 0));
    }
    if let Some(pms) = app
        .container
        .as_ref()
        .and_then(|c| c.port_mappings.as_ref())
    {
        taken.extend(pms.iter().map(|pm| pm.service_port).filter(|p| *p != 0));
    }
    let (low, high) = range;
    let mut next = low;
    let mut allocate = || -> Result<i64, String> {
        while next <= high {
            let candidate = next;
            next += 1;
            if taken.insert(candidate) {
                return Ok(candidate);
            }
        }
        Err(format!(
            "no free service port left in the range {low}-{high}"
        ))
    };
    if let Some(pds) = app.port_definitions.as_mut() {
        for pd in pds.iter_mut().filter(|pd| pd.port == 0) {
            pd.port = allocate()?;
        }
    }
    if let Some(pms) = app
        .container
        .as_mut()
        .and_then(|c| c.port_mappings.as_mut())
    {
        for pm in pms.iter_mut().filter(|pm| pm.service_port == 0) {
            pm.service_port = allocate()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppDefaults, PathId};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn app(json: serde_json::Value) -> AppDefinition {
        let mut app: AppDefinition = serde_json::from_value(json).expect("app");
        app.normalize(&AppDefaults::default());
        app
    }

    #[test]
    fn requests_in_host_networking() {
        let a = app(
            serde_json::json!({"id": "/a", "cmd": "x", "portDefinitions": [
            {"port": 10000}, {"port": 0}]}),
        );
        assert_eq!(host_port_requests(&a), vec![HostPort::Any, HostPort::Any]);
        let a = app(
            serde_json::json!({"id": "/a", "cmd": "x", "requirePorts": true,
            "portDefinitions": [{"port": 8080}, {"port": 8081}]}),
        );
        assert_eq!(
            host_port_requests(&a),
            vec![HostPort::Fixed(8080), HostPort::Fixed(8081)]
        );
        let a = app(serde_json::json!({"id": "/a", "cmd": "x", "portDefinitions": []}));
        assert!(host_port_requests(&a).is_empty());
    }

    #[test]
    fn requests_in_container_networking() {
        let a = app(
            serde_json::json!({"id": "/a", "networks": [{"mode": "container/bridge"}],
            "container": {"type": "DOCKER", "docker": {"image": "nginx"}, "portMappings": [
                {"containerPort": 80, "hostPort": 0},
                {"containerPort": 81, "hostPort": 31005},
                {"containerPort": 82}]}}),
        );
        assert_eq!(
            host_port_requests(&a),
            vec![HostPort::Any, HostPort::Fixed(31005), HostPort::None]
        );
    }

    #[test]
    fn picks_fixed_then_distinct_random_ports() {
        let mut rng = StdRng::seed_from_u64(7);
        let requests = [
            HostPort::Any,
            HostPort::Fixed(31002),
            HostPort::None,
            HostPort::Any,
        ];
        for _ in 0..50 {
            let got = pick_host_ports(&requests, &[(31000, 31003)], &mut rng).expect("fits");
            assert_eq!(got[1], Some(31002));
            assert_eq!(got[2], None);
            let (a, b) = (got[0].unwrap(), got[3].unwrap());
            assert_ne!(a, b);
            for p in [a, b] {
                assert!((31000..=31003).contains(&p) && p != 31002);
            }
        }
        // Four ports out of a range of four: every one is used once.
        let all = pick_host_ports(&[HostPort::Any; 4], &[(31000, 31003)], &mut rng).unwrap();
        let set: BTreeSet<u32> = all.into_iter().flatten().collect();
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn fails_when_ports_are_missing() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(pick_host_ports(&[HostPort::Fixed(8080)], &[(31000, 32000)], &mut rng).is_none());
        assert!(pick_host_ports(
            &[HostPort::Fixed(8080), HostPort::Fixed(8080)],
            &[(8080, 8080)],
            &mut rng
        )
        .is_none());
        assert!(pick_host_ports(&[HostPort::Any; 3], &[(1, 2)], &mut rng).is_none());
        assert!(pick_host_ports(&[HostPort::Any], &[], &mut rng).is_none());
        assert_eq!(
            pick_host_ports(&[HostPort::None], &[], &mut rng),
            Some(vec![None])
        );
        assert_eq!(pick_host_ports(&[], &[], &mut rng), Some(vec![]));
    }

    #[test]
    fn take_port_splits_ranges() {
        let mut r = vec![(1, 5)];
        assert!(take_port(&mut r, 3));
        assert_eq!(r, vec![(1, 2), (4, 5)]);
        assert!(take_port(&mut r, 1));
        assert!(take_port(&mut r, 5));
        assert_eq!(r, vec![(2, 2), (4, 4)]);
        assert!(!take_port(&mut r, 3));
        assert!(take_port(&mut r, 2));
        assert_eq!(r, vec![(4, 4)]);
    }

    #[test]
    fn assigns_lowest_free_service_ports() {
        let mut a = app(
            serde_json::json!({"id": "/a", "cmd": "x", "portDefinitions": [
            {"port": 0}, {"port": 10001}, {"port": 0}]}),
        );
        let used: BTreeSet<i64> = [10000, 10002].into_iter().collect();
        assign_service_ports(&mut a, &used, (10000, 20000)).unwrap();
        assert_eq!(a.service_ports(), vec![10003, 10001, 10004]);
        // Idempotent: nothing left to assign.
        assign_service_ports(&mut a, &used, (10000, 20000)).unwrap();
        assert_eq!(a.service_ports(), vec![10003, 10001, 10004]);
    }

    #[test]
    fn assigns_service_ports_of_port_mappings() {
        let mut a = app(
            serde_json::json!({"id": "/a", "networks": [{"mode": "container/bridge"}],
            "container": {"type": "DOCKER", "docker": {"image": "nginx"}, "portMappings": [
                {"containerPort": 80, "hostPort": 0}, {"containerPort": 81, "servicePort": 10000}]}}),
        );
        assign_service_ports(&mut a, &BTreeSet::new(), (10000, 20000)).unwrap();
        assert_eq!(a.service_ports(), vec![10001, 10000]);
    }

    #[test]
    fn fails_when_the_range_is_exhausted() {
        let mut a = AppDefinition::with_id(PathId::parse("/a"));
        a.normalize(&AppDefaults::default());
        let used: BTreeSet<i64> = [10000, 10001].into_iter().collect();
        let err = assign_service_ports(&mut a, &used, (10000, 10001)).unwrap_err();
        assert!(err.contains("10000-10001"), "{err}");
        assign_service_ports(&mut a, &used, (10000, 10002)).unwrap();
        assert_eq!(a.service_ports(), vec![10002]);
    }
}
