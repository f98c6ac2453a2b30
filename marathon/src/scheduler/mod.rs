//! Offer matching: constraints, ports, and the TaskInfo of each launch. Pure.

pub mod constraints;
pub mod health_check;
pub mod matcher;
pub mod ports;
pub mod task;
