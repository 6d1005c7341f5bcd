//! A test handler driven by short text commands, and a client that talks to it.
//!
//! Every command but `close` and `panic` gets exactly one reply, so a test can wait for the
//! reply instead of sleeping: once it arrives, whatever the command changed on the server
//! (a flag, a group, data) is in place.

use std::net::SocketAddr;

use corepush::{
    ClientId, Context, Handler, Message, Runtime, Server, ServerConfig, ServerSpec, WorkerId,
    get_server,
};
use tungstenite::Message as WsMessage;

use super::{Ws, connect, connect_path, read_until_close, recv_text};

/// The command handler. Commands (the reply follows `→`):
///
/// | command | effect |
/// |---------|--------|
/// | `id` / `worker` | → the client id / the core loop index |
/// | `echo:X` | → `X` |
/// | `bind:F` / `bindnx:F` | binds the flag → `ok` / `true` or `false` |
/// | `unbind` / `flag` | → the flag it held / holds, or `none` |
/// | `join:G` / `leave:G` | → `ok` / whether it was a member |
/// | `tryjoin:G` | → whether the join was allowed (`true` or `false`) |
/// | `groups` | → the groups of this connection, comma-separated |
/// | `set:K:V` / `get:K` | stores a `String` / → the `String` stored, or `none` |
/// | `path` | → the path `on_open` stored from the handshake request (with `query` and `host`) |
/// | `all:X` / `except-all:X` | pushes text `X` to everyone (but the sender) → `sent:N` |
/// | `to:ID:X` | pushes text `X` to client `ID` → `sent:N` |
/// | `local-all:X` / `local-to:ID:X` | the same through `this_worker()` → `sent:N` |
/// | `local-count` / `local-conns` | this core loop's connection count / ids, comma-separated |
/// | `default-server` / `find-server:NAME` | `get_server` from the core loop → a name or `none` |
/// | `server-has-me:NAME` | whether `get_server(NAME)` holds this connection, or `none` |
/// | `close` / `panic` | closes the connection / panics (no reply) |
#[derive(Debug, Default)]
pub struct Cmd;

impl Handler for Cmd {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let Some(request) = ctx.request() else {
            return;
        };
        let path = request.path().to_owned();
        let query = request.query().map(str::to_owned);
        let host = request.header("host").map(str::to_owned);
        ctx.set("path", path);
        if let Some(query) = query {
            ctx.set("query", query);
        }
        if let Some(host) = host {
            ctx.set("host", host);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let text = message.as_text().unwrap_or("<binary>").to_owned();
        if let Some(reply) = run(ctx, &text) {
            ctx.send_raw(reply).expect("reply");
        }
    }
}

fn sent(n: corepush::Result<usize>) -> Option<String> {
    Some(format!("sent:{}", n.expect("push")))
}

