//! Reading config files the way `okrsync check` reports them: TOML sections read key by
//! key into a shared problem list (every problem at once, each with its file and line),
//! secrets named by `*_env`/`*_file` into `secrecy` types, sizes and durations.
//!
//! The bottom of the configuration: [`crate::settings`] reads the service config and the
//! OKR files with it, and each source kind reads its own `[sources.NAME]` section with it
//! (`sources/<kind>/config.rs`), so neither depends on the other's internals.

pub mod problems;
pub mod reader;
pub mod secrets;

pub use problems::{ConfigReport, Locator, Problem};
pub use secrets::{SecretRef, Secrets};
