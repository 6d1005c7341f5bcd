//! chat: a browser chat on corepush — rooms are groups, users are flags, presence is read from
//! the group listing, and the page (with `clients/js/corepush.js`) is served from the
//! WebSocket's own port. No CDN, nothing to build.
//!
//! ```text
//! cargo run --example chat                     # then open http://127.0.0.1:8080/
//! cargo run --example chat -- --port 0 --workers 2
//! ```
//!
//! The page speaks the push demo's command protocol (`{"op", …, "id"}` answered by
//! `{"op": "reply", "id", "result" | "error"}`), with the ops a chat needs:
//!
//! | op | arguments | result |
//! |----|-----------|--------|
//! | `bind` | `flag`: the user's name (1–32 characters, no control characters) | true |
//! | `join` | `group`: a room (the same rule); needs a name first | `{"epoch", "offset"}`: the room's position before the last messages, which follow as pushes; then a presence push to the room |
//! | `recover` | `group`, `epoch`, `offset`: where the client was | `{"recovered": true, "missed": K}` (the K messages follow as pushes), or `{"recovered": false, "epoch", "offset"}` (the room's position now: reload); it joins the room either way, and a presence push follows |
//! | `leave` | `group` | whether it was in the room; a presence push to the room |
//! | `say` | `room`, `text` (at most 2000 characters); needs to be in the room | how many it reached |
//! | `members` | `room` | the names in the room, sorted, each once |
//!
//! Everything pushed to a room names it (`"room"`), so a client knows which room a push is for:
//! `{"type": "message", "room", "from", "text", "at"}` and `{"type": "presence", "room",
//! "members": [names]}`. The server names the sender: a client cannot speak for another.
//! A user with several tabs is one name in the room (a flag covers several connections).
//!
//! # History
//!
//! Each room keeps its last `--history` pushes (100 by default; the library's history, see
//! [`corepush::HistoryConfig`]). A user who joins is shown the last [`SHOWN_ON_JOIN`] of them,
//! and a page whose connection dropped comes back with `recover` and the position it had
//! reached, and is given exactly what it missed (`clients/js/corepush.js` does that by
//! itself): the join answers the position *before* the messages it replays, so the client
//! counts every push of the room from there (each names its room).

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{SystemTime, UNIX_EPOCH};

use corepush::{
    Context, Handler, HistoryConfig, Message, PlainHttp, Response, Runtime, ServerConfig,
    StreamPosition,
};
use serde_json::{Map, Value, json};

#[path = "common/cli.rs"]
#[allow(dead_code)] // shared by the examples: not every one uses every helper
mod cli;

use cli::value;

/// The name of the chat's one server.
pub const SERVER: &str = "chat";

/// The page, its script and the client, embedded: the binary serves them as they are.
const INDEX_HTML: &str = include_str!("chat/index.html");
const CHAT_JS: &str = include_str!("chat/chat.js");
const COREPUSH_JS: &str = include_str!("../clients/js/corepush.js");

/// The longest name of a user or a room, in characters.
pub const MAX_NAME: usize = 32;
/// The longest message, in characters.
pub const MAX_TEXT: usize = 2000;
/// How many of a room's last messages a user who joins is shown (at most the history kept).
pub const SHOWN_ON_JOIN: u64 = 50;

/// The command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Defaults to 127.0.0.1.
    pub host: String,
    /// Defaults to 8080; 0 picks a free port.
    pub port: u16,
    /// Core loops; defaults to 2.
    pub workers: usize,
    /// Pushes kept per room (0: none); defaults to 100.
    pub history: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            workers: 2,
            history: 100,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cli {
    /// Run the server.
    Run(Options),
    /// Print the help.
    Help,
}

