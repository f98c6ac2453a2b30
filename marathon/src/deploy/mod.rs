//! Deployments: the plan of steps from the current root group to a target
//! one, and the arithmetic of rolling restarts and scale-downs. Pure.

pub mod plan;
pub mod replace;
