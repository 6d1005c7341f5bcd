//! The request-scoped server's request parser: see `corepush::fuzzing::http_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corepush::fuzzing::http_request(data));
