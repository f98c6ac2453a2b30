//! Offers: matched against the launch queue; instances are stored before
//! their tasks are launched, so a failover never forgets a running task.

use std::collections::BTreeMap;
use std::time::Instant;

use agora_proto::Offer;
use serde_json::json;

use super::state::{UnusedOffer, UNUSED_OFFERS_KEPT};
use super::{Core, CoreError};
use crate::model::instance::Goal;
use crate::model::{Instance, PathId, TaskState, Timestamp};
use crate::scheduler::matcher::{match_offer, MatchConfig, Placement, QueuedApp};
use crate::storage::Write;

/// Refusal for offers that did not fit while something waits.
const SHORT_REFUSE_SECONDS: f64 = 5.0;

impl Core {
    pub(super) async fn handle_offers(&mut self, offers: Vec<Offer>) -> Result<(), CoreError> {
        let now = Instant::now();
        let (queue, placements) = {
            let st = self.state();
            let queue: Vec<QueuedApp> = st
                .queue
                .iter()
                .filter(|(id, e)| {
                    e.count > 0 && st.backoffs.get(*id).is_none_or(|b| b.until <= now)
                })
                .map(|(_, e)| QueuedApp {
                    app: e.app.clone(),
                    count: e.count,
                })
                .collect();
            let mut placements: BTreeMap<PathId, Vec<Placement>> = BTreeMap::new();
            for q in queue.iter().filter(|q| !q.app.constraints.is_empty()) {
                let list = st
                    .app_instances(&q.app.id)
                    .into_iter()
                    .filter(|i| i.goal == Goal::Running && i.is_active())
                    .map(|i| Placement {
                        agent_id: i.agent_id.clone(),
                        host: i.host.clone(),
                        attributes: i.attributes.clone(),
                    })
                    .collect();
                placements.insert(q.app.id.clone(), list);
            }
            (queue, placements)
        };
        if queue.is_empty() {
            let refuse = self.ctx.config.decline_offer_duration.as_secs_f64();
            let ids = offers.into_iter().filter_map(|o| o.id).collect();
            let _ = self.scheduler.decline(ids, Some(refuse)).await;
            return Ok(());
        }
        let config = MatchConfig {
            max_instances_per_offer: self.ctx.config.max_instances_per_offer,
            ..MatchConfig::default()
        };
        let mut queue = queue;
        let mut placements = placements;
        let mut to_launch = Vec::new();
        let mut declined = Vec::new();
        let stamp = Timestamp::now();
        for offer in offers {
            let result = match_offer(&offer, &queue, &placements, &config);
            self.record_offer_stats(&offer, &result, stamp);
            for launch in &result.launches {
                if let Some(q) = queue.iter_mut().find(|q| q.app.id == launch.app_id) {
                    q.count = q.count.saturating_sub(1);
                }
                placements
                    .entry(launch.app_id.clone())
                    .or_default()
                    .push(Placement {
                        agent_id: launch.agent_id.clone(),
                        host: launch.host.clone(),
                        attributes: launch.attributes.clone(),
                    });
            }
            queue.retain(|q| q.count > 0);
            if result.launches.is_empty() {
                declined.extend(offer.id.clone());
            } else {
                to_launch.push((offer, result.launches));
            }
        }
        if !declined.is_empty() {
            let _ = self
                .scheduler
                .decline(declined, Some(SHORT_REFUSE_SECONDS))
                .await;
        }
        if to_launch.is_empty() {
            return Ok(());
        }
        // Store every instance before any task is launched.
        let mut instances = Vec::new();
        for (_, launches) in &to_launch {
            for l in launches {
                let app_version = queue_version(self, &l.app_id);
                instances.push(Instance {
                    instance_id: l.instance_id.clone(),
                    app_id: l.app_id.clone(),
                    app_version,
                    task_id: l
                        .task
                        .task_id
                        .as_ref()
                        .map(|t| t.value.clone())
                        .unwrap_or_default(),
                    agent_id: l.agent_id.clone(),
                    host: l.host.clone(),
                    attributes: l.attributes.clone(),
                    ports: l.host_ports.clone(),
                    ip_addresses: Vec::new(),
                    state: TaskState::TaskStaging,
                    goal: Goal::Running,
                    staged_at: stamp,
                    started_at: None,
                    unreachable_since: None,
                    health: Vec::new(),
                    since: stamp,
                });
            }
        }
        self.persist(
            instances
                .iter()
                .map(|i| Write::Instance(Box::new(i.clone())))
                .collect(),
        )
        .await?;
        {
            let mut st = self.state_mut();
            for i in &instances {
                if let Some(entry) = st.queue.get_mut(&i.app_id) {
                    entry.count = entry.count.saturating_sub(1);
                }
                st.put_instance(i.clone());
            }
        }
        for i in &instances {
            self.ctx.events.publish(
                "instance_changed_event",
                instance_changed_json(i, "Provisioned"),
            );
            self.dirty.insert(i.app_id.clone());
        }
        for (offer, launches) in to_launch {
            let tasks = launches.into_iter().map(|l| l.task).collect();
            let _ = self
                .scheduler
                .accept(
                    offer.id.into_iter().collect(),
                    vec![agora_sdk::launch_operation(tasks)],
                    Some(SHORT_REFUSE_SECONDS),
                )
                .await;
        }
        Ok(())
    }

