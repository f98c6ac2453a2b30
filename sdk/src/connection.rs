//! The connection task: find the leader, subscribe, pump events, reconnect.
//!
//! One task per [`Scheduler`](crate::Scheduler). It is the only writer of the
//! shared call sender and framework id. It stops when the handles are gone
//! (the stop signal), when the application drops the event receiver, or
//! after the master sends ERROR (the framework was removed or refused).

use std::sync::Weak;

use agora_common::backoff::Backoff;
use agora_common::shutdown::Shutdown;
use agora_proto::scheduler::scheduler_client::SchedulerClient;
use agora_proto::scheduler::{call, event, Call, Event};
use agora_proto::FrameworkId;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info, warn};

use crate::scheduler::{acknowledge_call, SchedulerConfig, SchedulerEvent, Shared};

/// How a subscription ended.
enum Ended {
    /// Reconnect after a backoff.
    Retry(String),
    /// Stop for good.
    Stop,
}

pub(crate) async fn run(
    config: SchedulerConfig,
    shared: Weak<Shared>,
    events: mpsc::Sender<SchedulerEvent>,
    stop: Shutdown,
) {
    let mut backoff = Backoff::new(config.reconnect_initial, config.reconnect_max, 2.0);
    let mut previous: Option<String> = None;
    // Where a standby said the leader is; tried once before asking the detector.
    let mut hint: Option<String> = None;
    loop {
        let ended = tokio::select! {
            _ = stop.fired() => Ended::Stop,
            ended = subscribe_once(&config, &shared, &events, &mut previous, &mut hint, &mut backoff) => ended,
        };
        if let Some(shared) = shared.upgrade() {
            shared.calls.send_replace(None);
        }
        match ended {
            Ended::Stop => return,
            Ended::Retry(reason) => {
                debug!(%reason, "scheduler connection ended; reconnecting");
                if events
                    .send(SchedulerEvent::Disconnected(reason))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        tokio::select! {
            _ = stop.fired() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

async fn subscribe_once(
    config: &SchedulerConfig,
    shared: &Weak<Shared>,
    events: &mpsc::Sender<SchedulerEvent>,
    previous: &mut Option<String>,
    hint: &mut Option<String>,
    backoff: &mut Backoff,
) -> Ended {
    let address = match hint.take() {
        Some(leader) => leader,
        None => match config.detector.detect(previous.as_deref()).await {
            Ok(a) => a,
            Err(e) => return Ended::Retry(e.to_string()),
        },
    };
    *previous = Some(address.clone());
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{address}")) {
        Ok(e) => e
            .connect_timeout(std::time::Duration::from_secs(5))
            .http2_keep_alive_interval(std::time::Duration::from_secs(10))
            .keep_alive_timeout(std::time::Duration::from_secs(20)),
        Err(e) => return Ended::Retry(format!("invalid master address '{address}': {e}")),
    };
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => return Ended::Retry(format!("cannot connect to {address}: {e}")),
    };
    let mut info = config.framework_info.clone();
    let Some(current) = shared.upgrade() else {
        return Ended::Stop;
    };
    if let Some(id) = current.framework_id.borrow().clone() {
        info.id = Some(FrameworkId { value: id });
    }
    drop(current);
    let (call_tx, call_rx) = mpsc::channel::<Call>(1024);
    let subscribe = Call {
        framework_id: info.id.clone(),
        r#type: call::Type::Subscribe as i32,
        subscribe: Some(call::Subscribe {
            framework_info: Some(info),
            suppressed_roles: config.suppressed_roles.clone(),
        }),
        ..Default::default()
    };
    if call_tx.send(subscribe).await.is_err() {
        return Ended::Retry("call stream closed".into());
    }
    let mut client = SchedulerClient::new(channel)
        .max_decoding_message_size(256 * 1024 * 1024)
        .max_encoding_message_size(256 * 1024 * 1024);
    let mut stream = match client.subscribe(ReceiverStream::new(call_rx)).await {
        Ok(r) => r.into_inner(),
        Err(status) => {
            // A live master refused (a standby, or the leader still
            // recovering): do not wait for a leader other than this one, and
            // go straight to the leader a standby named.
            *previous = None;
            *hint = status
                .metadata()
                .get("agora-leader")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return Ended::Retry(format!("subscribe refused: {}", status.message()));
        }
    };
    loop {
        let event = match stream.message().await {
            Ok(Some(e)) => e,
            Ok(None) => return Ended::Retry("master closed the stream".into()),
            Err(status) => return Ended::Retry(format!("stream error: {}", status.message())),
        };
        let Some(shared) = shared.upgrade() else {
            return Ended::Stop;
        };
        let mut ack = None;
        let translated = match translate(event) {
            Some(SchedulerEvent::Subscribed {
                framework_id,
                heartbeat_interval_seconds,
            }) => {
                info!(%framework_id, %address, "subscribed");
                shared.framework_id.send_replace(Some(framework_id.clone()));
                shared.calls.send_replace(Some(call_tx.clone()));
                backoff.reset();
                SchedulerEvent::Subscribed {
                    framework_id,
                    heartbeat_interval_seconds,
                }
            }
            Some(SchedulerEvent::Update(status)) => {
                if config.auto_acknowledge {
                    ack = acknowledge_call(&status);
                }
                SchedulerEvent::Update(status)
            }
            Some(SchedulerEvent::Error(message)) => {
                warn!(%message, "master sent ERROR; not reconnecting");
                let _ = events.send(SchedulerEvent::Error(message)).await;
                return Ended::Stop;
            }
            Some(SchedulerEvent::FailedOver(message)) => {
                warn!(%message, "another scheduler took the framework over; not reconnecting");
                let _ = events.send(SchedulerEvent::FailedOver(message)).await;
                return Ended::Stop;
            }
            Some(other) => other,
            None => continue,
        };
        if events.send(translated).await.is_err() {
            return Ended::Stop;
        }
        if let Some(mut call) = ack {
            call.framework_id = shared
                .framework_id
                .borrow()
                .clone()
                .map(|value| FrameworkId { value });
            if call_tx.send(call).await.is_err() {
                return Ended::Retry("call stream closed".into());
            }
        }
    }
}

fn translate(event: Event) -> Option<SchedulerEvent> {
    use event::Type;
    Some(match event.r#type() {
        Type::Subscribed => {
            let s = event.subscribed?;
            SchedulerEvent::Subscribed {
                framework_id: s.framework_id?.value,
                heartbeat_interval_seconds: s.heartbeat_interval_seconds,
            }
        }
        Type::Offers => SchedulerEvent::Offers(event.offers?.offers),
        Type::Rescind => SchedulerEvent::Rescind(event.rescind?.offer_id?),
        Type::Update => SchedulerEvent::Update(event.update?.status?),
        Type::Message => {
            let m = event.message?;
            SchedulerEvent::Message {
                agent_id: m.agent_id?,
                executor_id: m.executor_id?,
                data: m.data,
            }
        }
        Type::Failure => {
            let f = event.failure?;
            SchedulerEvent::Failure {
                agent_id: f.agent_id,
                executor_id: f.executor_id,
                status: f.status,
            }
        }
        Type::Error => {
            use agora_proto::scheduler::event::error::Reason;
            let error = event.error.unwrap_or_default();
            if error.reason() == Reason::FailedOver {
                SchedulerEvent::FailedOver(error.message)
            } else {
                SchedulerEvent::Error(error.message)
            }
        }
        Type::Heartbeat => SchedulerEvent::Heartbeat,
        _ => return None,
    })
}
