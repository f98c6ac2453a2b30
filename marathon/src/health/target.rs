//! What Marathon probes of an instance, and where (pure).
//!
//! As Marathon does: in host and bridge networking a check reaches the
//! agent's host on the task's host port; on a container (user) network,
//! where the task has an address of its own, it reaches that address on
//! the container port. A fixed `port` is used as given. Readiness checks
//! name their port (`portName`) and reach it the same way.

use std::time::Duration;

use super::{HealthProbe, ProbeKind, ProbeTarget, ReadinessProbe};
use crate::model::app::{HealthCheck, HealthProtocol, NetworkMode};
use crate::model::{AppDefinition, Instance};
use crate::scheduler::task::aligned_host_ports;

/// What to probe of `instance` of `app`: Marathon's own health checks, and
/// its readiness checks unless it is `ready` already.
pub fn probe_target(app: &AppDefinition, instance: &Instance, ready: bool) -> ProbeTarget {
    let addressed = own_address(app, instance);
    let host = addressed
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| instance.host.clone());
    let host_ports = aligned_host_ports(app, &instance.ports);
    let port_at = |index: usize| -> Option<u16> {
        let host_port = host_ports.get(index).copied().flatten();
        let port = if addressed.is_some() {
            app.port_mappings()
                .get(index)
                .map(|m| m.container_port)
                .filter(|p| *p > 0)
                .and_then(|p| u32::try_from(p).ok())
                .or(host_port)
        } else {
            host_port
        };
        port.and_then(|p| u16::try_from(p).ok())
    };
    let health = app
        .health_checks
        .iter()
        .enumerate()
        .filter_map(|(index, check)| {
            let kind = match check.protocol {
                HealthProtocol::Http => ProbeKind::Http,
                HealthProtocol::Https => ProbeKind::Https,
                HealthProtocol::Tcp => ProbeKind::Tcp,
                _ => return None,
            };
            let port = match check.port {
                Some(fixed) => u16::try_from(fixed).ok()?,
                None => port_at(usize::try_from(check.port_index.unwrap_or(0)).ok()?)?,
            };
            Some(health_probe(index, kind, port, check))
        })
        .collect();
    let readiness = if ready {
        Vec::new()
    } else {
        app.readiness_checks
            .iter()
            .filter_map(|check| {
                let index = port_names(app)
                    .iter()
                    .position(|n| *n == Some(check.port_name.as_str()))?;
                Some(ReadinessProbe {
                    check: check.clone(),
                    port: port_at(index)?,
                })
            })
            .collect()
    };
    ProbeTarget {
        instance_id: instance.instance_id.clone(),
        task_id: instance.task_id.clone(),
        host,
        health,
        readiness,
    }
}

fn health_probe(index: usize, kind: ProbeKind, port: u16, check: &HealthCheck) -> HealthProbe {
    HealthProbe {
        index,
        kind,
        port,
        path: check.path.clone().unwrap_or_else(|| "/".into()),
        interval: Duration::from_secs(check.interval_seconds.max(1) as u64),
        timeout: Duration::from_secs(check.timeout_seconds.max(1) as u64),
        ignore_1xx: check.ignore_http1xx.unwrap_or(false),
    }
}

/// The task's own address, when it is on a container network (not the
/// host's, not the bridge, whose addresses the host maps ports to).
fn own_address(app: &AppDefinition, instance: &Instance) -> Option<std::net::IpAddr> {
    let user_network = !app.networks.is_empty()
        && app
            .networks
            .iter()
            .all(|n| n.mode == NetworkMode::Container);
    user_network
        .then(|| instance.ip_addresses.first().copied())
        .flatten()
}

