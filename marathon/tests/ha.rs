//! Leadership in one process: elections that tests switch by hand or an
//! in-memory group with ZooKeeper's semantics, a shared store, and no master
//! (the core never needs one to store changes). What is checked: a standby
//! forwards and takes over; without a leader it answers 503 and it never
//! forwards a call twice; a leader that loses its election stops at once;
//! a deposed leader cannot write over its successor.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_common::shutdown::{self, ShutdownTrigger};
use agora_coord::{
    Detector, Election, LeadershipEvent, MemoryDetector, MemoryElection, MemoryGroup, MemoryStore,
    StaticDetector, Store, StoreError, Versioned,
};
use agora_marathon::{Coordination, MarathonConfig, MarathonHandle};
use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(20);

/// An election a test decides: every contender sees the switch's position.
/// With `once`, only the first contention can lead (later ones never do).
struct Switch {
    tx: watch::Sender<LeadershipEvent>,
    once: bool,
    contended: AtomicBool,
}

impl Switch {
    fn new(event: LeadershipEvent) -> Arc<Switch> {
        Arc::new(Switch {
            tx: watch::channel(event).0,
            once: false,
            contended: AtomicBool::new(false),
        })
    }

    fn once(event: LeadershipEvent) -> Arc<Switch> {
        Arc::new(Switch {
            tx: watch::channel(event).0,
            once: true,
            contended: AtomicBool::new(false),
        })
    }

    fn set(&self, event: LeadershipEvent) {
        self.tx.send_replace(event);
    }
}

