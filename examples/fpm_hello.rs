//! fpm_hello: one application, two modes — the same push code under the push server and under
//! the request-scoped ("FPM-like") HTTP server.
//!
//! * `--mode push` (port 8080): a WebSocket server. Every client joins the group `room` (and is
//!   told `{"joined":"room"}`); a text message `NAME` pushes `{"hello":NAME}` to the whole room
//!   and answers the sender `{"hello":NAME,"pushed":N}`, N being how many it reached.
//! * `--mode fpm` (port 8081): an HTTP/1.1 server. `GET /hello?name=NAME` runs the very same
//!   push code, which reaches nobody there, and answers `{"hello":NAME,"pushed":0}`: no push
//!   server runs in that process, so the name is the HTTP server's own no-op handle. (Both
//!   started in one process, the request would find the push server and reach the room.)
//!
//! ```text
//! cargo run --example fpm_hello -- --mode push          # then a WebSocket client on :8080
//! cargo run --example fpm_hello -- --mode fpm           # then: curl 'localhost:8081/hello?name=x'
//! ```

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};

use corepush::{
    Context, Handler, HttpConfig, HttpServer, Message, Request, RequestContext, RequestHandler,
    Response, Runtime, ServerConfig,
};
use serde_json::{Value, json};

#[path = "common/cli.rs"]
#[allow(dead_code)] // shared by the examples: not every one uses every helper
mod cli;

use cli::value;

/// The server name the application pushes through, in both modes.
pub const SERVER: &str = "hello";
/// The group every WebSocket client joins.
pub const ROOM: &str = "room";

/// The application. Its push code, [`Hello::greet`], is the same in both modes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hello;

impl Hello {
    /// Pushes a greeting to everyone in the room; returns how many connections it reached.
    /// Under the push server that is the room's size; in a request of fpm mode, with no push
    /// server in the process, it is 0, harmlessly.
    pub fn greet(&self, name: &str) -> corepush::Result<usize> {
        corepush::require_server(SERVER)?.send_to_group(ROOM, &json!({ "hello": name }))
    }

    /// What the caller is told, in both modes.
    fn answer(&self, name: &str) -> Value {
        match self.greet(name) {
            Ok(pushed) => json!({ "hello": name, "pushed": pushed }),
            Err(e) => json!({ "hello": name, "error": e.to_string() }),
        }
    }
}

/// Push mode: one instance per core loop.
impl Handler for Hello {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.join(ROOM);
        let _ = ctx.send(&json!({ "joined": ROOM }));
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        if let Some(name) = message.as_text() {
            let answer = self.answer(name);
            let _ = ctx.send(&answer);
        }
    }
}

/// Request-scoped mode: one instance shared by the pool threads.
impl RequestHandler for Hello {
    fn handle(&self, request: &Request, _ctx: &mut RequestContext) -> Response {
        match (request.method(), request.path()) {
            ("GET" | "HEAD", "/hello") => {
                let name = request
                    .query_param("name")
                    .unwrap_or_else(|| "world".into());
                let answer = self.answer(&name);
                let status = if answer.get("error").is_some() {
                    500
                } else {
                    200
                };
                Response::json(&answer).status(status)
            }
            (_, "/hello") => Response::new(405).header("Allow", "GET, HEAD"),
            _ => Response::text("not found; try GET /hello?name=x\n").status(404),
        }
    }
}

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The WebSocket push server.
    Push,
    /// The request-scoped HTTP server.
    Fpm,
}

/// The command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Defaults to [`Mode::Push`].
    pub mode: Mode,
    /// Defaults to 127.0.0.1.
    pub host: String,
    /// Defaults to 8080 in push mode and 8081 in fpm mode; 0 picks a free port.
    pub port: Option<u16>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Push,
            host: "127.0.0.1".to_owned(),
            port: None,
        }
    }
}

impl Options {
    /// The address to listen on.
    pub fn addr(&self) -> Result<SocketAddr, String> {
        let port = self.port.unwrap_or(match self.mode {
            Mode::Push => 8080,
            Mode::Fpm => 8081,
        });
        (self.host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {:?}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{:?} resolves to no address", self.host))
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cli {
    /// Run a server.
    Run(Options),
    /// Print the help.
    Help,
}

/// The same push code under the push server and under the request-scoped HTTP server.
#[derive(Debug, clap::Parser)]
#[command(name = "fpm_hello", disable_version_flag = true)]
struct Flags {
    /// push: the WebSocket push server; fpm: the request-scoped HTTP server
    #[arg(long, value_enum, default_value = "push", hide_possible_values = true)]
    mode: Mode,
    /// Port to listen on; 0 picks a free one [default: 8080 push, 8081 fpm]
    #[arg(long, value_name = "N", value_parser = value::port)]
    port: Option<u16>,
    /// IP address (::1 too) or name to listen on
    #[arg(long, value_name = "H", default_value = "127.0.0.1", value_parser = value::non_empty)]
    host: String,
}

/// Parses the arguments (without the program name). `--flag value` and `--flag=value` both
/// work.
pub fn parse_args<I, S>(args: I) -> Result<Cli, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let Some(flags) = cli::parse::<Flags, _, _>(args)? else {
        return Ok(Cli::Help);
    };
    Ok(Cli::Run(Options {
        mode: flags.mode,
        host: flags.host,
        port: flags.port,
    }))
}

/// Starts the push server (a WebSocket runtime whose server is named [`SERVER`]).
pub fn start_push(addr: SocketAddr) -> corepush::Result<Runtime> {
    Runtime::builder()
        .server(ServerConfig::websocket(SERVER, addr).handler(|_| Hello))
        .start()
}

/// Starts the request-scoped HTTP server, named [`SERVER`] too.
pub fn start_fpm(addr: SocketAddr) -> corepush::Result<HttpServer> {
    HttpServer::start(HttpConfig::new(SERVER, addr), Hello)
}

fn main() {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Cli::Run(opts)) => opts,
        Ok(Cli::Help) => {
            println!("{}", cli::help::<Flags>());
            return;
        }
        Err(e) => {
            eprintln!("fpm_hello: {e}\n{}", cli::usage::<Flags>());
            std::process::exit(2);
        }
    };
    let addr = opts.addr().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    let outcome = match opts.mode {
        Mode::Push => start_push(addr).and_then(|rt| {
            let addr = rt.local_addr(SERVER).unwrap_or(addr);
            announce(&format!("ws://{addr}/ (mode=push)"));
            rt.run()
        }),
        Mode::Fpm => start_fpm(addr).and_then(|server| {
            announce(&format!("http://{}/ (mode=fpm)", server.local_addr()));
            server.run()
        }),
    };
    if let Err(e) = outcome {
        eprintln!("fpm_hello: {e}");
        std::process::exit(1);
    }
}

fn announce(where_: &str) {
    println!("listening on {where_}");
    let _ = std::io::stdout().flush();
}
