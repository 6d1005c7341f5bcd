//! ConfigFile: every setting from TOML and from JSON, each backend, `COREPUSH_*` variables
//! over the file, and errors that name the file, the key and the bad value.
// The files name the Redis backend, which needs its feature (on by default).
#![cfg(feature = "redis")]

use std::net::SocketAddr;
use std::time::Duration;

use corepush::{
    BackendConfig, ChannelBackendConfig, ConfigFile, ConfigFormat, DeflateConfig, Error,
    FanoutWindow, GatewayBackendConfig, Protocol, RedisConfig, Runtime, ServerConfig, SlowConsumer,
};

const EVERY_FIELD_TOML: &str = r#"
[runtime]
workers = 3
instance = 7
shutdown_timeout = "2s"
mailbox_batch = 64
mailbox_capacity = 512
mailbox_timeout = "250ms"
stats_interval = "1m"
fanout_coalesce = 2

[servers.ws]
addr = "[::1]:9001"
listen = true
protocol = "tcp_lines"
max_message_size = 4096
handshake_timeout = "1.5s"
keep_request = true
max_connections = 10
max_connections_per_ip = 2
max_outbound_bytes = 8192
slow_consumer = "drop"
idle_timeout = "30s"
max_groups_per_connection = 5
subprotocols = ["chat.v2", "chat.v1"]
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
permessage_deflate = true
deflate_level = 3
deflate_min_size = 256
deflate_server_context_takeover = true
deflate_client_no_context_takeover = true

[servers.ws.backend]
type = "redis"
url = "redis://:pw@127.0.0.1:6380/2"
prefix = "app"
query_timeout = "750ms"
name = "eu-1"

[servers.ws.gateway]
internal_addr = "127.0.0.1:9100"
secret = "s3"
max_pending_events = 11
link_queue = 12
max_frame = 13

[servers.chan]
addr = "127.0.0.1:0"
backend = { type = "channel", addr = "10.0.0.1:13005", prefix = "p", token = "t", query_timeout = 100, name = "c1" }

[servers.biz]
listen = false
idle_timeout = "off"
backend = { type = "gateway", gateways = ["10.0.0.1:9100", "10.0.0.2:9100"], secret = "s", name = "b", query_timeout = "1s", connect_timeout = "3s" }

[servers.fpm]
addr = "127.0.0.1:0"
protocol = "tcp_length"
backend = "fpm"

[http.api]
addr = "127.0.0.1:8081"
threads = 6
max_threads = 60
max_header_bytes = 1000
max_body_bytes = 2000
keep_alive_timeout = "4s"
request_timeout = "8s"
write_timeout = "9s"
max_pending = 16
"#;

const EVERY_FIELD_JSON: &str = r#"{
  "runtime": {
    "workers": 3, "instance": 7, "shutdown_timeout": "2s", "mailbox_batch": 64,
    "mailbox_capacity": 512, "mailbox_timeout": "250ms", "stats_interval": "1m",
    "fanout_coalesce": 2
  },
  "servers": {
    "ws": {
      "addr": "[::1]:9001", "listen": true, "protocol": "tcp_lines", "max_message_size": 4096,
      "handshake_timeout": "1.5s", "keep_request": true, "max_connections": 10,
      "max_connections_per_ip": 2, "max_outbound_bytes": 8192, "slow_consumer": "drop",
      "idle_timeout": "30s", "max_groups_per_connection": 5,
      "subprotocols": ["chat.v2", "chat.v1"], "trusted_proxies": ["127.0.0.1", "10.0.0.0/8"],
      "permessage_deflate": true, "deflate_level": 3, "deflate_min_size": 256,
      "deflate_server_context_takeover": true, "deflate_client_no_context_takeover": true,
      "backend": {
        "type": "redis", "url": "redis://:pw@127.0.0.1:6380/2", "prefix": "app",
        "query_timeout": "750ms", "name": "eu-1"
      },
      "gateway": {
        "internal_addr": "127.0.0.1:9100", "secret": "s3", "max_pending_events": 11,
        "link_queue": 12, "max_frame": 13
      }
    },
    "chan": {
      "addr": "127.0.0.1:0",
      "backend": {
        "type": "channel", "addr": "10.0.0.1:13005", "prefix": "p", "token": "t",
        "query_timeout": 100, "name": "c1"
      }
    },
    "biz": {
      "listen": false, "idle_timeout": "off",
      "backend": {
        "type": "gateway", "gateways": ["10.0.0.1:9100", "10.0.0.2:9100"], "secret": "s",
        "name": "b", "query_timeout": "1s", "connect_timeout": "3s"
      }
    },
    "fpm": { "addr": "127.0.0.1:0", "protocol": "tcp_length", "backend": "fpm" }
  },
  "http": {
    "api": {
      "addr": "127.0.0.1:8081", "threads": 6, "max_threads": 60, "max_header_bytes": 1000,
      "max_body_bytes": 2000, "keep_alive_timeout": "4s", "request_timeout": "8s",
      "write_timeout": "9s", "max_pending": 16
    }
  }
}"#;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config_error(result: corepush::Result<ConfigFile>) -> String {
    match result {
        Err(Error::Config(message)) => message,
        Err(other) => panic!("expected Error::Config, got {other}"),
        Ok(file) => panic!("expected an error, got {file:?}"),
    }
}

