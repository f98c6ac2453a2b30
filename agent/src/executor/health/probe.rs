//! Running one probe against a task, wherever the task is.
//!
//! The [`Target`] is the seam between a check and the task's place: a
//! native task's is [`HostTarget`] (its ports on the host's loopback, its
//! commands in its sandbox on the host); a Docker container's is the Docker
//! mode's own (commands through the engine's exec API, ports inside the
//! container's network namespace). A probe only asks the target for a
//! connection or an exit code, and says what the answer means.

use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::spec::Probe;
use super::tracker::Outcome;

/// Where a task runs, as its checks reach it.
#[async_trait]
pub trait Target: Send + Sync + 'static {
    /// A TCP connection to `port` on the task's network.
    async fn connect(&self, port: u16) -> io::Result<TcpStream>;

    /// Runs `script` through `/bin/sh -c` where the task runs, with the
    /// task's environment and `env` on top; its exit code.
    async fn run(&self, script: &str, env: &[(String, String)]) -> io::Result<i32>;
}

/// A task on the host: its network is the host's, its commands run in its
/// sandbox with its environment.
pub struct HostTarget {
    /// The task's sandbox.
    pub sandbox: PathBuf,
    /// The task's environment.
    pub env: Vec<(String, String)>,
}

#[async_trait]
impl Target for HostTarget {
    async fn connect(&self, port: u16) -> io::Result<TcpStream> {
        TcpStream::connect(("127.0.0.1", port)).await
    }

    async fn run(&self, script: &str, env: &[(String, String)]) -> io::Result<i32> {
        let status = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .env_clear()
            .envs(self.env.iter().chain(env).map(|(k, v)| (k, v)))
            .current_dir(&self.sandbox)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A probe that times out is dropped, and its process with it.
            .kill_on_drop(true)
            .status()
            .await?;
        Ok(status.code().unwrap_or(-1))
    }
}

/// What one probe found: the tracker's outcome, and the raw result a
/// general check reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// Passed, failed (why) or neither.
    pub outcome: Outcome,
    /// The raw result (`None` when the probe did not get one, e.g. it timed out).
    pub result: Option<RawResult>,
}

/// A probe's raw result, as `TaskStatus.check_status` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawResult {
    /// A command's exit code.
    ExitCode(i32),
    /// An HTTP answer's status.
    Status(u16),
    /// Whether a TCP connection was made.
    Connected(bool),
}

/// Runs `probe` against `target`, giving up after `timeout`.
pub async fn run(probe: &Probe, target: &Arc<dyn Target>, timeout: Duration) -> Probed {
    match tokio::time::timeout(timeout, attempt(probe, target)).await {
        Ok(probed) => probed,
        Err(_) => Probed {
            outcome: Outcome::Failed(format!("{} timed out after {timeout:?}", describe(probe))),
            result: None,
        },
    }
}

fn describe(probe: &Probe) -> String {
    match probe {
        Probe::Command { script, .. } => format!("command '{script}'"),
        Probe::Http {
            https, port, path, ..
        } => {
            let scheme = if *https { "https" } else { "http" };
            format!("GET {scheme}://127.0.0.1:{port}{path}")
        }
        Probe::Tcp { port } => format!("TCP connection to port {port}"),
    }
}

async fn attempt(probe: &Probe, target: &Arc<dyn Target>) -> Probed {
    let failed = |why: String| Probed {
        outcome: Outcome::Failed(format!("{}: {why}", describe(probe))),
        result: None,
    };
    match probe {
        Probe::Command { script, env } => match target.run(script, env).await {
            Ok(0) => Probed {
                outcome: Outcome::Passed,
                result: Some(RawResult::ExitCode(0)),
            },
            Ok(code) => Probed {
                outcome: Outcome::Failed(format!("{} exited with status {code}", describe(probe))),
                result: Some(RawResult::ExitCode(code)),
            },
            Err(e) => failed(e.to_string()),
        },
        Probe::Tcp { port } => match target.connect(*port).await {
            Ok(_) => Probed {
                outcome: Outcome::Passed,
                result: Some(RawResult::Connected(true)),
            },
            Err(e) => Probed {
                result: Some(RawResult::Connected(false)),
                ..failed(e.to_string())
            },
        },
        Probe::Http {
            https,
            port,
            path,
            statuses,
        } => {
            let stream = match target.connect(*port).await {
                Ok(s) => s,
                Err(e) => return failed(e.to_string()),
            };
            let answered = if *https {
                match tls(stream).await {
                    Ok(tls) => get(tls, *port, path).await,
                    Err(e) => Err(e),
                }
            } else {
                get(stream, *port, path).await
            };
            match answered {
                Ok(status) => {
                    let healthy = if statuses.is_empty() {
                        (200..400).contains(&status)
                    } else {
                        statuses.contains(&status)
                    };
                    Probed {
                        outcome: if healthy {
                            Outcome::Passed
                        } else {
                            Outcome::Failed(format!("{} answered {status}", describe(probe)))
                        },
                        result: Some(RawResult::Status(status)),
                    }
                }
                Err(e) => failed(e.to_string()),
            }
        }
    }
}

