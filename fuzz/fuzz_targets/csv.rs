#![no_main]
//! `cargo fuzz run csv`: see `okrsync::fuzzing::csv`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| okrsync::fuzzing::csv(data));
