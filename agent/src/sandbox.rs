//! Sandbox directories, laid out as Mesos lays them out.
//!
//! ```text
//! <work_dir>/slaves/<agent_id>/frameworks/<framework_id>/executors/<executor_id>/runs/<container_id>/
//!                                                                              runs/latest -> <container_id>
//! ```
//!
//! Tools that know Mesos (log fetchers, the files API later) find sandboxes
//! where they expect them. Ids come from the network, so each path component
//! is checked before use: an id such as `../../etc` must not escape the
//! work dir.

use std::io;
use std::path::{Path, PathBuf};

/// Where sandboxes live.
#[derive(Debug, Clone)]
pub struct SandboxLayout {
    work_dir: PathBuf,
}

/// The ids naming one container's sandbox.
#[derive(Debug, Clone, Copy)]
pub struct SandboxIds<'a> {
    /// The agent's id.
    pub agent_id: &'a str,
    /// The task's framework.
    pub framework_id: &'a str,
    /// The executor (the task id for command tasks).
    pub executor_id: &'a str,
    /// The container run.
    pub container_id: &'a str,
}

/// Why a sandbox could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// An id that cannot be a single path component.
    #[error("invalid {kind} '{id}' for a sandbox path")]
    InvalidId {
        /// Which id.
        kind: &'static str,
        /// Its value.
        id: String,
    },
    /// The file system refused.
    #[error("cannot create sandbox {}: {source}", path.display())]
    Io {
        /// The directory or link being made.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl SandboxLayout {
    /// Sandboxes under `work_dir`.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        SandboxLayout {
            work_dir: work_dir.into(),
        }
    }

    /// The `runs/` directory of an executor.
    pub fn runs_dir(&self, ids: &SandboxIds<'_>) -> Result<PathBuf, SandboxError> {
        Ok(self
            .work_dir
            .join("slaves")
            .join(component("agent id", ids.agent_id)?)
            .join("frameworks")
            .join(component("framework id", ids.framework_id)?)
            .join("executors")
            .join(component("executor id", ids.executor_id)?)
            .join("runs"))
    }

    /// The sandbox of one container run.
    pub fn sandbox_dir(&self, ids: &SandboxIds<'_>) -> Result<PathBuf, SandboxError> {
        Ok(self
            .runs_dir(ids)?
            .join(component("container id", ids.container_id)?))
    }

    /// Creates the sandbox and points `runs/latest` at it; returns its path.
    /// Blocking file-system calls: run it off the actor.
    pub fn create(&self, ids: &SandboxIds<'_>) -> Result<PathBuf, SandboxError> {
        let dir = self.sandbox_dir(ids)?;
        std::fs::create_dir_all(&dir).map_err(|source| SandboxError::Io {
            path: dir.clone(),
            source,
        })?;
        let runs = self.runs_dir(ids)?;
        replace_symlink(Path::new(ids.container_id), &runs.join("latest"))?;
        Ok(dir)
    }
}

/// Points `link` at `target`, replacing an older link atomically (a
/// temporary link renamed over it) so readers never see it missing.
fn replace_symlink(target: &Path, link: &Path) -> Result<(), SandboxError> {
    let io_err = |source| SandboxError::Io {
        path: link.to_path_buf(),
        source,
    };
    let tmp = link.with_file_name(format!(".latest.{}", uuid::Uuid::new_v4()));
    std::os::unix::fs::symlink(target, &tmp).map_err(io_err)?;
    std::fs::rename(&tmp, link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(e)
    })
}

/// `id` if it is safe as one path component.
fn component<'a>(kind: &'static str, id: &'a str) -> Result<&'a str, SandboxError> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0') {
        return Err(SandboxError::InvalidId {
            kind,
            id: id.to_string(),
        });
    }
    Ok(id)
}

/// Every run directory under `work_dir/slaves/*/frameworks/*/executors/*/runs/`
/// (the `latest` links left out: `file_type` does not follow them).
pub fn run_dirs(work_dir: &Path) -> Vec<PathBuf> {
    fn subdirs(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }
    let mut runs = Vec::new();
    for agent in subdirs(&work_dir.join("slaves")) {
        for framework in subdirs(&agent.join("frameworks")) {
            for executor in subdirs(&framework.join("executors")) {
                runs.extend(subdirs(&executor.join("runs")));
            }
        }
    }
    runs
}

/// The ids of every container with a sandbox under `work_dir`.
pub fn container_ids(work_dir: &Path) -> std::collections::HashSet<String> {
    run_dirs(work_dir)
        .iter()
        .filter_map(|run| run.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<'a>(executor_id: &'a str, container_id: &'a str) -> SandboxIds<'a> {
        SandboxIds {
            agent_id: "a-S0",
            framework_id: "f-0000",
            executor_id,
            container_id,
        }
    }

    #[test]
    fn layout_matches_mesos() {
        let layout = SandboxLayout::new("/w");
        let dir = layout.sandbox_dir(&ids("t1", "c1")).expect("valid ids");
        assert_eq!(
            dir,
            PathBuf::from("/w/slaves/a-S0/frameworks/f-0000/executors/t1/runs/c1")
        );
    }

    #[test]
    fn ids_cannot_escape_the_work_dir() {
        let layout = SandboxLayout::new("/w");
        for bad in ["..", "a/b", "", "."] {
            assert!(
                matches!(
                    layout.sandbox_dir(&ids(bad, "c1")),
                    Err(SandboxError::InvalidId { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn create_makes_the_dir_and_moves_latest() {
        let root = std::env::temp_dir().join(format!("agora-sandbox-{}", uuid::Uuid::new_v4()));
        let layout = SandboxLayout::new(&root);
        let first = layout.create(&ids("t1", "c1")).expect("create c1");
        assert!(first.is_dir());
        let second = layout.create(&ids("t1", "c2")).expect("create c2");
        let latest = layout
            .runs_dir(&ids("t1", "c2"))
            .expect("valid ids")
            .join("latest");
        assert_eq!(
            std::fs::canonicalize(&latest).expect("latest resolves"),
            std::fs::canonicalize(&second).expect("c2 exists")
        );
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
