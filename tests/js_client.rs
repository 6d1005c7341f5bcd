//! The JavaScript client (`clients/js/`): runs its Node tests (`clients/js/test/*.test.mjs`)
//! against push_demo processes, on the Local and Redis backends.
//!
//! This test has its own `main` (no libtest harness): run by cargo, it starts Node; started by
//! Node with [`CHILD`] set, the same binary is push_demo (the example, compiled in), so the
//! tests need no separately built example. Where `node` is missing the test says it was
//! skipped and passes, unless `COREPUSH_REQUIRE_NODE` is set (CI sets it).

// The example is compiled in: its `main` is unused here, and its `pub` items are meant for its
// own binary crate.
#[path = "../examples/push_demo.rs"]
#[allow(dead_code, unreachable_pub)]
mod push_demo;

use std::process::{Command, ExitCode};

/// Set by this test for Node's children: the binary then runs as push_demo.
const CHILD: &str = "COREPUSH_JS_PUSH_DEMO_CHILD";

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
            .try_init();
        std::process::exit(push_demo::serve(std::env::args().skip(1)));
    }
    // `cargo test -- --list` and the like: nothing to list.
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    let Some(websocket_flag) = node() else {
        let required = std::env::var_os("COREPUSH_REQUIRE_NODE").is_some_and(|v| v != "0");
        if required {
            eprintln!(
                "js_client: no node with a WebSocket (Node 20 or later) here, and COREPUSH_REQUIRE_NODE is set"
            );
            return ExitCode::FAILURE;
        }
        eprintln!("js_client: skipped: no node with a WebSocket (Node 20 or later) here");
        return ExitCode::SUCCESS;
    };
    let exe = std::env::current_exe().expect("the test binary's path");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("clients/js/test"))
        .expect("clients/js/test")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    let mut node = Command::new("node");
    node.args(websocket_flag)
        .arg("--test")
        .args(files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("COREPUSH_PUSH_DEMO", exe)
        .env(CHILD, "1");
    match node.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("js_client: node --test failed ({status})");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("js_client: cannot run node: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `node` runs here, and the flag it needs for a global `WebSocket` (Node 20 has it
/// behind `--experimental-websocket`; Node 22 on by default).
fn node() -> Option<Vec<&'static str>> {
    let probe = |flags: &[&str]| {
        Command::new("node")
            .args(flags)
            .args([
                "-e",
                "process.exit(typeof WebSocket === 'function' ? 0 : 1)",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if probe(&[]) {
        Some(Vec::new())
    } else if probe(&["--experimental-websocket"]) {
        Some(vec!["--experimental-websocket"])
    } else {
        None
    }
}