fn join_ids(ids: &[ClientId]) -> String {
    ids.iter()
        .map(ClientId::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn run(ctx: &mut Context<'_>, text: &str) -> Option<String> {
    let (verb, arg) = text.split_once(':').unwrap_or((text, ""));
    let name = |s: Option<Server>| s.map_or_else(|| "none".to_owned(), |s| s.name().to_owned());
    match verb {
        "id" => Some(ctx.client_id().to_string()),
        "worker" => Some(ctx.worker().to_string()),
        "echo" => Some(arg.to_owned()),
        "bind" => {
            ctx.bind(arg);
            Some("ok".into())
        }
        "bindnx" => Some(ctx.bind_nx(arg).to_string()),
        "unbind" => Some(ctx.unbind().unwrap_or_else(|| "none".into())),
        "flag" => Some(ctx.flag().unwrap_or_else(|| "none".into())),
        "join" => {
            ctx.join(arg);
            Some("ok".into())
        }
        "tryjoin" => Some(ctx.join(arg).to_string()),
        "leave" => Some(ctx.leave(arg).to_string()),
        "groups" => Some(ctx.groups().join(",")),
        "set" => {
            let (k, v) = arg.split_once(':').expect("set:K:V");
            ctx.set(k, v.to_owned());
            Some("ok".into())
        }
        "get" => Some(ctx.get::<String>(arg).unwrap_or_else(|| "none".into())),
        "path" => Some(ctx.get::<String>("path").unwrap_or_else(|| "none".into())),
        "all" => sent(ctx.server().send_raw_to_all(arg)),
        "except-all" => {
            let me = ctx.client_id();
            sent(ctx.server().except(me).send_raw_to_all(arg))
        }
        "to" => {
            let (id, payload) = arg.split_once(':').expect("to:ID:X");
            let id: ClientId = id.parse().expect("a client id");
            sent(ctx.server().send_raw(payload, id))
        }
        "local-all" => sent(
            ctx.server()
                .this_worker()
                .expect("on a core loop")
                .send_raw_to_all(arg),
        ),
        "local-to" => {
            let (id, payload) = arg.split_once(':').expect("local-to:ID:X");
            let id: ClientId = id.parse().expect("a client id");
            let local = ctx.server().this_worker().expect("on a core loop");
            sent(local.send_raw(payload, id))
        }
        "local-count" => Some(
            ctx.server()
                .this_worker()
                .expect("on a core loop")
                .connection_count()
                .to_string(),
        ),
        "local-conns" => Some(join_ids(
            &ctx.server()
                .this_worker()
                .expect("on a core loop")
                .connections(),
        )),
        "default-server" => Some(name(get_server(None))),
        "find-server" => Some(name(get_server(arg))),
        "server-has-me" => {
            let me = ctx.client_id();
            Some(get_server(arg).map_or_else(|| "none".into(), |s| s.exists(me).to_string()))
        }
        "close" => {
            ctx.close();
            None
        }
        "panic" => panic!("the test handler was asked to panic"),
        _ => Some(format!("unknown:{text}")),
    }
}

/// A WebSocket client of a [`Cmd`] server, with its id.
#[derive(Debug)]
pub struct Client {
    pub ws: Ws,
    pub id: ClientId,
}

impl Client {
    /// Connects and learns the client's id.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::with_ws(connect(addr))
    }

    /// Connects with a request path and learns the client's id.
    pub fn connect_path(addr: SocketAddr, path: &str) -> Client {
        Client::with_ws(connect_path(addr, path))
    }

    fn with_ws(mut ws: Ws) -> Client {
        let id = ask_ws(&mut ws, "id").parse().expect("the reply to `id`");
        Client { ws, id }
    }

    /// The core loop that owns the connection.
    pub fn worker(&self) -> WorkerId {
        self.id.worker()
    }

    /// Sends a command and returns the reply (the next message).
    pub fn ask(&mut self, command: &str) -> String {
        ask_ws(&mut self.ws, command)
    }

    /// Sends a text message without waiting for anything.
    pub fn say(&mut self, text: &str) {
        self.ws.send(WsMessage::text(text)).expect("send");
    }

    /// The next text message.
    pub fn recv(&mut self) -> String {
        recv_text(&mut self.ws)
    }

    /// The next message of any kind (pings and pongs skipped).
    pub fn recv_message(&mut self) -> WsMessage {
        loop {
            match self.ws.read() {
                Ok(WsMessage::Ping(_)) | Ok(WsMessage::Pong(_)) => {}
                Ok(m) => return m,
                Err(e) => panic!("client {}: expected a message, got error {e}", self.id),
            }
        }
    }

    /// Proves that nothing was queued to this client before a marker: pushes `marker` to
    /// it through `server` and asserts that the marker is the next message.
    pub fn assert_nothing_before_marker(&mut self, server: &Server, marker: &str) {
        assert_eq!(server.send_raw(marker, self.id).expect("marker push"), 1);
        assert_eq!(
            self.recv(),
            marker,
            "client {} got something else first",
            self.id
        );
    }

    /// Closes from the client side and completes the close handshake. The server drops the
    /// client from its registry before it answers, so once this returns, the client is gone
    /// from every listing.
    pub fn hang_up(mut self) {
        self.ws.close(None).expect("send close");
        let _ = self.ws.flush();
        let code = read_until_close(&mut self.ws);
        assert!(
            matches!(code, None | Some(1000)),
            "close answered with {code:?}"
        );
    }
}

fn ask_ws(ws: &mut Ws, command: &str) -> String {
    ws.send(WsMessage::text(command)).expect("send command");
    recv_text(ws)
}

/// Connects clients until every one of `workers` core loops owns at least `per_worker` of
/// them; extra connections are hung up. Returns the clients by core loop index, each list
/// exactly `per_worker` long. Bounded: the kernel spreads connections over the SO_REUSEPORT
/// listeners by hash, so 200 attempts miss a core loop only with negligible probability.
pub fn clients_by_worker(addr: SocketAddr, workers: usize, per_worker: usize) -> Vec<Vec<Client>> {
    let mut by_worker: Vec<Vec<Client>> = (0..workers).map(|_| Vec::new()).collect();
    let mut extra = Vec::new();
    for _ in 0..200 {
        if by_worker.iter().all(|v| v.len() >= per_worker) {
            break;
        }
        let c = Client::connect(addr);
        let w = c.worker().index();
        assert!(w < workers, "client {} on core loop {w} of {workers}", c.id);
        if by_worker[w].len() < per_worker {
            by_worker[w].push(c);
        } else {
            extra.push(c);
        }
    }
    let counts: Vec<usize> = by_worker.iter().map(Vec::len).collect();
    assert!(
        counts.iter().all(|&n| n == per_worker),
        "could not get {per_worker} client(s) on each core loop: {counts:?}"
    );
    for c in extra {
        c.hang_up();
    }
    by_worker
}

/// One client on core loop 0 and one on core loop 1 of a two-core-loop server.
pub fn pair_across_workers(addr: SocketAddr) -> (Client, Client) {
    let mut v = clients_by_worker(addr, 2, 1);
    let b = v[1].pop().expect("a client on core loop 1");
    let a = v[0].pop().expect("a client on core loop 0");
    (a, b)
}

/// Starts a runtime of two core loops with one WebSocket [`Cmd`] server named `name` on
/// 127.0.0.1:0; returns it with the server's address and handle.
pub fn start_cmd(name: &str) -> (Runtime, SocketAddr, Server) {
    start_config(ServerConfig::websocket(
        name,
        "127.0.0.1:0".parse().unwrap(),
    ))
}

/// Starts a runtime of two core loops with one [`Cmd`] server of this configuration; returns
/// it with the server's address and handle.
pub fn start_config(config: ServerConfig) -> (Runtime, SocketAddr, Server) {
    let name = config.name.clone();
    start_spec(&name, config.handler(|_| Cmd))
}

/// As [`start_config`], from the spec of the [`Cmd`] server named `name` (for settings made
/// on the spec).
pub fn start_spec(name: &str, spec: ServerSpec<Cmd>) -> (Runtime, SocketAddr, Server) {
    let runtime = Runtime::builder()
        .workers(2)
        .server(spec)
        .start()
        .expect("start the runtime");
    let addr = runtime.local_addr(name).expect("its address");
    let server = runtime.server(name).expect("its handle");
    (runtime, addr, server)
}
