//! The protocol between gateways and business processes: see `corepush::fuzzing::gateway_proto`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corepush::fuzzing::gateway_proto(data));
