//! Talking to the Docker engine: connecting (the agent negotiates the API
//! version once; shims speak it without asking again), the engine's error
//! messages as Agora reports them, and reading a container's addresses.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use bollard::errors::Error;
use bollard::models::ContainerInspectResponse;
use bollard::{ClientVersion, Docker};

use super::spec::ApiVersion;
use crate::containerizer::ContainerNetwork;

/// How long one request to the engine may take before its answer starts
/// (streams such as a pull or a wait run on after that).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the agent waits for the engine to answer at start.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// An engine that answered.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The client.
    pub client: Docker,
    /// The API version both sides speak.
    pub api_version: ApiVersion,
    /// The engine's own version (`20.10.24`), for the agent's log line.
    pub version: String,
}

/// A client for the engine at `socket` speaking `version`.
pub fn connect(socket: &Path, version: ApiVersion) -> Result<Docker, String> {
    let client_version = ClientVersion {
        major_version: version.major,
        minor_version: version.minor,
    };
    Docker::connect_with_unix(
        &socket.display().to_string(),
        REQUEST_TIMEOUT.as_secs(),
        &client_version,
    )
    .map_err(|e| {
        format!(
            "cannot connect to the Docker engine at {}: {e}",
            socket.display()
        )
    })
}

/// Connects to the engine at `socket`, checks that it answers, and settles
/// the API version (the client's newest, or the engine's if older).
pub async fn probe(socket: &Path) -> Result<Engine, String> {
    let newest = bollard::API_DEFAULT_VERSION;
    let client = connect(
        socket,
        ApiVersion {
            major: newest.major_version,
            minor: newest.minor_version,
        },
    )?;
    let asked = async {
        let client = client.negotiate_version().await?;
        let version = client.version().await?;
        Ok::<_, Error>((client, version))
    };
    let (client, version) = tokio::time::timeout(PROBE_TIMEOUT, asked)
        .await
        .map_err(|_| {
            format!(
                "the Docker engine at {} did not answer within {PROBE_TIMEOUT:?}",
                socket.display()
            )
        })?
        .map_err(|e| {
            format!(
                "the Docker engine at {} does not answer: {}",
                socket.display(),
                message(&e)
            )
        })?;
    let v = client.client_version();
    Ok(Engine {
        client,
        api_version: ApiVersion {
            major: v.major_version,
            minor: v.minor_version,
        },
        version: version.version.unwrap_or_else(|| "unknown".into()),
    })
}

/// The engine's own message for a refused request (`No such image: x`),
/// the client's description otherwise.
pub fn message(error: &Error) -> String {
    match error {
        Error::DockerResponseServerError { message, .. } => message.clone(),
        Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// Whether the engine said the object does not exist.
pub fn is_not_found(error: &Error) -> bool {
    matches!(
        error,
        Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Whether the engine refused because the object is in the wrong state
/// (signalling a stopped container) or already exists (a name taken).
pub fn is_conflict(error: &Error) -> bool {
    matches!(
        error,
        Error::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}

/// A container's addresses on the networks it joined (none on the host's).
pub fn networks(info: &ContainerInspectResponse) -> Vec<ContainerNetwork> {
    let mut found: Vec<ContainerNetwork> = info
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|(name, endpoint)| {
            let ip: IpAddr = endpoint.ip_address.as_deref()?.parse().ok()?;
            Some(ContainerNetwork {
                name: name.clone(),
                ip,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{EndpointSettings, NetworkSettings};
    use std::collections::HashMap;

    #[test]
    fn addresses_come_from_the_networks_joined() {
        let endpoint = |ip: &str| EndpointSettings {
            ip_address: Some(ip.into()),
            ..Default::default()
        };
        let info = ContainerInspectResponse {
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([
                    ("bridge".to_string(), endpoint("172.17.0.3")),
                    // The host network: joined, but no address of its own.
                    ("host".to_string(), endpoint("")),
                    ("apps".to_string(), endpoint("10.5.0.2")),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let found = networks(&info);
        assert_eq!(
            found,
            vec![
                ContainerNetwork {
                    name: "apps".into(),
                    ip: "10.5.0.2".parse().expect("ip"),
                },
                ContainerNetwork {
                    name: "bridge".into(),
                    ip: "172.17.0.3".parse().expect("ip"),
                },
            ]
        );
        assert!(networks(&ContainerInspectResponse::default()).is_empty());
    }
}
