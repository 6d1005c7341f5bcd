//! The settings of WebSocket compression (permessage-deflate, RFC 7692).

/// permessage-deflate (RFC 7692) on a WebSocket server: set with
/// [`ServerConfig::permessage_deflate`](crate::ServerConfig::permessage_deflate), off unless
/// set. Each client that offers the extension (every browser does) and whose offer the server
/// can honor gets its messages compressed; the others get them as they are.
///
/// By default the server keeps no compression context between messages
/// (`server_no_context_takeover`), so a message to many clients is compressed **once** and
/// the same compressed frame goes to every client that negotiated the extension, as the plain
/// frame goes to the others. With
/// [`server_context_takeover`](DeflateConfig::server_context_takeover) each connection keeps
/// its own compressor: smaller messages, but a compression per recipient and about 300 KiB of
/// compressor state per connection.
///
/// What a client sends compressed is inflated in pieces and refused with close code 1009 as
/// soon as it grows past [`max_message_size`](crate::ServerConfig::max_message_size): a
/// compression bomb never gets its full size allocated.
///
/// ```
/// use corepush::{DeflateConfig, ServerConfig};
///
/// let config = ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
///     .permessage_deflate(DeflateConfig::default().min_size(256).level(3));
/// assert_eq!(config.permessage_deflate.map(|d| d.min_size), Some(256));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The compression level, 0 (none) to 9 (smallest, slowest). Defaults to 6.
    pub level: u32,
    /// Messages whose payload is shorter than this many bytes go out uncompressed (RFC 7692
    /// allows it message by message): on small messages deflate saves little and costs the
    /// same fixed work. A message that compression would not make smaller goes out plain too.
    /// Defaults to 64.
    pub min_size: usize,
    /// Whether each connection keeps its compression context from message to message
    /// (smaller output, one compressor per connection and per message sent). Clients that ask
    /// for `server_no_context_takeover` get none all the same. Defaults to `false`: the server
    /// answers `server_no_context_takeover` and compresses a message to many clients once.
    pub server_context_takeover: bool,
    /// Whether clients are asked not to keep their compression context between messages
    /// (`client_no_context_takeover` in every answer), so that the server's inflater holds no
    /// history between them. Defaults to `false`: the answer carries it only where the
    /// client's offer did.
    pub client_no_context_takeover: bool,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            level: 6,
            min_size: 64,
            server_context_takeover: false,
            client_no_context_takeover: false,
        }
    }
}

impl DeflateConfig {
    /// Sets [`level`](DeflateConfig::level) (0 to 9; checked when the runtime starts).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level;
        self
    }

    /// Sets [`min_size`](DeflateConfig::min_size).
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }

    /// Sets [`server_context_takeover`](DeflateConfig::server_context_takeover).
    pub fn server_context_takeover(mut self, keep: bool) -> Self {
        self.server_context_takeover = keep;
        self
    }

    /// Sets [`client_no_context_takeover`](DeflateConfig::client_no_context_takeover).
    pub fn client_no_context_takeover(mut self, ask: bool) -> Self {
        self.client_no_context_takeover = ask;
        self
    }
}
