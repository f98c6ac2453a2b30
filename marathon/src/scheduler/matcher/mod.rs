//! Matching offers against the launch queue.
//!
//! [`match_offer`] goes through the queue in order and places as many
//! instances of each app as fit in what is left of the offer, up to the
//! app's count and [`MatchConfig::max_instances_per_offer`] in all. Each
//! launch takes its resources out of the offer's own entries, keeping their
//! role, reservations and allocation info, so the master finds them
//! contained in the offer. Apps that get nothing are reported with
//! Marathon's reasons (as `GET /v2/queue` shows them).
//!
//! Which offered resources an app may use: with `acceptedResourceRoles`
//! those whose reservation role is listed (`*`: unreserved); without,
//! unreserved ones and those reserved for the app's `role`. Resources
//! allocated to another role than the app's are never used. Reserved
//! resources are consumed before unreserved ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use agora_common::resources::{reservation_role, UNRESERVED};
use agora_proto::value::{self, Range, Ranges, Scalar};
use agora_proto::{container_info, Offer, Resource, TaskInfo};
use rand::Rng;

use super::constraints::{meets_all, offer_attributes};
use super::ports::{host_port_requests, pick_host_ports, take_port, HostPort};
use super::task::build_task;
use crate::model::app::ContainerType;
use crate::model::{AppDefinition, Instance, PathId};

/// Knobs of the matcher (Marathon's flags of the same meaning).
#[derive(Debug, Clone)]
pub struct MatchConfig {
    /// `--max_instances_per_offer`: launches per offer, over all apps.
    pub max_instances_per_offer: usize,
    /// `--gpu_scheduling_behavior restricted`: apps that want no GPU are
    /// not placed on agents offering GPUs.
    pub restrict_gpu_agents: bool,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            max_instances_per_offer: 100,
            restrict_gpu_agents: true,
        }
    }
}

/// An app waiting for offers.
#[derive(Debug, Clone)]
pub struct QueuedApp {
    /// The app (the version to launch).
    pub app: Arc<AppDefinition>,
    /// Instances still to launch.
    pub count: u32,
}

/// Where an instance of an app runs, as constraints see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The agent.
    pub agent_id: String,
    /// The agent's hostname.
    pub host: String,
    /// The agent's attributes (name, value as text).
    pub attributes: Vec<(String, String)>,
}

impl Placement {
    /// Where `instance` runs.
    pub fn of_instance(instance: &Instance) -> Self {
        Placement {
            agent_id: instance.agent_id.clone(),
            host: instance.host.clone(),
            attributes: instance.attributes.clone(),
        }
    }

    /// The agent of `offer`.
    pub fn of_offer(offer: &Offer) -> Self {
        Placement {
            agent_id: offer
                .agent_id
                .as_ref()
                .map(|a| a.value.clone())
                .unwrap_or_default(),
            host: offer.hostname.clone(),
            attributes: offer_attributes(offer),
        }
    }
}

/// One instance to launch.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Its app.
    pub app_id: PathId,
    /// The new instance's id.
    pub instance_id: String,
    /// The task to launch with the offer.
    pub task: TaskInfo,
    /// The host ports it got, in port order (ports without a host port skipped).
    pub host_ports: Vec<u32>,
    /// The agent.
    pub agent_id: String,
    /// The agent's hostname.
    pub host: String,
    /// The agent's attributes (name, value as text).
    pub attributes: Vec<(String, String)>,
}

/// Why an offer did not fit an app, with Marathon's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoMatchReason {
    /// No offered resource has a role the app accepts.
    UnfulfilledRole,
    /// The agent breaks a constraint.
    UnfulfilledConstraint,
    /// Too few cpus.
    InsufficientCpus,
    /// Too little memory.
    InsufficientMemory,
    /// Too little disk.
    InsufficientDisk,
    /// Too few GPUs.
    InsufficientGpus,
    /// Missing host ports.
    InsufficientPorts,
    /// The agent has GPUs the app does not want.
    DeclinedScarceResources,
    /// No reservation for a resident app.
    NoCorrespondingReservationFound,
    /// The agent does not run the app's containerizer (a DOCKER app on an
    /// agent without Docker). Not one of Marathon's, which placed such apps
    /// anyway and saw them fail at the agent.
    UnsupportedContainerizer,
}

