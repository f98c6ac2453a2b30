//! Matching offers against the launch queue.
