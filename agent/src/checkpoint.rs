//! The agent's checkpoint: what a restarted agent needs to recover.
//!
//! Laid out under the work dir as Mesos lays out its `meta/` (protobuf files,
//! each replaced atomically by writing a temporary file and renaming it):
//!
//! ```text
//! <work_dir>/meta/agent            AgentCheckpoint: agent info with id, boot id, the flags
//! <work_dir>/meta/tasks/<container> TaskCheckpoint: framework, task, container, pid,
//!                                   sandbox, latest state, unacknowledged updates
//! ```
//!
//! A task's file holds its framework and its pending status updates, so one
//! rename changes everything about a task at once; the actor rewrites it on
//! every change (launch, state, acknowledgement) and removes it once the
//! terminal update is acknowledged. Files are not fsynced: they must outlive
//! the agent process, not the machine, because after a reboot (a new boot
//! id) the agent starts fresh anyway.
//!
//! [`decide`] is the pure rule of what a start does with a checkpoint.

use std::io;
use std::path::{Path, PathBuf};

use agora_proto::agent::{AgentCheckpoint, TaskCheckpoint};
use prost::Message;

/// Where the kernel publishes the boot id.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// `--recover`: what to do with the tasks of a previous run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoverMode {
    /// Reconnect to the live shims and reregister with the old id.
    #[default]
    Reconnect,
    /// Kill every task of the previous run and start as a new agent.
    Cleanup,
}

/// What a start does with the checkpoint it finds.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing checkpointed: a new agent.
    New,
    /// Recover the checkpointed agent and its tasks.
    Reconnect,
    /// Kill what is left of the previous agent's tasks and start as a new agent.
    Fresh(&'static str),
}

/// The recovery rule (Mesos'): a reboot or changed flags make a new agent,
/// whose predecessor the master reports lost; `--recover=cleanup` too.
pub fn decide(
    previous: Option<&AgentCheckpoint>,
    boot_id: &str,
    resources_flag: &str,
    attributes_flag: &str,
    mode: RecoverMode,
) -> Decision {
    let Some(previous) = previous else {
        return Decision::New;
    };
    if previous.boot_id != boot_id {
        Decision::Fresh("the machine rebooted")
    } else if previous.resources_flag != resources_flag {
        Decision::Fresh("--resources changed")
    } else if previous.attributes_flag != attributes_flag {
        Decision::Fresh("--attributes changed")
    } else if mode == RecoverMode::Cleanup {
        Decision::Fresh("--recover=cleanup")
    } else {
        Decision::Reconnect
    }
}

/// This boot's id (empty when the kernel does not say).
pub fn boot_id() -> String {
    std::fs::read_to_string(BOOT_ID)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Replaces `path` with `bytes` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("checkpoint");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The `meta/` directory of one work dir.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    meta: PathBuf,
}

impl Checkpoint {
    /// The checkpoint under `work_dir`; creates its directories.
    pub fn open(work_dir: &Path) -> io::Result<Self> {
        let meta = work_dir.join("meta");
        std::fs::create_dir_all(meta.join("tasks"))?;
        Ok(Checkpoint { meta })
    }

    fn agent_path(&self) -> PathBuf {
        self.meta.join("agent")
    }

    fn task_path(&self, container_id: &str) -> PathBuf {
        self.meta.join("tasks").join(container_id)
    }

    /// The checkpointed agent, if any.
    pub fn read_agent(&self) -> io::Result<Option<AgentCheckpoint>> {
        read(&self.agent_path())
    }

    /// Records the agent.
    pub fn write_agent(&self, agent: &AgentCheckpoint) -> io::Result<()> {
        write_atomic(&self.agent_path(), &agent.encode_to_vec())
    }