#[async_trait]
impl Election for Switch {
    async fn contend(&self, _info: Vec<u8>) -> watch::Receiver<LeadershipEvent> {
        if self.once && self.contended.swap(true, Ordering::SeqCst) {
            let (tx, rx) = watch::channel(LeadershipEvent::NotLeader);
            std::mem::forget(tx);
            return rx;
        }
        self.tx.subscribe()
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn address(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

struct Node {
    trigger: ShutdownTrigger,
    handle: MarathonHandle,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Node {
    async fn start(
        port: u16,
        election: Arc<dyn Election>,
        leader: Arc<dyn Detector>,
        store: Arc<dyn Store>,
    ) -> Node {
        let config = MarathonConfig {
            http_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            hostname: "127.0.0.1".into(),
            // Nobody there: the scheduler keeps trying in the background.
            master: "127.0.0.1:1".into(),
            tick: Duration::from_millis(100),
            ..MarathonConfig::default()
        };
        let coordination = Coordination {
            election,
            leader,
            store,
            master: Arc::new(StaticDetector::new("127.0.0.1:1")),
        };
        let (trigger, stop) = shutdown::channel();
        let handle = agora_marathon::start(config, coordination, stop)
            .await
            .expect("marathon starts");
        Node {
            trigger,
            handle,
            http: reqwest::Client::new(),
        }
    }

    fn port(&self) -> u16 {
        self.handle.addr().port()
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.handle.addr()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("an answer");
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let text = answer.text().await.expect("a body");
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn wait_leading(&self) {
        tokio::time::timeout(WAIT, self.handle.wait_until_leading())
            .await
            .expect("leads");
    }

    /// The apps gauge of `/metrics` (never forwarded: this instance's own state).
    async fn own_apps(&self) -> Value {
        self.call("GET", "/metrics", None).await.body["gauges"]["marathon.apps.active.gauge"]
            ["value"]
            .clone()
    }

    async fn stop(self) {
        self.trigger.fire();
        tokio::time::timeout(WAIT, self.handle.join())
            .await
            .expect("stops");
    }
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn app(id: &str) -> Value {
    json!({"id": id, "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_forwards_to_the_leader_and_takes_over() {
    let group = MemoryGroup::new();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let node = |port| {
        let (group, store) = (group.clone(), store.clone());
        async move {
            Node::start(
                port,
                Arc::new(MemoryElection::new(group.clone())),
                Arc::new(MemoryDetector::new(group, Duration::from_secs(1))),
                store,
            )
            .await
        }
    };
    let leader = node(0).await;
    leader.wait_leading().await;
    let standby = node(0).await;
    let leader_address = address(leader.port());
    eventually("the standby to know the leader", async || {
        let named = standby.call("GET", "/v2/leader", None).await;
        (named.body["leader"] == leader_address.as_str()).then_some(())
    })
    .await;

    // Forwarded: the leader's info, naming the standby that forwarded it.
    let info = standby.call("GET", "/v2/info", None).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.body["elected"], true);
    assert_eq!(info.body["http_config"]["http_port"], leader.port());
    assert_eq!(
        info.header("x-marathon-via"),
        Some(address(standby.port()).as_str())
    );
    assert_eq!(
        info.header("x-marathon-leader"),
        Some(format!("http://{leader_address}").as_str())
    );
    let created = standby.call("POST", "/v2/apps", Some(app("/x"))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let apps = standby.call("GET", "/v2/apps", None).await;
    assert_eq!(apps.body["apps"][0]["id"], "/x");
    // A standby keeps no state of its own.
    assert_eq!(standby.own_apps().await, 0);
    assert_eq!(leader.own_apps().await, 1);

    // The leader stops: the standby leads with what the leader stored.
    leader.stop().await;
    standby.wait_leading().await;
    let apps = standby.call("GET", "/v2/apps", None).await;
    assert_eq!(apps.status, 200);
    assert_eq!(apps.header("x-marathon-via"), None, "answered by itself");
    assert_eq!(apps.body["apps"][0]["id"], "/x");
    assert_eq!(
        standby.call("GET", "/v2/leader", None).await.body["leader"],
        address(standby.port()).as_str()
    );
    standby.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_leader_a_standby_answers_503_and_it_never_forwards_twice() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // Nobody leads in this group.
    let empty = MemoryGroup::new();
    let alone = Node::start(
        0,
        Switch::new(LeadershipEvent::NotLeader),
        Arc::new(MemoryDetector::new(empty, Duration::from_millis(50))),
        store.clone(),
    )
    .await;
    let answer = alone.call("GET", "/v2/apps", None).await;
    assert_eq!(answer.status, 503);
    assert!(answer.body["message"].is_string(), "{}", answer.body);
    let answer = alone.call("POST", "/v2/apps", Some(app("/y"))).await;
    assert_eq!(answer.status, 503);
    assert_eq!(alone.call("GET", "/ping", None).await.status, 200);
    assert_eq!(alone.call("GET", "/v2/leader", None).await.status, 404);

    // Two standbys that each take the other for the leader (stale views
    // during a change of leader): a forwarded call is not forwarded again.
    let (p1, p2) = (free_port(), free_port());
    let one = Node::start(
        p1,
        Switch::new(LeadershipEvent::NotLeader),
        Arc::new(StaticDetector::new(address(p2))),
        store.clone(),
    )
    .await;
    let two = Node::start(
        p2,
        Switch::new(LeadershipEvent::NotLeader),
        Arc::new(StaticDetector::new(address(p1))),
        store.clone(),
    )
    .await;
    eventually("each to follow the other", async || {
        let named = one.call("GET", "/v2/leader", None).await;
        (named.body["leader"] == address(p2).as_str()).then_some(())
    })
    .await;
    eventually("each to follow the other", async || {
        let named = two.call("GET", "/v2/leader", None).await;
        (named.body["leader"] == address(p1).as_str()).then_some(())
    })
    .await;
    let answer = tokio::time::timeout(WAIT, one.call("GET", "/v2/apps", None))
        .await
        .expect("no forwarding loop");
    assert_eq!(answer.status, 503);
    assert!(answer.body["message"].is_string(), "{}", answer.body);
    assert_eq!(answer.header("x-marathon-via"), Some(address(p1).as_str()));

    // An instance that finds itself named (elected, not yet serving) does not call itself.
    let own = free_port();
    let itself = Node::start(
        own,
        Switch::new(LeadershipEvent::NotLeader),
        Arc::new(StaticDetector::new(address(own))),
        store,
    )
    .await;
    let answer = tokio::time::timeout(WAIT, itself.call("GET", "/v2/apps", None))
        .await
        .expect("no call to itself");
    assert_eq!(answer.status, 503);
    for node in [alone, one, two, itself] {
        node.stop().await;
    }
}

/// A store whose app writes wait until the gate opens.
struct GatedStore {
    inner: MemoryStore,
    open: watch::Sender<bool>,
    waiting: AtomicUsize,
}

#[async_trait]
impl Store for GatedStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        self.inner.get(key).await
    }

    async fn put(
        &self,
        key: &str,
        data: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        if key.contains("/apps/") {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let mut open = self.open.subscribe();
            let _ = open.wait_for(|o| *o).await;
        }
        self.inner.put(key, data, expected).await
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<(), StoreError> {
        self.inner.delete(key, expected).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_leadership_stops_the_core_at_once() {
    let store = Arc::new(GatedStore {
        inner: MemoryStore::new(),
        open: watch::channel(false).0,
        waiting: AtomicUsize::new(0),
    });
    let election = Switch::new(LeadershipEvent::Elected);
    let port = free_port();
    let node = Node::start(
        port,
        election.clone(),
        Arc::new(StaticDetector::new(address(port))),
        store.clone(),
    )
    .await;
    node.wait_leading().await;
    // A change whose write hangs in the store.
    let call = {
        let http = node.http.clone();
        let url = format!("http://{}/v2/apps", node.handle.addr());
        tokio::spawn(async move {
            http.post(url)
                .json(&app("/slow"))
                .send()
                .await
                .map(|a| a.status().as_u16())
        })
    };
    eventually("the write to wait in the store", async || {
        (store.waiting.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    // Leadership lost while the write waits: the core stops without it.
    election.set(LeadershipEvent::NotLeader);
    eventually("the instance to step down", async || {
        (!node.handle.is_leading()).then_some(())
    })
    .await;
    let status = tokio::time::timeout(WAIT, call)
        .await
        .expect("the call is answered")
        .expect("task")
        .expect("an answer");
    assert_eq!(status, 503, "the change was not made");
    store.open.send_replace(true);
    for _ in 0..10 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.get("/state/apps/slow").await.expect("get"),
        None,
        "nothing is written after leadership is lost"
    );
    // Nothing of the term is left in the state.
    assert_eq!(node.own_apps().await, 0);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_cannot_write_over_its_successor() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // The old leader is never told it lost: as if frozen through its session.
    let (p1, p2) = (free_port(), free_port());
    let old = Node::start(
        p1,
        Switch::once(LeadershipEvent::Elected),
        Arc::new(StaticDetector::new(address(p2))),
        store.clone(),
    )
    .await;
    old.wait_leading().await;
    let created = old.call("POST", "/v2/apps", Some(app("/a"))).await;
    assert_eq!(created.status, 201, "{}", created.body);

    let new = Node::start(
        p2,
        Switch::new(LeadershipEvent::Elected),
        Arc::new(StaticDetector::new(address(p2))),
        store.clone(),
    )
    .await;
    new.wait_leading().await;
    assert_eq!(new.own_apps().await, 1, "the new leader loaded the state");

    // The old leader's next write fails on the epoch: it stores nothing
    // and steps down.
    let stale = old.call("POST", "/v2/apps", Some(app("/stale"))).await;
    assert_eq!(stale.status, 503, "{}", stale.body);
    assert_eq!(store.get("/state/apps/stale").await.expect("get"), None);
    eventually("the old leader to step down", async || {
        (!old.handle.is_leading()).then_some(())
    })
    .await;
    // Standing by, it forwards to the new leader, whose writes go through.
    eventually("the old leader to follow the new one", async || {
        let named = old.call("GET", "/v2/leader", None).await;
        (named.body["leader"] == address(p2).as_str()).then_some(())
    })
    .await;
    let created = old.call("POST", "/v2/apps", Some(app("/b"))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(store.get("/state/apps/b").await.expect("get").is_some());
    let apps = new.call("GET", "/v2/apps", None).await;
    let ids: Vec<&str> = apps.body["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["/a", "/b"]);
    old.stop().await;
    new.stop().await;
}
