#![no_main]
//! `cargo fuzz run spreadsheet`: see `okrsync::fuzzing::spreadsheet`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| okrsync::fuzzing::spreadsheet(data));