/// The app's port names, in port order.
fn port_names(app: &AppDefinition) -> Vec<Option<&str>> {
    if app.is_host_networked() {
        app.port_definitions
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|d| d.name.as_deref())
            .collect()
    } else {
        app.port_mappings()
            .iter()
            .map(|m| m.name.as_deref())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AppDefaults;

    fn app(json: serde_json::Value) -> AppDefinition {
        let mut app: AppDefinition = serde_json::from_value(json).expect("app");
        app.normalize(&AppDefaults::default());
        app
    }

    fn instance(ports: &[u32], ips: &[&str]) -> Instance {
        let mut i: Instance = serde_json::from_value(serde_json::json!({
            "instanceId": "a.instance-1", "appId": "/a", "appVersion": "2026-01-01T00:00:00.000Z",
            "taskId": "a.instance-1._app.1", "agentId": "s", "host": "agent-1", "state": "TASK_RUNNING",
            "goal": "Running", "stagedAt": "2026-01-01T00:00:00.000Z", "since": "2026-01-01T00:00:00.000Z"
        }))
        .expect("an instance");
        i.ports = ports.to_vec();
        i.ip_addresses = ips.iter().map(|ip| ip.parse().expect("ip")).collect();
        i
    }

    #[test]
    fn checks_reach_the_host_port_or_the_tasks_own_address() {
        let readiness =
            serde_json::json!([{"name": "ready", "portName": "http", "path": "/ready"}]);
        // (app, instance ports, instance addresses, want host, want health ports, want readiness port)
        let table = [
            (
                serde_json::json!({"id": "/a", "cmd": "x",
                    "portDefinitions": [{"port": 0, "name": "admin"}, {"port": 0, "name": "http"}],
                    "healthChecks": [{"protocol": "HTTP", "portIndex": 1, "path": "/ping"},
                        {"protocol": "TCP", "port": 9000}, {"protocol": "MESOS_HTTP"}],
                    "readinessChecks": readiness}),
                vec![31000, 31001],
                vec!["10.0.0.5"],
                "agent-1",
                vec![(0, ProbeKind::Http, 31001), (1, ProbeKind::Tcp, 9000)],
                Some(31001),
            ),
            (
                serde_json::json!({"id": "/b", "networks": [{"mode": "container/bridge"}],
                    "container": {"type": "DOCKER", "docker": {"image": "x"},
                        "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "http"}]},
                    "healthChecks": [{"protocol": "HTTPS"}], "readinessChecks": readiness}),
                vec![31005],
                vec!["172.17.0.2"],
                "agent-1",
                vec![(0, ProbeKind::Https, 31005)],
                Some(31005),
            ),
            (
                serde_json::json!({"id": "/c", "networks": [{"mode": "container", "name": "overlay"}],
                    "container": {"type": "DOCKER", "docker": {"image": "x"},
                        "portMappings": [{"containerPort": 8080, "name": "http"}]},
                    "healthChecks": [{"protocol": "HTTP"}], "readinessChecks": readiness}),
                vec![],
                vec!["10.1.2.3"],
                "10.1.2.3",
                vec![(0, ProbeKind::Http, 8080)],
                Some(8080),
            ),
        ];
        for (json, ports, ips, host, health, ready_port) in table {
            let a = app(json);
            let target = probe_target(&a, &instance(&ports, &ips), false);
            assert_eq!(target.host, host, "{}", a.id);
            let got: Vec<_> = target
                .health
                .iter()
                .map(|p| (p.index, p.kind, p.port))
                .collect();
            assert_eq!(got, health, "{}", a.id);
            assert_eq!(
                target.readiness.first().map(|r| r.port),
                ready_port,
                "{}",
                a.id
            );
            assert!(
                probe_target(&a, &instance(&ports, &ips), true)
                    .readiness
                    .is_empty(),
                "a ready instance is not checked for readiness again"
            );
        }
        let a = app(
            serde_json::json!({"id": "/a", "cmd": "x", "portDefinitions": [{"port": 0}],
            "healthChecks": [{"protocol": "HTTP", "path": "/p", "intervalSeconds": 3,
                "timeoutSeconds": 2, "ignoreHttp1xx": true}]}),
        );
        let probe = &probe_target(&a, &instance(&[31000], &[]), false).health[0];
        assert_eq!(probe.path, "/p");
        assert_eq!(probe.interval, Duration::from_secs(3));
        assert_eq!(probe.timeout, Duration::from_secs(2));
        assert!(probe.ignore_1xx);
    }
}