impl NoMatchReason {
    /// Marathon's name.
    pub fn as_str(self) -> &'static str {
        match self {
            NoMatchReason::UnfulfilledRole => "UnfulfilledRole",
            NoMatchReason::UnfulfilledConstraint => "UnfulfilledConstraint",
            NoMatchReason::InsufficientCpus => "InsufficientCpus",
            NoMatchReason::InsufficientMemory => "InsufficientMemory",
            NoMatchReason::InsufficientDisk => "InsufficientDisk",
            NoMatchReason::InsufficientGpus => "InsufficientGpus",
            NoMatchReason::InsufficientPorts => "InsufficientPorts",
            NoMatchReason::DeclinedScarceResources => "DeclinedScarceResources",
            NoMatchReason::NoCorrespondingReservationFound => "NoCorrespondingReservationFound",
            NoMatchReason::UnsupportedContainerizer => "UnsupportedContainerizer",
        }
    }
}

impl std::fmt::Display for NoMatchReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for NoMatchReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What one offer gave the queue.
#[derive(Debug, Clone, Default)]
pub struct OfferMatch {
    /// Instances to launch, in queue order.
    pub launches: Vec<Launch>,
    /// Apps of the queue that got nothing from this offer, with why.
    pub unmatched: Vec<(PathId, Vec<NoMatchReason>)>,
}

impl OfferMatch {
    /// The tasks to launch, for one `ACCEPT` of the offer.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.launches.iter().map(|l| l.task.clone()).collect()
    }
}

/// Mesos' precision for scalars.
fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn is_ports(r: &Resource) -> bool {
    r.name == "ports" && r.r#type == value::Type::Ranges as i32
}

fn scalar_of(r: &Resource) -> f64 {
    if r.r#type == value::Type::Scalar as i32 {
        r.scalar.map(|s| s.value).unwrap_or(0.0)
    } else {
        0.0
    }
}

/// Whether a disk resource is a persistent volume (only for resident tasks).
fn is_volume(r: &Resource) -> bool {
    r.disk.as_ref().is_some_and(|d| d.persistence.is_some())
}

/// The role the app's tasks run under.
fn app_role(app: &AppDefinition) -> &str {
    app.role.as_deref().unwrap_or(UNRESERVED)
}

/// Whether the app may use this offered resource.
fn acceptable(app: &AppDefinition, offer: &Offer, r: &Resource) -> bool {
    if is_volume(r) {
        return false;
    }
    let role = app_role(app);
    let allocated = r
        .allocation_info
        .as_ref()
        .or(offer.allocation_info.as_ref())
        .and_then(|a| a.role.as_deref());
    if allocated.is_some_and(|allocated| allocated != role) {
        return false;
    }
    let reserved = reservation_role(r);
    match &app.accepted_resource_roles {
        Some(roles) => roles.iter().any(|accepted| accepted == reserved),
        None => reserved == UNRESERVED || reserved == role,
    }
}

/// Indices of the acceptable entries of `pool` named `name`, reserved ones first.
fn candidates(app: &AppDefinition, offer: &Offer, pool: &[Resource], name: &str) -> Vec<usize> {
    let mut idx: Vec<usize> = pool
        .iter()
        .enumerate()
        .filter(|(_, r)| r.name == name && acceptable(app, offer, r))
        .map(|(i, _)| i)
        .collect();
    idx.sort_by_key(|&i| reservation_role(&pool[i]) == UNRESERVED);
    idx
}

