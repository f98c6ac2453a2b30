//! The master's configuration, validated before any port is bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use agora_common::resources::Resources;

/// A configuration error, naming the flag at fault.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    /// The flag, e.g. `--weights`.
    pub flag: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// Everything `agora master` is told.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Address to bind (gRPC and HTTP share the port).
    pub ip: IpAddr,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// The IP advertised to others (in `pid` and `MasterInfo`); `None`: derived from `ip`/hostname.
    pub advertise_ip: Option<IpAddr>,
    /// Hostname advertised; defaults to the system hostname.
    pub hostname: String,
    /// Where the master keeps its files.
    pub work_dir: PathBuf,
    /// How often the allocator runs (it also runs on relevant events).
    pub allocation_interval: Duration,
    /// Offers not answered within this are rescinded; `None`: never.
    pub offer_timeout: Option<Duration>,
    /// Role weights for DRF.
    pub weights: HashMap<String, f64>,
    /// Quota guarantees per role.
    pub quotas: HashMap<String, Resources>,
    /// If set, the only roles frameworks may use (Mesos' `--roles` whitelist).
    pub roles: Option<Vec<String>>,
    /// How often agents are pinged; a ping unanswered within this counts as missed.
    pub agent_ping_timeout: Duration,
    /// Missed pings after which an agent is marked unreachable.
    pub max_agent_ping_timeouts: u32,
    /// After a failover, agents in the registry that have not reregistered
    /// within this are marked unreachable.
    pub agent_reregister_timeout: Duration,
    /// Interval of HEARTBEAT events to frameworks.
    pub heartbeat_interval: Duration,
    /// How many terminal tasks to keep per framework for `/master/state`.
    pub max_completed_tasks_per_framework: usize,
    /// How many removed frameworks to keep for `/master/state`.
    pub max_completed_frameworks: usize,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            ip: IpAddr::from([0, 0, 0, 0]),
            port: 5050,
            advertise_ip: None,
            hostname: default_hostname(),
            work_dir: std::env::temp_dir().join("agora-master"),
            allocation_interval: Duration::from_secs(1),
            offer_timeout: None,
            weights: HashMap::new(),
            quotas: HashMap::new(),
            roles: None,
            agent_ping_timeout: Duration::from_secs(15),
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout: Duration::from_secs(600),
            heartbeat_interval: Duration::from_secs(15),
            max_completed_tasks_per_framework: 1000,
            max_completed_frameworks: 50,
        }
    }
}

/// The system hostname, or `localhost`.
pub fn default_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Parses `--weights role=w,role2=w2`.
pub fn parse_weights(text: &str) -> Result<HashMap<String, f64>, ConfigError> {
    let mut out = HashMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let err = |message: String| ConfigError {
            flag: "--weights",
            message,
        };
        let (role, weight) = part
            .split_once('=')
            .ok_or_else(|| err(format!("expected role=weight, got '{part}'")))?;
        let weight: f64 = weight
            .trim()
            .parse()
            .map_err(|_| err(format!("invalid weight '{weight}' for role '{role}'")))?;
        if !(weight.is_finite() && weight > 0.0) {
            return Err(err(format!("weight for role '{role}' must be > 0")));
        }
        validate_role(role.trim()).map_err(err)?;
        out.insert(role.trim().to_string(), weight);
    }
    Ok(out)
}

/// Parses `--quotas role=cpus:2;mem:1024,role2=...` into per-role guarantees.
pub fn parse_quotas(text: &str) -> Result<HashMap<String, Resources>, ConfigError> {
    let mut out = HashMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let err = |message: String| ConfigError {
            flag: "--quotas",
            message,
        };
        let (role, resources) = part
            .split_once('=')
            .ok_or_else(|| err(format!("expected role=resources, got '{part}'")))?;
        validate_role(role.trim()).map_err(err)?;
        let resources = Resources::parse(resources).map_err(|e| err(e.to_string()))?;
        out.insert(role.trim().to_string(), resources);
    }
    Ok(out)
}

/// Mesos' role name rules: not empty, not `.` or `..`, no leading `-`, no
/// whitespace, slashes only between non-empty segments; `*` is the default role.
pub fn validate_role(role: &str) -> Result<(), String> {
    if role == "*" {
        return Ok(());
    }
    if role.is_empty() {
        return Err("role name must not be empty".into());
    }
    for segment in role.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("invalid role '{role}': bad path segment"));
        }
        if segment.starts_with('-') {
            return Err(format!("invalid role '{role}': a segment starts with '-'"));
        }
        if segment
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '*')
        {
            return Err(format!("invalid role '{role}': invalid character"));
        }
    }
    Ok(())
}

impl MasterConfig {
    /// Checks what flags cannot check alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.allocation_interval.is_zero() {
            return Err(ConfigError {
                flag: "--allocation-interval",
                message: "must be greater than zero".into(),
            });
        }
        if self.agent_ping_timeout.is_zero() {
            return Err(ConfigError {
                flag: "--agent-ping-timeout",
                message: "must be greater than zero".into(),
            });
        }
        if self.max_agent_ping_timeouts == 0 {
            return Err(ConfigError {
                flag: "--max-agent-ping-timeouts",
                message: "must be at least 1".into(),
            });
        }
        if self.hostname.trim().is_empty() {
            return Err(ConfigError {
                flag: "--hostname",
                message: "must not be empty".into(),
            });
        }
        for (role, weight) in &self.weights {
            if !(weight.is_finite() && *weight > 0.0) {
                return Err(ConfigError {
                    flag: "--weights",
                    message: format!("weight for role '{role}' must be > 0"),
                });
            }
        }
        if let Some(roles) = &self.roles {
            for role in roles {
                validate_role(role).map_err(|message| ConfigError {
                    flag: "--roles",
                    message,
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weights_and_names_the_flag_on_error() {
        let w = parse_weights("web=2, batch=0.5").expect("valid");
        assert_eq!(w.get("web"), Some(&2.0));
        assert_eq!(w.get("batch"), Some(&0.5));
        let e = parse_weights("web").expect_err("invalid");
        assert!(e.to_string().starts_with("--weights:"), "{e}");
        assert!(parse_weights("web=-1").is_err());
        assert!(parse_weights("web=x").is_err());
    }

    #[test]
    fn parses_quotas() {
        let q = parse_quotas("web=cpus:2;mem:1024").expect("valid");
        assert_eq!(q["web"].scalar("cpus"), 2.0);
        assert!(parse_quotas("web=cpus").is_err());
    }

    #[test]
    fn role_names_follow_mesos_rules() {
        for ok in ["*", "web", "eng/web", "a.b-c_d"] {
            assert!(validate_role(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "-x", "a//b", "a b", "/a", "a/", "we*b"] {
            assert!(validate_role(bad).is_err(), "{bad}");
        }
    }
}
