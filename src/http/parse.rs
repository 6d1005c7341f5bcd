//! Sans-IO request parsing: the head (through `httparse`), how the body is framed, and chunked
//! decoding — each bounded by its limit. Nothing here reads a socket.

use std::ops::Range;

use super::message::Request;

/// How many header lines a request may have; more is answered 431.
pub(crate) const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (size and extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// Why a request is refused. Each closes the connection after its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// 400: the request does not parse, or is ambiguous (say two different lengths).
    BadRequest(&'static str),
    /// 408: the request did not arrive whole within the request timeout.
    Timeout,
    /// 413: the body is over the limit.
    BodyTooLarge,
    /// 417: an `Expect` other than `100-continue`.
    ExpectationFailed,
    /// 431: the head (or a chunked body's trailers) is over the limit, or has too many lines.
    HeaderTooLarge,
    /// 501: a transfer coding other than `chunked`.
    NotImplemented(&'static str),
}

impl Reject {
    pub(crate) fn status(self) -> u16 {
        match self {
            Reject::BadRequest(_) => 400,
            Reject::Timeout => 408,
            Reject::BodyTooLarge => 413,
            Reject::ExpectationFailed => 417,
            Reject::HeaderTooLarge => 431,
            Reject::NotImplemented(_) => 501,
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            Reject::BadRequest(why) | Reject::NotImplemented(why) => why,
            Reject::Timeout => "request not received in time",
            Reject::BodyTooLarge => "request body too large",
            Reject::ExpectationFailed => "unsupported expectation",
            Reject::HeaderTooLarge => "request head too large",
        }
    }
}

/// The limits a request is parsed under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_header_bytes: usize,
    pub(crate) max_body_bytes: usize,
}

/// How the body after the head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head: the request (body still empty) and what the connection must do.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) request: Request,
    /// The head's length in bytes, leading empty lines included.
    pub(crate) len: usize,
    pub(crate) framing: Framing,
    /// Whether the client wants the connection kept after this request.
    pub(crate) keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub(crate) expect_continue: bool,
    pub(crate) is_head_method: bool,
}

/// Where a request head being read stands, given the bytes not yet consumed (`unread`) and
/// how many of them an earlier call already scanned for the end of the head: parsed once its
/// blank line has arrived (not on every read), refused once it is over the limit.
/// `Ok(None)`: incomplete, read more.
///
/// How the bytes are cut into reads never changes the outcome: only the first
/// `max_header_bytes` bytes are parsed, so a head too long for the limit is 431 whether or
/// not it breaks the syntax further on, and a syntax error within the limit is 400 however
/// the head arrives.
pub(crate) fn head_step(
    unread: &[u8],
    scanned: usize,
    limits: Limits,
) -> Result<Option<Head>, Reject> {
    // Empty lines before a request are skipped (RFC 9112 §2.2), so they cannot end its head:
    // the end is looked for behind them, whichever read brought them.
    let lead = unread
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let after = &unread[lead..];
    if has_head_end(after, scanned.saturating_sub(lead)) || unread.len() > limits.max_header_bytes {
        parse_head(unread, limits)
    } else {
        Ok(None)
    }
}

