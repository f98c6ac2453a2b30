//! Rules across apps and groups: distinct ids, dependencies that exist
//! and form no cycle, service ports used once.

use super::*;

pub(super) fn check_ids_distinct(root: &RootGroup, r: &mut Report) {
    for id in root.apps.keys().filter(|id| root.groups.contains_key(*id)) {
        r.add("/", format!("{APP_GROUP_SAME_ID}: {id}"));
    }
}

pub(super) fn check_dependencies_exist(root: &RootGroup, r: &mut Report) {
    for (id, app) in &root.apps {
        report_missing_dependencies(root, id, app.dependencies.iter(), r);
    }
    for (id, group) in &root.groups {
        report_missing_dependencies(root, id, group.dependencies.iter(), r);
    }
}

fn report_missing_dependencies<'a>(
    root: &RootGroup,
    owner: &PathId,
    dependencies: impl Iterator<Item = &'a PathId>,
    r: &mut Report,
) {
    for (i, dependency) in dependencies.enumerate() {
        let exists = root.apps.contains_key(dependency) || root.groups.contains_key(dependency);
        if !exists {
            r.add(
                format!("/dependencies({i})"),
                format!("Dependency '{dependency}' of '{owner}' does not exist"),
            );
        }
    }
}

/// Which apps each app waits for.
type Graph<'a> = BTreeMap<&'a PathId, BTreeSet<&'a PathId>>;

/// The apps a dependency stands for: the app itself, or every app under the group.
fn dependency_targets<'a>(root: &'a RootGroup, dependency: &PathId) -> Vec<&'a PathId> {
    if let Some((id, _)) = root.apps.get_key_value(dependency) {
        return vec![id];
    }
    if root.groups.contains_key(dependency) {
        return apps_under(root, dependency);
    }
    Vec::new()
}

fn apps_under<'a>(root: &'a RootGroup, group: &PathId) -> Vec<&'a PathId> {
    root.apps
        .keys()
        .filter(|id| id.starts_with(group) && *id != group)
        .collect()
}

/// Edges from every app to the apps it depends on, itself or through an
/// enclosing group's dependencies.
fn dependency_graph(root: &RootGroup) -> Graph<'_> {
    let mut graph: Graph = root.apps.keys().map(|id| (id, BTreeSet::new())).collect();
    for (id, app) in &root.apps {
        let targets = app
            .dependencies
            .iter()
            .flat_map(|d| dependency_targets(root, d));
        graph.entry(id).or_default().extend(targets);
    }
    for (group_id, group) in &root.groups {
        let targets: BTreeSet<&PathId> = group
            .dependencies
            .iter()
            .flat_map(|d| dependency_targets(root, d))
            .collect();
        if targets.is_empty() {
            continue;
        }
        for app_id in apps_under(root, group_id) {
            graph.entry(app_id).or_default().extend(&targets);
        }
    }
    graph
}

/// A cycle as the path that closes it (`[a, b, a]`), if there is one.
fn find_cycle<'a>(graph: &Graph<'a>) -> Option<Vec<&'a PathId>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    let mut marks: HashMap<&PathId, Mark> = HashMap::new();
    for &start in graph.keys() {
        if marks.contains_key(start) {
            continue;
        }
        marks.insert(start, Mark::OnPath);
        let mut path = vec![start];
        let mut pending = vec![graph[start].iter()];
        while let Some(edges) = pending.last_mut() {
            let Some(&next) = edges.next() else {
                pending.pop();
                if let Some(done) = path.pop() {
                    marks.insert(done, Mark::Done);
                }
                continue;
            };
            match marks.get(next) {
                Some(Mark::OnPath) => {
                    let from = path.iter().position(|p| *p == next).unwrap_or(0);
                    let mut cycle = path[from..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    marks.insert(next, Mark::OnPath);
                    path.push(next);
                    pending.push(graph[next].iter());
                }
            }
        }
    }
    None
}

pub(super) fn check_acyclic(root: &RootGroup, r: &mut Report) {
    if let Some(cycle) = find_cycle(&dependency_graph(root)) {
        let names: Vec<String> = cycle.iter().map(ToString::to_string).collect();
        r.add(
            "/",
            format!("{CYCLIC_DEPENDENCIES}: {}", names.join(" -> ")),
        );
    }
}

fn service_port_path(app: &AppDefinition, index: usize) -> String {
    if app.is_host_networked() {
        format!("/portDefinitions({index})/port")
    } else {
        format!("/container/portMappings({index})/servicePort")
    }
}

pub(super) fn check_service_ports_distinct(root: &RootGroup, r: &mut Report) {
    let mut owners: BTreeMap<i64, &PathId> = BTreeMap::new();
    for (id, app) in &root.apps {
        for (i, port) in app.service_ports().into_iter().enumerate() {
            if port == 0 {
                continue;
            }
            let owner = *owners.entry(port).or_insert(id);
            if owner != id {
                r.add(
                    service_port_path(app, i),
                    format!(
                        "Requested service port {port} conflicts with a service port in use by app {owner}"
                    ),
                );
            }
        }
    }
}
