//! Which key of a configuration file sets which field: the one place to add a setting. A
//! field is one `s.field("name", &mut config.name)?` line (its type needs a
//! [`Setting`](super::section::Setting) impl); a nested settings type is a
//! `s.child("name", "NAME")?` read the same way and closed with `finish()`.

use std::net::SocketAddr;

use crate::compression::DeflateConfig;
use crate::config::{
    BackendConfig, ChannelBackendConfig, FanoutWindow, Protocol, RuntimeConfig, ServerConfig,
};
use crate::error::Result;
use crate::gateway::config::{GatewayBackendConfig, GatewayConfig};
use crate::http::HttpConfig;

use super::section::Section;

/// `[runtime]`; variables `COREPUSH_<FIELD>`.
pub(crate) fn runtime(s: &mut Section<'_>, c: &mut RuntimeConfig) -> Result<()> {
    s.field("workers", &mut c.workers)?;
    s.field("instance", &mut c.instance)?;
    s.field("shutdown_timeout", &mut c.shutdown_timeout)?;
    s.field("mailbox_batch", &mut c.mailbox_batch)?;
    s.field("mailbox_capacity", &mut c.mailbox_capacity)?;
    s.field("mailbox_timeout", &mut c.mailbox_timeout)?;
    s.field("stats_interval", &mut c.stats_interval)?;
    // A fixed window under its old name; `fanout_window` says which kind.
    let mut fixed = None;
    s.field("fanout_coalesce", &mut fixed)?;
    if let Some(window) = fixed {
        c.fanout_window = FanoutWindow::Fixed(window);
    }
    s.field("fanout_window", &mut c.fanout_window)?;
    Ok(())
}

/// `[servers.NAME]`; variables `COREPUSH_SERVER_<NAME>_<FIELD>`. The gateway role
/// (`[servers.NAME.gateway]`) comes back beside the server, as it is not part of
/// [`ServerConfig`].
pub(crate) fn server(
    s: &mut Section<'_>,
    name: &str,
) -> Result<(ServerConfig, Option<GatewayConfig>)> {
    // Read first: the address is needed to make the server, and the protocol sets defaults.
    let listen: bool = s.take("listen")?.unwrap_or(true);
    let addr: SocketAddr = match s.take("addr")? {
        Some(addr) => addr,
        None if !listen => SocketAddr::from(([127, 0, 0, 1], 0)),
        None => s.required("addr", "where the server listens, \"HOST:PORT\"")?,
    };
    let protocol = s.take("protocol")?.unwrap_or(Protocol::WebSocket);
    let mut c = ServerConfig::new(name, addr, protocol).listen(listen);
    s.field("max_message_size", &mut c.max_message_size)?;
    s.field("handshake_timeout", &mut c.handshake_timeout)?;
    s.field("keep_request", &mut c.keep_request)?;
    s.field("max_connections", &mut c.max_connections)?;
    s.field("max_connections_per_ip", &mut c.max_connections_per_ip)?;
    s.field("max_outbound_bytes", &mut c.max_outbound_bytes)?;
    s.field("slow_consumer", &mut c.slow_consumer)?;
    s.field("idle_timeout", &mut c.idle_timeout)?;
    s.field(
        "max_groups_per_connection",
        &mut c.max_groups_per_connection,
    )?;
    s.field("keep_context", &mut c.keep_context)?;
    if let Some(n) = s.take::<usize>("history")?.filter(|&n| n > 0) {
        c.history = crate::history::config::HistoryConfig::everything(n);
    }
    s.field("subprotocols", &mut c.subprotocols)?;
    s.field("trusted_proxies", &mut c.trusted_proxies)?;
    deflate(s, &mut c)?;
    tls(s, &mut c)?;
    c.backend = backend(s)?;
    let gateway = if s.has("gateway") {
        let mut g = s.child("gateway", "GATEWAY")?;
        let role = gateway_role(&mut g)?;
        g.finish()?;
        Some(role)
    } else {
        None
    };
    Ok((c, gateway))
}

/// `permessage_deflate = true`, and the `deflate_*` keys that tune it.
fn deflate(s: &mut Section<'_>, c: &mut ServerConfig) -> Result<()> {
    let on: bool = s.take("permessage_deflate")?.unwrap_or(false);
    let mut d = DeflateConfig::default();
    s.field("deflate_level", &mut d.level)?;
    s.field("deflate_min_size", &mut d.min_size)?;
    s.field(
        "deflate_server_context_takeover",
        &mut d.server_context_takeover,
    )?;
    s.field(
        "deflate_client_no_context_takeover",
        &mut d.client_no_context_takeover,
    )?;
    if on {
        c.permessage_deflate = Some(d);
    }
    Ok(())
}

