//! Server side of the WebSocket framing layer (RFC 6455): the decoder of client frames, with
//! permessage-deflate (RFC 7692) where it was negotiated. The encoder is in `ws_out.rs`.
//!
//! Header parsing is our own rather than tungstenite's `FrameHeader::parse`: that one
//! needs a `Cursor`, returns the length before we can veto it, and accepts a 64-bit
//! length with the top bit set. We still use tungstenite's `OpCode` to classify opcodes,
//! and its `FrameHeader::parse` in the tests to check our encoder.

use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::deflate::Inflate;
use super::message::{Message, ProtocolError};
pub(crate) use super::ws_out::{OpKind, close_payload, encode_deflated, encode_frame, header_len};

/// Something decoded from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inbound<'a> {
    /// A complete (possibly reassembled) data message.
    Message(Message<'a>),
    /// A ping with its payload.
    Ping(&'a [u8]),
    /// A pong with its payload.
    Pong(&'a [u8]),
    /// A close frame: the code if one was sent, and the reason (empty if none).
    Close(Option<u16>, &'a str),
}

/// Longest client frame header: 2 fixed bytes, 8 length bytes, 4 mask bytes.
const MAX_HEADER: usize = 14;

/// Past this capacity a scratch buffer is freed rather than kept for reuse, so one
/// large message does not pin memory for the rest of a long-lived connection.
const RETAIN_CAPACITY: usize = 4096;

/// Builds a 1002 error.
const fn protocol(reason: &'static str) -> ProtocolError {
    ProtocolError {
        close_code: 1002,
        reason,
    }
}

/// The frame or message exceeds the configured limit.
const TOO_BIG: ProtocolError = ProtocolError {
    close_code: 1009,
    reason: "message too big",
};

/// A text message or close reason is not UTF-8.
const BAD_UTF8: ProtocolError = ProtocolError {
    close_code: 1007,
    reason: "invalid UTF-8",
};

/// A fully parsed and validated frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// FIN bit.
    fin: bool,
    /// Never a reserved opcode: those are rejected while parsing.
    opcode: OpCode,
    /// Client masking key.
    mask: [u8; 4],
    /// Payload length, already checked against the size limit.
    len: usize,
    /// RSV1 on a data frame that starts a message: the message is compressed (RFC 7692).
    compressed: bool,
    /// Header length in bytes.
    size: usize,
}

/// Where a frame's payload ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// Delivered on its own: a control frame or an unfragmented data frame.
    Single,
    /// Appended to the fragment assembly buffer.
    Message,
}

/// A frame whose payload straddles reads.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Its header.
    header: Header,
    /// Which buffer collects its payload.
    dest: Dest,
    /// Payload bytes received so far (also the mask offset of the next byte).
    got: usize,
}

/// Incremental decoder of client frames. Allocates nothing until a frame straddles two
/// reads or a message is fragmented.
#[derive(Debug, Default)]
pub(crate) struct WsDecoder {
    /// Header bytes of a frame whose header straddles reads; a fixed array so that
    /// a split header never allocates.
    head: [u8; MAX_HEADER],
    /// How many bytes of `head` are filled.
    head_len: usize,
    /// The frame whose payload is being collected across reads.
    pending: Option<Pending>,
    /// Unmasked payload so far of a pending `Dest::Single` frame.
    payload: Vec<u8>,
    /// Unmasked payload of the fragmented message being assembled.
    message: Vec<u8>,
    /// Opcode (Text or Binary) of the fragmented message in progress.
    message_op: Option<OpCode>,
    /// Whether the fragmented message in progress is compressed.
    message_compressed: bool,
    /// The inflater where permessage-deflate was negotiated (RSV1 is an error without it);
    /// boxed, with its buffer, so that connections without it pay one pointer.
    inflate: Option<Box<Inflate>>,
    /// Set once a Close frame has been delivered.
    closed: bool,
}

impl WsDecoder {
    /// An empty decoder.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An empty decoder of a connection that negotiated permessage-deflate: compressed
    /// messages (RSV1) are inflated, keeping the client's context from one to the next if
    /// `client_takeover`.
    pub(crate) fn with_deflate(client_takeover: bool) -> Self {
        WsDecoder {
            inflate: Some(Box::new(Inflate::new(client_takeover))),
            ..Self::default()
        }
    }

