//! Configuration from a file (TOML or JSON) and `COREPUSH_*` environment variables:
//! [`ConfigFile`].

mod fields;
mod section;

use std::collections::HashMap;
use std::path::Path;

use crate::config::{RuntimeConfig, ServerConfig};
use crate::error::{Error, Result};
use crate::gateway::config::GatewayConfig;
use crate::http::HttpConfig;

use section::{Env, Section};

/// The format of a configuration text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigFormat {
    /// TOML.
    Toml,
    /// JSON: the same keys and values, a duration string or number of milliseconds alike.
    Json,
}

impl ConfigFormat {
    /// The format a file's name says: `.json` is JSON, anything else TOML.
    pub fn of_path(path: impl AsRef<Path>) -> ConfigFormat {
        match path.as_ref().extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => ConfigFormat::Json,
            _ => ConfigFormat::Toml,
        }
    }
}

/// The settings a configuration file gives: the runtime's, and every server's and HTTP
/// server's by name.
///
/// The file holds what is data — the runtime's settings, each server's address, limits and
/// backend, the HTTP servers' settings — and the code adds what cannot be written in a file:
/// the handler, a custom [`DataParser`](crate::DataParser), worker-message actions.
///
/// ```toml
/// [runtime]                      # RuntimeConfig; every key may be left out
/// workers = 4
/// shutdown_timeout = "5s"
/// stats_interval = "off"
///
/// [servers.ws]                   # ServerConfig named "ws"
/// addr = "0.0.0.0:8080"          # required unless listen = false
/// protocol = "websocket"         # or "tcp_lines", "tcp_length"
/// max_connections = 50000
/// idle_timeout = "60s"           # or "off"
/// keep_context = "30s"           # restore's keep time; "off" (the default)
/// history = 100                  # keep the last 100 of every group and flag; 0 (the default) is off
/// slow_consumer = "close"        # or "drop"
///
/// [servers.ws.backend]           # or backend = "local" / "fpm" (the type alone)
/// type = "redis"                 # local, fpm, redis, channel, gateway
/// url = "redis://127.0.0.1:6379/"
/// query_timeout = 500            # a bare number is milliseconds
///
/// [http.api]                     # HttpConfig named "api"
/// addr = "127.0.0.1:8081"
/// threads = 8
/// ```
///
/// Each key is named after its field, with the value the field takes: whole numbers, `true`
/// / `false`, strings, `"HOST:PORT"` addresses (`"[::1]:8080"`, or a name that resolves),
/// and durations as `"250ms"`, `"10s"`, `"1.5s"`, `"2m"`, `"1h"` or a number of
/// milliseconds; an optional duration also takes `"off"`. The backend table's keys are the
/// fields of [`RedisConfig`](crate::RedisConfig), [`ChannelBackendConfig`](crate::ChannelBackendConfig) or
/// [`GatewayBackendConfig`](crate::GatewayBackendConfig) (`gateways` and `secret`
/// required); a server's `[servers.NAME.gateway]` table makes it a gateway
/// ([`GatewayConfig`]: `internal_addr` and `secret` required), read back with
/// [`ConfigFile::gateway`]. A key the file does not know, or a value of the wrong kind, is
/// an [`Error::Config`] naming the file and the key's path (`corepush.toml:
/// servers.ws.max_connections: expected a whole number …, found "many"`).
///
/// ## Environment variables
///
/// A variable wins over the file. Its name is `COREPUSH_` then the key's path in upper case,
/// with `_` for anything but letters and digits, where the runtime's keys stand alone and a
/// server's or HTTP server's path begins `SERVER_<NAME>` or `HTTP_<NAME>`:
///
/// | key | variable |
/// |-----|----------|
/// | `runtime.workers` | `COREPUSH_WORKERS` |
/// | `servers.ws.max_connections` | `COREPUSH_SERVER_WS_MAX_CONNECTIONS` |
/// | `servers.ws.backend.type` | `COREPUSH_SERVER_WS_BACKEND_TYPE` (or `COREPUSH_SERVER_WS_BACKEND`) |
/// | `servers.ws.backend.url` | `COREPUSH_SERVER_WS_BACKEND_URL` |
/// | `servers.ws.gateway.secret` | `COREPUSH_SERVER_WS_GATEWAY_SECRET` |
/// | `http.api.threads` | `COREPUSH_HTTP_API_THREADS` |
///
/// Values are written as in the file; a duration's digits alone are milliseconds, a list
/// (`gateways`) is separated by commas, a boolean is `true`/`false` or `1`/`0`. Variables
/// set a server's settings, never add a server: `[servers.NAME]` (even empty) must be in
/// the file. A variable that names no setting is ignored.
///
/// ```no_run
/// use corepush::{ConfigFile, Runtime};
/// # #[derive(Default)] struct Chat;
/// # impl corepush::Handler for Chat {
/// #     fn on_message(&mut self, _: &mut corepush::Context<'_>, _: corepush::Message<'_>) {}
/// # }
/// # fn main() -> corepush::Result<()> {
/// let file = ConfigFile::load("corepush.toml")?; // with the process's COREPUSH_* variables
/// let runtime = Runtime::builder()
///     .config(file.runtime.clone())
///     .server(file.server("ws")?.handler(|_| Chat))
///     .start()?;
/// runtime.run()
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConfigFile {
    /// `[runtime]`, over [`RuntimeConfig::default`].
    pub runtime: RuntimeConfig,
    /// `[servers.NAME]`, sorted by name.
    pub servers: Vec<ServerConfig>,
    /// `[http.NAME]`, sorted by name.
    pub http: Vec<HttpConfig>,
    /// Where the settings came from, for error messages.
    pub origin: String,
    gateways: HashMap<String, GatewayConfig>,
}

