//! The containerizer the actor talks to: it hands each container to the
//! containerizer of its kind and refuses those of a kind this agent does not
//! run, naming the missing containerizer, so that a `DOCKER` task is never
//! run some other way.
//!
//! It remembers which containerizer owns each container from `launch` or
//! `recover` until `wait` forgets it; the map sits behind a
//! `std::sync::Mutex` never held across an `.await`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    Containerizer, ContainerizerKind, LaunchError, LaunchSpec, Launched, RecoverError, Termination,
    UnknownContainer,
};

/// Routes containers to the native or the Docker containerizer.
pub struct ComposingContainerizer {
    /// Each enabled containerizer, in `--containerizers` order.
    members: Vec<(ContainerizerKind, Arc<dyn Containerizer>)>,
    /// Which containerizer owns each known container.
    owners: Mutex<HashMap<String, ContainerizerKind>>,
}

impl ComposingContainerizer {
    /// Composes `members` (at most one of each kind; the first wins).
    pub fn new(members: Vec<(ContainerizerKind, Arc<dyn Containerizer>)>) -> Self {
        ComposingContainerizer {
            members,
            owners: Mutex::new(HashMap::new()),
        }
    }

    fn member(&self, kind: ContainerizerKind) -> Option<&Arc<dyn Containerizer>> {
        self.members
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, c)| c)
    }

    fn missing(&self, kind: ContainerizerKind) -> String {
        format!(
            "the {kind} containerizer is not enabled on this agent (--containerizers={})",
            ContainerizerKind::join(&self.kinds())
        )
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, ContainerizerKind>> {
        // A poisoned lock only means another thread panicked mid-update of
        // a plain map; the map itself is still consistent.
        self.owners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn owner(&self, container_id: &str) -> Result<&Arc<dyn Containerizer>, UnknownContainer> {
        let kind = self
            .table()
            .get(container_id)
            .copied()
            .ok_or_else(|| UnknownContainer(container_id.to_string()))?;
        self.member(kind)
            .ok_or_else(|| UnknownContainer(container_id.to_string()))
    }
}

#[async_trait]
impl Containerizer for ComposingContainerizer {
    async fn launch(&self, spec: LaunchSpec) -> Result<Launched, LaunchError> {
        let kind = spec.run.kind();
        let member = self
            .member(kind)
            .ok_or_else(|| LaunchError::Unsupported(self.missing(kind)))?
            .clone();
        let container_id = spec.container_id.clone();
        self.table().insert(container_id.clone(), kind);
        let launched = member.launch(spec).await;
        if launched.is_err() {
            self.table().remove(&container_id);
        }
        launched
    }

    async fn recover(
        &self,
        container_id: &str,
        sandbox: &Path,
        kind: ContainerizerKind,
    ) -> Result<Launched, RecoverError> {
        // A Docker container of a previous run is still reachable through
        // its shim when the engine did not answer this time: the native
        // containerizer's shims speak the same protocol, so it is recovered
        // (watched, killed, reported) rather than given up while it runs.
        let missing = || RecoverError {
            container_id: container_id.to_string(),
            reason: self.missing(kind),
        };
        let (serving, member) = match (self.member(kind), kind) {
            (Some(member), _) => (kind, member.clone()),
            (None, ContainerizerKind::Docker) => {
                let native = self.member(ContainerizerKind::Mesos).ok_or_else(missing)?;
                tracing::warn!(%container_id, "recovering a Docker container through its shim alone: {}", self.missing(kind));
                (ContainerizerKind::Mesos, native.clone())
            }
            (None, ContainerizerKind::Mesos) => return Err(missing()),
        };
        self.table().insert(container_id.to_string(), serving);
        let found = member.recover(container_id, sandbox, kind).await;
        if found.is_err() {
            self.table().remove(container_id);
        }
        found
    }

    async fn wait(&self, container_id: &str) -> Result<Termination, UnknownContainer> {
        let member = self.owner(container_id)?.clone();
        let ended = member.wait(container_id).await;
        self.table().remove(container_id);
        ended
    }

    async fn kill(&self, container_id: &str, grace: Duration) -> Result<(), UnknownContainer> {
        let member = self.owner(container_id)?.clone();
        member.kill(container_id, grace).await
    }

    async fn clean_up_orphans(&self, known: &[String]) {
        for (_, member) in &self.members {
            member.clean_up_orphans(known).await;
        }
    }

    fn health(
        &self,
        container_id: &str,
    ) -> Option<tokio::sync::watch::Receiver<crate::executor::protocol::HealthStatus>> {
        self.owner(container_id).ok()?.health(container_id)
    }

    fn kinds(&self) -> Vec<ContainerizerKind> {
        self.members.iter().map(|(k, _)| *k).collect()
    }

    async fn usage(&self, container_id: &str) -> Option<crate::isolation::cgroups::Stats> {
        let member = self.owner(container_id).ok()?.clone();
        member.usage(container_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerizer::posix::PosixContainerizer;
    use crate::containerizer::{CommandSpec, Run};

    fn spec(dir: &Path, run: Run) -> LaunchSpec {
        LaunchSpec {
            container_id: uuid::Uuid::new_v4().to_string(),
            sandbox: dir.to_path_buf(),
            run,
            env: Vec::new(),
            uris: Vec::new(),
            resources: Default::default(),
            checks: Default::default(),
        }
    }

    fn docker_run() -> Run {
        let task = agora_proto::TaskInfo {
            command: Some(Default::default()),
            container: Some(agora_proto::ContainerInfo {
                r#type: agora_proto::container_info::Type::Docker as i32,
                docker: Some(agora_proto::container_info::DockerInfo {
                    image: "busybox".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        Run::of(&task, "a", "f").expect("a docker run")
    }

    #[tokio::test]
    async fn a_kind_the_agent_does_not_run_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = ComposingContainerizer::new(vec![(
            ContainerizerKind::Mesos,
            Arc::new(PosixContainerizer::new()) as Arc<dyn Containerizer>,
        )]);
        let err = c
            .launch(spec(dir.path(), docker_run()))
            .await
            .expect_err("no docker here");
        assert!(matches!(err, LaunchError::Unsupported(_)));
        assert_eq!(
            err.to_string(),
            "the docker containerizer is not enabled on this agent (--containerizers=mesos)"
        );
        // Recovered through the native containerizer's shims, which here
        // (POSIX) recover nothing.
        let err = c
            .recover("c1", dir.path(), ContainerizerKind::Docker)
            .await
            .expect_err("nothing to recover");
        assert!(err.reason.contains("end with the agent"), "{err}");
        let none = ComposingContainerizer::new(Vec::new());
        let err = none
            .recover("c1", dir.path(), ContainerizerKind::Docker)
            .await
            .expect_err("no containerizer at all");
        assert!(
            err.reason.contains("docker containerizer is not enabled"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn containers_are_routed_to_their_owner_until_waited_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = ComposingContainerizer::new(vec![(
            ContainerizerKind::Mesos,
            Arc::new(PosixContainerizer::new()) as Arc<dyn Containerizer>,
        )]);
        let s = spec(
            dir.path(),
            Run::Command(CommandSpec::Shell("exit 4".into())),
        );
        let id = s.container_id.clone();
        c.launch(s).await.expect("launch");
        assert_eq!(c.wait(&id).await.expect("known"), Termination::Exited(4));
        assert!(c.wait(&id).await.is_err(), "forgotten after wait");
        assert!(c.kill(&id, Duration::ZERO).await.is_err());
    }
}
