//! The HTTP server against a real client, `curl`: keep-alive reuse across requests, a posted
//! body, a chunked upload, `100 Continue`, `HEAD`, and a refused oversized upload. Skipped, with
//! a note, where `curl` is not installed.
mod http_util;
mod util;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use corepush::{HttpServer, Request, RequestContext, Response};
use http_util::{config, start};
use serde_json::{Value, json};

/// `curl` with the arguments, bounded in time; `None` (and a note) when curl is missing.
fn curl(args: &[&str], stdin: Option<&[u8]>) -> Option<Output> {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            println!("note: curl not available ({e}); skipping");
            return None;
        }
    };
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).expect("write curl's stdin");
    }
    let out = child.wait_with_output().expect("run curl");
    Some(out)
}

fn has_curl() -> bool {
    let found = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        println!("note: curl not available; skipping");
    }
    found
}

fn echo(request: &Request, ctx: &mut RequestContext) -> Response {
    Response::json(&json!({
        "method": request.method(),
        "path": request.path(),
        "body_len": request.body().len(),
        "body_head": String::from_utf8_lossy(&request.body()[..request.body().len().min(16)]),
        "chunked": request.header("transfer-encoding").is_some(),
        "expect": request.header("expect"),
        "peer_port": ctx.peer_addr().port(),
    }))
}

fn server() -> HttpServer {
    start(config("curl").max_body_bytes(256 << 10), echo)
}

fn url(server: &HttpServer, path: &str) -> String {
    format!("http://{}{path}", server.local_addr())
}

/// curl's stdout as one JSON value per line (`--write-out '\n'` after each transfer).
fn json_lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn curl_reuses_one_connection_for_several_requests() {
    if !has_curl() {
        return;
    }
    let s = server();
    let (a, b, c) = (url(&s, "/a"), url(&s, "/b"), url(&s, "/c"));
    let Some(out) = curl(&["--write-out", "\\n", &a, &b, &c], None) else {
        return;
    };
    let answers = json_lines(&out);
    let paths: Vec<&str> = answers.iter().filter_map(|v| v["path"].as_str()).collect();
    assert_eq!(paths, ["/a", "/b", "/c"]);
    // One client port for the three: curl kept the connection.
    assert!(
        answers
            .iter()
            .all(|v| v["peer_port"] == answers[0]["peer_port"])
    );
}

#[test]
fn curl_posts_plain_and_chunked_bodies() {
    if !has_curl() {
        return;
    }
    let s = server();
    let target = url(&s, "/up");
    let Some(out) = curl(&["--data-binary", "hello from curl", &target], None) else {
        return;
    };
    let v = &json_lines(&out)[0];
    assert_eq!(
        (v["method"].as_str(), v["body_len"].as_u64()),
        (Some("POST"), Some(15))
    );
    assert_eq!(v["chunked"], false);
    // From stdin with chunked transfer encoding, large enough to span many reads.
    let body = vec![b'z'; 100_000];
    let args = [
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "@-",
        &target,
    ];
    let Some(out) = curl(&args, Some(&body)) else {
        return;
    };
    let v = &json_lines(&out)[0];
    assert_eq!(v["chunked"], true);
    assert_eq!(v["body_len"], 100_000);
    assert_eq!(v["body_head"], "zzzzzzzzzzzzzzzz");
}

#[test]
fn curl_waits_for_100_continue() {
    if !has_curl() {
        return;
    }
    let s = server();
    let target = url(&s, "/expect");
    let args = [
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        "@-",
        "--write-out",
        "\\n%{http_code}",
        &target,
    ];
    let Some(out) = curl(&args, Some(&[b'e'; 5000])) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (json_line, code) = text.rsplit_once('\n').expect("two lines");
    assert_eq!(code, "200");
    let v: Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(v["expect"], "100-continue");
    assert_eq!(v["body_len"], 5000);
}

#[test]
fn curl_head_and_an_oversized_upload() {
    if !has_curl() {
        return;
    }
    let s = server();
    let Some(out) = curl(&["--head", &url(&s, "/h")], None) else {
        return;
    };
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: "),
        "{head}"
    );
    // Over the 256 KiB body limit: refused with 413 before the body is read.
    let big = vec![b'x'; 300 << 10];
    let args = [
        "--data-binary",
        "@-",
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_code}",
        &url(&s, "/big"),
    ];
    let Some(out) = curl(&args, Some(&big)) else {
        return;
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout), "413");
}
