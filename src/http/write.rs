//! Response heads as bytes: the status line, the handler's headers, and the framing headers the
//! server owns (`Content-Length`, `Connection`, `Date`).

use std::cell::Cell;
use std::io::{self, IoSlice, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use super::message::Response;

/// The interim answer to `Expect: 100-continue`.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Checks what the server cannot send as it is: a status outside 200..=999, a header name that
/// is not a token, a value with a control character (which would split the head).
pub(crate) fn check(response: &Response) -> Result<(), String> {
    if !(200..=999).contains(&response.status) {
        return Err(format!("status {} cannot be sent", response.status));
    }
    for (name, value) in &response.headers {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!("header name {name:?} is not a token"));
        }
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(format!(
                "header {name:?} has a control character in its value"
            ));
        }
    }
    Ok(())
}

/// Whether the handler asked for the connection to close after this response.
pub(crate) fn asks_close(response: &Response) -> bool {
    response.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("connection")
            && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
    })
}

/// How a checked response goes out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framing {
    pub(crate) keep_alive: bool,
    /// The request was HTTP/1.0: keeping the connection must be said.
    pub(crate) http10: bool,
    /// A `HEAD` request: the length is announced, the body is not sent.
    pub(crate) head_only: bool,
}

/// Appends the head of a checked response to `out`; returns whether a body follows.
pub(crate) fn head(out: &mut Vec<u8>, response: &Response, framing: Framing) -> bool {
    let status = response.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    push_number(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(&date_now());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &response.headers {
        let owned = ["content-length", "transfer-encoding", "connection"];
        if owned.iter().any(|o| name.eq_ignore_ascii_case(o)) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // 204 and 304 carry no body and, for 204, must not announce one.
    let bodiless = status == 204 || status == 304;
    if !bodiless {
        out.extend_from_slice(b"Content-Length: ");
        push_number(out, response.body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    if !framing.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if framing.http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    !bodiless && !framing.head_only && !response.body.is_empty()
}

/// The head of a response the server makes itself (a refused request): plain text, closing.
pub(crate) fn error_response(status: u16, message: &str) -> Response {
    Response::new(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(format!("{status} {}: {message}\n", reason(status)))
}

/// Writes `a` then `b` with as few system calls as the kernel allows (one `writev` mostly).
pub(crate) fn write_two(mut w: impl Write, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        match w.write_vectored(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) if n < a.len() => a = &a[n..],
            Ok(n) => {
                b = &b[n - a.len()..];
                a = &[];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn push_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// RFC 9110's token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The reason phrase of common statuses; others get none (the phrase is optional).
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

thread_local! {
    /// The `Date` value of the current second: formatted once per second per thread.
    static DATE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
}

fn date_now() -> [u8; 29] {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cache| {
        let (at, text) = cache.get();
        if at == secs {
            return text;
        }
        let text = http_date(secs);
        cache.set((secs, text));
        text
    })
}

/// An IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(secs: u64) -> [u8; 29] {
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (year, month, day) = civil_from_days(days as i64);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = format!(
        "{weekday}, {day:02} {} {year:04} {h:02}:{m:02}:{s:02} GMT",
        months[(month - 1) as usize]
    );
    let mut out = [b' '; 29];
    let n = text.len().min(29);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31): Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(response: &Response, framing: Framing) -> (String, bool) {
        let mut out = Vec::new();
        let body = head(&mut out, response, framing);
        let s = String::from_utf8(out).unwrap();
        // The date changes; keep the rest exact.
        let date_line = s.lines().nth(1).unwrap().to_owned();
        assert!(date_line.starts_with("Date: ") && date_line.ends_with(" GMT"));
        (s.replace(&format!("{date_line}\r\n"), ""), body)
    }

    const KEEP: Framing = Framing {
        keep_alive: true,
        http10: false,
        head_only: false,
    };

    #[test]
    fn heads() {
        let r = Response::text("hi").header("X-A", "1");
        assert_eq!(
            text(&r, KEEP),
            (
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-A: 1\r\n\
                 Content-Length: 2\r\n\r\n"
                    .to_owned(),
                true
            )
        );
        let closing = Framing {
            keep_alive: false,
            ..KEEP
        };
        let r = Response::new(299)
            .header("content-length", "7")
            .header("Connection", "x");
        assert_eq!(
            text(&r, closing),
            (
                "HTTP/1.1 299 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
                false
            )
        );
        let http10 = Framing {
            http10: true,
            head_only: true,
            ..KEEP
        };
        assert_eq!(
            text(&Response::text("abc"), http10).0,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\
             Connection: keep-alive\r\n\r\n"
        );
        assert!(!text(&Response::text("abc"), http10).1, "HEAD: no body");
        assert_eq!(
            text(&Response::new(204).body("x"), KEEP),
            ("HTTP/1.1 204 No Content\r\n\r\n".to_owned(), false)
        );
    }

    #[test]
    fn checks() {
        assert!(check(&Response::new(200).header("A-b", "c\td")).is_ok());
        assert!(check(&Response::new(101)).is_err());
        assert!(check(&Response::new(1000)).is_err());
        assert!(check(&Response::new(200).header("A b", "c")).is_err());
        assert!(check(&Response::new(200).header("", "c")).is_err());
        assert!(check(&Response::new(200).header("A", "c\r\nX: y")).is_err());
        assert!(asks_close(
            &Response::new(200).header("connection", "Upgrade, Close")
        ));
        assert!(!asks_close(
            &Response::new(200).header("connection", "keep-alive")
        ));
    }

    #[test]
    fn dates_and_numbers() {
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&http_date(4_102_444_799), b"Thu, 31 Dec 2099 23:59:59 GMT");
        let mut out = Vec::new();
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            out.clear();
            push_number(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn write_two_survives_short_writes() {
        struct Trickle(Vec<u8>);
        impl Write for Trickle {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let n = buf.len().min(3);
                self.0.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut t = Trickle(Vec::new());
        write_two(&mut t, b"head-", b"and body").unwrap();
        assert_eq!(t.0, b"head-and body");
    }
}
