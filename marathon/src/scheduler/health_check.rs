//! An app's Mesos health check (`MESOS_HTTP`, `MESOS_HTTPS`, `MESOS_TCP`,
//! `COMMAND`) as the task's `HealthCheck`, which the agent runs next to the
//! task (pure). Marathon's own checks (`HTTP`, `HTTPS`, `TCP`) stay with
//! Marathon.
//!
//! The port is the one the agent reaches the task on: a fixed `port` as
//! given; a `portIndex` the host port in host networking, the mapping's
//! container port otherwise (the agent probes inside the container's
//! network namespace), its host port when the container port is 0.

use agora_proto::health_check::{HttpCheckInfo, TcpCheckInfo, Type};
use agora_proto::{CommandInfo, HealthCheck as MesosHealthCheck};

use crate::model::app::{HealthCheck, HealthProtocol};
use crate::model::AppDefinition;

/// The task's health check, if the app has a Mesos one.
pub fn mesos_health_check(
    app: &AppDefinition,
    host_ports: &[Option<u32>],
) -> Option<MesosHealthCheck> {
    let check = app.health_checks.iter().find(|c| c.protocol.is_mesos())?;
    let mut info = MesosHealthCheck {
        delay_seconds: Some(check.delay_seconds as f64),
        interval_seconds: Some(check.interval_seconds as f64),
        timeout_seconds: Some(check.timeout_seconds as f64),
        consecutive_failures: Some(
            u32::try_from(check.max_consecutive_failures.max(0)).unwrap_or(u32::MAX),
        ),
        grace_period_seconds: Some(check.grace_period_seconds as f64),
        ..Default::default()
    };
    match check.protocol {
        HealthProtocol::Command => {
            info.r#type = Type::Command as i32;
            info.command = Some(CommandInfo {
                shell: Some(true),
                value: check.command.as_ref().map(|c| c.value.clone()),
                ..Default::default()
            });
        }
        HealthProtocol::MesosHttp | HealthProtocol::MesosHttps => {
            info.r#type = Type::Http as i32;
            info.http = Some(HttpCheckInfo {
                scheme: Some(
                    if check.protocol == HealthProtocol::MesosHttps {
                        "https"
                    } else {
                        "http"
                    }
                    .into(),
                ),
                port: port(app, check, host_ports)?,
                path: check.path.clone(),
                statuses: Vec::new(),
            });
        }
        HealthProtocol::MesosTcp => {
            info.r#type = Type::Tcp as i32;
            info.tcp = Some(TcpCheckInfo {
                port: port(app, check, host_ports)?,
            });
        }
        HealthProtocol::Http | HealthProtocol::Https | HealthProtocol::Tcp => return None,
    }
    Some(info)
}

fn port(app: &AppDefinition, check: &HealthCheck, host_ports: &[Option<u32>]) -> Option<u32> {
    if let Some(port) = check.port {
        return u32::try_from(port).ok();
    }
    let index = usize::try_from(check.port_index.unwrap_or(0)).ok()?;
    let host = host_ports.get(index).copied().flatten();
    if app.is_host_networked() {
        return host;
    }
    match app.port_mappings().get(index).map(|m| m.container_port) {
        Some(container) if container > 0 => u32::try_from(container).ok(),
        _ => host,
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

    #[test]
    fn mesos_checks_become_the_tasks_with_the_port_the_agent_reaches() {
        let host = app(
            serde_json::json!({"id": "/a", "cmd": "x", "portDefinitions": [{"port": 0}, {"port": 0}],
            "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/ping", "portIndex": 1,
                "gracePeriodSeconds": 5, "intervalSeconds": 2, "timeoutSeconds": 1,
                "maxConsecutiveFailures": 4, "delaySeconds": 0}]}),
        );
        let check = mesos_health_check(&host, &[Some(31000), Some(31001)]).expect("a check");
        assert_eq!(check.r#type, Type::Http as i32);
        let http = check.http.expect("http");
        assert_eq!(
            (http.port, http.path.as_deref(), http.scheme.as_deref()),
            (31001, Some("/ping"), Some("http"))
        );
        assert_eq!(check.grace_period_seconds, Some(5.0));
        assert_eq!(check.interval_seconds, Some(2.0));
        assert_eq!(check.timeout_seconds, Some(1.0));
        assert_eq!(check.consecutive_failures, Some(4));
        assert_eq!(check.delay_seconds, Some(0.0));

        let bridged = app(serde_json::json!({"id": "/b",
            "networks": [{"mode": "container/bridge"}],
            "container": {"type": "DOCKER", "docker": {"image": "x"},
                "portMappings": [{"containerPort": 8080, "hostPort": 0}, {"containerPort": 0, "hostPort": 0}]},
            "healthChecks": [{"protocol": "MESOS_TCP", "portIndex": 0}]}));
        let tcp = mesos_health_check(&bridged, &[Some(31005), Some(31006)]).expect("a check");
        assert_eq!(
            tcp.tcp.map(|t| t.port),
            Some(8080),
            "the container port, inside its namespace"
        );

        let https = app(serde_json::json!({"id": "/c", "cmd": "x",
            "healthChecks": [{"protocol": "MESOS_HTTPS", "port": 8443}]}));
        let check = mesos_health_check(&https, &[]).expect("a check");
        assert_eq!(check.http.as_ref().map(|h| h.port), Some(8443));
        assert_eq!(check.http.and_then(|h| h.scheme).as_deref(), Some("https"));

        let command = app(serde_json::json!({"id": "/d", "cmd": "x",
            "healthChecks": [{"protocol": "COMMAND", "command": {"value": "test -f ok"}}]}));
        let check = mesos_health_check(&command, &[]).expect("a check");
        assert_eq!(check.r#type, Type::Command as i32);
        assert_eq!(
            check.command.and_then(|c| c.value).as_deref(),
            Some("test -f ok")
        );

        let marathon_side = app(serde_json::json!({"id": "/e", "cmd": "x",
            "healthChecks": [{"protocol": "HTTP"}]}));
        assert!(mesos_health_check(&marathon_side, &[Some(31000)]).is_none());
    }
}
