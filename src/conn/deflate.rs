//! A connection's outbound side of permessage-deflate: which form of a frame it is sent — the
//! plain frame, the compressed frame shared with every other such client, or one compressed
//! with its own context.

use flate2::Compress;

use crate::codec::Frame;
use crate::codec::deflate::{compress, compressor};
use crate::codec::ws::encode_deflated;
use crate::compression::DeflateConfig;

/// The outbound compression state of a connection that negotiated permessage-deflate.
#[derive(Debug)]
pub(crate) struct Deflater {
    level: u32,
    min_size: usize,
    /// The connection's own compressor, where server context takeover was agreed.
    context: Option<Box<Compress>>,
}

/// The form of a frame that goes to one connection.
#[derive(Debug)]
pub(crate) enum Form {
    /// The plain frame.
    Plain,
    /// The frame's shared compressed form ([`Frame::deflated_bytes`]).
    Shared,
    /// A frame compressed for this connection alone.
    Own(Vec<u8>),
}

impl Deflater {
    /// The state for a connection; `takeover` if the server keeps its context.
    pub(crate) fn new(config: &DeflateConfig, takeover: bool) -> Self {
        Deflater {
            level: config.level,
            min_size: config.min_size,
            context: takeover.then(|| Box::new(compressor(config.level))),
        }
    }

    /// Whether the connection keeps a compression context (server context takeover): then
    /// every message compressed for it must be sent.
    pub(crate) fn keeps_context(&self) -> bool {
        self.context.is_some()
    }

    /// Which form of `frame` this connection gets; `made` is set if a compression ran for it.
    pub(crate) fn form(&mut self, frame: &Frame, made: &mut bool) -> Form {
        let Some((op, payload)) = frame.ws_payload() else {
            return Form::Plain;
        };
        if payload.len() < self.min_size {
            return Form::Plain;
        }
        let Some(context) = self.context.as_deref_mut() else {
            return match frame.deflated(self.level, made) {
                Some(_) => Form::Shared,
                None => Form::Plain,
            };
        };
        *made = true;
        let mut packed = Vec::with_capacity(payload.len() / 2 + 16);
        if !compress(context, payload, &mut packed) {
            // The context is in an unknown state: start the next message without one. Never
            // seen in practice; the plain frame is always a valid message.
            context.reset();
            return Form::Plain;
        }
        let mut out = Vec::with_capacity(packed.len() + 10);
        encode_deflated(&mut out, op, &packed);
        Form::Own(out)
    }
}