    /// Decodes every complete frame in (previously buffered bytes ++ input), calling `on` for each
    /// inbound item in order. `input` may be modified (unmasking happens in place where possible).
    /// Bytes of an incomplete trailing frame are kept for the next call. After a Close has been
    /// delivered, all later input is ignored. Returns the first protocol violation.
    pub(crate) fn decode(
        &mut self,
        input: &mut [u8],
        max_message_size: usize,
        on: &mut dyn FnMut(Inbound<'_>),
    ) -> Result<(), ProtocolError> {
        let mut pos = 0;
        while !self.closed && pos < input.len() {
            if let Some(mut pending) = self.pending.take() {
                let take = (pending.header.len - pending.got).min(input.len() - pos);
                let chunk = &mut input[pos..pos + take];
                apply_mask(chunk, pending.header.mask, pending.got);
                pos += take;
                pending.got += take;
                match pending.dest {
                    Dest::Single => self.payload.extend_from_slice(chunk),
                    Dest::Message => self.message.extend_from_slice(chunk),
                }
                if pending.got < pending.header.len {
                    self.pending = Some(pending);
                } else {
                    self.finish_buffered(pending.header, pending.dest, max_message_size, on)?;
                }
                continue;
            }

            let Some(header) = self.next_header(&input[pos..], max_message_size, &mut pos)? else {
                break;
            };
            let dest = self.start_frame(&header, max_message_size)?;
            let avail = input.len() - pos;
            if avail >= header.len {
                let payload = &mut input[pos..pos + header.len];
                pos += header.len;
                apply_mask(payload, header.mask, 0);
                self.finish_in_place(header, dest, payload, max_message_size, on)?;
            } else {
                // The loop's first branch collects what is here. No reserve(header.len):
                // a client could claim a large frame and stall, and we only want to pay
                // for bytes that actually arrived.
                self.pending = Some(Pending {
                    header,
                    dest,
                    got: 0,
                });
            }
        }
        if self.closed {
            self.release();
        }
        Ok(())
    }

    /// True once a Close frame has been decoded.
    // The core loop tracks the peer's close itself; kept for the decoder's own tests.
    #[allow(dead_code)]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes held between calls (partial frame + fragments), for memory accounting.
    // Per-connection memory accounting for stats; exercised by the codec tests meanwhile.
    #[allow(dead_code)]
    pub(crate) fn buffered(&self) -> usize {
        self.head_len + self.payload.len() + self.message.len()
    }

    /// Whether RSV1 may mark a compressed message.
    fn deflate(&self) -> bool {
        self.inflate.is_some()
    }

    /// Parses the next header from the saved header bytes plus `avail`, advancing
    /// `pos` past the bytes it used. `None` means `avail` ran out (the bytes are saved).
    fn next_header(
        &mut self,
        avail: &[u8],
        max_message_size: usize,
        pos: &mut usize,
    ) -> Result<Option<Header>, ProtocolError> {
        if self.head_len == 0 {
            if let Some(header) = parse_header(avail, max_message_size, self.deflate())? {
                *pos += header.size;
                return Ok(Some(header));
            }
            // parse_header only answers None for fewer than MAX_HEADER bytes, so this fits.
            for (slot, byte) in self.head.iter_mut().zip(avail) {
                *slot = *byte;
            }
            self.head_len = avail.len().min(MAX_HEADER);
            *pos += self.head_len;
            return Ok(None);
        }
        // Top the saved bytes up to a full header's worth; whatever the header does not
        // use stays in `avail` because `pos` only advances by what the header consumed.
        let old = self.head_len;
        let n = (MAX_HEADER - old).min(avail.len());
        self.head[old..old + n].copy_from_slice(&avail[..n]);
        match parse_header(&self.head[..old + n], max_message_size, self.deflate())? {
            Some(header) => {
                self.head_len = 0;
                *pos += header.size - old;
                Ok(Some(header))
            }
            None => {
                self.head_len = old + n;
                *pos += n;
                Ok(None)
            }
        }
    }

    /// Checks the frame against the fragmentation state and decides where its payload goes.
    fn start_frame(
        &mut self,
        header: &Header,
        max_message_size: usize,
    ) -> Result<Dest, ProtocolError> {
        match header.opcode {
            OpCode::Data(Data::Continue) => {
                if self.message_op.is_none() {
                    return Err(protocol("continuation without a message"));
                }
                // The frame alone fits (parse_header checked); the message must too.
                if self.message.len().saturating_add(header.len) > max_message_size {
                    return Err(TOO_BIG);
                }
                Ok(Dest::Message)
            }
            OpCode::Data(_) => {
                if self.message_op.is_some() {
                    return Err(protocol("new message inside a fragmented one"));
                }
                if header.fin {
                    Ok(Dest::Single)
                } else {
                    self.message_op = Some(header.opcode);
                    self.message_compressed = header.compressed;
                    Ok(Dest::Message)
                }
            }
            OpCode::Control(_) => Ok(Dest::Single),
        }
    }

    /// Completes a frame whose whole payload sat in the input.
    fn finish_in_place(
        &mut self,
        header: Header,
        dest: Dest,
        payload: &[u8],
        max: usize,
        on: &mut dyn FnMut(Inbound<'_>),
    ) -> Result<(), ProtocolError> {
        match dest {
            Dest::Single => {
                let result = expand(header.compressed, payload, &mut self.inflate, max)
                    .and_then(|data| deliver(header.opcode, data, &mut self.closed, on));
                self.recycle_inflated();
                result
            }
            Dest::Message => {
                self.message.extend_from_slice(payload);
                self.finish_buffered(header, dest, max, on)
            }
        }
    }

    /// Completes a frame whose payload has been collected in its buffer.
    fn finish_buffered(
        &mut self,
        header: Header,
        dest: Dest,
        max: usize,
        on: &mut dyn FnMut(Inbound<'_>),
    ) -> Result<(), ProtocolError> {
        match dest {
            Dest::Single => {
                let result = expand(header.compressed, &self.payload, &mut self.inflate, max)
                    .and_then(|data| deliver(header.opcode, data, &mut self.closed, on));
                recycle(&mut self.payload);
                self.recycle_inflated();
                result
            }
            Dest::Message if header.fin => self.finish_message(max, on),
            Dest::Message => Ok(()),
        }
    }

    /// Delivers the assembled fragmented message and resets the assembly state.
    fn finish_message(
        &mut self,
        max: usize,
        on: &mut dyn FnMut(Inbound<'_>),
    ) -> Result<(), ProtocolError> {
        let compressed = std::mem::take(&mut self.message_compressed);
        let result = match self.message_op.take() {
            Some(op) => expand(compressed, &self.message, &mut self.inflate, max)
                .and_then(|data| deliver(op, data, &mut self.closed, on)),
            // start_frame routes nothing to the message buffer without an opcode.
            None => Err(protocol("continuation without a message")),
        };
        recycle(&mut self.message);
        self.recycle_inflated();
        result
    }

    /// Empties the inflater's message buffer, if there is an inflater.
    fn recycle_inflated(&mut self) {
        if let Some(inflate) = self.inflate.as_deref_mut() {
            inflate.recycle();
        }
    }

    /// Drops every buffer once the stream is over.
    fn release(&mut self) {
        *self = Self {
            closed: true,
            ..Self::default()
        };
    }
}

/// A compressed message's payload inflated (bounded by `max`) into the inflater's buffer; any
/// other payload as it is.
fn expand<'a>(
    compressed: bool,
    payload: &'a [u8],
    inflate: &'a mut Option<Box<Inflate>>,
    max: usize,
) -> Result<&'a [u8], ProtocolError> {
    if !compressed {
        return Ok(payload);
    }
    // parse_header lets RSV1 through only where an inflater exists.
    let Some(inflate) = inflate.as_deref_mut() else {
        return Err(protocol("reserved bits set"));
    };
    inflate.message(payload, max)
}

/// Parses and validates a client frame header from the start of `buf`; RSV1 marks a
/// compressed message if `deflate` was negotiated. `None` means more bytes are needed; every
/// check that the available bytes allow is made first, so a bad frame is refused as early as
/// possible.
fn parse_header(
    buf: &[u8],
    max_message_size: usize,
    deflate: bool,
) -> Result<Option<Header>, ProtocolError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let compressed = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 || (compressed && !deflate) {
        return Err(protocol("reserved bits set"));
    }
    let fin = b0 & 0x80 != 0;
    let opcode = OpCode::from(b0 & 0x0F);
    let control = match opcode {
        OpCode::Data(Data::Reserved(_)) | OpCode::Control(Control::Reserved(_)) => {
            return Err(protocol("reserved opcode"));
        }
        OpCode::Control(_) => true,
        OpCode::Data(_) => false,
    };
    if b1 & 0x80 == 0 {
        return Err(protocol("unmasked client frame"));
    }
    let len7 = b1 & 0x7F;
    if control && (!fin || len7 > 125) {
        return Err(protocol("invalid control frame"));
    }
    // RFC 7692 §6: RSV1 only on the first frame of a data message.
    if compressed && (control || opcode == OpCode::Data(Data::Continue)) {
        return Err(protocol("RSV1 on a control or continuation frame"));
    }
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let Some(ext_bytes) = buf.get(2..2 + ext) else {
        return Ok(None);
    };
    let len = match ext {
        0 => u64::from(len7),
        _ => ext_bytes
            .iter()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b)),
    };
    if len >> 63 != 0 {
        return Err(protocol("frame length has the top bit set"));
    }
    // Checked on the declared length, before any payload is buffered.
    let len = match usize::try_from(len) {
        Ok(len) if len <= max_message_size => len,
        _ => return Err(TOO_BIG),
    };
    let size = 2 + ext + 4;
    let Some(&[m0, m1, m2, m3]) = buf.get(2 + ext..size) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask: [m0, m1, m2, m3],
        len,
        size,
        compressed,
    }))
}

