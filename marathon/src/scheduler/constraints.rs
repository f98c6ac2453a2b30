//! Placement constraints.
