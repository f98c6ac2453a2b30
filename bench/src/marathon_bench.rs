//! The Marathon bench: a master (spawned, like `agora bench master` does),
//! emulated agents, and the bundled Marathon in this process on an
//! in-memory store, driven through its REST API as a client would:
//!
//! 1. **scale**: one app (1 instance) is scaled with
//!    `PUT /v2/apps/bench/scale {"instances": N}`;
//! 2. **group**: `POST /v2/groups` with M apps of one instance;
//! 3. **read**: after the two are deleted, A apps × T instances are deployed
//!    with one `POST /v2/groups`; then C clients (each its own connection)
//!    send `GET /v2/apps?embed=apps.tasks` one after the other for D
//!    seconds, and every answer is read whole;
//! 4. **failover**: Marathon is stopped and a new instance is started on
//!    the same store, and timed until it serves every app, knows every task
//!    running, shows the framework id it had, and the master counts the
//!    framework connected again.
//!
//! Deployments are timed from the moment their request was answered until
//! Marathon's own `/metrics` counts every instance TASK_RUNNING (and then no
//! deployment left), polled every 5 ms. The emulated agents report each
//! task running as soon as they get it, so the figures are Marathon's (and
//! the master's) part of a deployment alone.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_common::resources::Resources;
use agora_common::shutdown::{self, ShutdownTrigger};
use agora_coord::{LocalElection, MemoryStore, StaticDetector, Store};
use agora_marathon::{Coordination, MarathonConfig, MarathonHandle};
use anyhow::{anyhow, bail, Context};
use reqwest::Method;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::agents::{AgentCounters, AgentFleet};
use crate::args::MasterTarget;
use crate::marathon_args::{targets, MarathonBenchArgs};
use crate::marathon_report::{
    DeployFigures, LatencyMs, MarathonBenchReport, MarathonFailoverFigures, MarathonMemory,
    ReadFigures, SetupFigures, TeardownFigures,
};
use crate::metrics::MetricsClient;
use crate::report::rate;
use crate::target::{read_memory, RunningMaster};

/// How often Marathon's `/metrics` (or the failover's conditions) are polled.
const POLL: Duration = Duration::from_millis(5);
/// Requests made by the single client before the concurrent ones.
const SINGLE_CLIENT_REQUESTS: usize = 20;
/// How long a stopping Marathon is given.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The command of every app (never run: the agents are emulated).
const APP_CMD: &str = "sleep 3600";
/// The read request of phase 3.
const READ_PATH: &str = "/v2/apps?embed=apps.tasks";

/// Runs the Marathon bench described by `args` and reports its figures.
pub async fn run_marathon_bench(args: MarathonBenchArgs) -> anyhow::Result<MarathonBenchReport> {
    let resources = args.validate()?;
    let started = Instant::now();
    let master = RunningMaster::start(&args.master, args.timeout).await?;
    let metrics = MetricsClient::new(&master.addr)?;
    let mut bench = Bench {
        args,
        master,
        metrics,
        store: Arc::new(MemoryStore::new()),
        agents: None,
        marathon: None,
    };
    let result = bench.run(&resources, started).await;
    if let Some(marathon) = bench.marathon.take() {
        marathon.stop().await;
    }
    if let Some(agents) = bench.agents.take() {
        agents.stop().await;
    }
    bench.master.stop().await;
    result
}

/// Marathon's `/metrics` gauges the bench waits on.
#[derive(Debug, Clone, Copy, Default)]
struct Gauges {
    apps: u64,
    running: u64,
    /// Every instance not running (staging, killing, decommissioned...).
    other: u64,
    deployments: u64,
}

