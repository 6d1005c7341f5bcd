//! The codec of messages between cluster instances: see `corepush::fuzzing::cluster_wire`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corepush::fuzzing::cluster_wire(data));
