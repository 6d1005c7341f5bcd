//! Smoke: a WebSocket echo over the runtime, and a push from a foreign thread.
mod util;

use corepush::{Context, Handler, Message, Runtime, ServerConfig};
use util::*;

struct Echo;
impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let text = message.as_text().unwrap_or("").to_owned();
        if text == "id" {
            let id = ctx.client_id().to_string();
            ctx.send_raw(id).unwrap();
        } else {
            ctx.send_raw(text).unwrap();
        }
    }
}

#[test]
fn echo_and_push() {
    let rt = Runtime::builder()
        .workers(2)
        .server(ServerConfig::websocket("smoke", "127.0.0.1:0".parse().unwrap()).handler(|_| Echo))
        .start()
        .unwrap();
    let addr = rt.local_addr("smoke").unwrap();
    let mut ws = connect(addr);
    ws.send(tungstenite::Message::text("hello")).unwrap();
    assert_eq!(recv_text(&mut ws), "hello");
    ws.send(tungstenite::Message::text("id")).unwrap();
    let id: corepush::ClientId = recv_text(&mut ws).parse().unwrap();
    let server = rt.server("smoke").unwrap();
    assert!(server.exists(id));
    let n = std::thread::spawn(move || server.send(&serde_json::json!({"a": 1}), id).unwrap())
        .join()
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(recv_json(&mut ws), serde_json::json!({"a": 1}));
    // The client must keep reading for the graceful close to complete, so stop from here and
    // join after the close frame arrived.
    rt.shutdown_handle().shutdown();
    assert_eq!(read_until_close(&mut ws), Some(1001));
    rt.join().unwrap();
}
