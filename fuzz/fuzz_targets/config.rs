#![no_main]
//! `cargo fuzz run config`: see `okrsync::fuzzing::config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| okrsync::fuzzing::config(data));
