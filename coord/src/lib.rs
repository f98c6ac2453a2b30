//! Coordination behind traits.
//!
//! Three concerns every Agora component shares, each a trait with an
//! in-memory implementation (used by `agora local` and tests) and a
//! ZooKeeper one in [`zk`]:
//!
//! * [`Store`]: a versioned key-value store for the master's registry and
//!   Marathon's state; writes carry the version they expect so that only the
//!   current leader's writes land;
//! * [`Election`]: contending for leadership;
//! * [`Detector`]: following whoever leads (agents, schedulers, tools).

pub mod detector;
pub mod election;
pub mod group;
pub mod master_info;
pub mod store;
pub mod zk;

pub use detector::{Detector, DetectorError, StaticDetector};
pub use election::{Election, LeadershipEvent, LocalElection};
pub use group::{MemoryDetector, MemoryElection, MemoryGroup};
pub use master_info::{AddressJson, MasterInfoJson};
pub use store::{MemoryStore, Store, StoreError, Versioned};
