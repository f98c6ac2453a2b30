//! `DockerInfo.parameters`: `docker run` options given as key/value pairs
//! (`{"key": "cap-add", "value": "NET_ADMIN"}`), applied to the engine's
//! create body. Mesos passes them to the `docker` CLI verbatim; Agora talks to
//! the engine's API, so each option the API can express is translated here
//! and anything else fails the task with a message naming the option. Options
//! that would fight the agent (its name, network, restart policy, TTY, the
//! limits that come from the task's resources, a log driver the agent cannot
//! read output back from) are refused likewise, each saying what to use
//! instead.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, HostConfigLogConfig, ResourcesUlimits,
};

/// Log drivers whose output the engine's logs API can read back (the agent
/// copies container output into the sandbox through it).
const READABLE_LOG_DRIVERS: &[&str] = &["json-file", "local", "journald"];

/// A parameter that cannot be applied; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("docker parameter '{key}': {problem}")]
pub struct ParameterError {
    /// The option as given.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Applies `parameters` (in order; repeatable options accumulate) to `body`.
pub fn apply(
    parameters: &[(String, String)],
    body: &mut ContainerCreateBody,
) -> Result<(), ParameterError> {
    for (key, value) in parameters {
        apply_one(key, value, body).map_err(|problem| ParameterError {
            key: key.clone(),
            problem,
        })?;
    }
    Ok(())
}

fn host(body: &mut ContainerCreateBody) -> &mut HostConfig {
    body.host_config.get_or_insert_with(HostConfig::default)
}

fn push(list: &mut Option<Vec<String>>, value: &str) {
    list.get_or_insert_with(Vec::new).push(value.to_string());
}

fn apply_one(key: &str, value: &str, body: &mut ContainerCreateBody) -> Result<(), String> {
    // The CLI's short and long spellings of the same option.
    let key = key.trim_start_matches('-');
    match key {
        "label" | "l" => {
            let (k, v) = value.split_once('=').unwrap_or((value, ""));
            if k.is_empty() {
                return Err("expected KEY=VALUE".into());
            }
            if k.starts_with("agora.") {
                return Err(format!(
                    "label '{k}': labels under 'agora.' are the agent's, to find its containers again"
                ));
            }
            body.labels
                .get_or_insert_with(HashMap::new)
                .insert(k.to_string(), v.to_string());
        }
        "env" | "e" => {
            let Some((name, _)) = value.split_once('=') else {
                return Err(
                    "expected NAME=VALUE (the agent's own environment is not passed on)".into(),
                );
            };
            if name.is_empty() {
                return Err("expected NAME=VALUE".into());
            }
            let env = body.env.get_or_insert_with(Vec::new);
            env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(name));
            env.push(value.to_string());
        }
        "hostname" | "h" => body.hostname = Some(non_empty(value)?),
        "user" | "u" => body.user = Some(non_empty(value)?),
        "workdir" | "w" => {
            if !value.starts_with('/') {
                return Err("the working directory must be an absolute path".into());
            }
            body.working_dir = Some(value.to_string());
        }
        "entrypoint" => body.entrypoint = Some(vec![non_empty(value)?]),
        "stop-signal" => body.stop_signal = Some(non_empty(value)?),
        "cap-add" => push(&mut host(body).cap_add, &non_empty(value)?),
        "cap-drop" => push(&mut host(body).cap_drop, &non_empty(value)?),
        "add-host" => {
            if !value.contains(':') {
                return Err("expected HOST:IP".into());
            }
            push(&mut host(body).extra_hosts, value);
        }
        "dns" => push(&mut host(body).dns, &non_empty(value)?),
        "dns-search" => push(&mut host(body).dns_search, &non_empty(value)?),
        "dns-option" | "dns-opt" => push(&mut host(body).dns_options, &non_empty(value)?),
        "security-opt" => push(&mut host(body).security_opt, &non_empty(value)?),
        "group-add" => push(&mut host(body).group_add, &non_empty(value)?),
        "volume" | "v" => {
            let parts: Vec<&str> = value.split(':').collect();
            if !(2..=3).contains(&parts.len()) || parts[..2].iter().any(|p| p.is_empty()) {
                return Err("expected HOST_PATH:CONTAINER_PATH[:ro|rw]".into());
            }
            if !parts[1].starts_with('/') {
                return Err("the container path must be absolute".into());
            }
            push(&mut host(body).binds, value);
        }
        "tmpfs" => {
            let (path, options) = value.split_once(':').unwrap_or((value, ""));
            if !path.starts_with('/') {
                return Err("expected an absolute PATH[:OPTIONS]".into());
            }
            host(body)
                .tmpfs
                .get_or_insert_with(HashMap::new)
                .insert(path.to_string(), options.to_string());
        }
        "sysctl" => {
            let Some((k, v)) = value.split_once('=') else {
                return Err("expected NAME=VALUE".into());
            };
            host(body)
                .sysctls
                .get_or_insert_with(HashMap::new)
                .insert(k.to_string(), v.to_string());
        }
        "ulimit" => {
            let limit = ulimit(value)?;
            host(body).ulimits.get_or_insert_with(Vec::new).push(limit);
        }
        "device" => {
            let device = device(value)?;
            host(body).devices.get_or_insert_with(Vec::new).push(device);
        }
        "memory-swap" => {
            let swap = if value == "-1" { -1 } else { bytes(value)? };
            host(body).memory_swap = Some(swap);
        }
        "memory-reservation" => host(body).memory_reservation = Some(bytes(value)?),
        "memory-swappiness" => host(body).memory_swappiness = Some(integer(value, 0, 100)?),
        "shm-size" => host(body).shm_size = Some(bytes(value)?),
        "pids-limit" => host(body).pids_limit = Some(integer(value, -1, i64::MAX)?),
        "oom-score-adj" => host(body).oom_score_adj = Some(integer(value, -1000, 1000)?),
        "oom-kill-disable" => host(body).oom_kill_disable = Some(boolean(value)?),
        "read-only" => host(body).readonly_rootfs = Some(boolean(value)?),
        "init" => host(body).init = Some(boolean(value)?),
        "privileged" => host(body).privileged = Some(boolean(value)?),
        "ipc" => host(body).ipc_mode = Some(non_empty(value)?),
        "pid" => host(body).pid_mode = Some(non_empty(value)?),
        "uts" => host(body).uts_mode = Some(non_empty(value)?),
        "log-driver" => {
            if !READABLE_LOG_DRIVERS.contains(&value) {
                return Err(format!(
                    "the agent copies container output into the sandbox through the engine's logs API, which cannot read the '{value}' driver (readable: {})",
                    READABLE_LOG_DRIVERS.join(", ")
                ));
            }
            host(body)
                .log_config
                .get_or_insert_with(HostConfigLogConfig::default)
                .typ = Some(value.to_string());
        }
        "log-opt" => {
            let Some((k, v)) = value.split_once('=') else {
                return Err("expected NAME=VALUE".into());
            };
            host(body)
                .log_config
                .get_or_insert_with(HostConfigLogConfig::default)
                .config
                .get_or_insert_with(HashMap::new)
                .insert(k.to_string(), v.to_string());
        }
        // What the agent sets itself, and would be fought over.
        "name" => return Err("the agent names containers (mesos-<agent>.<container>)".into()),
        "net" | "network" => return Err("set the network in DockerInfo.network".into()),
        "publish" | "p" | "publish-all" | "P" | "expose" => {
            return Err("set ports in DockerInfo.port_mappings".into())
        }
        "cpu-shares" | "c" | "cpus" | "cpu-quota" | "cpu-period" | "memory" | "m" => {
            return Err("set by the task's cpus and mem resources".into())
        }
        "restart" | "rm" | "detach" | "d" => {
            return Err("the agent supervises the container and removes it when it ends".into())
        }
        "tty" | "t" | "interactive" | "i" | "attach" | "a" => {
            return Err("a task's container has no terminal; its output goes to the sandbox".into())
        }
        _ => return Err("unsupported option".into()),
    }
    Ok(())
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("a value is required".into())
    } else {
        Ok(value.to_string())
    }
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("'{value}' is not true or false")),
    }
}

