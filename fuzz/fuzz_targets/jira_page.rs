#![no_main]
//! `cargo fuzz run jira_page`: see `okrsync::fuzzing::jira_page`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| okrsync::fuzzing::jira_page(data));