/// The scalar resources an instance needs, with the reason when short.
fn scalar_needs(app: &AppDefinition) -> Vec<(&'static str, f64, NoMatchReason)> {
    let mut needs = vec![
        ("cpus", app.cpus, NoMatchReason::InsufficientCpus),
        ("mem", app.mem, NoMatchReason::InsufficientMemory),
        ("disk", app.disk, NoMatchReason::InsufficientDisk),
        ("gpus", app.gpus as f64, NoMatchReason::InsufficientGpus),
    ];
    needs.retain(|(_, amount, _)| *amount > 0.0);
    needs
}

/// A resource like `entry` (same name, role, reservations, allocation)
/// holding only `scalar` or `ranges`.
fn piece_of(
    offer: &Offer,
    entry: &Resource,
    scalar: Option<f64>,
    ranges: Option<Vec<Range>>,
) -> Resource {
    let mut piece = entry.clone();
    piece.scalar = scalar.map(|value| Scalar {
        value: round(value),
    });
    piece.ranges = ranges.map(|range| Ranges { range });
    if piece.allocation_info.is_none() {
        piece.allocation_info = offer.allocation_info.clone();
    }
    piece
}

/// Ports as sorted inclusive ranges.
fn to_ranges(mut ports: Vec<u64>) -> Vec<Range> {
    ports.sort_unstable();
    let mut out: Vec<Range> = Vec::new();
    for p in ports {
        match out.last_mut() {
            Some(last) if last.end + 1 == p => last.end = p,
            _ => out.push(Range { begin: p, end: p }),
        }
    }
    out
}

/// Whether the offering agent runs the containerizer `app` needs (Docker for
/// DOCKER containers, Mesos otherwise); an agent that advertises none runs
/// the Mesos one alone.
fn runs_containerizer(app: &AppDefinition, offer: &Offer) -> bool {
    let needed = match app.container.as_ref().map(|c| c.kind) {
        Some(ContainerType::Docker) => container_info::Type::Docker,
        _ => container_info::Type::Mesos,
    };
    if offer.containerizers.is_empty() {
        return needed == container_info::Type::Mesos;
    }
    offer.containerizers.contains(&(needed as i32))
}

/// Tries to place one instance of `app` on what is left of the offer
/// (`pool`): on success the resources are taken out of `pool` and returned
/// with the host ports; else the reasons.
fn place<R: Rng + ?Sized>(
    app: &AppDefinition,
    offer: &Offer,
    pool: &mut [Resource],
    placements: &[Placement],
    config: &MatchConfig,
    rng: &mut R,
) -> Result<(Vec<Resource>, Vec<u32>), Vec<NoMatchReason>> {
    if !offer.resources.iter().any(|r| acceptable(app, offer, r)) {
        return Err(vec![NoMatchReason::UnfulfilledRole]);
    }
    let mut reasons = Vec::new();
    if !runs_containerizer(app, offer) {
        reasons.push(NoMatchReason::UnsupportedContainerizer);
    }
    if !meets_all(&app.constraints, offer, placements) {
        reasons.push(NoMatchReason::UnfulfilledConstraint);
    }
    let needs = scalar_needs(app);
    for (name, amount, reason) in &needs {
        let have: f64 = candidates(app, offer, pool, name)
            .iter()
            .map(|&i| scalar_of(&pool[i]))
            .fold(0.0, |a, b| a + b);
        if round(have - amount) < 0.0 {
            reasons.push(*reason);
        }
    }
    let requests = host_port_requests(app);
    let port_entries = candidates(app, offer, pool, "ports");
    let available: Vec<(u64, u64)> = port_entries
        .iter()
        .filter(|&&i| is_ports(&pool[i]))
        .flat_map(|&i| pool[i].ranges.iter().flat_map(|r| r.range.iter()))
        .map(|r| (r.begin, r.end))
        .collect();
    let picked = if requests.iter().all(|r| *r == HostPort::None) {
        Some(vec![None; requests.len()])
    } else {
        pick_host_ports(&requests, &available, rng)
    };
    if picked.is_none() {
        reasons.push(NoMatchReason::InsufficientPorts);
    }
    if config.restrict_gpu_agents && app.gpus <= 0 {
        let offers_gpus = offer
            .resources
            .iter()
            .any(|r| r.name == "gpus" && scalar_of(r) > 0.0 && acceptable(app, offer, r));
        if offers_gpus {
            reasons.push(NoMatchReason::DeclinedScarceResources);
        }
    }
    let Some(picked) = picked.filter(|_| reasons.is_empty()) else {
        return Err(reasons);
    };

    let mut taken = Vec::new();
    for (name, amount, _) in &needs {
        let mut left = *amount;
        for i in candidates(app, offer, pool, name) {
            if round(left) <= 0.0 {
                break;
            }
            let have = scalar_of(&pool[i]);
            if have <= 0.0 {
                continue;
            }
            let take = round(have.min(left));
            taken.push(piece_of(offer, &pool[i], Some(take), None));
            if let Some(s) = pool[i].scalar.as_mut() {
                s.value = round(s.value - take);
            }
            left = round(left - take);
        }
    }
    let host_ports: Vec<u32> = picked.into_iter().flatten().collect();
    let mut ports_by_entry: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for &port in &host_ports {
        let port = u64::from(port);
        for &i in &port_entries {
            let Some(ranges) = pool[i].ranges.as_mut() else {
                continue;
            };
            let mut bounds: Vec<(u64, u64)> =
                ranges.range.iter().map(|r| (r.begin, r.end)).collect();
            if take_port(&mut bounds, port) {
                ranges.range = bounds
                    .into_iter()
                    .map(|(begin, end)| Range { begin, end })
                    .collect();
                ports_by_entry.entry(i).or_default().push(port);
                break;
            }
        }
    }
    for (i, ports) in ports_by_entry {
        taken.push(piece_of(offer, &pool[i], None, Some(to_ranges(ports))));
    }
    Ok((taken, host_ports))
}

