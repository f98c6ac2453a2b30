//! `agora local` driven by the marathon-python client from PyPI, the way a
//! user's script drives Marathon. `scripts/test.sh` installs the client in a
//! virtualenv and points `AGORA_TEST_PYTHON` at it.

mod support;

use std::process::{Command, Stdio};

use support::{agora, eventually, free_port, get_json, local_master_port, Proc};

fn python() -> String {
    if let Ok(python) = std::env::var("AGORA_TEST_PYTHON") {
        return python;
    }
    // Where scripts/test.sh puts its virtualenv.
    let venv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/python-venv/bin/python"
    );
    if std::path::Path::new(venv).exists() {
        return venv.to_string();
    }
    "python3".to_string()
}

#[test]
fn marathon_python_client_creates_lists_scales_kills_and_deletes() {
    let python = python();
    let has_client = Command::new(&python)
        .args(["-c", "import marathon"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_client,
        "{python} cannot import the `marathon` client: run scripts/test.sh, which installs it from PyPI \
         (or set AGORA_TEST_PYTHON to a python that has it)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let master_port = local_master_port(1);
    let marathon_port = free_port();
    let _local = Proc(
        agora()
            .args([
                "local",
                "--agents",
                "1",
                "--master-port",
                &master_port.to_string(),
            ])
            .args(["--marathon-port", &marathon_port.to_string()])
            .arg("--work-dir")
            .arg(dir.path())
            .args([
                "--agent-resources",
                "cpus:2;mem:1024;disk:1000;ports:[31000-31010]",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agora local"),
    );
    eventually("Marathon to lead", || {
        get_json(marathon_port, "/v2/info").filter(|info| info["elected"] == true)
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/marathon_client.py"
    );
    let out = Command::new(&python)
        .arg(script)
        .arg(format!("http://127.0.0.1:{marathon_port}"))
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "marathon-python failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("marathon-python: ok"), "{stdout}");
}
