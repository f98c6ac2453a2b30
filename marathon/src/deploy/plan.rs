//! The deployment planner.