/// A browser chat: rooms, users, presence; the page is served on the same port.
#[derive(Debug, clap::Parser)]
#[command(name = "chat", disable_version_flag = true)]
struct Flags {
    /// Port to listen on; 0 picks a free one
    #[arg(long, value_name = "N", default_value = "8080", value_parser = value::port)]
    port: u16,
    /// IP address (::1 too) or name to listen on
    #[arg(long, value_name = "H", default_value = "127.0.0.1", value_parser = value::non_empty)]
    host: String,
    /// Core loops
    #[arg(long, value_name = "N", default_value = "2", value_parser = value::within(1, 256))]
    workers: usize,
    /// Pushes kept per room, for the history shown on join and for recovery (0: none)
    #[arg(long, value_name = "N", default_value = "100", value_parser = value::within(0, 1_000_000))]
    history: usize,
}

/// Parses the arguments (without the program name).
pub fn parse_args<I, S>(args: I) -> Result<Cli, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let Some(flags) = cli::parse::<Flags, _, _>(args)? else {
        return Ok(Cli::Help);
    };
    Ok(Cli::Run(Options {
        host: flags.host,
        port: flags.port,
        workers: flags.workers,
        history: flags.history,
    }))
}

/// Starts the chat server: listening when this returns.
pub fn build(opts: &Options) -> corepush::Result<Runtime> {
    let addr = resolve(&opts.host, opts.port)?;
    let history = match opts.history {
        0 => HistoryConfig::default(),
        n => HistoryConfig::default().groups("*", n, None),
    };
    let shown = SHOWN_ON_JOIN.min(opts.history as u64);
    let spec = ServerConfig::websocket(SERVER, addr)
        .history(history)
        .handler(move |_| Chat { shown })
        .plain_http(PlainHttp::default().metrics(false).route(page));
    Runtime::builder()
        .workers(opts.workers)
        .server(spec)
        .start()
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Cli::Run(opts)) => opts,
        Ok(Cli::Help) => {
            println!("{}", cli::help::<Flags>());
            return;
        }
        Err(e) => {
            eprintln!("chat: {e}\n{}", cli::usage::<Flags>());
            std::process::exit(2);
        }
    };
    let runtime = match build(&opts) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chat: cannot start: {e}");
            std::process::exit(1);
        }
    };
    if let Some(addr) = runtime.local_addr(SERVER) {
        println!(
            "listening on http://{addr}/ (workers={})",
            runtime.workers()
        );
        let _ = std::io::stdout().flush();
    }
    if let Err(e) = runtime.run() {
        eprintln!("chat: {e}");
        std::process::exit(1);
    }
}

/// The page and its scripts; anything else passes on (to `/health`, then 404).
fn page(request: &corepush::Request) -> Option<Response> {
    let (body, kind) = match request.path() {
        "/" | "/index.html" => (INDEX_HTML, "text/html; charset=utf-8"),
        "/chat.js" => (CHAT_JS, "text/javascript; charset=utf-8"),
        "/corepush.js" => (COREPUSH_JS, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    Some(
        Response::new(200)
            .header("Content-Type", kind)
            .header("Cache-Control", "no-cache")
            .body(body),
    )
}

fn resolve(host: &str, port: u16) -> corepush::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| corepush::Error::Config(format!("{host:?} resolves to no address")))
}

/// The handler of one core loop: it keeps nothing of its own (names and rooms are flags and
/// groups, in the server's registry; messages in its history).
#[derive(Debug)]
struct Chat {
    /// How many of a room's last messages a user who joins is shown.
    shown: u64,
}

impl Handler for Chat {
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let Some(text) = message.as_text() else {
            return;
        };
        let (id, outcome) = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(request)) => {
                let id = request.get("id").cloned().unwrap_or(Value::Null);
                (id, op(ctx, &request, self.shown))
            }
            Ok(_) => (Value::Null, Err("a request is a JSON object".to_owned())),
            Err(e) => (Value::Null, Err(format!("unparseable JSON: {e}"))),
        };
        let reply = match outcome {
            Ok(result) => json!({"op": "reply", "id": id, "result": result}),
            Err(error) => json!({"op": "reply", "id": id, "error": error}),
        };
        if let Err(e) = ctx.send(&reply) {
            log::warn!("reply to {}: {e}", ctx.client_id());
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>) {
        // Still listed in its rooms until this returns: the presence leaves it out.
        let me = ctx.client_id();
        for room in ctx.groups() {
            presence(ctx, &room, Some(me));
        }
    }
}

