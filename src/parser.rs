//! Data parsers: how encoded sends turn a value into bytes.

use std::fmt;

use crate::error::{Error, Result};

/// Turns values into message bytes and back, for a server's encoded sends
/// ([`Server::send`](crate::Server::send) and friends) and worker messages.
///
/// The default, [`JsonParser`], writes compact JSON text.
pub trait DataParser: Send + Sync + fmt::Debug + 'static {
    /// Encodes a value.
    fn encode(&self, value: &serde_json::Value) -> Result<Vec<u8>>;

    /// Decodes bytes produced by [`encode`](DataParser::encode) (or sent by a client).
    fn decode(&self, bytes: &[u8]) -> Result<serde_json::Value>;

    /// Whether the encoded bytes are text (WebSocket text frames) rather than binary.
    /// Defaults to `true`.
    fn is_text(&self) -> bool {
        true
    }

    /// Whether [`encode`](DataParser::encode) is exactly `serde_json` compact output, so the
    /// facade may serialize values directly, without building a `serde_json::Value` first.
    /// Defaults to `false`; only [`JsonParser`] says `true`.
    fn is_json(&self) -> bool {
        false
    }
}

/// Compact JSON through `serde_json`: the default parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonParser;

impl DataParser for JsonParser {
    fn encode(&self, value: &serde_json::Value) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(value)?)
    }

    fn decode(&self, bytes: &[u8]) -> Result<serde_json::Value> {
        Ok(serde_json::from_slice(bytes)?)
    }

    fn is_json(&self) -> bool {
        true
    }
}

/// Encodes `data` with `parser`, taking the direct path for JSON.
pub(crate) fn encode_with<T: serde::Serialize + ?Sized>(
    parser: &dyn DataParser,
    data: &T,
) -> Result<Vec<u8>> {
    if parser.is_json() {
        serde_json::to_vec(data).map_err(Error::from)
    } else {
        parser.encode(&serde_json::to_value(data)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Upper;
    impl DataParser for Upper {
        fn encode(&self, value: &serde_json::Value) -> Result<Vec<u8>> {
            Ok(value.to_string().to_uppercase().into_bytes())
        }
        fn decode(&self, bytes: &[u8]) -> Result<serde_json::Value> {
            Ok(serde_json::from_slice(bytes)?)
        }
    }

    #[test]
    fn json_takes_the_direct_path_and_custom_parsers_get_a_value() {
        let data = serde_json::json!({"a": "b"});
        assert_eq!(encode_with(&JsonParser, &data).unwrap(), br#"{"a":"b"}"#);
        assert_eq!(encode_with(&Upper, &data).unwrap(), br#"{"A":"B"}"#);
        assert_eq!(
            JsonParser.decode(br#"{"a":"b"}"#).unwrap(),
            serde_json::json!({"a": "b"})
        );
        assert!(matches!(JsonParser.decode(b"{"), Err(Error::Encode(_))));
    }
}
