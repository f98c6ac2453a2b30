//! Host and service ports.
