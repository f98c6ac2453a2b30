//! Tests of offer matching: instances per offer, roles, ports, constraints.

use super::*;
use crate::model::AppDefaults;
use agora_common::resources::{self as res, Resources};
use agora_proto::resource::AllocationInfo;
use agora_proto::value::Text;
use agora_proto::{AgentId, Attribute};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn app(json: serde_json::Value) -> Arc<AppDefinition> {
    let mut app: AppDefinition = serde_json::from_value(json).expect("app");
    app.normalize(&AppDefaults::default());
    Arc::new(app)
}

fn queued(app: &Arc<AppDefinition>, count: u32) -> QueuedApp {
    QueuedApp {
        app: app.clone(),
        count,
    }
}

/// An offer of `resources` (Mesos flag syntax) allocated to `*`.
fn offer(host: &str, resources: &str) -> Offer {
    offer_for(host, resources, "*")
}

fn offer_for(host: &str, resources: &str, role: &str) -> Offer {
    Offer {
        agent_id: Some(AgentId {
            value: format!("agent-{host}"),
        }),
        hostname: host.into(),
        allocation_info: Some(AllocationInfo {
            role: Some(role.into()),
        }),
        resources: Resources::parse(resources).unwrap().allocated_to(role),
        attributes: vec![Attribute {
            name: "rack".into(),
            r#type: value::Type::Text as i32,
            text: Some(Text {
                value: format!("rack-{host}"),
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The offer of an agent that runs Docker besides the Mesos containerizer.
fn with_docker(mut offer: Offer) -> Offer {
    offer.containerizers = vec![
        container_info::Type::Mesos as i32,
        container_info::Type::Docker as i32,
    ];
    offer
}

fn run(offer: &Offer, queue: &[QueuedApp]) -> OfferMatch {
    run_with(offer, queue, &BTreeMap::new(), &MatchConfig::default())
}

fn run_with(
    offer: &Offer,
    queue: &[QueuedApp],
    placements: &BTreeMap<PathId, Vec<Placement>>,
    config: &MatchConfig,
) -> OfferMatch {
    match_offer_with(
        offer,
        queue,
        placements,
        config,
        &mut StdRng::seed_from_u64(3),
    )
}

/// What the master checks: the tasks' resources are contained in the offer.
fn assert_contained(offer: &Offer, m: &OfferMatch) {
    let mut used = Resources::new();
    for l in &m.launches {
        used.add(&Resources::from_vec(l.task.resources.clone()));
    }
    let offered = Resources::from_vec(offer.resources.clone());
    assert!(offered.contains(&used), "{used} not in {offered}");
}

fn sleeper(id: &str) -> Arc<AppDefinition> {
    app(serde_json::json!({"id": id, "cmd": "sleep 1000", "cpus": 1, "mem": 128}))
}

#[test]
fn places_several_instances_per_offer() {
    let a = sleeper("/a");
    let o = offer("h1", "cpus:3.5;mem:1024;ports:[31000-31009]");
    let m = run(&o, &[queued(&a, 5)]);
    assert_eq!(m.launches.len(), 3);
    assert!(m.unmatched.is_empty(), "a got something: not unmatched");
    assert_contained(&o, &m);
    let ports: std::collections::BTreeSet<u32> = m
        .launches
        .iter()
        .flat_map(|l| l.host_ports.clone())
        .collect();
    assert_eq!(ports.len(), 3, "no host port twice");
    let l = &m.launches[0];
    assert_eq!(l.app_id, PathId::parse("/a"));
    assert_eq!((l.agent_id.as_str(), l.host.as_str()), ("agent-h1", "h1"));
    assert_eq!(
        l.attributes,
        vec![("rack".to_string(), "rack-h1".to_string())]
    );
    assert_eq!(
        l.task.task_id.as_ref().unwrap().value,
        Instance::task_id_for(&l.instance_id)
    );
    let used = Resources::from_vec(l.task.resources.clone());
    assert_eq!((used.scalar("cpus"), used.scalar("mem")), (1.0, 128.0));
    assert_eq!(used.ranges("ports").len(), 1);
}

#[test]
fn the_queue_is_served_in_order() {
    let a = sleeper("/a");
    let b = sleeper("/b");
    let c = sleeper("/c");
    let o = offer("h1", "cpus:3;mem:1024;ports:[31000-31009]");
    let m = run(&o, &[queued(&a, 2), queued(&b, 0), queued(&c, 2)]);
    let ids: Vec<String> = m.launches.iter().map(|l| l.app_id.to_string()).collect();
    assert_eq!(ids, ["/a", "/a", "/c"]);
    assert!(m.unmatched.is_empty());
    let m = run(&o, &[queued(&a, 3), queued(&c, 1)]);
    assert_eq!(m.launches.len(), 3);
    assert_eq!(
        m.unmatched,
        vec![(PathId::parse("/c"), vec![NoMatchReason::InsufficientCpus])]
    );
    assert_eq!(m.tasks().len(), 3);
}

#[test]
fn stops_at_max_instances_per_offer() {
    let a = app(serde_json::json!({"id": "/a", "cmd": "x", "cpus": 0.1, "mem": 1}));
    let b = app(serde_json::json!({"id": "/b", "cmd": "x", "cpus": 0.1, "mem": 1}));
    let o = offer("h1", "cpus:10;mem:1024;ports:[31000-31100]");
    let config = MatchConfig {
        max_instances_per_offer: 4,
        ..Default::default()
    };
    let m = run_with(
        &o,
        &[queued(&a, 3), queued(&b, 3)],
        &BTreeMap::new(),
        &config,
    );
    assert_eq!(m.launches.len(), 4);
    assert_eq!(m.launches[3].app_id, PathId::parse("/b"));
    assert!(m.unmatched.is_empty());
    assert_contained(&o, &m);
}

#[test]
fn unique_hostname_places_one_per_agent() {
    let a = app(
        serde_json::json!({"id": "/a", "cmd": "x", "cpus": 0.1, "mem": 1,
        "constraints": [["hostname", "UNIQUE"]]}),
    );
    let o1 = offer("h1", "cpus:4;mem:1024;ports:[31000-31100]");
    let m = run(&o1, &[queued(&a, 3)]);
    assert_eq!(m.launches.len(), 1);
    // Already running on h1: nothing more there, one on h2.
    let mut placements = BTreeMap::new();
    placements.insert(
        a.id.clone(),
        vec![Placement {
            agent_id: m.launches[0].agent_id.clone(),
            host: m.launches[0].host.clone(),
            attributes: m.launches[0].attributes.clone(),
        }],
    );
    let m = run_with(&o1, &[queued(&a, 2)], &placements, &MatchConfig::default());
    assert!(m.launches.is_empty());
    assert_eq!(
        m.unmatched,
        vec![(a.id.clone(), vec![NoMatchReason::UnfulfilledConstraint])]
    );
    let o2 = offer("h2", "cpus:4;mem:1024;ports:[31000-31100]");
    let m = run_with(&o2, &[queued(&a, 2)], &placements, &MatchConfig::default());
    assert_eq!(m.launches.len(), 1);
    assert_eq!(m.launches[0].host, "h2");
}

#[test]
fn max_per_counts_instances_placed_in_the_same_offer() {
    let a = app(
        serde_json::json!({"id": "/a", "cmd": "x", "cpus": 0.1, "mem": 1,
        "constraints": [["rack", "MAX_PER", "2"]]}),
    );
    let o = offer("h1", "cpus:4;mem:1024;ports:[31000-31100]");
    let m = run(&o, &[queued(&a, 5)]);
    assert_eq!(m.launches.len(), 2);
}

#[test]
fn require_ports_takes_the_declared_ports_or_fails() {
    let a = app(
        serde_json::json!({"id": "/a", "cmd": "x", "cpus": 0.1, "mem": 1,
        "requirePorts": true, "portDefinitions": [{"port": 31005}, {"port": 31007}]}),
    );
    let o = offer("h1", "cpus:4;mem:1024;ports:[31000-31010]");
    let m = run(&o, &[queued(&a, 2)]);
    assert_eq!(
        m.launches.len(),
        1,
        "the second instance finds its ports taken"
    );
    assert_eq!(m.launches[0].host_ports, vec![31005, 31007]);
    let used = Resources::from_vec(m.launches[0].task.resources.clone());
    assert_eq!(
        res::format_ranges(&used.ranges("ports")),
        "[31005-31005, 31007-31007]"
    );
    let env = &m.launches[0].task.command.as_ref().unwrap().environment;
    assert!(env
        .as_ref()
        .unwrap()
        .variables
        .iter()
        .any(|v| v.name == "PORT_31005" && v.value.as_deref() == Some("31005")));

    let o = offer("h1", "cpus:4;mem:1024;ports:[32000-32010]");
    let m = run(&o, &[queued(&a, 1)]);
    assert!(m.launches.is_empty());
    assert_eq!(
        m.unmatched,
        vec![(a.id.clone(), vec![NoMatchReason::InsufficientPorts])]
    );
}

#[test]
fn container_ports_fixed_dynamic_and_none() {
    let a = app(serde_json::json!({"id": "/web", "cpus": 0.1, "mem": 1,
        "networks": [{"mode": "container/bridge"}],
        "container": {"type": "DOCKER", "docker": {"image": "nginx"}, "portMappings": [
            {"containerPort": 80, "hostPort": 0}, {"containerPort": 81, "hostPort": 31004},
            {"containerPort": 82}]}}));
    let o = with_docker(offer("h1", "cpus:4;mem:1024;ports:[31000-31004]"));
    let m = run(&o, &[queued(&a, 3)]);
    assert_eq!(m.launches.len(), 1);
    let ports = &m.launches[0].host_ports;
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[1], 31004);
    assert!((31000..31004).contains(&ports[0]));
    assert_contained(&o, &m);
}

#[test]
fn docker_apps_go_only_to_agents_running_docker() {
    let docker = app(
        serde_json::json!({"id": "/d", "cmd": "x", "cpus": 0.1, "mem": 1,
        "container": {"type": "DOCKER", "docker": {"image": "busybox"}}}),
    );
    let plain = app(serde_json::json!({"id": "/p", "cmd": "x", "cpus": 0.1, "mem": 1}));
    let without = offer("h1", "cpus:4;mem:1024;ports:[31000-31004]");
    let m = run(&without, &[queued(&docker, 1), queued(&plain, 1)]);
    assert_eq!(m.launches.len(), 1, "only the plain app fits");
    assert_eq!(
        m.unmatched,
        vec![(
            docker.id.clone(),
            vec![NoMatchReason::UnsupportedContainerizer]
        )]
    );
    assert_eq!(
        NoMatchReason::UnsupportedContainerizer.as_str(),
        "UnsupportedContainerizer"
    );
    let m = run(&with_docker(without.clone()), &[queued(&docker, 1)]);
    assert_eq!(m.launches.len(), 1);
    // An agent running Docker alone takes no host command.
    let mut docker_only = without;
    docker_only.containerizers = vec![container_info::Type::Docker as i32];
    let m = run(&docker_only, &[queued(&plain, 1)]);
    assert_eq!(
        m.unmatched,
        vec![(
            plain.id.clone(),
            vec![NoMatchReason::UnsupportedContainerizer]
        )]
    );
}

#[test]
fn apps_without_host_ports_need_no_port_resource() {
    let a = app(
        serde_json::json!({"id": "/a", "cmd": "x", "cpus": 1, "mem": 1,
        "portDefinitions": []}),
    );
    let o = offer("h1", "cpus:2;mem:1024");
    assert_eq!(run(&o, &[queued(&a, 5)]).launches.len(), 2);
}

#[test]
fn reports_every_shortage() {
    let a = app(
        serde_json::json!({"id": "/a", "cmd": "x", "cpus": 8, "mem": 4096,
        "disk": 100, "gpus": 1}),
    );
    let o = offer("h1", "cpus:4;mem:1024;disk:10");
    let m = run(&o, &[queued(&a, 1)]);
    assert_eq!(
        m.unmatched,
        vec![(
            a.id.clone(),
            vec![
                NoMatchReason::InsufficientCpus,
                NoMatchReason::InsufficientMemory,
                NoMatchReason::InsufficientDisk,
                NoMatchReason::InsufficientGpus,
                NoMatchReason::InsufficientPorts,
            ]
        )]
    );
    let names: Vec<&str> = m.unmatched[0].1.iter().map(|r| r.as_str()).collect();
    assert_eq!(names[0], "InsufficientCpus");
    assert_eq!(
        serde_json::to_value(NoMatchReason::UnfulfilledRole).unwrap(),
        "UnfulfilledRole"
    );
}

#[test]
fn gpu_agents_are_kept_for_gpu_apps() {
    let plain = sleeper("/plain");
    let gpu = app(serde_json::json!({"id": "/gpu", "cmd": "x", "cpus": 1, "mem": 1, "gpus": 1}));
    let o = offer("h1", "cpus:4;mem:1024;gpus:2;ports:[31000-31010]");
    let m = run(&o, &[queued(&plain, 1), queued(&gpu, 1)]);
    assert_eq!(m.launches.len(), 1);
    assert_eq!(m.launches[0].app_id, gpu.id);
    let used = Resources::from_vec(m.launches[0].task.resources.clone());
    assert_eq!(used.scalar("gpus"), 1.0);
    assert_eq!(
        m.unmatched,
        vec![(
            plain.id.clone(),
            vec![NoMatchReason::DeclinedScarceResources]
        )]
    );
    let config = MatchConfig {
        restrict_gpu_agents: false,
        ..Default::default()
    };
    let m = run_with(&o, &[queued(&plain, 1)], &BTreeMap::new(), &config);
    assert_eq!(m.launches.len(), 1);
}

#[test]
fn reserved_resources_go_only_to_their_role() {
    // 2 cpus reserved for "ops", 1 unreserved, all offered to role "ops".
    let o = offer_for(
        "h1",
        "cpus(ops):2;cpus:1;mem:1024;ports:[31000-31010]",
        "ops",
    );
    let ops = app(
        serde_json::json!({"id": "/ops", "cmd": "x", "cpus": 1, "mem": 1,
        "role": "ops"}),
    );
    let m = run(&o, &[queued(&ops, 5)]);
    assert_eq!(m.launches.len(), 3);
    assert_contained(&o, &m);
    // Reserved first: the first two instances run on the reservation.
    for l in &m.launches[..2] {
        let cpus = l.task.resources.iter().find(|r| r.name == "cpus").unwrap();
        assert_eq!(reservation_role(cpus), "ops");
    }
    let cpus = m.launches[2]
        .task
        .resources
        .iter()
        .find(|r| r.name == "cpus")
        .unwrap();
    assert_eq!(reservation_role(cpus), "*");

    // acceptedResourceRoles ["*"]: the reservation is ignored.
    let star = app(
        serde_json::json!({"id": "/star", "cmd": "x", "cpus": 1, "mem": 1,
        "role": "ops", "acceptedResourceRoles": ["*"]}),
    );
    let m = run(&o, &[queued(&star, 5)]);
    assert_eq!(m.launches.len(), 1);
    for r in &m.launches[0].task.resources {
        assert_eq!(reservation_role(r), "*");
    }

    // Only the reservation is acceptable: three cpus' worth of mem but two cpus.
    let reserved_only = app(
        serde_json::json!({"id": "/r", "cmd": "x", "cpus": 1, "mem": 1,
        "role": "ops", "acceptedResourceRoles": ["ops"]}),
    );
    let o2 = offer_for(
        "h1",
        "cpus(ops):2;mem(ops):1024;ports(ops):[31000-31010];cpus:4;mem:1024;ports:[32000-32010]",
        "ops",
    );
    let m = run(&o2, &[queued(&reserved_only, 5)]);
    assert_eq!(m.launches.len(), 2);
    for r in m.launches.iter().flat_map(|l| l.task.resources.iter()) {
        assert_eq!(reservation_role(r), "ops");
    }
}

#[test]
fn apps_of_other_roles_get_unfulfilled_role() {
    // Unreserved resources allocated to "ops" are not for an app of role "*".
    let o = offer_for("h1", "cpus:4;mem:1024;ports:[31000-31010]", "ops");
    let a = sleeper("/a");
    let m = run(&o, &[queued(&a, 1)]);
    assert_eq!(
        m.unmatched,
        vec![(a.id.clone(), vec![NoMatchReason::UnfulfilledRole])]
    );
    // Resources reserved for another role.
    let o = offer("h1", "cpus(ops):4;mem(ops):1024");
    let m = run(&o, &[queued(&a, 1)]);
    assert_eq!(
        m.unmatched,
        vec![(a.id.clone(), vec![NoMatchReason::UnfulfilledRole])]
    );
    let picky = app(serde_json::json!({"id": "/p", "cmd": "x", "acceptedResourceRoles": ["prod"]}));
    let o = offer("h1", "cpus:4;mem:1024;ports:[31000-31010]");
    let m = run(&o, &[queued(&picky, 1)]);
    assert_eq!(
        m.unmatched,
        vec![(picky.id.clone(), vec![NoMatchReason::UnfulfilledRole])]
    );
}

#[test]
fn taken_resources_keep_role_reservations_and_allocation() {
    let o = offer_for("h1", "cpus(ops):2;mem:1024;ports:[31000-31010]", "ops");
    let a = app(
        serde_json::json!({"id": "/a", "cmd": "x", "cpus": 0.5, "mem": 100,
        "role": "ops"}),
    );
    let m = run(&o, &[queued(&a, 2)]);
    assert_eq!(m.launches.len(), 2);
    for r in m.launches.iter().flat_map(|l| l.task.resources.iter()) {
        assert_eq!(
            r.allocation_info.as_ref().and_then(|a| a.role.as_deref()),
            Some("ops"),
            "{r:?}"
        );
        let offered = o.resources.iter().find(|e| e.name == r.name).unwrap();
        assert_eq!(r.reservations, offered.reservations);
        assert_eq!(r.role, offered.role);
    }
    let cpus = m.launches[1]
        .task
        .resources
        .iter()
        .find(|r| r.name == "cpus")
        .unwrap();
    assert_eq!(cpus.scalar.unwrap().value, 0.5);
    assert_eq!(cpus.reservations[0].role.as_deref(), Some("ops"));
    assert_contained(&o, &m);
}

#[test]
fn placement_of_an_instance() {
    let i = Instance {
        instance_id: "a.instance-1".into(),
        app_id: PathId::parse("/a"),
        app_version: Default::default(),
        task_id: "t".into(),
        agent_id: "agent-1".into(),
        host: "h1".into(),
        attributes: vec![("rack".into(), "r1".into())],
        ports: vec![],
        ip_addresses: Vec::new(),
        state: crate::model::TaskState::TaskRunning,
        goal: crate::model::instance::Goal::Running,
        staged_at: Default::default(),
        started_at: None,
        unreachable_since: None,
        health: Vec::new(),
        since: Default::default(),
    };
    let p = Placement::of_instance(&i);
    assert_eq!((p.agent_id.as_str(), p.host.as_str()), ("agent-1", "h1"));
    assert_eq!(p.attributes, i.attributes);
}
