//! Unit tests of the sans-IO request parser: heads, framing decisions, chunked decoding, limits.

use super::*;

const LIMITS: Limits = Limits {
    max_header_bytes: 256,
    max_body_bytes: 32,
};

fn head(raw: &str) -> Head {
    match parse_head(raw.as_bytes(), LIMITS) {
        Ok(Some(h)) => h,
        other => panic!("{raw:?}: {other:?}"),
    }
}

fn reject(raw: &str) -> Reject {
    match parse_head(raw.as_bytes(), LIMITS) {
        Err(r) => r,
        other => panic!("{raw:?}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_simple_get() {
    let raw = "GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Y:  z \r\n\r\nrest";
    let h = head(raw);
    assert_eq!(h.len, raw.len() - 4);
    assert_eq!(h.request.method(), "GET");
    assert_eq!(h.request.uri(), "/a?b=c");
    assert_eq!(h.request.version(), "HTTP/1.1");
    assert_eq!(h.request.header("x-y"), Some("z"));
    let headers: Vec<_> = h.request.headers().collect();
    assert_eq!(headers, [("Host", "x"), ("X-Y", "z")]);
    assert_eq!(h.framing, Framing::Empty);
    assert!(h.keep_alive && !h.expect_continue && !h.is_head_method);
}

#[test]
fn incomplete_heads_ask_for_more() {
    for raw in [
        "",
        "GET",
        "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n",
    ] {
        assert!(
            matches!(parse_head(raw.as_bytes(), LIMITS), Ok(None)),
            "{raw:?}"
        );
    }
}

#[test]
fn keep_alive_follows_version_and_connection() {
    assert!(!head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive);
    assert!(!head("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n").keep_alive);
    assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    assert_eq!(head("GET / HTTP/1.0\r\n\r\n").request.version(), "HTTP/1.0");
    assert!(head("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").is_head_method);
}

#[test]
fn body_framing() {
    let h = head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(h.framing, Framing::Length(5));
    let h = head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.framing, Framing::Empty);
    let h = head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n");
    assert_eq!(h.framing, Framing::Length(3));
    let h = head("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
    assert_eq!(h.framing, Framing::Chunked);
    let h = head("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    assert!(h.expect_continue);
    // HTTP/1.0 ignores the expectation.
    let h = head("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert!(!h.expect_continue);
}

#[test]
fn refusals() {
    let cases: &[(&str, u16)] = &[
        ("GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400),
        ("\0\0\0\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            400,
        ),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n\r\n",
            413,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            413,
        ),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n",
            417,
        ),
    ];
    for (raw, status) in cases {
        assert_eq!(reject(raw).status(), *status, "{raw:?}");
    }
}

#[test]
fn head_limits() {
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(300));
    assert_eq!(reject(&long), Reject::HeaderTooLarge);
    // Incomplete and already over the limit: refused without waiting for the rest.
    let partial = format!("GET /{}", "a".repeat(300));
    assert_eq!(reject(&partial), Reject::HeaderTooLarge);
    let limits = Limits {
        max_header_bytes: 1 << 20,
        ..LIMITS
    };
    let many = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        "Host: x\r\n".repeat(MAX_HEADERS + 1)
    );
    assert_eq!(
        parse_head(many.as_bytes(), limits).err(),
        Some(Reject::HeaderTooLarge)
    );
}

#[test]
fn non_utf8_header_values_are_kept_lossily() {
    let raw = b"GET / HTTP/1.1\r\nHost: x\r\nX: a\xffb\r\n\r\n";
    let h = parse_head(raw, LIMITS).unwrap().unwrap();
    assert_eq!(h.request.header("x"), Some("a\u{fffd}b"));
    assert_eq!(h.len, raw.len());
}

#[test]
fn head_end_detection() {
    assert!(has_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0));
    assert!(has_head_end(b"GET / HTTP/1.1\nHost: x\n\n", 0));
    assert!(!has_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
    // A marker split across two reads is found from where the second read began.
    let whole = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    for split in 1..whole.len() {
        assert!(has_head_end(whole, split), "split at {split}");
    }
    assert!(!has_head_end(b"\r\n\r\nGET", 4));
}

/// Feeds `raw` to a decoder in pieces of `step` bytes, as reads would bring it.
fn decode_in_steps(raw: &[u8], step: usize) -> Result<(Vec<u8>, usize), Reject> {
    let mut decoder = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut have = 0;
    loop {
        have = (have + step).min(raw.len());
        if let Some(n) = decoder.decode(&raw[..have], &mut out, LIMITS)? {
            return Ok((out, n));
        }
        assert!(have < raw.len(), "decoder wants more than the whole input");
    }
}

#[test]
fn chunked_bodies_decode_whatever_the_reads() {
    let raw = b"5\r\nhello\r\n1;ext=1\r\n \r\nA \r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    for step in 1..=raw.len() {
        let (body, n) = decode_in_steps(raw, step).unwrap();
        assert_eq!(body, b"hello 0123456789");
        assert_eq!(&raw[n..], b"NEXT");
    }
    assert_eq!(decode_in_steps(b"0\r\n\r\n", 1).unwrap(), (Vec::new(), 5));
}

#[test]
fn chunked_refusals() {
    let cases: &[(&[u8], Reject)] = &[
        (b"x\r\n", Reject::BadRequest("invalid chunk size")),
        (b"5x\r\nhello\r\n", Reject::BadRequest("invalid chunk size")),
        (b"\r\n", Reject::BadRequest("invalid chunk size")),
        (
            b"5\nhello\r\n",
            Reject::BadRequest("bare LF in chunked body"),
        ),
        (
            b"5\r\nhelloXX",
            Reject::BadRequest("chunk data not ended by CRLF"),
        ),
        (b"21\r\n", Reject::BodyTooLarge),
        (b"ffffffffffffffffff\r\n", Reject::BodyTooLarge),
        (b"10\r\n0123456789abcdef\r\n11\r\n", Reject::BodyTooLarge),
        (
            b"0\r\nX: y\n\r\n",
            Reject::BadRequest("bare LF in trailers"),
        ),
    ];
    for (raw, expected) in cases {
        let mut out = Vec::new();
        let got = ChunkedDecoder::new().decode(raw, &mut out, LIMITS);
        assert_eq!(got, Err(*expected), "{:?}", String::from_utf8_lossy(raw));
    }
    let long_line = format!("1;{}\r\n", "e".repeat(2000));
    let mut out = Vec::new();
    assert_eq!(
        ChunkedDecoder::new().decode(long_line.as_bytes(), &mut out, LIMITS),
        Err(Reject::BadRequest("chunk-size line too long"))
    );
    let long_trailers = format!("0\r\n{}", "T: v\r\n".repeat(100));
    assert_eq!(
        ChunkedDecoder::new().decode(long_trailers.as_bytes(), &mut out, LIMITS),
        Err(Reject::HeaderTooLarge)
    );
}

#[test]
fn many_tiny_chunks_cannot_grow_the_raw_body_without_bound() {
    // 1-byte chunks with long extensions: decoded size stays small, framing does not.
    let chunk = format!("1;{}\r\nx\r\n", "e".repeat(100));
    let raw = chunk.repeat(3);
    let mut out = Vec::new();
    let got = ChunkedDecoder::new().decode(raw.as_bytes(), &mut out, LIMITS);
    assert_eq!(got, Err(Reject::BodyTooLarge));
}
