//! The tokio baseline: the shootout protocol as one would usually serve it with tokio and
//! tokio-tungstenite, tuned the ways that matter here. A multi-thread runtime with `workers`
//! worker threads, one listener, a task per connection reading and a task writing. A
//! broadcast is formatted once and sent on one `tokio::sync::broadcast` channel that every
//! connection's writer subscribes to (a `Message::Text` clone shares its bytes); replies to
//! one connection (echo, broadcastResult) go on that connection's own unbounded mpsc
//! channel. listenerCount is the number of subscribers the broadcast went to.
//!
//! Tuned: a 4 KiB read buffer per connection instead of tungstenite's default 128 KiB, and
//! batched writes — a writer wakes on either channel, feeds everything available on both
//! into its write buffer, then flushes once.
//!
//! The other usual design, a shared registry of every connection's mpsc sender with a
//! broadcast sent to each in turn (same read buffer, same batched writes), was measured
//! against this one with the load tool (`--server tokio --clients 1000,10000 --runs 3
//! --seconds 5`, two alternating sessions each, 2 cores) and was slower: 0.82× the
//! deliveries/s at 1,000 clients and 0.74× at 10,000, at 1.26× and 1.30× the server CPU per
//! delivery; echo round trips/s and memory per connection were the same within noise.
//!
//! The broadcast channel holds `BROADCAST_CAPACITY` frames; a writer that falls further
//! behind lags: it is logged and its connection closed (the load tool, which keeps at most
//! `--inflight` × `--senders` broadcasts in flight, then counts the missing deliveries as a
//! failure). Like the floor otherwise: no backpressure (the replies' channels are
//! unbounded), no handshake deadline, and a close or an error ends the connection.

use std::error::Error;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::{Either, select};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Each connection's read buffer (tungstenite's default: 128 KiB).
const READ_BUFFER: usize = 4 * 1024;
/// Broadcasts a connection's writer may fall behind before it lags (the load tool keeps at
/// most `--inflight` × `--senders`, 64 by default, in flight).
const BROADCAST_CAPACITY: usize = 4096;

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// The broadcast channel every connection's writer subscribes to.
struct Hub {
    all: broadcast::Sender<Message>,
}

/// Lagged receivers so far (only the first is logged).
static LAGGED: AtomicU64 = AtomicU64::new(0);

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
        let hub = Arc::new(Hub {
            all: broadcast::channel(BROADCAST_CAPACITY).0,
        });
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
    // Subscribed before this connection's first request: it counts in every later broadcast.
    tokio::spawn(write(sink, rx, hub.all.subscribe()));
    while let Some(Ok(message)) = requests.next().await {
        match message {
            Message::Text(text) => hub.request(text.as_bytes(), &tx),
            Message::Binary(bytes) => hub.request(&bytes, &tx),
            Message::Close(_) => break,
            _ => {} // ping, pong: not in this protocol's traffic
        }
    }
    // Dropping `tx` ends the writer once its channel is empty; that unsubscribes it.
}

/// The writer: waits for a reply or a broadcast, feeds it and everything else available on
/// both channels into the write buffer, then flushes once. A lagged subscriber closes its
/// connection.
async fn write(
    mut sink: SplitSink<WebSocketStream<TcpStream>, Message>,
    mut own: UnboundedReceiver<Message>,
    mut all: broadcast::Receiver<Message>,
) {
    loop {
        let first = {
            let own = pin!(own.recv());
            let all = pin!(all.recv());
            match select(own, all).await {
                Either::Left((Some(message), _)) | Either::Right((Ok(message), _)) => message,
                Either::Left((None, _)) => return, // the reader is gone
                Either::Right((Err(e), _)) => return lagged(sink, e).await,
            }
        };
        if sink.feed(first).await.is_err() {
            return;
        }
        loop {
            let message = match all.try_recv() {
                Ok(message) => message,
                Err(TryRecvError::Empty) => match own.try_recv() {
                    Ok(message) => message,
                    Err(_) => break, // empty, or disconnected: the next recv tells
                },
                Err(TryRecvError::Lagged(n)) => {
                    return lagged(sink, RecvError::Lagged(n)).await;
                }
                Err(TryRecvError::Closed) => return,
            };
            if sink.feed(message).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// A subscriber that fell more than the channel's capacity behind has lost broadcasts: logs
/// it (the first time) and closes the connection.
async fn lagged(mut sink: SplitSink<WebSocketStream<TcpStream>, Message>, e: RecvError) {
    if LAGGED.fetch_add(1, Ordering::Relaxed) == 0 {
        eprintln!(
            "tokio server: a connection's broadcasts {e}; closing it (further lags not logged)"
        );
    }
    let _ = sink.close().await;
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
                // The number of subscribers it went to; none is an error, and 0.
                let n = self.all.send(broadcast).unwrap_or(0);
                let result = format!(
                    r#"{{"type":"broadcastResult","payload":{payload},"listenerCount":{n}}}"#
                );
                let _ = me.send(Message::text(result));
            }
            _ => {}
        }
    }
}
