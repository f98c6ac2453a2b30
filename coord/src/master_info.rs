//! The MasterInfo JSON a master announces in its election group, in the
//! shape Mesos' tools read (pymesos, Mesos-DNS): `{"id", "pid", "hostname",
//! "port", "version", "address": {"hostname", "ip", "port"}, "ip"}`.

use serde::{Deserialize, Serialize};

/// `address` inside the MasterInfo JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AddressJson {
    /// The hostname.
    #[serde(default)]
    pub hostname: String,
    /// The IP, dotted.
    #[serde(default)]
    pub ip: String,
    /// The port.
    pub port: u16,
}

/// The announced MasterInfo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterInfoJson {
    /// The master's id.
    pub id: String,
    /// `master@ip:port`.
    pub pid: String,
    /// The hostname.
    #[serde(default)]
    pub hostname: String,
    /// The port.
    pub port: u16,
    /// The version.
    #[serde(default)]
    pub version: String,
    /// Where to reach it.
    pub address: AddressJson,
    /// The IPv4 address packed in network byte order, as Mesos writes it.
    #[serde(default)]
    pub ip: u32,
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
            pid: format!("master@{ip}:{port}"),
            hostname: hostname.to_string(),
            port,
            version: env!("CARGO_PKG_VERSION").to_string(),
            address: AddressJson {
                hostname: hostname.to_string(),
                ip: ip.to_string(),
                port,
            },
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

    /// `ip:port` to dial (the hostname when no IP was announced).
    pub fn address(&self) -> String {
        let host = if self.address.ip.is_empty() {
            &self.address.hostname
        } else {
            &self.address.ip
        };
        format!("{host}:{}", self.address.port)
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
        assert_eq!(back.address(), "10.0.0.5:5050");
    }
}
