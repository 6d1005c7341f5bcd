//! examples/channel_server.rs: its command line, and a broker it starts that instances on
//! the Channel backend use (with the token it was given).
mod util;

#[path = "../examples/channel_server.rs"]
#[allow(dead_code, unreachable_pub)] // `main` is the example's; `pub` is for this test
mod example;

use corepush::{BackendConfig, ChannelBackendConfig, Error, Runtime, ServerConfig};
use util::{Client, Cmd};

/// The options of a command line that must parse.
fn run<'a>(args: impl IntoIterator<Item = &'a str>) -> example::Options {
    match example::parse_args(args) {
        Ok(example::Cli::Run(opts)) => opts,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_command_line_has_defaults_and_names_bad_arguments() {
    let cli = run([]);
    assert_eq!(cli.addr.to_string(), "127.0.0.1:13005");
    assert_eq!(cli.token, None);
    let cli = run(["--host", "127.0.0.1", "--port=0", "--token", "t"]);
    assert_eq!((cli.addr.port(), cli.token.as_deref()), (0, Some("t")));
    assert_eq!(
        run(["--host", "::1", "--port", "7"]).addr.to_string(),
        "[::1]:7"
    );
    assert_eq!(run(["--host=::1"]).addr.to_string(), "[::1]:13005");
    assert!(run(["--host", "localhost"]).addr.ip().is_loopback());
    assert_eq!(example::parse_args(["--help"]), Ok(example::Cli::Help));
    assert!(
        example::parse_args(["--port", "x"])
            .unwrap_err()
            .contains("--port")
    );
    assert!(
        example::parse_args(["--what", "1"])
            .unwrap_err()
            .contains("--what")
    );
    assert!(
        example::parse_args(["--token"])
            .unwrap_err()
            .contains("value")
    );
}

#[test]
fn the_broker_it_starts_carries_pushes_for_the_right_token() {
    let cli = run(["--port", "0", "--token", "secret"]);
    let broker = example::start(&cli).expect("the broker");
    let backend = |token: &str| {
        BackendConfig::Channel(
            ChannelBackendConfig::default()
                .addr(broker.local_addr().to_string())
                .prefix("example")
                .token(token),
        )
    };
    let start = |token: &str| {
        Runtime::builder()
            .workers(1)
            .server(
                ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
                    .backend(backend(token))
                    .handler(|_| Cmd),
            )
            .start()
    };
    assert!(matches!(start("wrong"), Err(Error::Config(_))));
    let a = start("secret").expect("instance a");
    let b = start("secret").expect("instance b");
    let (sa, sb) = (a.server("ws").unwrap(), b.server("ws").unwrap());
    util::wait_until("the instances see each other", || {
        sa.cluster().instances().len() == 2 && sb.cluster().instances().len() == 2
    });
    let mut on_b = Client::connect(b.local_addr("ws").unwrap());
    assert_eq!(sa.send_raw_to_all("hi").unwrap(), 0);
    assert_eq!(on_b.recv(), "hi");
    drop(on_b);
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}