    fn record_offer_stats(
        &self,
        offer: &Offer,
        result: &crate::scheduler::matcher::OfferMatch,
        stamp: Timestamp,
    ) {
        let mut st = self.state_mut();
        let used: Vec<&PathId> = result.launches.iter().map(|l| &l.app_id).collect();
        for (app_id, reasons) in &result.unmatched {
            if let Some(entry) = st.queue.get_mut(app_id) {
                entry.processed_offers += 1;
                entry.unused_offers += 1;
                entry.last_unused_offer_at = Some(stamp);
                for r in reasons {
                    *entry.reject_summary.entry(r.as_str()).or_default() += 1;
                }
                entry.last_unused.push_back(UnusedOffer {
                    offer: offer_json(offer),
                    timestamp: stamp,
                    reasons: reasons.clone(),
                });
                while entry.last_unused.len() > UNUSED_OFFERS_KEPT {
                    entry.last_unused.pop_front();
                }
            }
        }
        for app_id in used {
            if let Some(entry) = st.queue.get_mut(app_id) {
                entry.processed_offers += 1;
                entry.last_used_offer_at = Some(stamp);
            }
        }
    }
}

fn queue_version(core: &Core, app: &PathId) -> Timestamp {
    let st = core.state();
    st.queue
        .get(app)
        .map(|e| e.app.version_or_epoch())
        .or_else(|| st.root.app(app).map(|a| a.version_or_epoch()))
        .unwrap_or_default()
}

/// An offer as `/v2/queue?embed=lastUnusedOffers` shows it.
pub(crate) fn offer_json(offer: &Offer) -> serde_json::Value {
    let resources: Vec<serde_json::Value> = offer
        .resources
        .iter()
        .map(|r| {
            let mut v = json!({
                "name": r.name,
                "role": r.role.clone().unwrap_or_else(|| "*".into()),
            });
            if let Some(s) = &r.scalar {
                v["scalar"] = json!(s.value);
            }
            if let Some(ranges) = &r.ranges {
                v["ranges"] = json!(ranges
                    .range
                    .iter()
                    .map(|x| json!({"begin": x.begin, "end": x.end}))
                    .collect::<Vec<_>>());
            }
            if let Some(set) = &r.set {
                v["set"] = json!(set.item);
            }
            v
        })
        .collect();
    json!({
        "id": offer.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
        "agentId": offer.agent_id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
        "hostname": offer.hostname,
        "resources": resources,
        "attributes": [],
    })
}

/// Marathon's `instance_changed_event` body.
pub(crate) fn instance_changed_json(i: &Instance, condition: &str) -> serde_json::Value {
    json!({
        "instanceId": i.instance_id,
        "condition": condition,
        "runSpecId": i.app_id,
        "agentId": i.agent_id,
        "host": i.host,
        "runSpecVersion": i.app_version,
    })
}
