//! Turning allocations into offers, and offers back into free resources.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agora_proto::scheduler::{event, Event};
use agora_proto::{AgentId, FrameworkId, Offer, OfferId, TaskStatus, Url};
use tracing::debug;

use super::Master;
use crate::books::OfferEntry;

impl Master {
    /// Runs one allocation cycle and sends the resulting offers.
    pub(crate) fn allocate(&mut self, now: Instant) {
        self.allocation_pending = false;
        let started = Instant::now();
        let allocations = self.allocator.allocate(now);
        self.metrics.allocation_run(started.elapsed());
        if allocations.is_empty() {
            return;
        }
        let mut by_framework: HashMap<String, Vec<Offer>> = HashMap::new();
        for allocation in allocations {
            let (Some(agent), Some(framework)) = (
                self.agents.get_mut(&allocation.agent_id),
                self.frameworks.get_mut(&allocation.framework_id),
            ) else {
                // The allocator raced a removal; give the resources back.
                self.allocator.recover(
                    &allocation.agent_id,
                    &allocation.framework_id,
                    &allocation.role,
                    &allocation.resources,
                    None,
                    now,
                );
                continue;
            };
            let id = self.ids.offer();
            let offer = Offer {
                id: Some(OfferId { value: id.clone() }),
                framework_id: Some(FrameworkId {
                    value: framework.id.clone(),
                }),
                agent_id: Some(AgentId {
                    value: agent.id.clone(),
                }),
                hostname: agent.info.hostname.clone(),
                url: Some(Url {
                    scheme: "http".into(),
                    address: Some(agora_proto::Address {
                        hostname: Some(agent.info.hostname.clone()),
                        ip: None,
                        port: agent.info.port.unwrap_or(5051),
                    }),
                    path: Some("/slave(1)".into()),
                    fragment: None,
                }),
                allocation_info: Some(agora_proto::resource::AllocationInfo {
                    role: Some(allocation.role.clone()),
                }),
                resources: allocation.resources.allocated_to(&allocation.role),
                attributes: agent.info.attributes.clone(),
                executor_ids: Vec::new(),
                containerizers: agent.info.containerizers.clone(),
            };
            agent.offers.insert(id.clone());
            agent.offered.add(&allocation.resources);
            framework.offers.insert(id.clone());
            framework.offered.add(&allocation.resources);
            by_framework
                .entry(framework.id.clone())
                .or_default()
                .push(offer);
            self.offers.insert(
                id,
                OfferEntry {
                    framework_id: allocation.framework_id,
                    agent_id: allocation.agent_id,
                    role: allocation.role,
                    resources: allocation.resources,
                    created: now,
                },
            );
            self.metrics.offers_sent += 1;
        }
        for (framework_id, offers) in by_framework {
            debug!(%framework_id, count = offers.len(), "sending offers");
            if let Some(framework) = self.frameworks.get(&framework_id) {
                framework.send(Event {
                    r#type: event::Type::Offers as i32,
                    offers: Some(event::Offers { offers }),
                    ..Default::default()
                });
            }
        }
    }

    /// Takes an offer out of the books without giving its resources back
    /// (ACCEPT uses them).
    pub(crate) fn take_offer(&mut self, offer_id: &str) -> Option<OfferEntry> {
        let entry = self.offers.remove(offer_id)?;
        if let Some(agent) = self.agents.get_mut(&entry.agent_id) {
            agent.offers.remove(offer_id);
            agent.offered.subtract(&entry.resources);
        }
        if let Some(framework) = self.frameworks.get_mut(&entry.framework_id) {
            framework.offers.remove(offer_id);
            framework.offered.subtract(&entry.resources);
        }
        Some(entry)
    }

    /// Forgets an offer and gives its resources back to the allocator,
    /// refusing them to the framework for `refuse` if given.
    pub(crate) fn remove_offer(
        &mut self,
        offer_id: &str,
        refuse: Option<Duration>,
        now: Instant,
    ) -> Option<OfferEntry> {
        let entry = self.take_offer(offer_id)?;
        self.allocator.recover(
            &entry.agent_id,
            &entry.framework_id,
            &entry.role,
            &entry.resources,
            refuse,
            now,
        );
        self.allocation_pending = true;
        Some(entry)
    }

    /// Takes an offer back from its framework (agent gone, offer timeout).
    pub(crate) fn rescind_offer(&mut self, offer_id: &str, now: Instant) {
        let Some(entry) = self.remove_offer(offer_id, None, now) else {
            return;
        };
        self.metrics.offers_rescinded += 1;
        if let Some(framework) = self.frameworks.get(&entry.framework_id) {
            framework.send(Event {
                r#type: event::Type::Rescind as i32,
                rescind: Some(event::Rescind {
                    offer_id: Some(OfferId {
                        value: offer_id.to_string(),
                    }),
                }),
                ..Default::default()
            });
        }
    }

    /// Rescinds offers older than `--offer-timeout`.
    pub(super) fn expire_offers(&mut self, now: Instant) {
        let Some(timeout) = self.config.offer_timeout else {
            return;
        };
        let Some(cutoff) = now.checked_sub(timeout) else {
            return;
        };
        for offer_id in self.offers.older_than(cutoff) {
            debug!(%offer_id, "offer timed out; rescinding");
            self.rescind_offer(&offer_id, now);
        }
    }
}

/// An UPDATE event carrying `status`.
pub(crate) fn update_event(status: TaskStatus) -> Event {
    Event {
        r#type: event::Type::Update as i32,
        update: Some(event::Update {
            status: Some(status),
        }),
        ..Default::default()
    }
}
