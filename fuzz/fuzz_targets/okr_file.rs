#![no_main]
//! `cargo fuzz run okr_file`: see `okrsync::fuzzing::okr_file`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| okrsync::fuzzing::okr_file(data));
