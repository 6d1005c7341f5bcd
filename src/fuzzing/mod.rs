//! Drivers for the fuzz targets in `fuzz/` (cargo-fuzz and libFuzzer), compiled only with the
//! `fuzzing` feature and not part of the API.
//!
//! Each target is one function taking the fuzzer's raw bytes: it reads its parameters (the
//! size limit, where the stream is cut into reads) from the front of the input, runs a codec
//! the way a connection does — input arriving in arbitrary pieces — and panics when an
//! invariant breaks. The invariants, for every codec:
//!
//! * no panic, whatever the input;
//! * no message over the size limit is ever delivered;
//! * how the stream is cut into reads changes nothing: the same messages, the same error,
//!   the same bytes held back;
//! * what was decoded, encoded again and decoded again, is the same messages;
//! * what the encoder makes of arbitrary payloads, the decoder gives back.
//!
//! Adding a target (the cluster message codec, say) takes a module here with a
//! `pub fn target(data: &[u8])`, a file in `fuzz/fuzz_targets/` calling it, a `[[bin]]` in
//! `fuzz/Cargo.toml`, and a seed directory in `fuzz/corpus/`.

mod deflate;
mod gateway;
mod http;
mod input;
mod tcp;
mod wire;
mod ws;

pub use deflate::ws_deflate;
pub use gateway::gateway_proto;
pub use http::{HttpItem, PortItem, http_request, parse_requests, plain_request, read_port};
pub use tcp::{Decoded, decode_length, decode_lines, tcp_framers};
pub use wire::cluster_wire;
pub use ws::{WsDecoded, WsItem, decode_ws, mask_frame, ws_decoder};

#[cfg(test)]
mod tests;
