//! The fetcher in the launch path, end to end: `agora execute --uri` against
//! a real master and agent, the URIs served by a small HTTP server in the
//! test.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use support::*;

const RESOURCES: &str = "cpus:2;mem:1024;disk:1000";

/// Serves `GET /hello.sh` (a script) and answers 404 to anything else; returns its port.
fn serve_script() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            // Drain the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = stream;
            let response = if request.starts_with("GET /hello.sh ") {
                let body = "echo fetched-and-ran > out\n";
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

#[test]
fn a_task_runs_a_fetched_script_and_a_missing_uri_fails_the_launch() {
    let cluster = Cluster::start();
    let (_agent, _) = cluster.agent(RESOURCES, &[]);
    let port = serve_script();

    let uri = format!("http://127.0.0.1:{port}/hello.sh");
    let exec = cluster.execute_with("fetcher", "sh hello.sh && cat out", &["--uri", &uri]);
    exec.wait_for("task fetcher TASK_FINISHED");
    let out = find(&cluster.work_dir().join("slaves"), "out").expect("the script's output");
    assert_eq!(
        std::fs::read_to_string(out).expect("out"),
        "fetched-and-ran\n"
    );

    let missing = format!("http://127.0.0.1:{port}/missing.sh");
    let exec = cluster.execute_with("nofetch", "sh missing.sh", &["--uri", &missing]);
    exec.wait_for("task nofetch TASK_FAILED");
    let output = exec.output();
    assert!(
        output.contains("reason=REASON_CONTAINER_LAUNCH_FAILED"),
        "{output}"
    );
    assert!(
        output.contains(&missing),
        "the message names the URI: {output}"
    );
    assert!(output.contains("404"), "and the cause: {output}");
}
