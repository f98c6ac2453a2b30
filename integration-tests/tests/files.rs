//! The agent's files API on a real task's sandbox.

use std::time::Duration;

use agora_integration_tests::{assert_eventually, Cluster, TestFramework};
use agora_proto::TaskState;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_sandbox_can_be_browsed_read_and_downloaded_but_not_escaped() {
    let cluster = Cluster::builder().agents(1).start().await;
    let mut f =
        TestFramework::subscribe(cluster.scheduler_config("files").auto_acknowledge(true)).await;
    f.launch_on_next_offer(
        "writer",
        "echo 'line one'; echo 'line two'; sleep 30",
        0.1,
        16.0,
    )
    .await;
    f.update("writer", TaskState::TaskRunning).await;
    let agent = format!("http://{}", cluster.agent_http(0));
    let http = cluster.http();
    let state: Value = http
        .get(format!("{agent}/state"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    let sandbox = state["frameworks"][0]["executors"][0]["directory"]
        .as_str()
        .expect("sandbox directory in /state")
        .to_string();
    let stdout = format!("{sandbox}/stdout");
    let get = |path: String| http.get(path).send();

    assert_eventually!(
        Duration::from_secs(10),
        {
            let r: Value = get(format!("{agent}/files/read?path={stdout}&offset=0"))
                .await
                .expect("GET")
                .json()
                .await
                .expect("JSON");
            r["data"].as_str().is_some_and(|d| d.contains("line two"))
        },
        "stdout not readable through /files/read"
    );
    let length: Value = get(format!("{agent}/files/read?path={stdout}"))
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        length["offset"], 18,
        "without an offset, read answers the length"
    );
    let tail: Value = get(format!(
        "{agent}/files/read?path={stdout}&offset=9&length=4"
    ))
    .await
    .expect("GET")
    .json()
    .await
    .expect("JSON");
    assert_eq!(tail["data"], "line");
    assert_eq!(tail["offset"], 9);

    let listing: Value = get(format!("{agent}/files/browse?path={sandbox}"))
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    let names: Vec<&str> = listing
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert!(names.iter().any(|p| p.ends_with("/stdout")), "{names:?}");
    assert!(names.iter().any(|p| p.ends_with("/stderr")), "{names:?}");

    let download = get(format!("{agent}/files/download?path={stdout}"))
        .await
        .expect("GET");
    assert_eq!(download.status(), 200);
    assert_eq!(download.text().await.expect("body"), "line one\nline two\n");

    for escape in [
        format!("{sandbox}{}/etc/passwd", "/..".repeat(20)),
        "/etc/passwd".to_string(),
        "relative/path".to_string(),
    ] {
        let r = get(format!("{agent}/files/read?path={escape}&offset=0"))
            .await
            .expect("GET");
        assert_eq!(r.status(), 403, "{escape}");
    }
    let missing = get(format!("{agent}/files/read?path={sandbox}/nope&offset=0"))
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
    let no_path = get(format!("{agent}/files/browse")).await.expect("GET");
    assert_eq!(no_path.status(), 400);
    cluster.stop().await;
}
