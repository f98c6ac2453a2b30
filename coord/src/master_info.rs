//! The MasterInfo JSON a master announces in its election group, in the
//! shape Mesos' tools read (pymesos, Mesos-DNS): `{"id", "pid", "hostname",
//! "port", "version", "address": {"hostname", "ip", "port"}, "ip"}`.

use serde::{Deserialize, Serialize};

/// A master's address as Mesos writes it in MasterInfo JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressJson {
    /// The host name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The IP address, dotted (or IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

/// MasterInfo as JSON, the data of each election node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterInfoJson {
    /// The master's id.
    #[serde(default)]
    pub id: String,
    /// `master@ip:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// The host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The port.
    #[serde(default)]
    pub port: u32,
    /// The software version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The address (preferred over `hostname`/`port` by readers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressJson>,
    /// The IPv4 address packed in a `u32`, as Mesos has it.
    #[serde(default)]
    pub ip: u32,
}

impl MasterInfoJson {
    /// `address.ip:address.port`, else `hostname:port`, as Mesos tools do.
    pub fn host_port(&self) -> Option<String> {
        let from_address = self.address.as_ref().and_then(|a| {
            let ip = a.ip.as_deref().filter(|ip| !ip.is_empty())?;
            Some(join_host_port(ip, a.port.unwrap_or(self.port)))
        });
        from_address.or_else(|| {
            let host = self.hostname.as_deref().filter(|h| !h.is_empty())?;
            Some(join_host_port(host, self.port))
        })
    }
}

fn join_host_port(host: &str, port: u32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A MasterInfo JSON that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid MasterInfo JSON: {0}")]
pub struct MasterInfoError(#[from] serde_json::Error);

impl MasterInfoJson {
    /// The info of a master reachable at `ip:port`.
    pub fn new(id: &str, hostname: &str, ip: &str, port: u16) -> Self {
        let packed = ip
            .parse::<std::net::Ipv4Addr>()
            .map(|v4| u32::from_le_bytes(v4.octets()))
            .unwrap_or(0);
        MasterInfoJson {
            id: id.to_string(),
            pid: Some(format!("master@{ip}:{port}")),
            hostname: Some(hostname.to_string()),
            port: u32::from(port),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
            address: Some(AddressJson {
                hostname: Some(hostname.to_string()),
                ip: Some(ip.to_string()),
                port: Some(u32::from(port)),
            }),
            ip: packed,
        }
    }

    /// Parses the JSON.
    pub fn parse(bytes: &[u8]) -> Result<Self, MasterInfoError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_mesos_shape() {
        let info = MasterInfoJson::new("m1", "host1", "10.0.0.5", 5050);
        let v: serde_json::Value = serde_json::from_slice(&info.to_bytes()).expect("json");
        assert_eq!(v["pid"], "master@10.0.0.5:5050");
        assert_eq!(v["address"]["ip"], "10.0.0.5");
        assert_eq!(v["address"]["port"], 5050);
        assert_eq!(v["ip"], u32::from_le_bytes([10, 0, 0, 5]));
        let back = MasterInfoJson::parse(&info.to_bytes()).expect("parse");
        assert_eq!(back, info);
        assert_eq!(back.host_port().as_deref(), Some("10.0.0.5:5050"));
    }

    #[test]
    fn falls_back_to_hostname_and_brackets_ipv6() {
        let mut info = MasterInfoJson::new("m1", "host1", "", 5050);
        info.address = None;
        assert_eq!(info.host_port().as_deref(), Some("host1:5050"));
        let v6 = MasterInfoJson::new("m2", "h", "::1", 5050);
        assert_eq!(v6.host_port().as_deref(), Some("[::1]:5050"));
    }
}
