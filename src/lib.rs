//! okrsync keeps OKR progress honest: it polls work trackers and spreadsheets, maps items to
//! key results through rules kept in git, computes progress with its history and evidence,
//! and reports work that moves no key result.
//!
//! Layers, from the outside in: [`cli`], [`service`] and [`server`] (interfaces) → [`sync`] (the engine)
//! → [`sources`] (upstreams) and [`store`] (SQLite/PostgreSQL) → [`rules`] and [`progress`]
//! (pure computation on the [`model`]). [`startup`] opens the store and builds the engine for
//! every interface. [`settings`] loads and validates the config;
//! [`report`] builds the documents users read; [`simulator`] holds the fake upstream
//! servers used by tests, benchmarks and the demo.

pub mod cli;
pub mod clock;
pub mod configfile;
pub mod demo;
pub mod evidence;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod model;
pub mod notify;
pub mod progress;
pub mod report;
pub mod rules;
pub mod server;
pub mod service;
pub mod settings;
pub mod simulator;
pub mod sources;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
