#![no_main]
//! `cargo fuzz run rules`: see `okrsync::fuzzing::rules`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| okrsync::fuzzing::rules(data));
