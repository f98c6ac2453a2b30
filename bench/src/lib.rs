//! Benchmarks that report figures (written next).
