//! Configuration: plain data with defaults, validated when the runtime starts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::parser::{DataParser, JsonParser};

/// The wire protocol a server speaks to its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// WebSocket (RFC 6455): HTTP/1.1 upgrade, then text and binary messages.
    WebSocket,
    /// TCP, each message ended by `\n` (a trailing `\r` is stripped on input).
    TcpLines,
    /// TCP, each message preceded by its length as a big-endian `u32`.
    TcpLength,
}

/// Which backend carries the pushes of a server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BackendConfig {
    /// All core loops of this process. Defaults to this.
    #[default]
    Local,
    /// The request-scoped no-op backend: every push returns 0, `exists` is false, counts are 0.
    Fpm,
}

/// One named server of a runtime: where it listens, what it speaks, how it encodes.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The server's name, for [`get_server`](crate::get_server). Must be unique in the runtime.
    pub name: String,
    /// The address to listen on. Port 0 picks a free port; read it back with
    /// [`Runtime::local_addr`](crate::Runtime::local_addr).
    pub addr: SocketAddr,
    /// The wire protocol.
    pub protocol: Protocol,
    /// The parser of encoded sends. Defaults to [`JsonParser`].
    pub parser: Arc<dyn DataParser>,
    /// The backend. Defaults to [`BackendConfig::Local`].
    pub backend: BackendConfig,
    /// The largest message a client may send, in bytes; a larger one closes the connection
    /// (WebSocket close code 1009). Defaults to 1 MiB.
    pub max_message_size: usize,
    /// How long a WebSocket client may take to complete its handshake. Defaults to 10 s.
    pub handshake_timeout: Duration,
    /// Whether the WebSocket upgrade request stays readable through
    /// [`Context::request`](crate::Context::request) after `on_open`. Defaults to `false`: it
    /// is there in `on_open` (keep what you need with [`Context::set`](crate::Context::set)),
    /// and its few hundred bytes of headers are freed right after, which keeps idle
    /// connections small.
    pub keep_request: bool,
}

impl ServerConfig {
    /// A server with the given name, address and protocol, and defaults for everything else.
    pub fn new(name: impl Into<String>, addr: SocketAddr, protocol: Protocol) -> Self {
        ServerConfig {
            name: name.into(),
            addr,
            protocol,
            parser: Arc::new(JsonParser),
            backend: BackendConfig::Local,
            max_message_size: 1 << 20,
            handshake_timeout: Duration::from_secs(10),
            keep_request: false,
        }
    }

    /// A WebSocket server.
    pub fn websocket(name: impl Into<String>, addr: SocketAddr) -> Self {
        Self::new(name, addr, Protocol::WebSocket)
    }

    /// A newline-framed TCP server.
    pub fn tcp_lines(name: impl Into<String>, addr: SocketAddr) -> Self {
        Self::new(name, addr, Protocol::TcpLines)
    }

    /// A length-prefixed TCP server.
    pub fn tcp_length(name: impl Into<String>, addr: SocketAddr) -> Self {
        Self::new(name, addr, Protocol::TcpLength)
    }

    /// Sets [`parser`](ServerConfig::parser).
    pub fn parser(mut self, parser: impl DataParser) -> Self {
        self.parser = Arc::new(parser);
        self
    }

    /// Sets [`backend`](ServerConfig::backend).
    pub fn backend(mut self, backend: BackendConfig) -> Self {
        self.backend = backend;
        self
    }

    /// Sets [`max_message_size`](ServerConfig::max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`keep_request`](ServerConfig::keep_request).
    pub fn keep_request(mut self, keep: bool) -> Self {
        self.keep_request = keep;
        self
    }

    /// Sets [`handshake_timeout`](ServerConfig::handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

/// Settings of the whole runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How many core loops (threads) to run. Defaults to the number of available cores.
    pub workers: usize,
    /// This process's instance number in a cluster (part of every [`ClientId`](crate::ClientId)).
    /// Defaults to 0.
    pub instance: u16,
    /// How long a graceful shutdown waits for clients to take their last messages and close
    /// frames before the sockets are dropped. Defaults to 5 s.
    pub shutdown_timeout: Duration,
    /// How many commands a core loop takes from its mailbox before it looks at its sockets
    /// again, so that one busy sender cannot starve I/O. Defaults to 1024.
    pub mailbox_batch: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            instance: 0,
            shutdown_timeout: Duration::from_secs(5),
            mailbox_batch: 1024,
        }
    }
}
