//! Starting the task: fetching its URIs, then spawning its command with its
//! isolation, environment, sandbox and output files.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use nix::unistd::Pid;

use super::isolate::{self, Guard};
use super::protocol::{shim_file, Command, ShimConfig};
use crate::containerizer::CommandSpec;

/// Fetches the task's URIs into the sandbox; the error names the URI.
pub(super) async fn fetch(config: &ShimConfig) -> Result<(), String> {
    if config.uris.is_empty() {
        return Ok(());
    }
    let uris: Vec<agora_proto::command_info::Uri> = config.uris.iter().map(Into::into).collect();
    let cache = config
        .fetch_cache
        .clone()
        .unwrap_or_else(|| shim_file(&config.sandbox, "fetch-cache"));
    crate::fetcher::fetch(&uris, &config.sandbox, &cache)
        .await
        .map_err(|e| e.to_string())
}

/// Starts the task in its isolation; returns its pid and guard, or why it
/// could not start (a cgroup made for it is destroyed again).
pub(super) fn spawn_task(config: &ShimConfig) -> Result<(Pid, Guard), String> {
    let open = |name: &str| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.sandbox.join(name))
            .map_err(|e| format!("cannot open {name} in the sandbox: {e}"))
    };
    let (stdout, stderr) = (open("stdout")?, open("stderr")?);
    let spec = match &config.command {
        Command::Docker { .. } => return Err("a Docker container is not a host command".into()),
        Command::Shell { script } => CommandSpec::Shell(script.clone()),
        Command::Exec {
            program,
            argv0,
            args,
        } => CommandSpec::Exec {
            program: program.clone(),
            argv0: argv0.clone(),
            args: args.clone(),
        },
    };
    let program = spec.program().to_string();
    let (mut command, guard) = isolate::prepare(
        &config.container_id,
        &config.sandbox,
        &spec,
        &config.isolation,
        &config.resources,
    )?;
    command
        .env_clear()
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&config.sandbox)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Its own group: the first SIGTERM reaches the whole group at once
        // even before /proc is scanned, and the shim is not in it.
        .process_group(0);
    // Last, as the cgroup module requires: the child joins between fork and exec.
    let spawned = guard.enter(&mut command).and_then(|()| {
        command
            .spawn()
            .map_err(|e| format!("cannot execute '{program}': {e}"))
    });
    match spawned {
        // The `Child` is dropped without waiting: the shim reaps with
        // waitpid(-1) so that orphans it inherits are reaped too.
        Ok(child) => Ok((Pid::from_raw(child.id() as i32), guard)),
        Err(message) => {
            guard.destroy_now();
            Err(message)
        }
    }
}