    /// Every checkpointed task; unreadable files are logged and skipped.
    pub fn read_tasks(&self) -> io::Result<Vec<TaskCheckpoint>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.meta.join("tasks"))? {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            match read(&path) {
                Ok(Some(task)) => out.push(task),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "bad task checkpoint skipped")
                }
            }
        }
        Ok(out)
    }

    /// Records a task (its file is named after its container, an id the
    /// agent made, so it is a safe file name).
    pub fn write_task(&self, task: &TaskCheckpoint) -> io::Result<()> {
        write_atomic(&self.task_path(&task.container_id), &task.encode_to_vec())
    }

    /// Forgets a task.
    pub fn remove_task(&self, container_id: &str) -> io::Result<()> {
        match std::fs::remove_file(self.task_path(container_id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Forgets everything: the next registration makes a new agent.
    pub fn clear(&self) -> io::Result<()> {
        for entry in std::fs::read_dir(self.meta.join("tasks"))? {
            std::fs::remove_file(entry?.path())?;
        }
        match std::fs::remove_file(self.agent_path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn read<T: Message + Default>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => T::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::{AgentId, AgentInfo, TaskState, TaskStatus};

    fn agent(boot: &str) -> AgentCheckpoint {
        AgentCheckpoint {
            agent_info: Some(AgentInfo {
                id: Some(AgentId {
                    value: "a-S1".into(),
                }),
                ..Default::default()
            }),
            boot_id: boot.into(),
            resources_flag: "cpus:2".into(),
            attributes_flag: String::new(),
        }
    }

    #[test]
    fn decisions_follow_mesos() {
        let a = agent("b1");
        let r = RecoverMode::Reconnect;
        assert_eq!(decide(None, "b1", "cpus:2", "", r), Decision::New);
        assert_eq!(decide(Some(&a), "b1", "cpus:2", "", r), Decision::Reconnect);
        assert!(matches!(
            decide(Some(&a), "b2", "cpus:2", "", r),
            Decision::Fresh(why) if why.contains("reboot")
        ));
        assert!(matches!(
            decide(Some(&a), "b1", "cpus:3", "", r),
            Decision::Fresh(why) if why.contains("--resources")
        ));
        assert!(matches!(
            decide(Some(&a), "b1", "cpus:2", "rack:a", r),
            Decision::Fresh(why) if why.contains("--attributes")
        ));
        assert!(matches!(
            decide(Some(&a), "b1", "cpus:2", "", RecoverMode::Cleanup),
            Decision::Fresh(why) if why.contains("cleanup")
        ));
    }

    #[test]
    fn write_read_remove_and_clear() {
        let dir = std::env::temp_dir().join(format!("agora-ckpt-{}", uuid::Uuid::new_v4()));
        let c = Checkpoint::open(&dir).expect("open");
        assert_eq!(c.read_agent().expect("read"), None);
        c.write_agent(&agent("b1")).expect("write");
        assert_eq!(c.read_agent().expect("read"), Some(agent("b1")));

        let task = |container: &str| TaskCheckpoint {
            container_id: container.into(),
            state: TaskState::TaskRunning as i32,
            pid: Some(42),
            pending_updates: vec![TaskStatus {
                uuid: Some(vec![1]),
                ..Default::default()
            }],
            ..Default::default()
        };
        c.write_task(&task("c1")).expect("write");
        c.write_task(&task("c2")).expect("write");
        // Rewriting replaces.
        let mut changed = task("c1");
        changed.state = TaskState::TaskFinished as i32;
        c.write_task(&changed).expect("rewrite");
        let mut tasks = c.read_tasks().expect("read");
        tasks.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        assert_eq!(tasks, vec![changed, task("c2")]);

        c.remove_task("c2").expect("remove");
        c.remove_task("c2").expect("removing twice is fine");
        assert_eq!(c.read_tasks().expect("read").len(), 1);
        c.clear().expect("clear");
        assert_eq!(c.read_agent().expect("read"), None);
        assert!(c.read_tasks().expect("read").is_empty());
        assert!(!boot_id().is_empty(), "linux publishes a boot id");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
