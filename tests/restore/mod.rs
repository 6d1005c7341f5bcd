//! The handler and helpers the restore tests share: a command handler that restores through
//! its context and reports every `on_restore`.
#![allow(dead_code)] // each test file uses a different subset
#![allow(unreachable_pub)] // a test crate module: `pub` is for the test files

use std::net::SocketAddr;
use std::time::Duration;

use corepush::{ClientId, Context, Handler, Message, Restored, Server, ServerConfig};
use crossbeam_channel::{Receiver, Sender};

use super::util::{Client, WAIT};

/// Commands (reply after `→`): `id` → the client id; `bind:F`, `join:G`, `set:K:V` (a
/// `String`), `typed:N` (a `u32` under `visits`) → `ok`; `bindnx:F` → `true`/`false`;
/// `restore:F` → `nothing`, `from:ID:G1,G2` or `error:…`.
pub struct Keeper {
    /// Each `on_restore`: (this connection, the closed one).
    pub restored: Sender<(ClientId, ClientId)>,
}

impl Handler for Keeper {
    /// `/?restore=F` restores flag `F` at once and sends the answer as the first message.
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let flag = ctx
            .request()
            .and_then(|r| r.query())
            .and_then(|q| q.strip_prefix("restore="))
            .map(str::to_owned);
        if let Some(flag) = flag {
            let reply = answer(ctx.restore(&flag));
            let _ = ctx.send_raw(reply);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let text = message.as_text().unwrap_or("").to_owned();
        let (verb, arg) = text.split_once(':').unwrap_or((&text, ""));
        let reply = match verb {
            "id" => ctx.client_id().to_string(),
            "bind" => {
                ctx.bind(arg);
                "ok".into()
            }
            "bindnx" => ctx.bind_nx(arg).to_string(),
            "join" => {
                ctx.join(arg);
                "ok".into()
            }
            "set" => {
                let (k, v) = arg.split_once(':').unwrap_or((arg, ""));
                ctx.set(k, v.to_owned());
                "ok".into()
            }
            "typed" => {
                ctx.set("visits", arg.parse::<u32>().unwrap_or(0));
                "ok".into()
            }
            "restore" => answer(ctx.restore(arg)),
            _ => format!("unknown:{text}"),
        };
        let _ = ctx.send_raw(reply);
    }

    fn on_restore(&mut self, ctx: &mut Context<'_>, from: ClientId) {
        let _ = self.restored.send((ctx.client_id(), from));
    }
}

/// A restore's answer as the handler's reply text.
pub fn answer(outcome: corepush::Result<Restored>) -> String {
    match outcome {
        Ok(Restored::Nothing) => "nothing".into(),
        Ok(Restored::Done { from, groups }) => format!("from:{from}:{}", groups.join(",")),
        Err(e) => format!("error:{e}"),
    }
}

/// The server config of a [`Keeper`] server keeping contexts for `keep`, and the receiver of
/// its `on_restore` reports.
pub fn keeper(
    name: &str,
    keep: Duration,
) -> (corepush::ServerSpec<Keeper>, Receiver<(ClientId, ClientId)>) {
    let config = ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap()).keep_context(keep);
    keeper_spec(config)
}

/// A [`Keeper`] server of this configuration, and the receiver of its `on_restore` reports.
pub fn keeper_spec(config: ServerConfig) -> (corepush::ServerSpec<Keeper>, Reports) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let spec = config.handler(move |_| Keeper {
        restored: tx.clone(),
    });
    (spec, rx)
}

/// A client bound to `flag`, in `groups`, with `name` set (a `String`) and `visits` (a
/// `u32`).
pub fn holder(addr: SocketAddr, flag: &str, groups: &[&str], name: &str) -> Client {
    let mut c = Client::connect(addr);
    assert_eq!(c.ask(&format!("bind:{flag}")), "ok");
    for g in groups {
        assert_eq!(c.ask(&format!("join:{g}")), "ok");
    }
    assert_eq!(c.ask(&format!("set:name:{name}")), "ok");
    assert_eq!(c.ask("typed:3"), "ok");
    c
}

/// Cuts a client's socket without a close handshake (a lost network), and waits until the
/// server has noticed (`exists` false: from then on its context is kept).
pub fn cut(client: Client, server: &Server) -> ClientId {
    let id = client.id;
    let _ = client.ws.get_ref().shutdown(std::net::Shutdown::Both);
    drop(client);
    super::util::wait_until("the server notices the cut", || !server.exists(id));
    id
}

/// The next `on_restore` report.
pub fn next_restored(rx: &Receiver<(ClientId, ClientId)>) -> (ClientId, ClientId) {
    rx.recv_timeout(WAIT).expect("an on_restore call")
}

/// What [`keeper`] reports `on_restore` calls on.
pub type Reports = Receiver<(ClientId, ClientId)>;
