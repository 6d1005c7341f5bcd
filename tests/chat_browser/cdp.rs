//! A small DevTools-protocol client: starts headless Chromium, opens pages, evaluates
//! JavaScript in them, takes screenshots. One WebSocket to the browser, pages reached through
//! flat sessions (`Target.attachToTarget` with `flatten`).
#![allow(unreachable_pub)] // a test crate module: `pub` is for the test file, not a public API

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long a wait in the browser may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The Chromium to run: `$COREPUSH_CHROMIUM`, else `chromium` (Debian's package) or
/// `chromium-browser` on the PATH.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("COREPUSH_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// The connection to the browser, shared by its pages.
struct Conn {
    ws: WebSocket<TcpStream>,
    next_id: u64,
}

impl Conn {
    /// Sends a command and returns its result (events read on the way are dropped); the error
    /// message when the browser answers an error.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(command.to_string()))
            .map_err(|e| format!("{method}: send: {e}"))?;
        loop {
            let message = self.ws.read().map_err(|e| format!("{method}: read: {e}"))?;
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                return Err(format!("{method}: {error}"));
            }
            return Ok(answer["result"].clone());
        }
    }
}

/// A headless Chromium of the test's own (its own profile directory); killed when dropped.
pub struct Browser {
    child: Child,
    conn: Rc<RefCell<Conn>>,
    profile: PathBuf,
}

impl Browser {
    /// Starts Chromium and connects to its DevTools endpoint.
    pub fn launch(chromium: &Path) -> Browser {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let profile =
            std::env::temp_dir().join(format!("corepush-chromium-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&profile).expect("a profile directory");
        // The flags a sandboxed CI machine needs: no sandbox (root), no GPU, and no background
        // traffic to hosts a closed network refuses.
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let lines = lines(child.stderr.take().expect("its stderr"));
        let url = devtools_url(&lines);
        let hostport = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host:port in the DevTools URL")
            .to_owned();
        let stream = TcpStream::connect(&hostport).expect("connect to DevTools");
        stream.set_read_timeout(Some(WAIT)).expect("a read timeout");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("the DevTools handshake");
        Browser {
            child,
            conn: Rc::new(RefCell::new(Conn { ws, next_id: 0 })),
            profile,
        }
    }

    /// Opens a page (900×560) at `url`.
    pub fn open(&mut self, url: &str) -> Page {
        let mut conn = self.conn.borrow_mut();
        let target = conn
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .expect("a new page");
        let attached = conn
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .expect("attach to the page");
        let session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        let metrics = json!({"width": 900, "height": 560, "deviceScaleFactor": 1, "mobile": false});
        conn.call(
            Some(&session),
            "Emulation.setDeviceMetricsOverride",
            metrics,
        )
        .expect("the page's size");
        conn.call(Some(&session), "Page.navigate", json!({"url": url}))
            .expect("navigate");
        drop(conn);
        let mut page = Page {
            conn: self.conn.clone(),
            session,
        };
        page.wait_for("document.readyState === 'complete' && typeof window.chat === 'object'");
        page
    }

    /// Closes the browser; the last answer it gave.
    pub fn close(&mut self) -> Value {
        let answer = self
            .conn
            .borrow_mut()
            .call(None, "Browser.close", json!({}))
            .unwrap_or(Value::Null);
        let _ = self.child.wait();
        answer
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One page of the browser.
pub struct Page {
    conn: Rc<RefCell<Conn>>,
    session: String,
}

impl Page {
    /// Evaluates `expression` (awaiting a promise) and returns its value; panics on an
    /// exception.
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    fn try_eval(&mut self, expression: &str) -> Result<Value, String> {
        let params = json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        let result =
            self.conn
                .borrow_mut()
                .call(Some(&self.session), "Runtime.evaluate", params)?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(format!("exception: {exception}"));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Waits (at most [`WAIT`]) until `condition` holds in the page; it is checked in the page
    /// at each turn of its event loop's timers, and again after a navigation.
    pub fn wait_for(&mut self, condition: &str) {
        let probe = format!(
            "new Promise(done => {{
                const until = Date.now() + 1000;
                const check = () => {{
                    let ok = false;
                    try {{ ok = Boolean({condition}); }} catch (e) {{ ok = false; }}
                    if (ok) done(true);
                    else if (Date.now() > until) done(false);
                    else setTimeout(check, 10);
                }};
                check();
            }})"
        );
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            // An error here is a navigation in between (the context went away): check again.
            if self.try_eval(&probe) == Ok(json!(true)) {
                return;
            }
        }
        let log = self
            .try_eval("document.body ? document.body.innerText : ''")
            .unwrap_or_default();
        panic!("the page never showed {condition}; it shows:\n{log}");
    }

    /// A PNG of the page as it is shown.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let mut conn = self.conn.borrow_mut();
        // A tab in the background is not painted: its screenshot would never come.
        conn.call(Some(&self.session), "Page.bringToFront", json!({}))
            .expect("the page to the front");
        let shot = conn
            .call(
                Some(&self.session),
                "Page.captureScreenshot",
                json!({"format": "png"}),
            )
            .expect("a screenshot");
        base64_decode(shot["data"].as_str().expect("the screenshot's data"))
    }
}

/// Reads Chromium's stderr on a thread of its own (so it never blocks on a full pipe).
fn lines(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The `ws://…/devtools/browser/…` URL Chromium prints when it is ready.
fn devtools_url(lines: &Receiver<String>) -> String {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = lines.recv_timeout(left) else {
            break;
        };
        if let Some(at) = line.find("ws://") {
            return line[at..].trim().to_owned();
        }
        seen.push(line);
    }
    panic!("chromium printed no DevTools URL:\n{}", seen.join("\n"));
}

/// Standard base64 (with padding), as DevTools sends binary data.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | value(c) << (18 - 6 * i));
        let keep = chunk.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..1 + keep]);
    }
    out
}
