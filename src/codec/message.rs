//! What a codec hands over: a client's message, or the protocol error that ends the
//! connection.

/// A complete message received from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (WebSocket text frame; always valid UTF-8).
    Text(&'a str),
    /// A binary message (WebSocket binary frame, or one TCP frame).
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The payload as bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The payload as text if it is UTF-8 (always for Text).
    pub fn as_text(&self) -> Option<&'a str> {
        match *self {
            Message::Text(text) => Some(text),
            // TCP framers only produce Binary, so line protocols still get text this way.
            Message::Binary(bytes) => std::str::from_utf8(bytes).ok(),
        }
    }

    /// True for a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }
}

/// A protocol violation: the connection must be closed with this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProtocolError {
    /// WebSocket close code (RFC 6455 §7.4); TCP transports log it.
    pub(crate) close_code: u16,
    /// Short human-readable cause, small enough for a Close frame.
    pub(crate) reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::Message;

    #[test]
    fn message_accessors() {
        let text = Message::Text("héllo");
        assert_eq!(text.as_bytes(), "héllo".as_bytes());
        assert_eq!(text.as_text(), Some("héllo"));
        assert!(text.is_text());

        let utf8 = Message::Binary(b"plain");
        assert_eq!(utf8.as_bytes(), b"plain");
        assert_eq!(utf8.as_text(), Some("plain"));
        assert!(!utf8.is_text());

        let raw = Message::Binary(&[0xff, 0xfe]);
        assert_eq!(raw.as_text(), None);
        assert_eq!(raw.as_bytes(), &[0xff, 0xfe]);
    }
}
