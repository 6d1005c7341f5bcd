//! The newline and u32-length TCP framers: see `corepush::fuzzing::tcp_framers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corepush::fuzzing::tcp_framers(data));