/// Matches one offer against the queue (see the module documentation).
/// `placements` holds, per app, where its active instances run.
pub fn match_offer(
    offer: &Offer,
    queue: &[QueuedApp],
    placements: &BTreeMap<PathId, Vec<Placement>>,
    config: &MatchConfig,
) -> OfferMatch {
    match_offer_with(offer, queue, placements, config, &mut rand::rng())
}

/// [`match_offer`] with the random source for host ports given.
pub fn match_offer_with<R: Rng + ?Sized>(
    offer: &Offer,
    queue: &[QueuedApp],
    placements: &BTreeMap<PathId, Vec<Placement>>,
    config: &MatchConfig,
    rng: &mut R,
) -> OfferMatch {
    let mut result = OfferMatch::default();
    let mut pool: Vec<Resource> = offer.resources.clone();
    let here = Placement::of_offer(offer);
    for queued in queue {
        if queued.count == 0 {
            continue;
        }
        if result.launches.len() >= config.max_instances_per_offer {
            break;
        }
        let app = queued.app.as_ref();
        let mut placed: Vec<Placement> = placements.get(&app.id).cloned().unwrap_or_default();
        let mut launched = 0u32;
        while launched < queued.count && result.launches.len() < config.max_instances_per_offer {
            match place(app, offer, &mut pool, &placed, config, rng) {
                Ok((resources, host_ports)) => {
                    let instance_id = Instance::new_id(&app.id);
                    let task = build_task(app, &instance_id, offer, resources, &host_ports);
                    result.launches.push(Launch {
                        app_id: app.id.clone(),
                        instance_id,
                        task,
                        host_ports,
                        agent_id: here.agent_id.clone(),
                        host: here.host.clone(),
                        attributes: here.attributes.clone(),
                    });
                    placed.push(here.clone());
                    launched += 1;
                }
                Err(reasons) => {
                    if launched == 0 {
                        result.unmatched.push((app.id.clone(), reasons));
                    }
                    break;
                }
            }
        }
    }
    result
}

#[cfg(test)]
mod tests;
