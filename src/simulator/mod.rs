//! Simulated upstream servers.
