//! The tokio baseline: the shootout protocol as one would usually serve it with tokio and
//! tokio-tungstenite, tuned the two ways that matter here. A multi-thread runtime with
//! `workers` worker threads, one listener, a task per connection reading and a task writing,
//! and a shared registry of the writers' channels; a broadcast is formatted once (a
//! `Message::Text` clone shares its bytes) and queued to every connection, each of which
//! frames it into its own write buffer.
//!
//! Tuned: a 4 KiB read buffer per connection instead of tungstenite's default 128 KiB, and
//! batched writes — a writer feeds every message queued to it, then flushes once.
//!
//! Like the floor: no backpressure (unbounded channels), no handshake deadline, and a close
//! or an error ends the connection.

use std::collections::HashMap;
use std::error::Error;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use parking_lot::RwLock;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Each connection's read buffer (tungstenite's default: 128 KiB).
const READ_BUFFER: usize = 4 * 1024;

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// Every open connection's writer channel, by connection id.
#[derive(Default)]
struct Hub {
    next: AtomicU64,
    conns: RwLock<HashMap<u64, UnboundedSender<Message>>>,
}

/// Runs the tokio server on 127.0.0.1:`port` (0: any) with `workers` runtime threads; prints
/// `listening on ws://ADDR/ (workers=N, tokio)` once the listener is bound.
pub(crate) fn serve(port: u16, workers: usize) -> Result<(), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let listener = socket.listen(1024)?; // the floor's backlog
        println!(
            "listening on ws://{}/ (workers={workers}, tokio)",
            listener.local_addr()?
        );
        let hub = Arc::new(Hub::default());
        // On a worker, not on this thread: the runtime's threads are all the server has.
        let accepting = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => drop(tokio::spawn(connection(stream, hub.clone()))),
                    Err(e) if per_connection(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        });
        accepting
            .await
            .map_err(|_| "the tokio accept loop panicked")??;
        Ok(())
    })
}

/// Accept errors that concern one connection only (the next accept may well succeed).
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    )
}

/// One connection: the upgrade, then its requests until a close or an error.
async fn connection(stream: TcpStream, hub: Arc<Hub>) {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (sink, mut requests) = ws.split();
    let (tx, rx) = unbounded_channel();
    let id = hub.next.fetch_add(1, Ordering::Relaxed);
    hub.conns.write().insert(id, tx.clone());
    tokio::spawn(write(sink, rx));
    while let Some(Ok(message)) = requests.next().await {
        match message {
            Message::Text(text) => hub.request(text.as_bytes(), &tx),
            Message::Binary(bytes) => hub.request(&bytes, &tx),
            Message::Close(_) => break,
            _ => {} // ping, pong: not in this protocol's traffic
        }
    }
    // The writer ends once its channel is empty and both senders are gone.
    hub.conns.write().remove(&id);
}

/// The writer: waits for a message, feeds it and everything else queued meanwhile into the
/// write buffer, then flushes once.
async fn write(
    mut sink: SplitSink<WebSocketStream<TcpStream>, Message>,
    mut rx: UnboundedReceiver<Message>,
) {
    while let Some(message) = rx.recv().await {
        if sink.feed(message).await.is_err() {
            return;
        }
        while let Ok(message) = rx.try_recv() {
            if sink.feed(message).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

impl Hub {
    /// Answers one request; anything but an echo or a broadcast is ignored.
    fn request(&self, message: &[u8], me: &UnboundedSender<Message>) {
        let Ok(req) = serde_json::from_slice::<Request<'_>>(message) else {
            return;
        };
        let payload = req.payload.get();
        match req.kind {
            "echo" => {
                let echo = format!(r#"{{"type":"echo","payload":{payload}}}"#);
                let _ = me.send(Message::text(echo));
            }
            "broadcast" => {
                let text = format!(r#"{{"type":"broadcast","payload":{payload}}}"#);
                let broadcast = Message::text(text);
                let n = (self.conns.read().values())
                    .filter(|tx| tx.send(broadcast.clone()).is_ok())
                    .count();
                let result = format!(
                    r#"{{"type":"broadcastResult","payload":{payload},"listenerCount":{n}}}"#
                );
                let _ = me.send(Message::text(result));
            }
            _ => {}
        }
    }
}