/// Parses the head at the start of `buf`, within its first `max_header_bytes` bytes.
/// `Ok(None)`: incomplete, read more.
pub(crate) fn parse_head(buf: &[u8], limits: Limits) -> Result<Option<Head>, Reject> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let window = &buf[..buf.len().min(limits.max_header_bytes)];
    let len = match req.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_header_bytes => {
            return Err(Reject::HeaderTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Reject::HeaderTooLarge),
        Err(_) => return Err(Reject::BadRequest("malformed request head")),
    };
    if len > limits.max_header_bytes {
        return Err(Reject::HeaderTooLarge);
    }
    // Complete, so every field is there.
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(Reject::BadRequest("malformed request line"));
    };

    let mut text = String::with_capacity(len);
    let mut push = |s: &str| {
        let start = text.len();
        text.push_str(s);
        start..text.len()
    };
    let method_span = push(method);
    let uri_span = push(path);
    let mut headers: Vec<(Range<usize>, Range<usize>)> = Vec::with_capacity(req.headers.len());
    let mut framing = Framing::Empty;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let (mut close, mut keep_alive_token, mut expect_continue) = (false, false, false);
    let mut hosts = 0;
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(&value)?;
            if length.is_some_and(|l| l != n) {
                return Err(Reject::BadRequest("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if chunked {
                    return Err(Reject::BadRequest("chunked is not the final coding"));
                }
                if !coding.eq_ignore_ascii_case("chunked") {
                    return Err(Reject::NotImplemented("transfer coding not supported"));
                }
                chunked = true;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive_token |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if !value.trim().eq_ignore_ascii_case("100-continue") {
                return Err(Reject::ExpectationFailed);
            }
            expect_continue = minor == 1;
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        }
        let name_span = push(name);
        let value_span = push(&value);
        headers.push((name_span, value_span));
    }
    if minor == 1 && hosts != 1 {
        return Err(Reject::BadRequest(
            "an HTTP/1.1 request needs one Host header",
        ));
    }
    if chunked {
        // A length beside chunked is the classic request-smuggling ambiguity: refuse it.
        if length.is_some() {
            return Err(Reject::BadRequest("both Content-Length and chunked"));
        }
        if minor == 0 {
            return Err(Reject::BadRequest("chunked in an HTTP/1.0 request"));
        }
        framing = Framing::Chunked;
    } else if let Some(n) = length {
        if n > limits.max_body_bytes as u64 {
            return Err(Reject::BodyTooLarge);
        }
        // Cannot truncate: at most max_body_bytes, a usize.
        framing = if n == 0 {
            Framing::Empty
        } else {
            Framing::Length(n as usize)
        };
    }
    let keep_alive = !close && (minor == 1 || keep_alive_token);
    let is_head_method = method == "HEAD";
    Ok(Some(Head {
        request: Request {
            text,
            method: method_span,
            uri: uri_span,
            headers,
            minor_version: minor,
            body: Vec::new(),
        },
        len,
        framing,
        keep_alive,
        expect_continue,
        is_head_method,
    }))
}

/// A `Content-Length` value: digits only (no sign, no list).
fn parse_length(value: &str) -> Result<u64, Reject> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reject::BadRequest("invalid Content-Length"));
    }
    // All digits: only overflow can fail, and that is over any limit.
    v.parse().map_err(|_| Reject::BodyTooLarge)
}

/// Whether a blank line (the end of a head) is in `buf[from..]`, backing up over one split
/// across reads. Lets a head that trickles in be parsed once, not once per read.
pub(crate) fn has_head_end(buf: &[u8], from: usize) -> bool {
    let tail = &buf[from.min(buf.len()).saturating_sub(2)..];
    tail.windows(2)
        .enumerate()
        .any(|(i, w)| w == b"\n\n" || (w == b"\n\r" && tail.get(i + 2) == Some(&b'\n')))
}

/// Decodes a chunked body incrementally, over a buffer that grows between calls.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// Bytes of `input` already decoded.
    pos: usize,
    /// Bytes of framing seen (size lines, CRLFs, trailers), bounded so that tiny chunks with
    /// long extensions cannot make the raw body unbounded.
    overhead: usize,
    trailer_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(usize),
    DataEnd,
    Trailer,
    Done,
}

impl ChunkedDecoder {
    pub(crate) fn new() -> Self {
        ChunkedDecoder {
            state: State::Size,
            pos: 0,
            overhead: 0,
            trailer_bytes: 0,
        }
    }