fn integer(value: &str, min: i64, max: i64) -> Result<i64, String> {
    match value.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{value}' is not a whole number from {min} to {max}"
        )),
    }
}

/// Docker's sizes: a number with an optional unit `b`, `k`, `m`, `g`, `t`
/// (powers of 1024; `kb`, `mb`... too), case-insensitive.
fn bytes(value: &str) -> Result<i64, String> {
    let bad = || format!("'{value}' is not a size (e.g. 512m, 2g)");
    let lower = value.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let multiplier = match unit {
        "" | "b" => 1.0,
        "k" | "kb" => 1024f64,
        "m" | "mb" => 1024f64.powi(2),
        "g" | "gb" => 1024f64.powi(3),
        "t" | "tb" => 1024f64.powi(4),
        _ => return Err(bad()),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    Ok((n * multiplier) as i64)
}

/// `NAME=SOFT[:HARD]`.
fn ulimit(value: &str) -> Result<ResourcesUlimits, String> {
    let Some((name, limits)) = value.split_once('=') else {
        return Err("expected NAME=SOFT[:HARD]".into());
    };
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let parse = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| format!("'{v}' is not a number of the ulimit"))
    };
    Ok(ResourcesUlimits {
        name: Some(non_empty(name)?),
        soft: Some(parse(soft)?),
        hard: Some(parse(hard)?),
    })
}