fn assert_every_field(file: &ConfigFile) {
    let rt = &file.runtime;
    assert_eq!((rt.workers, rt.instance), (3, 7));
    assert_eq!(
        (rt.shutdown_timeout, rt.mailbox_timeout),
        (ms(2000), ms(250))
    );
    assert_eq!((rt.mailbox_batch, rt.mailbox_capacity), (64, 512));
    assert_eq!(
        (rt.stats_interval, rt.fanout_window),
        (Some(ms(60_000)), FanoutWindow::Fixed(ms(2)))
    );

    let names: Vec<&str> = file.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["biz", "chan", "fpm", "ws"]);
    let ws = file.server("ws").unwrap();
    assert_eq!(ws.addr, "[::1]:9001".parse::<SocketAddr>().unwrap());
    assert!(ws.listen);
    assert_eq!(ws.protocol, Protocol::TcpLines);
    assert_eq!(
        (ws.max_message_size, ws.handshake_timeout),
        (4096, ms(1500))
    );
    assert!(ws.keep_request);
    assert_eq!(
        (
            ws.max_connections,
            ws.max_connections_per_ip,
            ws.max_outbound_bytes
        ),
        (10, 2, 8192)
    );
    assert_eq!(ws.slow_consumer, SlowConsumer::Drop);
    assert_eq!(ws.idle_timeout, Some(ms(30_000)));
    assert_eq!(ws.max_groups_per_connection, 5);
    assert_eq!(ws.subprotocols, ["chat.v2", "chat.v1"]);
    assert_eq!(ws.trusted_proxies, ["127.0.0.1", "10.0.0.0/8"]);
    let deflate = DeflateConfig::default()
        .level(3)
        .min_size(256)
        .server_context_takeover(true)
        .client_no_context_takeover(true);
    assert_eq!(ws.permessage_deflate, Some(deflate));
    let redis = RedisConfig::default()
        .url("redis://:pw@127.0.0.1:6380/2")
        .prefix("app")
        .query_timeout(ms(750))
        .name("eu-1");
    assert_eq!(ws.backend, BackendConfig::Redis(redis));
    let role = file.gateway("ws").expect("the gateway role");
    assert_eq!(role.internal_addr.to_string(), "127.0.0.1:9100");
    assert_eq!(role.secret, "s3");
    assert_eq!(
        (role.max_pending_events, role.link_queue, role.max_frame),
        (11, 12, 13)
    );

    let channel = ChannelBackendConfig::default()
        .addr("10.0.0.1:13005")
        .prefix("p")
        .token("t")
        .query_timeout(ms(100))
        .name("c1");
    assert_eq!(
        file.server("chan").unwrap().backend,
        BackendConfig::Channel(channel)
    );
    assert!(file.gateway("chan").is_none());

    let biz = file.server("biz").unwrap();
    assert!(!biz.listen);
    assert_eq!(biz.idle_timeout, None);
    let gateways = GatewayBackendConfig::new(["10.0.0.1:9100", "10.0.0.2:9100"], "s")
        .name("b")
        .query_timeout(ms(1000))
        .connect_timeout(ms(3000));
    assert_eq!(biz.backend, BackendConfig::Gateway(gateways));

    let fpm = file.server("fpm").unwrap();
    assert_eq!(
        (fpm.protocol, fpm.backend.clone()),
        (Protocol::TcpLength, BackendConfig::Fpm)
    );
    // TCP has no ping: its idle timeout defaults to none, as in code.
    assert_eq!(fpm.idle_timeout, None);

    let api = file.http_server("api").unwrap();
    assert_eq!(api.addr.to_string(), "127.0.0.1:8081");
    assert_eq!((api.threads, api.max_threads, api.max_pending), (6, 60, 16));
    assert_eq!((api.max_header_bytes, api.max_body_bytes), (1000, 2000));
    assert_eq!(
        (
            api.keep_alive_timeout,
            api.request_timeout,
            api.write_timeout
        ),
        (ms(4000), ms(8000), ms(9000))
    );
}