    /// Decodes what `input` (the bytes after the head, as far as they have arrived) holds past
    /// the previous call, appending data to `out`. `Ok(Some(n))`: the body ended after `n`
    /// bytes of `input`; `Ok(None)`: read more.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limits: Limits,
    ) -> Result<Option<usize>, Reject> {
        let max_overhead = limits.max_body_bytes + limits.max_header_bytes;
        loop {
            let rest = &input[self.pos..];
            match self.state {
                State::Done => return Ok(Some(self.pos)),
                State::Size => {
                    let line = line(rest, MAX_CHUNK_LINE).map_err(|e| match e {
                        LineError::TooLong => Reject::BadRequest("chunk-size line too long"),
                        LineError::BareLf => Reject::BadRequest("bare LF in chunked body"),
                    })?;
                    let Some(line) = line else {
                        return Ok(None);
                    };
                    let size = chunk_size(&rest[..line - 2])?;
                    if size > (limits.max_body_bytes - out.len()) as u64 {
                        return Err(Reject::BodyTooLarge);
                    }
                    self.advance(line, max_overhead)?;
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::Data(size as usize)
                    };
                }
                State::Data(left) => {
                    let take = left.min(rest.len());
                    if take == 0 {
                        return Ok(None);
                    }
                    out.extend_from_slice(&rest[..take]);
                    self.pos += take;
                    self.state = if take == left {
                        State::DataEnd
                    } else {
                        State::Data(left - take)
                    };
                }
                State::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(None);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(Reject::BadRequest("chunk data not ended by CRLF"));
                    }
                    self.advance(2, max_overhead)?;
                    self.state = State::Size;
                }
                State::Trailer => {
                    let room = limits.max_header_bytes - self.trailer_bytes;
                    let line = line(rest, room + 2).map_err(|e| match e {
                        LineError::TooLong => Reject::HeaderTooLarge,
                        LineError::BareLf => Reject::BadRequest("bare LF in trailers"),
                    })?;
                    let Some(line) = line else {
                        return Ok(None);
                    };
                    self.trailer_bytes += line;
                    if self.trailer_bytes > limits.max_header_bytes {
                        return Err(Reject::HeaderTooLarge);
                    }
                    self.advance(line, max_overhead)?;
                    // Trailer fields are read and dropped; a blank line ends the body.
                    if line == 2 {
                        self.state = State::Done;
                    }
                }
            }
        }
    }

    fn advance(&mut self, n: usize, max_overhead: usize) -> Result<(), Reject> {
        self.pos += n;
        self.overhead += n;
        if self.overhead > max_overhead {
            return Err(Reject::BodyTooLarge);
        }
        Ok(())
    }
}

#[derive(Debug)]
enum LineError {
    TooLong,
    BareLf,
}

/// The length of the CRLF-ended line at the start of `buf`, CRLF included; `None` if it has not
/// all arrived. A bare LF, or a line longer than `max`, is an error.
fn line(buf: &[u8], max: usize) -> Result<Option<usize>, LineError> {
    match buf.iter().take(max).position(|&b| b == b'\n') {
        Some(i) if i == 0 || buf[i - 1] != b'\r' => Err(LineError::BareLf),
        Some(i) => Ok(Some(i + 1)),
        None if buf.len() >= max => Err(LineError::TooLong),
        None => Ok(None),
    }
}

/// The hexadecimal size at the start of a chunk-size line (CRLF removed); extensions after
/// `;` are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, Reject> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    let after_ws = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .map_or(&[][..], |i| &rest[i..]);
    if digits == 0 || after_ws.first().is_some_and(|&b| b != b';') {
        return Err(Reject::BadRequest("invalid chunk size"));
    }
    if digits > 15 {
        return Err(Reject::BodyTooLarge);
    }
    // At most 15 hex digits: always fits in a u64.
    line[..digits]
        .iter()
        .try_fold(0u64, |n, &b| {
            let d = (b as char).to_digit(16)?;
            Some(n * 16 + u64::from(d))
        })
        .ok_or(Reject::BadRequest("invalid chunk size"))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