/// A client of one Marathon's API.
#[derive(Debug, Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(addr: &str) -> anyhow::Result<Self> {
        Ok(Api {
            http: client()?,
            base: format!("http://{addr}"),
        })
    }

    /// Sends a request; returns the status and the body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, String)> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {path}: reading the answer"))?;
        Ok((status, text))
    }

    /// Sends a request that must succeed (2xx).
    async fn expect(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<()> {
        let (status, text) = self.send(method.clone(), path, body).await?;
        if !(200..300).contains(&status) {
            let text: String = text.chars().take(500).collect();
            bail!("{method} {path}: {status} {text}");
        }
        Ok(())
    }

    async fn gauges(&self) -> anyhow::Result<Gauges> {
        let (status, text) = self.send(Method::GET, "/metrics", None).await?;
        if status != 200 {
            bail!("GET /metrics: {status}");
        }
        let v: Value = serde_json::from_str(&text).context("GET /metrics: not JSON")?;
        let gauge = |name: &str| {
            v["gauges"][format!("marathon.{name}.gauge")]["value"]
                .as_u64()
                .unwrap_or(0)
        };
        Ok(Gauges {
            apps: gauge("apps.active"),
            running: gauge("instances.running"),
            other: gauge("instances.staged"),
            deployments: gauge("deployments.active"),
        })
    }

    /// The framework id `/v2/info` shows, if any.
    async fn framework_id(&self) -> anyhow::Result<Option<String>> {
        let (status, text) = self.send(Method::GET, "/v2/info", None).await?;
        if status != 200 {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&text).context("GET /v2/info: not JSON")?;
        Ok(v["frameworkId"].as_str().map(str::to_string))
    }

    /// How many apps `GET /v2/apps` lists, if it answers 200.
    async fn app_count(&self) -> anyhow::Result<Option<usize>> {
        #[derive(Deserialize)]
        struct Apps {
            apps: Vec<IgnoredAny>,
        }
        let (status, text) = self.send(Method::GET, "/v2/apps", None).await?;
        if status != 200 {
            return Ok(None);
        }
        let apps: Apps = serde_json::from_str(&text).context("GET /v2/apps: not the apps")?;
        Ok(Some(apps.apps.len()))
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")
}

/// Marathon running in this process.
struct RunningMarathon {
    trigger: ShutdownTrigger,
    handle: MarathonHandle,
    api: Api,
}

impl RunningMarathon {
    /// Starts Marathon (its defaults, API on a free loopback port) on `store`,
    /// with a local election, against the master at `master`.
    async fn start(master: &str, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let config = MarathonConfig {
            http_addr: "127.0.0.1:0".parse().context("loopback address")?,
            hostname: "127.0.0.1".into(),
            master: master.to_string(),
            ..MarathonConfig::default()
        };
        let coordination = Coordination {
            election: Arc::new(LocalElection),
            leader: Arc::new(StaticDetector::new("127.0.0.1:0")),
            store,
            master: Arc::new(StaticDetector::new(master.to_string())),
        };
        let (trigger, stop) = shutdown::channel();
        let handle = agora_marathon::start(config, coordination, stop)
            .await
            .context("starting Marathon")?;
        let api = Api::new(&handle.addr().to_string())?;
        Ok(RunningMarathon {
            trigger,
            handle,
            api,
        })
    }

    async fn stop(self) {
        self.trigger.fire();
        if tokio::time::timeout(STOP_GRACE, self.handle.join())
            .await
            .is_err()
        {
            tracing::warn!("Marathon did not stop within {STOP_GRACE:?}");
        }
    }
}

/// An app definition of the bench.
fn app(id: &str, instances: usize, cpus: f64, mem: f64) -> Value {
    json!({"id": id, "cmd": APP_CMD, "cpus": cpus, "mem": mem, "instances": instances})
}

/// The state of one run.
struct Bench {
    args: MarathonBenchArgs,
    master: RunningMaster,
    metrics: MetricsClient,
    store: Arc<dyn Store>,
    agents: Option<AgentFleet>,
    marathon: Option<RunningMarathon>,
}

impl Bench {
    async fn run(
        &mut self,
        resources: &Resources,
        started: Instant,
    ) -> anyhow::Result<MarathonBenchReport> {
        let n = self.args.agents;
        let timeout = self.args.timeout;

        // Setup: agents, then Marathon.
        let t0 = Instant::now();
        let detector = Arc::new(StaticDetector::new(self.master.addr.clone()));
        let fleet = AgentFleet::start(
            detector,
            n,
            self.args.connections(),
            resources,
            false,
            timeout,
        )
        .await
        .context("phase 'agents'")?;
        self.agents = Some(fleet);
        self.metrics
            .wait_for("agents", "master/slaves_active", n as f64, timeout)
            .await?;
        let agents_seconds = t0.elapsed().as_secs_f64();
        let before_marathon = read_memory("self");

        let t1 = Instant::now();
        let marathon = RunningMarathon::start(&self.master.addr, self.store.clone()).await?;
        self.marathon = Some(marathon);
        let api = self.api()?.clone();
        let metrics = self.metrics.clone();
        self.wait("marathon", "Marathon leading and subscribed", move || {
            let (api, metrics) = (api.clone(), metrics.clone());
            async move {
                let connected = metrics
                    .snapshot()
                    .await?
                    .get("master/frameworks_connected")
                    .copied()
                    .unwrap_or(0.0);
                Ok((api.framework_id().await?.is_some() && connected >= 1.0).then_some(()))
            }
        })
        .await?;
        let setup = SetupFigures {
            agents_seconds,
            marathon_seconds: t1.elapsed().as_secs_f64(),
        };

        // Phase 1: one app scaled to N instances.
        let (cpus, mem) = (self.args.task_cpus, self.args.task_mem);
        let n_scale = self.args.instances;
        self.api()?
            .expect(
                Method::POST,
                "/v2/apps",
                Some(&app("/bench/scale", 1, cpus, mem)),
            )
            .await
            .context("phase 'scale': creating the app")?;
        self.wait_gauges("scale", "the app's first instance", |g| {
            g.running >= 1 && g.deployments == 0
        })
        .await?;
        let scale = self
            .deploy(
                "scale",
                Method::PUT,
                "/v2/apps/bench/scale",
                &json!({"instances": n_scale}),
                format!("PUT /v2/apps/bench/scale {{\"instances\": {n_scale}}}"),
                (1, n_scale - 1),
                n_scale as u64,
                Some(targets::SCALE),
            )
            .await?;
        let after_scale = read_memory("self");

        // Phase 2: many apps in one POST /v2/groups.
        let m = self.args.group_apps;
        let apps: Vec<Value> = (0..m)
            .map(|i| app(&format!("/bench/group/app-{i:05}"), 1, cpus, mem))
            .collect();
        let group = self
            .deploy(
                "group",
                Method::POST,
                "/v2/groups",
                &json!({"id": "/bench/group", "apps": apps}),
                format!("POST /v2/groups ({m} apps × 1 instance)"),
                (m, m),
                (n_scale + m) as u64,
                Some(targets::GROUP),
            )
            .await?;
        let after_group = read_memory("self");

        // Removing both.
        self.api()?
            .expect(Method::DELETE, "/v2/groups/bench?force=true", None)
            .await
            .context("phase 'teardown'")?;
        let t2 = Instant::now();
        let done = self
            .wait_gauges("teardown", "every instance gone", |g| {
                g.running == 0 && g.other == 0 && g.deployments == 0 && g.apps == 0
            })
            .await?;
        let teardown = TeardownFigures {
            instances: n_scale + m,
            seconds: (done - t2).as_secs_f64(),
        };

        // Phase 3: A apps × T instances, read by C clients.
        let (a, t) = (self.args.apps, self.args.tasks_per_app);
        let apps: Vec<Value> = (0..a)
            .map(|i| app(&format!("/bench/read/app-{i:05}"), t, cpus, mem))
            .collect();
        let read_setup = self
            .deploy(
                "read setup",
                Method::POST,
                "/v2/groups",
                &json!({"id": "/bench/read", "apps": apps}),
                format!("POST /v2/groups ({a} apps × {t} instances)"),
                (a, a * t),
                (a * t) as u64,
                None,
            )
            .await?;
        let after_read_setup = read_memory("self");
        let read = self.read_load(a, t).await?;
        let after_read = read_memory("self");

        // Phase 4: failover.
        let failover = self.failover(a, a * t).await?;
        let after_failover = read_memory("self");

        Ok(MarathonBenchReport {
            agents: n,
            agent_resources: self.args.agent_resources.clone(),
            task_cpus: cpus,
            task_mem: mem,
            master: match &self.args.master {
                MasterTarget::Spawn { .. } => "spawned".into(),
                MasterTarget::InProcess => "in-process".into(),
                MasterTarget::Address(a) => format!("address {a}"),
            },
            marathon: "in-process, in-memory store, local election".into(),
            setup,
            scale,
            group,
            teardown,
            read_setup,
            read,
            failover,
            memory: MarathonMemory {
                scope: "the bench process: Marathon, the emulated agents and the HTTP clients"
                    .into(),
                before_marathon,
                after_scale,
                after_group,
                after_read_setup,
                after_read,
                after_failover,
            },
            total_seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn api(&self) -> anyhow::Result<&Api> {
        self.marathon
            .as_ref()
            .map(|m| &m.api)
            .ok_or_else(|| anyhow!("Marathon is not running"))
    }

    /// Fails if an agent stream failed or the master exited.
    fn check(&mut self) -> anyhow::Result<()> {
        if let Some(agents) = &self.agents {
            agents.counters.check()?;
        }
        self.master.check_alive()
    }

    fn run_tasks(&self) -> u64 {
        self.agents
            .as_ref()
            .map_or(0, |a| AgentCounters::get(&a.counters.run_tasks))
    }

    /// Polls `probe` every [`POLL`] until it yields a value; fails after
    /// the phase timeout naming `phase` and `what`.
    async fn wait<T, F, Fut>(&mut self, phase: &str, what: &str, mut probe: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        let timeout = self.args.timeout;
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match probe().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => last_error = Some(e),
            }
            self.check().with_context(|| format!("phase '{phase}'"))?;
            if Instant::now() >= deadline {
                let why = last_error.map(|e| format!(" (latest error: {e:#})"));
                bail!(
                    "phase '{phase}' timed out after {timeout:?} waiting for {what}{}",
                    why.unwrap_or_default()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until Marathon's gauges satisfy `done`; returns when they were seen to.
    async fn wait_gauges(
        &mut self,
        phase: &str,
        what: &str,
        done: impl Fn(&Gauges) -> bool,
    ) -> anyhow::Result<Instant> {
        let api = self.api()?.clone();
        let last = Cell::new(Gauges::default());
        let result = self
            .wait(phase, what, || {
                let (api, last, done) = (api.clone(), &last, &done);
                async move {
                    let g = api.gauges().await?;
                    last.set(g);
                    Ok(done(&g).then(Instant::now))
                }
            })
            .await;
        result.with_context(|| format!("Marathon's gauges: {:?}", last.get()))
    }

    /// Sends a deployment request and times it until `running_total`
    /// instances run and no deployment is left.
    #[allow(clippy::too_many_arguments)]
    async fn deploy(
        &mut self,
        phase: &str,
        method: Method,
        path: &str,
        body: &Value,
        request: String,
        (apps, instances): (usize, usize),
        running_total: u64,
        target: Option<Duration>,
    ) -> anyhow::Result<DeployFigures> {
        let run_tasks_before = self.run_tasks();
        let api = self.api()?.clone();
        let sent = Instant::now();
        api.expect(method, path, Some(body))
            .await
            .with_context(|| format!("phase '{phase}'"))?;
        let answered = Instant::now();
        let running = self
            .wait_gauges(phase, "every instance running", |g| {
                g.running >= running_total
            })
            .await?;
        let finished = self
            .wait_gauges(phase, "the deployment finished", |g| g.deployments == 0)
            .await?;
        let running_seconds = (running - answered).as_secs_f64();
        Ok(DeployFigures {
            request,
            apps,
            instances,
            running: running_total,
            request_ms: (answered - sent).as_secs_f64() * 1000.0,
            running_seconds,
            deployment_seconds: (finished - answered).as_secs_f64(),
            instances_per_sec: rate(instances as f64, running_seconds),
            run_tasks_at_agents: self.run_tasks() - run_tasks_before,
            target_seconds: target.map(|t| t.as_secs_f64()),
            met: target.map(|t| running_seconds < t.as_secs_f64()),
        })
    }

    /// Phase 3: one client, then `clients` concurrent ones, reading every app with its tasks.
    async fn read_load(
        &mut self,
        apps: usize,
        tasks_per_app: usize,
    ) -> anyhow::Result<ReadFigures> {
        let url = format!("{}{READ_PATH}", self.api()?.base);
        // One answer checked whole: every app, every task.
        let (status, text) = self.api()?.send(Method::GET, READ_PATH, None).await?;
        if status != 200 {
            bail!("phase 'read': GET {READ_PATH}: {status}");
        }
        let body: Value = serde_json::from_str(&text).context("phase 'read': not JSON")?;
        let listed = body["apps"].as_array().map_or(0, Vec::len);
        let tasks: usize = body["apps"]
            .as_array()
            .map(|apps| {
                apps.iter()
                    .map(|a| a["tasks"].as_array().map_or(0, Vec::len))
                    .sum()
            })
            .unwrap_or(0);
        if listed != apps || tasks != apps * tasks_per_app {
            bail!(
                "phase 'read': GET {READ_PATH} listed {listed} apps and {tasks} tasks, expected {apps} and {}",
                apps * tasks_per_app
            );
        }
        let body_bytes = text.len();
        drop((body, text));

        // One client, one request at a time.
        let gzip = self.args.gzip;
        let single = reader(url.clone(), None, SINGLE_CLIENT_REQUESTS, gzip).await?;
        let mut single_samples = single.latencies;

        // C clients for the duration.
        let clients = self.args.clients;
        let until = Instant::now() + self.args.duration;
        let started = Instant::now();
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..clients {
            readers.spawn(reader(url.clone(), Some(until), usize::MAX, gzip));
        }
        let mut samples = Vec::new();
        let mut errors = 0;
        let mut bytes = 0u64;
        while let Some(joined) = readers.join_next().await {
            let r = joined.context("phase 'read': a client panicked")??;
            samples.extend(r.latencies);
            errors += r.errors;
            bytes += r.bytes;
        }
        let seconds = started.elapsed().as_secs_f64();
        self.check().context("phase 'read'")?;
        let latency = LatencyMs::of(&mut samples);
        let target = targets::READ_P99.as_secs_f64() * 1000.0;
        Ok(ReadFigures {
            request: format!("GET {READ_PATH}"),
            apps,
            tasks,
            body_bytes,
            gzip,
            single_client: LatencyMs::of(&mut single_samples),
            clients,
            seconds,
            errors,
            requests_per_sec: rate(latency.count as f64, seconds),
            mib_per_sec: rate(bytes as f64 / (1024.0 * 1024.0), seconds),
            met: latency.count > 0 && latency.p99 < target,
            latency,
            target_p99_ms: target,
        })
    }

    /// Phase 4: stop Marathon, start a new one on the same store, time it back.
    async fn failover(
        &mut self,
        apps: usize,
        instances: usize,
    ) -> anyhow::Result<MarathonFailoverFigures> {
        let framework_id = self
            .api()?
            .framework_id()
            .await?
            .ok_or_else(|| anyhow!("phase 'failover': no framework id before the failover"))?;
        let old = self
            .marathon
            .take()
            .ok_or_else(|| anyhow!("Marathon is not running"))?;
        let stopping = Instant::now();
        old.stop().await;
        let stop_seconds = stopping.elapsed().as_secs_f64();
        // The master must have seen the framework go before it can come back.
        let metrics = self.metrics.clone();
        let m = &metrics;
        self.wait(
            "failover",
            "the master to see Marathon gone",
            move || async move {
                let metrics = m;
                let s = metrics.snapshot().await?;
                let connected = s.get("master/frameworks_connected").copied().unwrap_or(0.0);
                Ok((connected < 1.0).then_some(()))
            },
        )
        .await?;

        let t0 = Instant::now();
        let marathon = RunningMarathon::start(&self.master.addr, self.store.clone()).await?;
        let api = marathon.api.clone();
        let since = || Some(t0.elapsed().as_secs_f64());
        let leading = Cell::new(None);
        let served = Cell::new(None);
        let known = Cell::new(None);
        let same_id = Cell::new(None);
        let resubscribed = Cell::new(None);
        let handle = &marathon.handle;
        let result = self
            .wait("failover", "the new Marathon serving everything", || {
                let (api, metrics, framework_id) =
                    (api.clone(), metrics.clone(), framework_id.clone());
                let (leading, served, known, same_id, resubscribed) =
                    (&leading, &served, &known, &same_id, &resubscribed);
                async move {
                    if leading.get().is_none() && handle.is_leading() {
                        leading.set(since());
                    }
                    if leading.get().is_none() {
                        return Ok(None);
                    }
                    if served.get().is_none() && api.app_count().await? == Some(apps) {
                        served.set(since());
                    }
                    if known.get().is_none() && api.gauges().await?.running >= instances as u64 {
                        known.set(since());
                    }
                    if same_id.get().is_none()
                        && api.framework_id().await?.as_deref() == Some(framework_id.as_str())
                    {
                        same_id.set(since());
                    }
                    if resubscribed.get().is_none() {
                        let s = metrics.snapshot().await?;
                        if s.get("master/frameworks_connected").copied().unwrap_or(0.0) >= 1.0 {
                            resubscribed.set(since());
                        }
                    }
                    Ok(
                        match (served.get(), known.get(), same_id.get(), resubscribed.get()) {
                            (Some(a), Some(b), Some(c), Some(d)) => Some(a.max(b).max(c).max(d)),
                            _ => None,
                        },
                    )
                }
            })
            .await;
        self.marathon = Some(marathon);
        let serving = result?;
        let get = |v: Option<f64>| v.unwrap_or(serving);
        Ok(MarathonFailoverFigures {
            apps,
            instances,
            stop_seconds,
            leading_seconds: get(leading.get()),
            apps_served_seconds: get(served.get()),
            tasks_known_seconds: get(known.get()),
            framework_id_seconds: get(same_id.get()),
            resubscribed_seconds: get(resubscribed.get()),
            serving_seconds: serving,
            target_seconds: targets::FAILOVER.as_secs_f64(),
            met: serving < targets::FAILOVER.as_secs_f64(),
        })
    }
}

/// What one reading client saw.
struct Read {
    latencies: Vec<Duration>,
    errors: u64,
    bytes: u64,
}

/// One client with its own connection: GETs `url` one after the other,
/// reading every answer whole, until `until` or `count` requests.
async fn reader(
    url: String,
    until: Option<Instant>,
    count: usize,
    gzip: bool,
) -> anyhow::Result<Read> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .gzip(gzip)
        .build()
        .context("building the HTTP client")?;
    let mut read = Read {
        latencies: Vec::new(),
        errors: 0,
        bytes: 0,
    };
    for _ in 0..count {
        if until.is_some_and(|u| Instant::now() >= u) {
            break;
        }
        let sent = Instant::now();
        match whole_answer(&http, &url).await {
            Some(size) => {
                read.latencies.push(sent.elapsed());
                read.bytes += size;
            }
            None => read.errors += 1,
        }
    }
    Ok(read)
}

/// GETs `url` and reads the answer to its end; its size if it was a 200.
async fn whole_answer(http: &reqwest::Client, url: &str) -> Option<u64> {
    let mut response = http.get(url).send().await.ok()?;
    let ok = response.status().is_success();
    let mut size = 0;
    while let Some(chunk) = response.chunk().await.ok()? {
        size += chunk.len() as u64;
    }
    ok.then_some(size)
}
