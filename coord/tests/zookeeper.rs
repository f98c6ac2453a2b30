//! The ZooKeeper election, detector and store against a real ZooKeeper.
//!
//! Each test owns a server (see `support/zk.rs`); sessions last 1 s so that
//! expiry is quick to provoke.

mod support;

use std::time::Duration;

use agora_coord::zk::{
    ZkClient, ZkDetector, ZkElection, ZkStore, ZkUrl, MAX_VALUE_BYTES, NODE_PREFIX,
};
use agora_coord::{AddressJson, MasterInfoJson};
use agora_coord::{Detector, Election, LeadershipEvent, Store, StoreError};
use support::eventually;
use support::zk::ZkServer;
use tokio::sync::watch;

const SESSION: Duration = Duration::from_secs(1);
const GROUP: &str = "/agora";

async fn client(server: &ZkServer, path: &str) -> ZkClient {
    let url = ZkUrl::parse(&server.url(path)).expect("url");
    ZkClient::connect(&url, SESSION).await.expect("connect")
}

fn info(id: &str, port: u32) -> Vec<u8> {
    let info = MasterInfoJson {
        id: id.to_string(),
        pid: Some(format!("master@127.0.0.1:{port}")),
        hostname: Some("localhost".to_string()),
        port,
        version: Some("0.1.0".to_string()),
        address: Some(AddressJson {
            hostname: Some("localhost".to_string()),
            ip: Some("127.0.0.1".to_string()),
            port: Some(port),
        }),
        ip: 0x0100_007f,
    };
    serde_json::to_vec(&info).expect("json")
}

/// The group's children, sorted, and the id in the lowest one's JSON.
async fn folder(zk: &ZkClient) -> (Vec<String>, Option<String>) {
    let client = zk.session().client;
    let mut children = client.list_children(GROUP).await.unwrap_or_default();
    children.sort();
    let lowest = match children.first() {
        Some(first) => client
            .get_data(&format!("{GROUP}/{first}"))
            .await
            .ok()
            .and_then(|(data, _)| serde_json::from_slice::<MasterInfoJson>(&data).ok())
            .map(|i| i.id),
        None => None,
    };
    (children, lowest)
}

fn leads(rx: &watch::Receiver<LeadershipEvent>) -> bool {
    *rx.borrow() == LeadershipEvent::Elected
}

async fn wait_for(
    rx: &mut watch::Receiver<LeadershipEvent>,
    event: LeadershipEvent,
    within: Duration,
) {
    tokio::time::timeout(within, rx.wait_for(|e| *e == event))
        .await
        .unwrap_or_else(|_| panic!("not {event:?} within {within:?}"))
        .expect("contender alive");
}

#[tokio::test]
async fn store_keeps_versions_lists_descendants_and_refuses_big_values() {
    let server = ZkServer::start();
    let store = ZkStore::new(client(&server, GROUP).await, "/agora-state");

    assert_eq!(store.get("/registry").await, Ok(None));
    assert_eq!(store.put("/registry", b"1".to_vec(), None).await, Ok(0));
    assert!(matches!(
        store.put("/registry", b"x".to_vec(), None).await,
        Err(StoreError::VersionMismatch { found: Some(0), .. })
    ));
    assert_eq!(store.put("/registry", b"2".to_vec(), Some(0)).await, Ok(1));
    assert_eq!(
        store.put("/registry", b"3".to_vec(), Some(0)).await,
        Err(StoreError::VersionMismatch {
            key: "/registry".into(),
            expected: Some(0),
            found: Some(1)
        })
    );
    assert!(matches!(
        store.put("/absent", b"3".to_vec(), Some(0)).await,
        Err(StoreError::VersionMismatch { found: None, .. })
    ));
    let v = store.get("/registry").await.expect("get").expect("present");
    assert_eq!((v.data.as_slice(), v.version), (&b"2"[..], 1));
    assert!(store.delete("/registry", 0).await.is_err());
    store.delete("/registry", 1).await.expect("delete");
    assert_eq!(store.get("/registry").await, Ok(None));

    // Parents are made on demand; list walks the tree and skips them.
    for key in ["/r/agents/1", "/r/agents/2", "/r/weights", "/rx"] {
        store.put(key, b"v".to_vec(), None).await.expect("put");
    }
    assert_eq!(
        store.list("/r").await.expect("list"),
        ["/r/agents/1", "/r/agents/2", "/r/weights"]
    );
    assert_eq!(store.list("/r/agents/").await.expect("list").len(), 2);
    assert_eq!(
        store.list("/nothing").await.expect("list"),
        Vec::<String>::new()
    );
    assert_eq!(store.list("/").await.expect("list").len(), 4);

    // Over the limit: refused before it is sent; at the limit: stored.
    let err = store
        .put("/big", vec![0; MAX_VALUE_BYTES + 1], None)
        .await
        .expect_err("too large");
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert_eq!(
        store.put("/big", vec![7; MAX_VALUE_BYTES], None).await,
        Ok(0)
    );
    assert_eq!(
        store
            .get("/big")
            .await
            .expect("get")
            .expect("present")
            .data
            .len(),
        MAX_VALUE_BYTES
    );
    assert!(matches!(
        store.get("no-slash").await,
        Err(StoreError::InvalidKey(_))
    ));
}