#[test]
fn toml_sets_every_field() {
    let file = ConfigFile::parse(EVERY_FIELD_TOML, ConfigFormat::Toml).unwrap();
    assert_every_field(&file);
}

#[test]
fn json_sets_every_field() {
    let file = ConfigFile::parse(EVERY_FIELD_JSON, ConfigFormat::Json).unwrap();
    assert_every_field(&file);
}

#[test]
fn left_out_keys_keep_the_defaults_of_the_code() {
    let file =
        ConfigFile::parse("[servers.ws]\naddr = \"127.0.0.1:0\"", ConfigFormat::Toml).unwrap();
    let ws = file.server("ws").unwrap();
    let code = ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap());
    assert_eq!(format!("{ws:?}"), format!("{code:?}"));
    let default = corepush::RuntimeConfig::default();
    assert_eq!(format!("{:?}", file.runtime), format!("{default:?}"));
    assert!(file.http.is_empty());
    let e = file.server("nope").unwrap_err().to_string();
    assert!(e.contains("no [servers.nope]"), "{e}");
}

#[test]
fn an_unknown_key_is_named_with_its_path() {
    for (text, format, key) in [
        (
            "[runtime]\nworkerz = 2",
            ConfigFormat::Toml,
            "runtime.workerz",
        ),
        (
            "[servers.ws]\naddr = \"127.0.0.1:0\"\nmax_conections = 1",
            ConfigFormat::Toml,
            "servers.ws.max_conections",
        ),
        (
            "[servers.ws]\naddr = \"127.0.0.1:0\"\nbackend = { type = \"redis\", addr = \"x\" }",
            ConfigFormat::Toml,
            "servers.ws.backend.addr",
        ),
        ("[tls]\ncert = \"x\"", ConfigFormat::Toml, "tls"),
        (
            r#"{"http": {"api": {"addr": "127.0.0.1:1", "thread": 1}}}"#,
            ConfigFormat::Json,
            "http.api.thread",
        ),
    ] {
        let e = config_error(ConfigFile::parse_with_env(
            "app.conf",
            text,
            format,
            Vec::<(String, String)>::new(),
        ));
        assert_eq!(e, format!("app.conf: unknown key {key}"));
    }
}

#[test]
fn a_bad_value_is_named_with_its_key_and_value() {
    for (text, expected) in [
        (
            "[runtime]\nworkers = \"many\"",
            "app.toml: runtime.workers: expected a whole number from 0 to",
        ),
        (
            "[runtime]\ninstance = 70000",
            "runtime.instance: expected a whole number from 0 to 65535, found 70000",
        ),
        (
            "[runtime]\nshutdown_timeout = \"soon\"",
            "runtime.shutdown_timeout: expected a duration such as \"10s\", \"250ms\", \"2m\", or a number of milliseconds, found \"soon\"",
        ),
        (
            "[servers.ws]\naddr = \"nowhere\"",
            "servers.ws.addr: expected an address \"HOST:PORT\"",
        ),
        (
            "[servers.ws]\naddr = \"127.0.0.1:0\"\nprotocol = \"udp\"",
            "servers.ws.protocol: expected \"websocket\", \"tcp_lines\" or \"tcp_length\", found \"udp\"",
        ),
        (
            "[servers.ws]\naddr = \"127.0.0.1:0\"\nbackend = \"kafka\"",
            "servers.ws.backend.type: expected \"local\", \"fpm\", \"redis\", \"channel\" or \"gateway\", found \"kafka\"",
        ),
        (
            "[servers.ws]\naddr = \"127.0.0.1:0\"\nbackend = \"gateway\"",
            "servers.ws.backend.gateways: missing",
        ),
        (
            "[servers.ws]\nprotocol = \"websocket\"",
            "servers.ws.addr: missing",
        ),
        (
            "[servers.ws]\naddr = \"127.0.0.1:0\"\nkeep_request = \"yes\"",
            "servers.ws.keep_request: expected true or false, found \"yes\"",
        ),
        ("runtime = 3", "runtime: expected a table, found 3"),
        ("[runtime\nworkers = 1", "app.toml: not valid TOML"),
    ] {
        let e = config_error(ConfigFile::parse_with_env(
            "app.toml",
            text,
            ConfigFormat::Toml,
            Vec::<(String, String)>::new(),
        ));
        assert!(e.contains(expected), "{text:?}: {e}");
        assert!(e.starts_with("app.toml: "), "{e}");
    }
    let e = config_error(ConfigFile::parse("[1, 2]", ConfigFormat::Json));
    assert!(e.contains("expected a table at the top"), "{e}");
}

