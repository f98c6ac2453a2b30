use super::*;
use agora_proto::container_info::{docker_info, DockerInfo, Type as ContainerType};
use agora_proto::{CommandInfo, ContainerInfo, NetworkInfo, Parameter, Volume};

fn settings() -> DockerSettings {
    DockerSettings {
        socket: "/var/run/docker.sock".into(),
        api_version: ApiVersion {
            major: 1,
            minor: 41,
        },
        work_dir: "/var/lib/agora/agent".into(),
        cfs_quota: false,
    }
}

fn task(edit: impl FnOnce(&mut DockerTask)) -> DockerTask {
    let mut t = DockerTask {
        container: ContainerInfo {
            r#type: ContainerType::Docker as i32,
            docker: Some(DockerInfo {
                image: "busybox:1".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        command: CommandInfo {
            value: Some("echo hi".into()),
            ..Default::default()
        },
        labels: vec![("team".into(), "web".into())],
        host_ports: vec![31000, 31001],
        agent_id: "a-S0".into(),
        framework_id: "f-1".into(),
        task_id: "t-1".into(),
    };
    edit(&mut t);
    t
}

fn docker(t: &mut DockerTask) -> &mut DockerInfo {
    t.container.docker.as_mut().expect("docker info")
}

fn run(t: &DockerTask) -> Result<DockerRun, SpecError> {
    run_with(t, &ContainerResources::default(), &settings())
}

fn run_with(
    t: &DockerTask,
    resources: &ContainerResources,
    settings: &DockerSettings,
) -> Result<DockerRun, SpecError> {
    let env = vec![("PORT0".to_string(), "31000".to_string())];
    build(
        t,
        &Launch {
            container_id: "c-1",
            sandbox: Path::new("/work/slaves/a/runs/c-1"),
            env: &env,
            resources,
        },
        settings,
    )
}

fn host(r: &DockerRun) -> &HostConfig {
    r.body.host_config.as_ref().expect("host config")
}

#[test]
fn name_labels_env_and_sandbox_let_the_container_be_found_and_used() {
    let r = run(&task(|_| {})).expect("valid");
    assert_eq!(r.name, "mesos-a-S0.c-1");
    assert_eq!(r.image, "busybox:1");
    assert!(!r.force_pull);
    let labels = r.body.labels.as_ref().expect("labels");
    assert_eq!(labels["team"], "web");
    assert_eq!(labels[LABEL_CONTAINER_ID], "c-1");
    assert_eq!(labels[LABEL_AGENT_ID], "a-S0");
    assert_eq!(labels[LABEL_FRAMEWORK_ID], "f-1");
    assert_eq!(labels[LABEL_TASK_ID], "t-1");
    assert_eq!(labels[LABEL_WORK_DIR], "/var/lib/agora/agent");
    assert_eq!(
        r.body.env,
        Some(vec![
            "PORT0=31000".to_string(),
            "MESOS_CONTAINER_NAME=mesos-a-S0.c-1".to_string()
        ])
    );
    assert_eq!(
        host(&r).binds,
        Some(vec![
            "/work/slaves/a/runs/c-1:/mnt/mesos/sandbox:rw".to_string()
        ])
    );
    assert_eq!(host(&r).network_mode.as_deref(), Some("host"));
    assert_eq!(r.body.working_dir, None, "the image's own working dir");
}

#[test]
fn commands_read_as_mesos_reads_them() {
    let v = |s: &str| s.to_string();
    // (shell, value, arguments) -> (entrypoint, cmd)
    type Row = (
        Option<bool>,
        Option<&'static str>,
        Vec<&'static str>,
        Option<Vec<String>>,
        Option<Vec<String>>,
    );
    let table: Vec<Row> = vec![
        (
            None,
            Some("echo $HOST"),
            vec![],
            Some(vec![v("/bin/sh")]),
            Some(vec![v("-c"), v("echo $HOST")]),
        ),
        (
            Some(true),
            Some("sleep 1"),
            vec![],
            Some(vec![v("/bin/sh")]),
            Some(vec![v("-c"), v("sleep 1")]),
        ),
        // Arguments go to the image's entrypoint.
        (
            Some(false),
            None,
            vec!["a", "b"],
            None,
            Some(vec![v("a"), v("b")]),
        ),
        (
            Some(false),
            Some("/bin/echo"),
            vec!["x"],
            None,
            Some(vec![v("/bin/echo"), v("x")]),
        ),
        // Nothing: the image's own entrypoint and command.
        (Some(false), None, vec![], None, None),
    ];
    for (shell, value, args, entrypoint, cmd) in table {
        let t = task(|t| {
            t.command = CommandInfo {
                shell,
                value: value.map(String::from),
                arguments: args.iter().map(|a| a.to_string()).collect(),
                user: Some("nobody".into()),
                ..Default::default()
            }
        });
        let r = run(&t).expect("valid");
        assert_eq!(
            r.body.entrypoint, entrypoint,
            "{shell:?} {value:?} {args:?}"
        );
        assert_eq!(r.body.cmd, cmd, "{shell:?} {value:?} {args:?}");
        assert_eq!(r.body.user.as_deref(), Some("nobody"));
    }
}

#[test]
fn networks_and_port_mappings() {
    let mapping = |host_port, container_port, protocol: Option<&str>| docker_info::PortMapping {
        host_port,
        container_port,
        protocol: protocol.map(String::from),
    };
    let r = run(&task(|t| {
        let d = docker(t);
        d.network = docker_info::Network::Bridge as i32;
        d.port_mappings = vec![
            mapping(31000, 80, None),
            mapping(31001, 53, Some("udp")),
            mapping(31001, 53, Some("tcp")),
        ];
        t.container.hostname = Some("web-1".into());
    }))
    .expect("valid bridge");
    let h = host(&r);
    assert_eq!(h.network_mode.as_deref(), Some("bridge"));
    assert_eq!(r.body.hostname.as_deref(), Some("web-1"));
    assert_eq!(
        r.body.exposed_ports,
        Some(vec!["53/tcp".into(), "53/udp".into(), "80/tcp".into()])
    );
    let bindings = h.port_bindings.as_ref().expect("bindings");
    let bound = |key: &str| {
        bindings[key].as_ref().expect("bound")[0]
            .host_port
            .clone()
            .expect("port")
    };
    assert_eq!(bound("80/tcp"), "31000");
    assert_eq!(bound("53/udp"), "31001");

    let user = run(&task(|t| {
        docker(t).network = docker_info::Network::User as i32;
        t.container.network_infos = vec![NetworkInfo {
            name: Some("apps".into()),
            ..Default::default()
        }];
    }))
    .expect("valid user network");
    assert_eq!(host(&user).network_mode.as_deref(), Some("apps"));
    let none = run(&task(|t| {
        docker(t).network = docker_info::Network::None as i32
    }))
    .expect("valid");
    assert_eq!(host(&none).network_mode.as_deref(), Some("none"));

    let refused: Vec<(&str, DockerTask, &str)> = vec![
        (
            "a host port the task does not hold",
            task(|t| {
                let d = docker(t);
                d.network = docker_info::Network::Bridge as i32;
                d.port_mappings = vec![mapping(8080, 80, None)];
            }),
            "host port 8080 is not among the task's port resources",
        ),
        (
            "port mappings on the host network",
            task(|t| docker(t).port_mappings = vec![mapping(31000, 80, None)]),
            "port mappings need the BRIDGE or a USER network, not HOST",
        ),
        (
            "an unknown protocol",
            task(|t| {
                let d = docker(t);
                d.network = docker_info::Network::Bridge as i32;
                d.port_mappings = vec![mapping(31000, 80, Some("icmp"))];
            }),
            "protocol 'icmp' of container port 80 is not tcp, udp or sctp",
        ),
        (
            "a USER network without a name",
            task(|t| docker(t).network = docker_info::Network::User as i32),
            "the USER network needs a network name",
        ),
        (
            "two USER networks",
            task(|t| {
                docker(t).network = docker_info::Network::User as i32;
                t.container.network_infos = ["a", "b"]
                    .iter()
                    .map(|n| NetworkInfo {
                        name: Some(n.to_string()),
                        ..Default::default()
                    })
                    .collect();
            }),
            "joins one USER network, not 2 (a, b)",
        ),
        (
            "a hostname on the host network",
            task(|t| t.container.hostname = Some("x".into())),
            "ContainerInfo.hostname cannot be set on the HOST network",
        ),
    ];
    for (what, t, message) in refused {
        let err = run(&t).expect_err(what).to_string();
        assert!(err.contains(message), "{what}: {err}");
    }
}

#[test]
fn volumes_resolve_against_the_sandbox() {
    let volume = |container: &str, host: Option<&str>, mode: Mode| Volume {
        mode: mode as i32,
        container_path: container.into(),
        host_path: host.map(String::from),
    };
    let r = run(&task(|t| {
        t.container.volumes = vec![
            volume("/etc/app", Some("/srv/conf"), Mode::Ro),
            volume("data", Some("state"), Mode::Rw),
            volume("/cache", None, Mode::Rw),
        ]
    }))
    .expect("valid");
    assert_eq!(
        host(&r).binds,
        Some(vec![
            "/work/slaves/a/runs/c-1:/mnt/mesos/sandbox:rw".to_string(),
            "/srv/conf:/etc/app:ro".to_string(),
            "/work/slaves/a/runs/c-1/state:/mnt/mesos/sandbox/data:rw".to_string(),
        ])
    );
    assert_eq!(r.body.volumes, Some(vec!["/cache".to_string()]));

    for (v, problem) in [
        (
            volume("", Some("/x"), Mode::Rw),
            "the container path is empty",
        ),
        (
            volume("/x", Some("../../etc"), Mode::Rw),
            "the relative host path '../../etc' leaves the sandbox",
        ),
        (volume("/x", Some("/a:b"), Mode::Rw), "contains ':' or ','"),
        (
            volume("/x:y", Some("/a"), Mode::Rw),
            "the container path contains ':' or ','",
        ),
    ] {
        let err = run(&task(|t| t.container.volumes = vec![v.clone()]))
            .expect_err(problem)
            .to_string();
        assert!(err.contains(problem), "{err}");
    }
}

#[test]
fn limits_follow_the_task_resources() {
    let t = task(|_| {});
    let resources = ContainerResources {
        cpus: Some(0.5),
        mem_bytes: Some(64 << 20),
        disk_bytes: None,
    };
    let r = run_with(&t, &resources, &settings()).expect("valid");
    assert_eq!(host(&r).cpu_shares, Some(512));
    assert_eq!(host(&r).memory, Some(64 << 20));
    assert_eq!(host(&r).memory_swap, Some(64 << 20));
    assert_eq!(host(&r).cpu_quota, None);

    let tiny = ContainerResources {
        cpus: Some(0.0001),
        mem_bytes: Some(1 << 20),
        disk_bytes: None,
    };
    let cfs = DockerSettings {
        cfs_quota: true,
        ..settings()
    };
    let r = run_with(&t, &tiny, &cfs).expect("valid");
    assert_eq!(host(&r).cpu_shares, Some(MIN_CPU_SHARES));
    assert_eq!(host(&r).memory, Some(MIN_MEMORY_BYTES as i64));
    assert_eq!(host(&r).cpu_period, Some(100_000));
    assert_eq!(host(&r).cpu_quota, Some(MIN_CFS_QUOTA_US));

    let unlimited = run(&t).expect("valid");
    assert_eq!(host(&unlimited).memory, None);
    assert_eq!(host(&unlimited).cpu_shares, None);
}

#[test]
fn parameters_privileged_and_force_pull_are_carried() {
    let r = run(&task(|t| {
        let d = docker(t);
        d.privileged = Some(true);
        d.force_pull_image = Some(true);
        d.parameters = vec![Parameter {
            key: "label".into(),
            value: "extra=1".into(),
        }];
    }))
    .expect("valid");
    assert_eq!(host(&r).privileged, Some(true));
    assert!(r.force_pull);
    assert_eq!(r.body.labels.as_ref().expect("labels")["extra"], "1");

    let err = run(&task(|t| {
        docker(t).parameters = vec![Parameter {
            key: "blkio-weight".into(),
            value: "10".into(),
        }]
    }))
    .expect_err("unknown parameter");
    assert_eq!(
        err.to_string(),
        "docker parameter 'blkio-weight': unsupported option"
    );
}

#[test]
fn the_run_round_trips_through_shim_json() {
    let r = run(&task(|t| {
        let d = docker(t);
        d.network = docker_info::Network::Bridge as i32;
        d.port_mappings = vec![docker_info::PortMapping {
            host_port: 31000,
            container_port: 80,
            protocol: None,
        }];
    }))
    .expect("valid");
    let text = serde_json::to_string(&r).expect("serializes");
    assert!(text.contains(r#""ExposedPorts":{"80/tcp":{}}"#), "{text}");
    let back: DockerRun = serde_json::from_str(&text).expect("parses");
    assert_eq!(back, r);
}
