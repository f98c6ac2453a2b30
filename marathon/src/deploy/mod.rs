//! Deployments: the plan of steps from the current root group to a target
//! one, what each app needs at each step, and the arithmetic of rolling
//! restarts and scale-downs. Pure.

pub mod demand;
pub mod plan;
pub mod progress;
pub mod replace;
