//! Agora's bundled Marathon: apps and groups, deployments, the launch queue,
//! and the Marathon REST API v2. It is an ordinary framework: it talks to the
//! master only through `agora-sdk`.

pub mod deploy;
pub mod error;
pub mod model;
pub mod scheduler;
