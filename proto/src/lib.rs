//! Agora's wire protocol.
//!
//! The model (`agora.v1`) names its messages and fields after Mesos v1 so that
//! people who know Mesos find their way, and so that a Mesos v1 HTTP/JSON front
//! can later be laid over the same types. Three gRPC services carry it:
//!
//! * [`scheduler`]: one bidirectional stream per framework (calls in, events out);
//! * [`agent`]: the stream an agent dials to the leading master;
//! * [`master`]: the operator API.
//!
//! The code is generated at build time from `proto/agora/v1/*.proto`.

#![allow(
    missing_docs,
    clippy::large_enum_variant,
    clippy::doc_lazy_continuation
)]

/// The resource and task model (Mesos v1 names).
pub mod v1 {
    tonic::include_proto!("agora.v1");
}

/// The Scheduler API: `Call`, `Event` and the `Scheduler` service.
pub mod scheduler {
    tonic::include_proto!("agora.v1.scheduler");
}

/// The Agent API: the agent's stream to the master.
pub mod agent {
    tonic::include_proto!("agora.v1.agent");
}

/// The Operator API.
pub mod master {
    tonic::include_proto!("agora.v1.master");
}

pub use v1::*;