#[test]
fn variables_win_over_the_file() {
    let text = r#"
[runtime]
workers = 2
[servers.my-ws]
addr = "127.0.0.1:9000"
max_connections = 5
backend = "local"
[http.api]
addr = "127.0.0.1:8081"
"#;
    let env = [
        ("COREPUSH_WORKERS", "4"),
        ("COREPUSH_FANOUT_COALESCE", "3"),
        ("COREPUSH_STATS_INTERVAL", "off"),
        ("COREPUSH_SERVER_MY_WS_MAX_CONNECTIONS", "50"),
        ("COREPUSH_SERVER_MY_WS_ADDR", "[::1]:9001"),
        ("COREPUSH_SERVER_MY_WS_IDLE_TIMEOUT", "10s"),
        ("COREPUSH_SERVER_MY_WS_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ("COREPUSH_SERVER_MY_WS_BACKEND_TYPE", "gateway"),
        ("COREPUSH_SERVER_MY_WS_BACKEND_GATEWAYS", "a:1, b:2"),
        ("COREPUSH_SERVER_MY_WS_BACKEND_SECRET", "from-env"),
        ("COREPUSH_HTTP_API_THREADS", "9"),
        // Not a setting: ignored, as is everything without the prefix.
        ("COREPUSH_SOMETHING_ELSE", "1"),
        ("WORKERS", "8"),
    ];
    let file = ConfigFile::parse_with_env("app.toml", text, ConfigFormat::Toml, env).unwrap();
    assert_eq!(file.runtime.workers, 4);
    assert_eq!(file.runtime.fanout_window, FanoutWindow::Fixed(ms(3)));
    assert_eq!(file.runtime.stats_interval, None);
    let ws = file.server("my-ws").unwrap();
    assert_eq!(ws.max_connections, 50);
    assert_eq!(ws.addr.to_string(), "[::1]:9001");
    assert_eq!(ws.idle_timeout, Some(ms(10_000)));
    assert_eq!(ws.trusted_proxies, ["10.0.0.0/8", "::1"]);
    assert_eq!(
        ws.backend,
        BackendConfig::Gateway(GatewayBackendConfig::new(["a:1", "b:2"], "from-env"))
    );
    assert_eq!(file.http_server("api").unwrap().threads, 9);

    // A bad variable names itself, the key it sets and its value.
    let env = [("COREPUSH_SERVER_MY_WS_MAX_CONNECTIONS", "lots")];
    let e = config_error(ConfigFile::parse_with_env(
        "app.toml",
        text,
        ConfigFormat::Toml,
        env,
    ));
    assert_eq!(
        e,
        format!(
            "environment COREPUSH_SERVER_MY_WS_MAX_CONNECTIONS (servers.my-ws.max_connections): \
             expected a whole number from 0 to {}, found \"lots\"",
            usize::MAX
        )
    );
}

#[test]
fn load_reads_the_format_its_name_says() {
    let dir = std::env::temp_dir().join(format!("corepush-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("app.toml");
    let json = dir.join("app.json");
    std::fs::write(&toml, EVERY_FIELD_TOML).unwrap();
    std::fs::write(&json, EVERY_FIELD_JSON).unwrap();
    assert_every_field(&ConfigFile::load(&toml).unwrap());
    assert_every_field(&ConfigFile::load(&json).unwrap());
    std::fs::write(&toml, "[runtime]\nworkers = -1").unwrap();
    let e = config_error(ConfigFile::load(&toml));
    assert!(
        e.starts_with(&format!("{}: runtime.workers", toml.display())),
        "{e}"
    );
    let missing = dir.join("missing.toml");
    match ConfigFile::load(&missing) {
        Err(Error::Io(e)) => assert!(e.to_string().contains("missing.toml"), "{e}"),
        other => panic!("expected Error::Io, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_runtime_starts_from_a_file() {
    let file = ConfigFile::parse(
        "[runtime]\nworkers = 1\n[servers.ws]\naddr = \"127.0.0.1:0\"\nmax_connections = 3",
        ConfigFormat::Toml,
    )
    .unwrap();
    struct Quiet;
    impl corepush::Handler for Quiet {
        fn on_message(&mut self, _: &mut corepush::Context<'_>, _: corepush::Message<'_>) {}
    }
    let runtime = Runtime::builder()
        .config(file.runtime.clone())
        .server(file.server("ws").unwrap().handler(|_| Quiet))
        .start()
        .unwrap();
    assert_eq!(runtime.workers(), 1);
    assert_ne!(runtime.local_addr("ws").unwrap().port(), 0);
    runtime.shutdown().unwrap();
}