impl ConfigFile {
    /// Reads the file at `path` (its format by its name: [`ConfigFormat::of_path`]) and the
    /// process's `COREPUSH_*` variables, which win. An unreadable file is [`Error::Io`]; a
    /// wrong key or value [`Error::Config`].
    pub fn load(path: impl AsRef<Path>) -> Result<ConfigFile> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", path.display()),
            ))
        })?;
        Self::parse_with_env(
            &path.display().to_string(),
            &text,
            ConfigFormat::of_path(path),
            std::env::vars(),
        )
    }

    /// Reads a configuration text, without environment variables.
    pub fn parse(text: &str, format: ConfigFormat) -> Result<ConfigFile> {
        let origin = match format {
            ConfigFormat::Toml => "TOML configuration",
            ConfigFormat::Json => "JSON configuration",
        };
        Self::parse_with_env(origin, text, format, std::iter::empty::<(String, String)>())
    }

    /// Reads a configuration text named `origin` (in messages), with these variables over
    /// it (those not starting with `COREPUSH_` are ignored).
    pub fn parse_with_env<K, V>(
        origin: &str,
        text: &str,
        format: ConfigFormat,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<ConfigFile>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let env: Env = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _)| k.starts_with("COREPUSH_"))
            .collect();
        let value: serde_json::Value = match format {
            ConfigFormat::Toml => toml::from_str(text).map_err(|e| {
                Error::Config(format!(
                    "{origin}: not valid TOML: {}",
                    e.to_string().trim()
                ))
            })?,
            ConfigFormat::Json => serde_json::from_str(text)
                .map_err(|e| Error::Config(format!("{origin}: not valid JSON: {e}")))?,
        };
        let mut root = Section::root(origin, value, &env)?;
        let mut file = ConfigFile {
            runtime: RuntimeConfig::default(),
            servers: Vec::new(),
            http: Vec::new(),
            origin: origin.to_owned(),
            gateways: HashMap::new(),
        };
        // The runtime's variables stand at the top: COREPUSH_WORKERS.
        let mut runtime = root.child("runtime", "")?.unprefixed();
        fields::runtime(&mut runtime, &mut file.runtime)?;
        runtime.finish()?;
        for (name, mut s) in root.children("servers", "SERVER")? {
            let (server, gateway) = fields::server(&mut s, &name)?;
            s.finish()?;
            if let Some(gateway) = gateway {
                file.gateways.insert(name, gateway);
            }
            file.servers.push(server);
        }
        for (name, mut s) in root.children("http", "HTTP")? {
            file.http.push(fields::http(&mut s, &name)?);
            s.finish()?;
        }
        root.finish()?;
        Ok(file)
    }

    /// The server `[servers.NAME]`; add its handler (and parser, actions) in code. Its
    /// absence is [`Error::Config`].
    pub fn server(&self, name: &str) -> Result<ServerConfig> {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| self.missing("servers", name))
    }

    /// The HTTP server `[http.NAME]`. Its absence is [`Error::Config`].
    pub fn http_server(&self, name: &str) -> Result<HttpConfig> {
        self.http
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| self.missing("http", name))
    }

    /// The gateway role `[servers.NAME.gateway]` of a server, where the file gives one: pass
    /// it to [`ServerConfig::gateway`].
    pub fn gateway(&self, name: &str) -> Option<GatewayConfig> {
        self.gateways.get(name).cloned()
    }

    fn missing(&self, table: &str, name: &str) -> Error {
        Error::Config(format!("{}: no [{table}.{name}]", self.origin))
    }
}
