//! examples/chat.rs in a real browser: headless Chromium, driven over the DevTools protocol,
//! opens two chat pages; both join a room, one says something and the other shows it; then
//! the server cuts one page's connection, the other says more while it is away, and the page
//! reconnects and shows exactly what it missed (no gap, no duplicate); a third page that joins
//! late is shown what was said before. A screenshot of the page that reconnected
//! is written to the test's temporary directory, and to `$COREPUSH_SCREENSHOT` when set (the
//! README's `docs/chat.png` is made so).
//!
//! Skipped (with a line saying so) where Chromium is not installed, unless
//! `COREPUSH_REQUIRE_CHROMIUM` is set (CI sets it): then a missing Chromium fails it.

#[path = "../examples/chat.rs"]
#[allow(dead_code, unreachable_pub)]
mod chat;
mod util;

#[path = "chat_browser/cdp.rs"]
mod cdp;

use std::net::SocketAddr;

use cdp::{Browser, Page};
use serde_json::{Value, json};

/// Whether the test must fail rather than skip without Chromium.
fn required() -> bool {
    std::env::var_os("COREPUSH_REQUIRE_CHROMIUM").is_some_and(|v| !v.is_empty() && v != "0")
}

fn start_chat() -> (corepush::Runtime, SocketAddr) {
    let opts = chat::Options {
        port: 0,
        ..chat::Options::default()
    };
    let runtime = chat::build(&opts).expect("start the chat");
    let addr = runtime.local_addr(chat::SERVER).expect("its address");
    (runtime, addr)
}

/// The texts of the chat messages a page shows, in order.
fn messages(page: &mut Page) -> Vec<String> {
    let texts = page.eval(
        "[...document.querySelectorAll('#log li.message')].map(li => li.dataset.from + ': ' + li.lastChild.textContent)",
    );
    serde_json::from_value(texts).expect("a list of texts")
}

/// Says `text` through the page's form, as a user does; waits for the server's answer.
fn say(page: &mut Page, text: &str) {
    let expression = format!(
        "new Promise((done, fail) => {{
            const said = chat.client.on('push', ({{data}}) => {{
                if (data && data.type === 'message' && data.text === {text}) {{ said(); done(true); }}
            }});
            document.getElementById('text').value = {text};
            document.getElementById('send').click();
        }})",
        text = json!(text)
    );
    assert_eq!(page.eval(&expression), json!(true));
}

#[test]
fn two_pages_chat_and_one_recovers_what_it_missed_after_a_cut() {
    let Some(chromium) = cdp::chromium() else {
        assert!(
            !required(),
            "Chromium is not installed, and COREPUSH_REQUIRE_CHROMIUM is set"
        );
        eprintln!("chat_browser: skipped: chromium is not installed");
        return;
    };
    let (runtime, addr) = start_chat();
    let server = runtime.server(chat::SERVER).expect("the chat server");
    let mut browser = Browser::launch(&chromium);
    // Alice reconnects only when told to: what is said while she is away is certainly missed.
    let mut alice = browser.open(&format!(
        "http://{addr}/?name=alice&room=lobby&retry=600000"
    ));
    let mut bob = browser.open(&format!("http://{addr}/?name=bob&room=lobby"));

    // Both in the room: each page's presence list names both.
    for page in [&mut alice, &mut bob] {
        page.wait_for(
            "[...document.querySelectorAll('#members li')].map(li => li.textContent).join(',') === 'alice,bob'",
        );
    }
    say(&mut bob, "hi alice");
    alice.wait_for("document.querySelectorAll('#log li.message').length === 1");
    assert_eq!(messages(&mut alice), ["bob: hi alice"]);
    say(&mut alice, "hi bob");
    bob.wait_for("document.querySelectorAll('#log li.message').length === 2");

    // The server cuts alice's connection; she stays away until told to reconnect.
    assert_eq!(server.close_by_flag("alice").expect("close"), 1);
    alice.wait_for("chat.client.connected === false");
    bob.wait_for("[...document.querySelectorAll('#members li')].length === 1");
    let missed = ["are you there?", "you missed this", "and this"];
    for text in missed {
        say(&mut bob, text);
    }
    assert_eq!(alice.eval("chat.client.connected"), json!(false));
    alice.eval("chat.client.reconnect()");
    alice.wait_for("chat.state.recoveries.length === 1");
    let recovery = alice.eval("chat.state.recoveries[0]");
    assert_eq!(recovery["recovered"], json!(true), "{recovery}");
    // What she missed: the presence push that said bob was alone, and bob's three messages.
    assert_eq!(recovery["missed"], json!(4), "{recovery}");
    alice.wait_for("document.querySelectorAll('#log li.message').length === 5");
    say(&mut bob, "welcome back");
    alice.wait_for("document.querySelectorAll('#log li.message').length === 6");
    assert_eq!(
        messages(&mut alice),
        [
            "bob: hi alice",
            "alice: hi bob",
            "bob: are you there?",
            "bob: you missed this",
            "bob: and this",
            "bob: welcome back",
        ]
    );
    alice.wait_for(
        "[...document.querySelectorAll('#members li')].map(li => li.textContent).join(',') === 'alice,bob'",
    );

    // History on join: a newcomer is shown what was said before she came.
    let mut carol = browser.open(&format!("http://{addr}/?name=carol&room=lobby"));
    carol.wait_for("document.querySelectorAll('#log li.message').length === 6");
    assert_eq!(messages(&mut carol), messages(&mut alice));
    alice.wait_for(
        "[...document.querySelectorAll('#members li')].map(li => li.textContent).join(',') === 'alice,bob,carol'",
    );

    let png = alice.screenshot();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join("chat.png"), &png).expect("write the screenshot");
    if let Some(path) = std::env::var_os("COREPUSH_SCREENSHOT") {
        std::fs::write(&path, &png).expect("write the screenshot where asked");
    }
    let _: Value = browser.close();
}