#[tokio::test]
async fn credentials_protect_the_store_and_leave_the_leader_readable() {
    let server = ZkServer::start();
    let secure = format!("zk://alice:secret@127.0.0.1:{}{GROUP}", server.port());
    let alice = ZkClient::connect(&ZkUrl::parse(&secure).expect("url"), SESSION)
        .await
        .expect("connect");
    let anonymous = client(&server, GROUP).await;

    let store = ZkStore::new(alice.clone(), "/secure");
    store.put("/k", b"v".to_vec(), None).await.expect("put");
    let (acl, _) = alice
        .session()
        .client
        .get_acl("/secure/k")
        .await
        .expect("acl");
    assert!(acl.iter().all(|a| a.scheme() == "digest"), "{acl:?}");
    let outsider = ZkStore::new(anonymous.clone(), "/secure");
    assert!(matches!(
        outsider.get("/k").await,
        Err(StoreError::Unavailable(_))
    ));

    let mut rx = ZkElection::new(alice, GROUP)
        .contend(info("m1", 5051))
        .await;
    wait_for(&mut rx, LeadershipEvent::Elected, Duration::from_secs(5)).await;
    let detector = ZkDetector::new(anonymous, GROUP);
    assert_eq!(
        detector.detect(None).await.expect("detect"),
        "127.0.0.1:5051"
    );
}

#[tokio::test]
async fn one_of_two_contenders_leads_and_the_other_takes_over() {
    let server = ZkServer::start();
    let (c1, c2, c3) = (
        client(&server, GROUP).await,
        client(&server, GROUP).await,
        client(&server, GROUP).await,
    );
    let mut rx1 = ZkElection::new(c1.clone(), GROUP)
        .contend(info("m1", 5051))
        .await;
    wait_for(&mut rx1, LeadershipEvent::Elected, Duration::from_secs(5)).await;
    let mut rx2 = ZkElection::new(c2.clone(), GROUP)
        .contend(info("m2", 5052))
        .await;
    eventually("both joined", Duration::from_secs(5), || async {
        folder(&c3).await.0.len() == 2
    })
    .await;

    // Exactly one leader, whose node is the lowest; nothing else in the folder.
    let (children, lowest) = folder(&c3).await;
    assert!(leads(&rx1) && !leads(&rx2));
    assert_eq!(lowest.as_deref(), Some("m1"));
    for child in &children {
        let seq = child
            .strip_prefix(NODE_PREFIX)
            .expect("only election nodes");
        assert_eq!(seq.len(), 10, "{child}");
    }

    // Detection reads the lowest node's address.
    let detector = ZkDetector::new(c3.clone(), GROUP);
    assert_eq!(
        detector.detect(None).await.expect("detect"),
        "127.0.0.1:5051"
    );
    let leader = detector
        .leader_info()
        .await
        .expect("read")
        .expect("a leader");
    assert_eq!(leader.pid.as_deref(), Some("master@127.0.0.1:5051"));

    // The leader writes; then it leaves and a detector waiting on it moves on.
    let store1 = ZkStore::new(c1.clone(), "/agora-state");
    let store2 = ZkStore::new(c2.clone(), "/agora-state");
    assert_eq!(store1.put("/registry", b"m1".to_vec(), None).await, Ok(0));
    let waiting = tokio::spawn({
        let detector = detector.clone();
        async move { detector.detect(Some("127.0.0.1:5051")).await }
    });
    drop(rx1);
    wait_for(&mut rx2, LeadershipEvent::Elected, Duration::from_secs(5)).await;
    let moved = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("detector woke up")
        .expect("task");
    assert_eq!(moved.expect("detect"), "127.0.0.1:5052");
    let (children, lowest) = folder(&c3).await;
    assert_eq!((children.len(), lowest.as_deref()), (1, Some("m2")));

    // The new leader writes over the registry; the deposed one's stale write is refused.
    let seen = store2
        .get("/registry")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        store2
            .put("/registry", b"m2".to_vec(), Some(seen.version))
            .await,
        Ok(1)
    );
    assert!(matches!(
        store1.put("/registry", b"stale".to_vec(), Some(0)).await,
        Err(StoreError::VersionMismatch { found: Some(1), .. })
    ));

    // No other leader shows up: after a short wait the detector hands the
    // current one back rather than waiting for a change that is not coming.
    let impatient = ZkDetector::new(c3, GROUP).with_timeout(Duration::from_millis(300));
    assert_eq!(
        impatient
            .detect(Some("127.0.0.1:5052"))
            .await
            .expect("leader"),
        "127.0.0.1:5052"
    );
}

