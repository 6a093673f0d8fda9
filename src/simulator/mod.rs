//! Simulated upstream servers: real HTTP servers on 127.0.0.1 that speak the upstream wire
//! formats (pagination, auth, errors on demand). Used by tests, benchmarks and `okrsync demo`.

pub mod github;
pub mod jira;
mod jql;
pub mod sheets;

pub use jira::JiraSim;
