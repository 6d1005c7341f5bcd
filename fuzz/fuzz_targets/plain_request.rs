//! The push port's request-head parser: see `corepush::fuzzing::plain_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corepush::fuzzing::plain_request(data));