/// `tls_cert` and `tls_key`, together: the server's TLS (feature `tls`), read from those PEM
/// files.
#[cfg(feature = "tls")]
fn tls(s: &mut Section<'_>, c: &mut ServerConfig) -> Result<()> {
    let cert: Option<std::path::PathBuf> = s.take("tls_cert")?;
    let key: Option<std::path::PathBuf> = s.take("tls_key")?;
    match (cert, key) {
        (Some(cert), Some(key)) => c.tls = Some(crate::tls::TlsConfig::from_pem_files(cert, key)?),
        (None, None) => {}
        (Some(_), None) => return Err(s.error("tls_key", "missing: tls_cert needs it")),
        (None, Some(_)) => return Err(s.error("tls_cert", "missing: tls_key needs it")),
    }
    Ok(())
}

/// Without the feature `tls`, `tls_cert` and `tls_key` are an error that says so.
#[cfg(not(feature = "tls"))]
fn tls(s: &mut Section<'_>, _: &mut ServerConfig) -> Result<()> {
    for key in ["tls_cert", "tls_key"] {
        if s.has(key) {
            return Err(s.error(key, "needs a build with the feature tls"));
        }
    }
    Ok(())
}

/// `[http.NAME]`; variables `COREPUSH_HTTP_<NAME>_<FIELD>`.
pub(crate) fn http(s: &mut Section<'_>, name: &str) -> Result<HttpConfig> {
    let addr = s.required("addr", "where the server listens, \"HOST:PORT\"")?;
    let mut c = HttpConfig::new(name, addr);
    s.field("threads", &mut c.threads)?;
    s.field("max_threads", &mut c.max_threads)?;
    s.field("max_header_bytes", &mut c.max_header_bytes)?;
    s.field("max_body_bytes", &mut c.max_body_bytes)?;
    s.field("keep_alive_timeout", &mut c.keep_alive_timeout)?;
    s.field("request_timeout", &mut c.request_timeout)?;
    s.field("write_timeout", &mut c.write_timeout)?;
    s.field("max_pending", &mut c.max_pending)?;
    Ok(c)
}

/// `backend = "redis"`, or a table `[servers.NAME.backend]` with `type` and the backend's
/// settings; variables `COREPUSH_SERVER_<NAME>_BACKEND_<FIELD>` (`…_BACKEND_TYPE` for the
/// type).
fn backend(server: &mut Section<'_>) -> Result<BackendConfig> {
    // The short form: a string is the type alone.
    let short: Option<String> = server.take_if_string("backend");
    let mut s = server.child("backend", "BACKEND")?;
    let kind: String = match (s.take("type")?, short) {
        (Some(kind), _) | (None, Some(kind)) => kind,
        (None, None) => "local".into(),
    };
    let backend = match kind.as_str() {
        "local" => BackendConfig::Local,
        "fpm" => BackendConfig::Fpm,
        "redis" => redis(&mut s)?,
        "channel" => {
            let mut c = ChannelBackendConfig::default();
            s.field("addr", &mut c.addr)?;
            s.field("prefix", &mut c.prefix)?;
            s.field("token", &mut c.token)?;
            s.field("query_timeout", &mut c.query_timeout)?;
            s.field("name", &mut c.name)?;
            BackendConfig::Channel(c)
        }
        "gateway" => {
            let why = "the Gateway backend needs it";
            let gateways: Vec<String> = s.required("gateways", why)?;
            let secret: String = s.required("secret", why)?;
            let mut c = GatewayBackendConfig::new(gateways, secret);
            s.field("name", &mut c.name)?;
            s.field("query_timeout", &mut c.query_timeout)?;
            s.field("connect_timeout", &mut c.connect_timeout)?;
            BackendConfig::Gateway(c)
        }
        other => {
            return Err(s.error(
                "type",
                &format!(
                    "expected \"local\", \"fpm\", \"redis\", \"channel\" or \"gateway\", \
                     found {other:?}"
                ),
            ));
        }
    };
    s.finish()?;
    Ok(backend)
}

#[cfg(feature = "redis")]
fn redis(s: &mut Section<'_>) -> Result<BackendConfig> {
    let mut c = crate::config::RedisConfig::default();
    s.field("url", &mut c.url)?;
    s.field("prefix", &mut c.prefix)?;
    s.field("query_timeout", &mut c.query_timeout)?;
    s.field("name", &mut c.name)?;
    Ok(BackendConfig::Redis(c))
}

#[cfg(not(feature = "redis"))]
fn redis(s: &mut Section<'_>) -> Result<BackendConfig> {
    Err(s.error(
        "type",
        "\"redis\" needs corepush built with its feature `redis`",
    ))
}

/// `[servers.NAME.gateway]`; variables `COREPUSH_SERVER_<NAME>_GATEWAY_<FIELD>`.
fn gateway_role(s: &mut Section<'_>) -> Result<GatewayConfig> {
    let addr = s.required("internal_addr", "where business processes connect")?;
    let secret: String = s.required("secret", "business processes present it")?;
    let mut c = GatewayConfig::new(addr, secret);
    s.field("max_pending_events", &mut c.max_pending_events)?;
    s.field("link_queue", &mut c.link_queue)?;
    s.field("max_frame", &mut c.max_frame)?;
    Ok(c)
}
