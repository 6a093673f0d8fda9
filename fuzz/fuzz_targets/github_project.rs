#![no_main]
//! `cargo fuzz run github_project`: see `okrsync::fuzzing::github_project`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| okrsync::fuzzing::github_project(data));