/// Runs one request; its result or the error message.
fn op(ctx: &mut Context<'_>, request: &Map<String, Value>, shown: u64) -> Result<Value, String> {
    let arg = |key: &str| -> Result<&str, String> {
        request
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{key} (a string) is missing"))
    };
    match arg("op")? {
        "bind" => {
            let name = name(arg("flag")?)?;
            ctx.bind(name);
            Ok(true.into())
        }
        "join" => {
            let room = name(arg("group")?)?;
            if ctx.flag().is_none() {
                return Err("bind a name first".to_owned());
            }
            // Joined from a little way back: the last messages come with the join.
            let now = ctx
                .server()
                .group_position(room)
                .map_err(|e| e.to_string())?;
            let since = StreamPosition {
                offset: now.offset.saturating_sub(shown),
                epoch: now.epoch,
            };
            let recovery = ctx
                .join_recovering(room, Some(&since))
                .map_err(|e| e.to_string())?;
            // The position before the pushes that follow (none replayed when not recovered).
            let at = if recovery.recovered {
                since
            } else {
                recovery.position
            };
            presence(ctx, room, None);
            Ok(json!({"epoch": at.epoch, "offset": at.offset}))
        }
        "recover" => {
            let room = name(arg("group")?)?;
            if ctx.flag().is_none() {
                return Err("bind a name first".to_owned());
            }
            let since = StreamPosition {
                epoch: arg("epoch")?.to_owned(),
                offset: request
                    .get("offset")
                    .and_then(Value::as_u64)
                    .ok_or("offset (a whole number) is missing")?,
            };
            let recovery = ctx
                .join_recovering(room, Some(&since))
                .map_err(|e| e.to_string())?;
            presence(ctx, room, None);
            Ok(if recovery.recovered {
                json!({"recovered": true, "missed": recovery.missed})
            } else {
                let at = recovery.position;
                json!({"recovered": false, "epoch": at.epoch, "offset": at.offset})
            })
        }
        "leave" => {
            let room = arg("group")?;
            let was = ctx.leave(room);
            if was {
                presence(ctx, room, None);
            }
            Ok(was.into())
        }
        "say" => {
            let room = arg("room")?;
            let text = arg("text")?;
            if text.chars().count() > MAX_TEXT {
                return Err(format!("a message has at most {MAX_TEXT} characters"));
            }
            if !ctx.groups().iter().any(|g| g == room) {
                return Err(format!("join {room:?} first"));
            }
            let from = ctx.flag().unwrap_or_default();
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let message =
                json!({"type": "message", "room": room, "from": from, "text": text, "at": at});
            ctx.server()
                .send_to_group(room, &message)
                .map(Value::from)
                .map_err(|e| e.to_string())
        }
        "members" => Ok(members(ctx, arg("room")?, None).into()),
        other => Err(format!("unknown op {other:?}")),
    }
}

/// A user's or a room's name, checked.
fn name(text: &str) -> Result<&str, String> {
    let count = text.chars().count();
    if count == 0 || count > MAX_NAME || text.chars().any(char::is_control) {
        return Err(format!(
            "a name has 1 to {MAX_NAME} characters, none of them control characters"
        ));
    }
    Ok(text)
}

/// The names in a room (from the group's members and their flags), sorted, each once.
fn members(ctx: &Context<'_>, room: &str, leaving: Option<corepush::ClientId>) -> Vec<String> {
    let server = ctx.server();
    let mut names: Vec<String> = server
        .group_members(room)
        .into_iter()
        .filter(|&id| Some(id) != leaving)
        .filter_map(|id| server.flag_of(id))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Tells the room who is in it now.
fn presence(ctx: &Context<'_>, room: &str, leaving: Option<corepush::ClientId>) {
    let names = members(ctx, room, leaving);
    let push = json!({"type": "presence", "room": room, "members": names});
    if let Err(e) = ctx.server().send_to_group(room, &push) {
        log::warn!("presence in {room}: {e}");
    }
}