/// An HTTP/1.1 GET on `stream`; the answer's status.
async fn get<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    port: u16,
    path: &str,
) -> io::Result<u16> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: agora-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    // The status line is all a check needs: read until its end.
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed before an HTTP answer",
            ));
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8192 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no HTTP status line",
            ));
        }
    }
    status_of(&head).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP answer"))
}

/// The status of an HTTP answer starting `HTTP/1.x NNN`.
fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words.next()?.parse().ok()
}

/// TLS over `stream`, certificates unverified: a check asks whether the
/// task answers, not who it is (Mesos' HTTPS checks run `curl -k`).
async fn tls(stream: TcpStream) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls::pki_types::ServerName;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    connector.connect(name, stream).await
}

/// Accepts any certificate, still checking that the handshake is signed
/// with the key it presents.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_of(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(b"HTTP/1.1 abc\r\n"), None);
    }

    /// An HTTP server answering every request with `status`; its port.
    async fn serve(status: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                    )
                    .await;
            }
        });
        port
    }

    fn target(dir: &std::path::Path) -> Arc<dyn Target> {
        Arc::new(HostTarget {
            sandbox: dir.to_path_buf(),
            env: vec![
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("FLAG".into(), "up".into()),
            ],
        })
    }

    #[tokio::test]
    async fn probes_pass_and_fail_for_what_they_find() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = target(dir.path());
        let timeout = Duration::from_secs(5);
        let ok = serve(204).await;
        let broken = serve(500).await;
        let http = |port, statuses: Vec<u16>| Probe::Http {
            https: false,
            port,
            path: "/health".into(),
            statuses,
        };
        let probed = run(&http(ok, vec![]), &t, timeout).await;
        assert_eq!(probed.outcome, Outcome::Passed);
        assert_eq!(probed.result, Some(RawResult::Status(204)));
        let probed = run(&http(broken, vec![]), &t, timeout).await;
        assert_eq!(
            probed.outcome,
            Outcome::Failed(format!("GET http://127.0.0.1:{broken}/health answered 500"))
        );
        assert_eq!(
            run(&http(broken, vec![500]), &t, timeout).await.outcome,
            Outcome::Passed,
            "explicit statuses win"
        );
        assert_eq!(
            run(&Probe::Tcp { port: ok }, &t, timeout).await.result,
            Some(RawResult::Connected(true))
        );
        // A port nobody listens on.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let probed = run(&Probe::Tcp { port: closed }, &t, timeout).await;
        assert_eq!(probed.result, Some(RawResult::Connected(false)));
        assert!(
            matches!(probed.outcome, Outcome::Failed(ref m) if m.contains("refused")),
            "{probed:?}"
        );

        let command = |script: &str| Probe::Command {
            script: script.into(),
            env: vec![("EXTRA".into(), "1".into())],
        };
        let probed = run(
            &command("test \"$FLAG$EXTRA\" = up1 && test -d ."),
            &t,
            timeout,
        )
        .await;
        assert_eq!(
            probed.outcome,
            Outcome::Passed,
            "the task's env, the check's, the sandbox"
        );
        let probed = run(&command("exit 4"), &t, timeout).await;
        assert_eq!(probed.result, Some(RawResult::ExitCode(4)));
        assert_eq!(
            probed.outcome,
            Outcome::Failed("command 'exit 4' exited with status 4".into())
        );
        let probed = run(&command("sleep 5"), &t, Duration::from_millis(100)).await;
        assert_eq!(
            probed.outcome,
            Outcome::Failed("command 'sleep 5' timed out after 100ms".into())
        );
    }
}
