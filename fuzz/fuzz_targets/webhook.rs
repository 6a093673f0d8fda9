#![no_main]
//! `cargo fuzz run webhook`: see `okrsync::fuzzing::webhook`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| okrsync::fuzzing::webhook(data));
