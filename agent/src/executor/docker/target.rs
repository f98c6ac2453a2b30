//! A Docker container as its checks reach it: commands through the
//! engine's exec API inside the container (as Mesos' docker executor runs
//! them), ports inside the container's network namespace (a server bound
//! to the container's loopback answers too), entered by a short-lived
//! thread of the shim with `setns` before it connects.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures::StreamExt;
use tokio::net::TcpStream;

use crate::containerizer::docker::engine;
use crate::executor::health::probe::Target;

/// How long a connection made from inside a namespace may take (the
/// probe's own timeout is the real bound).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// One container of the engine.
pub(super) struct DockerTarget {
    pub docker: Docker,
    /// The container's name.
    pub name: String,
    /// `/proc/<pid>/ns/net` of a container with a network of its own;
    /// `None` on the host's network.
    pub netns: Option<PathBuf>,
}

#[async_trait]
impl Target for DockerTarget {
    async fn connect(&self, port: u16) -> io::Result<TcpStream> {
        let Some(netns) = self.netns.clone() else {
            return TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        // setns switches the calling thread only; the socket it makes stays
        // in the container's namespace once handed back.
        std::thread::Builder::new()
            .name("health-netns".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let connected = (|| {
                    let file = std::fs::File::open(&netns)?;
                    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(io::Error::from)?;
                    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                    std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
                })();
                let _ = tx.send(connected);
            })?;
        let stream = rx
            .await
            .map_err(|_| io::Error::other("the namespace thread ended without an answer"))??;
        stream.set_nonblocking(true)?;
        TcpStream::from_std(stream)
    }

    async fn run(&self, script: &str, env: &[(String, String)]) -> io::Result<i32> {
        let options = CreateExecOptions {
            cmd: Some(vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                script.to_string(),
            ]),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(&self.name, options)
            .await
            .map_err(|e| io::Error::other(engine::message(&e)))?;
        match self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| io::Error::other(engine::message(&e)))?
        {
            // The output is not kept; it ends when the command does.
            StartExecResults::Attached { mut output, .. } => while output.next().await.is_some() {},
            StartExecResults::Detached => {}
        }
        let inspected = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| io::Error::other(engine::message(&e)))?;
        let code = inspected.exit_code.unwrap_or(-1);
        Ok(i32::try_from(code).unwrap_or(-1))
    }
}
