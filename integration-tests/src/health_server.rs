//! A tiny HTTP server for health check tests, whose answers files toggle.
//!
//! Each task runs `python3 server.py <dir>` on `$PORT0`: `GET /health`
//! answers 200, or 500 while `<dir>/sick` or `<dir>/sick-<task id>`
//! exists (or the task's `BROKEN` variable is set: a broken version);
//! `GET /ready` answers 200, or 503 while `<dir>/unready` exists. A test
//! sickens and heals tasks by creating and removing those files.

use std::path::{Path, PathBuf};

const SERVER: &str = r#"
import http.server, os, sys
root, port = sys.argv[1], int(os.environ["PORT0"])
task = os.environ.get("MESOS_TASK_ID", "")
broken = bool(os.environ.get("BROKEN"))

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/ready"):
            ok = not os.path.exists(os.path.join(root, "unready"))
            code, body = (200, b"ready") if ok else (503, b"not ready yet")
        else:
            sick = broken or any(os.path.exists(os.path.join(root, f)) for f in ("sick", "sick-" + task))
            code, body = (500, b"sick") if sick else (200, b"ok")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
"#;

/// Where the server's script and switches live.
pub struct HealthServer {
    dir: tempfile::TempDir,
}

impl Default for HealthServer {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthServer {
    /// A fresh directory with the script.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("server.py"), SERVER).expect("the script");
        HealthServer { dir }
    }

    /// The app `cmd` that runs the server.
    pub fn cmd(&self) -> String {
        let dir = self.dir.path().display();
        format!("exec python3 {dir}/server.py {dir}")
    }

    fn switch(&self, name: &str, on: bool) {
        let path: PathBuf = self.dir.path().join(name);
        if on {
            std::fs::write(&path, b"").expect("a switch");
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Makes one task's `/health` fail (or pass again).
    pub fn set_sick(&self, task_id: &str, sick: bool) {
        self.switch(&format!("sick-{task_id}"), sick);
    }

    /// Makes every task's `/health` fail (or pass again).
    pub fn set_all_sick(&self, sick: bool) {
        self.switch("sick", sick);
    }

    /// Makes `/ready` answer 503 (or 200 again).
    pub fn set_unready(&self, unready: bool) {
        self.switch("unready", unready);
    }

    /// The directory (a COMMAND check can look at its files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