/// `HOST[:CONTAINER[:PERMISSIONS]]`.
fn device(value: &str) -> Result<DeviceMapping, String> {
    let parts: Vec<&str> = value.split(':').collect();
    if parts.is_empty() || parts.len() > 3 || !parts[0].starts_with('/') {
        return Err("expected HOST_DEVICE[:CONTAINER_DEVICE[:PERMISSIONS]]".into());
    }
    Ok(DeviceMapping {
        path_on_host: Some(parts[0].to_string()),
        path_in_container: Some(parts.get(1).unwrap_or(&parts[0]).to_string()),
        cgroup_permissions: Some(parts.get(2).unwrap_or(&"rwm").to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(params: &[(&str, &str)]) -> Result<ContainerCreateBody, String> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut body = ContainerCreateBody::default();
        apply(&params, &mut body).map_err(|e| e.to_string())?;
        Ok(body)
    }

    #[test]
    fn options_the_api_can_express_are_applied() {
        let body = applied(&[
            ("label", "team=web"),
            ("l", "flag"),
            ("env", "A=1"),
            ("e", "A=2"),
            ("hostname", "box"),
            ("user", "nobody"),
            ("workdir", "/srv"),
            ("cap-add", "NET_ADMIN"),
            ("cap-add", "SYS_TIME"),
            ("cap-drop", "MKNOD"),
            ("add-host", "db:10.0.0.5"),
            ("dns", "10.0.0.2"),
            ("ulimit", "nofile=1024:2048"),
            ("ulimit", "nproc=64"),
            ("memory-swap", "-1"),
            ("memory-reservation", "64m"),
            ("shm-size", "1g"),
            ("tmpfs", "/run:rw,size=64m"),
            ("sysctl", "net.core.somaxconn=1024"),
            ("read-only", "true"),
            ("init", "TRUE"),
            ("pids-limit", "100"),
            ("device", "/dev/fuse"),
            ("volume", "/data:/data:ro"),
            ("log-driver", "local"),
            ("log-opt", "max-size=10m"),
            ("stop-signal", "SIGINT"),
        ])
        .expect("all supported");
        let labels = body.labels.as_ref().expect("labels");
        assert_eq!(labels["team"], "web");
        assert_eq!(labels["flag"], "");
        assert_eq!(
            body.env,
            Some(vec!["A=2".to_string()]),
            "the last value of a name wins"
        );
        assert_eq!(body.hostname.as_deref(), Some("box"));
        assert_eq!(body.user.as_deref(), Some("nobody"));
        assert_eq!(body.working_dir.as_deref(), Some("/srv"));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGINT"));
        let h = body.host_config.expect("host config");
        assert_eq!(h.cap_add, Some(vec!["NET_ADMIN".into(), "SYS_TIME".into()]));
        assert_eq!(h.cap_drop, Some(vec!["MKNOD".into()]));
        assert_eq!(h.extra_hosts, Some(vec!["db:10.0.0.5".into()]));
        assert_eq!(h.dns, Some(vec!["10.0.0.2".into()]));
        let ulimits = h.ulimits.expect("ulimits");
        assert_eq!(
            (
                ulimits[0].soft,
                ulimits[0].hard,
                ulimits[1].soft,
                ulimits[1].hard
            ),
            (Some(1024), Some(2048), Some(64), Some(64))
        );
        assert_eq!(h.memory_swap, Some(-1));
        assert_eq!(h.memory_reservation, Some(64 << 20));
        assert_eq!(h.shm_size, Some(1 << 30));
        assert_eq!(h.tmpfs.expect("tmpfs")["/run"], "rw,size=64m");
        assert_eq!(h.sysctls.expect("sysctls")["net.core.somaxconn"], "1024");
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.init, Some(true));
        assert_eq!(h.pids_limit, Some(100));
        let device = &h.devices.expect("devices")[0];
        assert_eq!(device.path_in_container.as_deref(), Some("/dev/fuse"));
        assert_eq!(device.cgroup_permissions.as_deref(), Some("rwm"));
        assert_eq!(h.binds, Some(vec!["/data:/data:ro".into()]));
        let log = h.log_config.expect("log config");
        assert_eq!(log.typ.as_deref(), Some("local"));
        assert_eq!(log.config.expect("opts")["max-size"], "10m");
    }

    #[test]
    fn sizes_read_as_docker_reads_them() {
        let table = [
            ("1024", Ok(1024)),
            ("512b", Ok(512)),
            ("4k", Ok(4096)),
            ("64m", Ok(64 << 20)),
            ("64MB", Ok(64 << 20)),
            ("1.5g", Ok(3 << 29)),
            ("2t", Ok(2 << 40)),
            ("lots", Err(())),
            ("12x", Err(())),
            ("", Err(())),
            ("-5m", Err(())),
        ];
        for (text, want) in table {
            assert_eq!(bytes(text).map_err(drop), want, "{text:?}");
        }
    }

    #[test]
    fn every_refusal_names_the_option_and_why() {
        let table = [
            ("publish", "80:80", "set ports in DockerInfo.port_mappings"),
            ("net", "host", "set the network in DockerInfo.network"),
            ("name", "x", "the agent names containers"),
            ("memory", "1g", "set by the task's cpus and mem resources"),
            (
                "cpu-shares",
                "512",
                "set by the task's cpus and mem resources",
            ),
            ("restart", "always", "the agent supervises the container"),
            ("tty", "true", "has no terminal"),
            ("log-driver", "syslog", "cannot read the 'syslog' driver"),
            ("env", "HOME", "expected NAME=VALUE"),
            (
                "label",
                "agora.work_dir=/elsewhere",
                "labels under 'agora.' are the agent's",
            ),
            ("ulimit", "nofile", "expected NAME=SOFT[:HARD]"),
            ("read-only", "maybe", "'maybe' is not true or false"),
            (
                "oom-score-adj",
                "5000",
                "not a whole number from -1000 to 1000",
            ),
            ("workdir", "relative", "absolute path"),
            ("volume", "/only-one", "expected HOST_PATH:CONTAINER_PATH"),
            ("blkio-weight", "10", "unsupported option"),
            ("no-such-flag", "1", "unsupported option"),
        ];
        for (key, value, problem) in table {
            let err = applied(&[(key, value)]).expect_err(key);
            assert!(
                err.starts_with(&format!("docker parameter '{key}': ")) && err.contains(problem),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn a_failing_option_stops_the_rest() {
        let err = applied(&[("label", "a=1"), ("bogus", "x"), ("label", "b=2")])
            .expect_err("bogus is unknown");
        assert_eq!(err, "docker parameter 'bogus': unsupported option");
    }
}
