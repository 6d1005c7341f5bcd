//! The WebSocket decoder of a connection with permessage-deflate, inflating under the size
//! limit: see `corepush::fuzzing::ws_deflate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corepush::fuzzing::ws_deflate(data));
