//! Integration tests: one binary, driving the real engine, binary and HTTP server against
//! the Jira simulator over real HTTP, on SQLite and (when OKRSYNC_TEST_DATABASE_URL is set)
//! PostgreSQL.

mod allocation;
mod api;
mod bad_input;
mod browser;
mod cli;
mod crash;
mod daemon;
mod db_faults;
mod digest;
mod epics;
mod equivalence;
mod faults;
mod first_day;
mod github;
mod gitlab;
mod helpers;
mod judgement;
mod ledger;
mod notify;
mod rules_cli;
mod secrets;
mod service;
mod sheet;
mod sync;
mod writeback;
