#![no_main]
//! `cargo fuzz run sheet_answer`: see `okrsync::fuzzing::sheet_answer`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| okrsync::fuzzing::sheet_answer(data));
