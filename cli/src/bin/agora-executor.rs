//! `agora-executor`: the executor shim alone, as a small binary.
//!
//! The agent starts one shim per task. `agora executor` runs the same code,
//! but from the whole `agora` binary, of which each shim then maps far more
//! than it runs; this binary links only the shim, so each costs a few MiB
//! resident. The agent uses it when it finds it next to `agora` (or in its
//! `--launcher-dir`); its command line is the same: `executor --config PATH`.

use std::process::ExitCode;

fn main() -> ExitCode {
    agora_agent::executor::main_with_args(std::env::args_os().skip(1)).unwrap_or_else(|| {
        eprintln!(
            "usage: agora-executor executor --config PATH (started by the agent, not by hand)"
        );
        ExitCode::from(2)
    })
}
