//! The Agora framework SDK.
//!
//! A framework (scheduler) connects to the leading master, subscribes, and
//! then lives on a stream of [`SchedulerEvent`]s — offers, status updates,
//! rescinds — answering with calls made through a cloneable [`Scheduler`]
//! handle: accept offers with operations (launch tasks), decline them, kill,
//! acknowledge, reconcile, revive, suppress, teardown.
//!
//! The SDK owns the connection: it finds the leader through a
//! [`Detector`](agora_coord::Detector), reconnects with backoff when the
//! stream breaks, and resubscribes with the framework id it was given so the
//! master treats it as the same framework (within its `failover_timeout`).
//! Status updates that carry a uuid must be acknowledged; with
//! [`SchedulerConfig::auto_acknowledge`] the SDK does it after handing the
//! update to you.
//!
//! ```no_run
//! use agora_sdk::{Scheduler, SchedulerConfig, SchedulerEvent, TaskBuilder};
//! use agora_proto::scheduler::event;
//!
//! # async fn example() -> Result<(), agora_sdk::SdkError> {
//! let config = SchedulerConfig::new("127.0.0.1:5050", "hello").auto_acknowledge(true);
//! let (scheduler, mut events) = Scheduler::subscribe(config).await?;
//! let mut launched = false;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         SchedulerEvent::Offers(offers) => {
//!             for offer in offers {
//!                 if launched {
//!                     scheduler.decline(offer.id.clone().into_iter().collect(), None).await?;
//!                     continue;
//!                 }
//!                 let task = TaskBuilder::new("hello-1", "echo hello")
//!                     .cpus(0.1)
//!                     .mem(32.0)
//!                     .build(&offer);
//!                 scheduler.launch(&offer, vec![task]).await?;
//!                 launched = true;
//!             }
//!         }
//!         SchedulerEvent::Update(status) => println!("{:?}", status.state()),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod connection;
mod scheduler;
mod task;

pub use scheduler::{launch_operation, Scheduler, SchedulerConfig, SchedulerEvent, SdkError};
pub use task::TaskBuilder;
