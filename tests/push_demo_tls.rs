//! push_demo with `--tls-cert FILE --tls-key FILE` (feature `tls`): the flags parse, go
//! together, and serve the demo's ops to a wss:// client.
#![cfg(feature = "tls")]
mod util;

// The example itself is compiled in (see tests/push_demo.rs).
#[path = "../examples/push_demo.rs"]
#[allow(dead_code, unreachable_pub)]
mod push_demo;

use push_demo::{Cli, build, parse_args};
use serde_json::{Value, json};
use util::*;

#[test]
fn tls_flags_serve_wss() {
    let ca = Ca::new();
    let leaf = ca.leaf("push demo", "demo");
    let (cert, key) = (
        leaf.cert_path.display().to_string(),
        leaf.key_path.display().to_string(),
    );
    let args = [
        "--port",
        "0",
        "--workers",
        "2",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let Ok(Cli::Run(opts)) = parse_args(args) else {
        panic!("the TLS flags parse");
    };
    assert_eq!(opts.tls_cert.as_deref(), Some(cert.as_str()));
    let rt = build(&opts).expect("start push_demo with TLS");
    let addr = rt.local_addr(push_demo::SERVER).unwrap();

    let mut ws = connect_wss(addr, &ca.client());
    assert_eq!(peer_cert(&ws), leaf.der);
    ws.send(tungstenite::Message::text(
        json!({"op": "whoami", "id": 1}).to_string(),
    ))
    .unwrap();
    let reply: Value = serde_json::from_str(&recv_wss(&mut ws)).unwrap();
    assert_eq!(reply["op"], "reply");
    assert!(reply["result"]["clientId"].is_string(), "{reply}");
    drop(ws);
    rt.shutdown().unwrap();

    // One without the other, and a file that is not there.
    let e = parse_args(["--tls-cert", cert.as_str()]).unwrap_err();
    assert!(e.contains("--tls-key"), "{e}");
    let Ok(Cli::Run(opts)) = parse_args([
        "--port",
        "0",
        "--tls-cert",
        "/nowhere.pem",
        "--tls-key",
        &key,
    ]) else {
        panic!("parses");
    };
    let e = build(&opts).unwrap_err().to_string();
    assert!(e.contains("/nowhere.pem"), "{e}");
}
