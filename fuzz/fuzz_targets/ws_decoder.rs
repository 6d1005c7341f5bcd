//! The WebSocket client-frame decoder and the server's encoder: see
//! `corepush::fuzzing::ws_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corepush::fuzzing::ws_decoder(data));
