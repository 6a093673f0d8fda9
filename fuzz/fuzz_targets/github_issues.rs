#![no_main]
//! `cargo fuzz run github_issues`: see `okrsync::fuzzing::github_issues`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| okrsync::fuzzing::github_issues(data));