#[tokio::test]
async fn a_leader_whose_session_expires_steps_down_at_once_and_leads_again() {
    let server = ZkServer::start();
    let (c1, observer) = (client(&server, GROUP).await, client(&server, GROUP).await);
    let mut rx = ZkElection::new(c1.clone(), GROUP)
        .contend(info("m1", 5051))
        .await;
    wait_for(&mut rx, LeadershipEvent::Elected, Duration::from_secs(5)).await;
    let (before, _) = folder(&observer).await;

    // Frozen past the session timeout: the leader must not wait for expiry
    // to stop leading.
    server.pause();
    let paused = tokio::time::Instant::now();
    wait_for(&mut rx, LeadershipEvent::NotLeader, SESSION).await;
    assert!(
        paused.elapsed() < SESSION,
        "stepped down before the session could expire"
    );
    tokio::time::sleep(SESSION * 2).await;
    server.resume();

    // A new session, a new node, and leadership again without a restart.
    wait_for(&mut rx, LeadershipEvent::Elected, Duration::from_secs(10)).await;
    assert!(
        c1.session().generation >= 1,
        "the expired session was replaced"
    );
    // The observer's session expired too: read once it has a new one.
    eventually("one node, a new one", Duration::from_secs(5), || async {
        let (after, lowest) = folder(&observer).await;
        after.len() == 1 && after != before && lowest.as_deref() == Some("m1")
    })
    .await;
    drop(server); // keep the server alive until here
}

#[tokio::test]
async fn a_zookeeper_restart_ends_with_exactly_one_leader() {
    let mut server = ZkServer::start();
    let clients = [client(&server, GROUP).await, client(&server, GROUP).await];
    let mut rx1 = ZkElection::new(clients[0].clone(), GROUP)
        .contend(info("m1", 5051))
        .await;
    wait_for(&mut rx1, LeadershipEvent::Elected, Duration::from_secs(5)).await;
    let rx2 = ZkElection::new(clients[1].clone(), GROUP)
        .contend(info("m2", 5052))
        .await;

    server.kill();
    wait_for(&mut rx1, LeadershipEvent::NotLeader, SESSION).await;
    tokio::time::sleep(SESSION * 2).await;
    server.restart();

    // Old sessions' nodes linger until the restarted server expires them;
    // then exactly one contender leads, the one owning the lowest node.
    let observer = client(&server, GROUP).await;
    eventually("one leader, two nodes", Duration::from_secs(15), || {
        let (rx1, rx2, observer) = (&rx1, &rx2, &observer);
        async move {
            let (children, lowest) = folder(observer).await;
            let leader = match (leads(rx1), leads(rx2)) {
                (true, false) => "m1",
                (false, true) => "m2",
                _ => return false,
            };
            children.len() == 2 && lowest.as_deref() == Some(leader)
        }
    })
    .await;
    // And it stays so.
    tokio::time::sleep(SESSION / 2).await;
    assert_ne!(leads(&rx1), leads(&rx2));
}