/// Delivers one complete control frame or data message.
fn deliver(
    opcode: OpCode,
    payload: &[u8],
    closed: &mut bool,
    on: &mut dyn FnMut(Inbound<'_>),
) -> Result<(), ProtocolError> {
    let item = match opcode {
        OpCode::Data(Data::Text) => {
            let text = std::str::from_utf8(payload).map_err(|_| BAD_UTF8)?;
            Inbound::Message(Message::Text(text))
        }
        OpCode::Data(Data::Binary) => Inbound::Message(Message::Binary(payload)),
        OpCode::Control(Control::Ping) => Inbound::Ping(payload),
        OpCode::Control(Control::Pong) => Inbound::Pong(payload),
        OpCode::Control(Control::Close) => {
            let (code, reason) = parse_close(payload)?;
            *closed = true;
            Inbound::Close(code, reason)
        }
        // Continuations are routed to the message buffer and reserved opcodes never
        // get past parse_header; refuse rather than panic should that ever change.
        OpCode::Data(_) | OpCode::Control(_) => return Err(protocol("unexpected opcode")),
    };
    on(item);
    Ok(())
}

/// Splits a Close payload into its optional code and reason, validating both.
fn parse_close(payload: &[u8]) -> Result<(Option<u16>, &str), ProtocolError> {
    match payload {
        [] => Ok((None, "")),
        [_] => Err(protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_allowed(code) {
                return Err(protocol("close code not allowed"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| BAD_UTF8)?;
            Ok((Some(code), reason))
        }
    }
}

/// Whether a client may send this close code (RFC 6455 §7.4 and the IANA registry).
///
/// Own rule rather than tungstenite's `CloseCode::is_allowed`, which also refuses the
/// registered 1014 (bad gateway); otherwise the two agree (see the tests).
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs `buf` with the mask, where `buf[0]` is payload byte number `offset`.
/// Eight bytes at a time through a `u64`: byte order is irrelevant to XOR as long as
/// the mask word is built the same way as the data words.
fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut m = mask;
    m.rotate_left(offset % 4);
    let word = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    // Whole words cover a multiple of 4 bytes, so the tail starts at mask index 0 again.
    for (byte, key) in chunks.into_remainder().iter_mut().zip(m.iter().cycle()) {
        *byte ^= key;
    }
}

/// Empties a scratch buffer, keeping its allocation only if it is small.
fn recycle(buf: &mut Vec<u8>) {
    if buf.capacity() > RETAIN_CAPACITY {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

#[cfg(test)]
#[path = "ws_tests.rs"]
mod tests;
