//! Taking connections: accepting from the listeners (paused while a limit is reached, retried
//! when one frees), admission against the per-server and per-address limits, and setting a
//! new connection up on this core loop.

use std::io as stdio;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use log::{debug, error, info, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::{CONN_BASE, Worker};
use crate::config::Protocol;
use crate::conn::handshake::Handshake;
#[cfg(feature = "tls")]
use crate::conn::tls::TlsSession;
use crate::conn::{Conn, ConnIo, Decoder, Phase};
use crate::id::{ClientId, next_serial};
use crate::mailbox::Stamp;
use crate::shared::ServerShared;
use crate::stats::bump;

impl Worker {
    pub(super) fn accept(&mut self, server: usize) {
        loop {
            let Some(listener) = self.servers.get(server).and_then(|s| s.listener.as_ref()) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.add_conn(server, stream, peer.ip()),
                Err(e) if e.kind() == stdio::ErrorKind::WouldBlock => {
                    if std::mem::take(&mut self.accept_paused[server]) {
                        info!("core loop {}: accepting clients again", self.id);
                    }
                    return;
                }
                // A client that gave up while queued: the next one may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        stdio::ErrorKind::Interrupted
                            | stdio::ErrorKind::ConnectionAborted
                            | stdio::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    // Out of file descriptors (or memory): the clients stay queued in the
                    // kernel, and no new readiness event will say so, so the loop tries
                    // again whenever it lets a connection go and at every tick.
                    if !self.accept_paused[server] {
                        self.accept_paused[server] = true;
                        warn!(
                            "core loop {}: accept failed: {e}; waiting clients are accepted \
                             once resources free up",
                            self.id
                        );
                    }
                    return;
                }
            }
        }
    }

    /// Retries the accepts that failed for want of resources.
    pub(super) fn retry_accept(&mut self) {
        for server in 0..self.servers.len() {
            if self.accept_paused[server] {
                self.accept(server);
            }
        }
    }

    /// Admits a socket under the server's connection limits; false if it must be refused.
    pub(super) fn admit(&mut self, shared: &ServerShared, peer: std::net::IpAddr) -> bool {
        let config = &shared.config;
        if shared.sockets.fetch_add(1, Ordering::AcqRel) >= config.max_connections {
            shared.sockets.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        if config.max_connections_per_ip > 0 {
            let mut per_ip = shared.per_ip.lock();
            let n = per_ip.entry(peer).or_insert(0);
            if *n as usize >= config.max_connections_per_ip {
                drop(per_ip);
                shared.sockets.fetch_sub(1, Ordering::AcqRel);
                return false;
            }
            *n += 1;
        }
        true
    }

    pub(super) fn add_conn(
        &mut self,
        server: usize,
        mut stream: TcpStream,
        peer: std::net::IpAddr,
    ) {
        let shared = self.servers[server].shared.clone();
        let counters = shared.counters(self.id);
        if !self.admit(&shared, peer) {
            bump(&counters.rejected, 1);
            self.refused += 1;
            return;
        }
        let per_ip = (shared.config.max_connections_per_ip > 0).then_some(peer);
        if let Err(e) = stream.set_nodelay(true) {
            debug!("set_nodelay failed: {e}");
        }
        let (instance, worker) = (self.runtime.instance, self.id);
        let Some(id) =
            next_serial(worker).and_then(|serial| ClientId::new(instance, worker, serial))
        else {
            error!(
                "core loop {}: client ids are spent; refusing a client",
                self.id
            );
            self.unadmit(&shared, per_ip);
            return;
        };
        // The certificate in force now: a reload reaches the handshakes that start after it.
        #[cfg(feature = "tls")]
        let tls = match shared
            .config
            .tls
            .as_ref()
            .map(|t| TlsSession::new(t.current()))
        {
            None => None,
            Some(Ok(session)) => Some(Box::new(session)),
            Some(Err(e)) => {
                error!("core loop {}: cannot start a TLS session: {e}", self.id);
                self.unadmit(&shared, per_ip);
                return;
            }
        };
        #[cfg(feature = "tls")]
        let has_tls = tls.is_some();
        #[cfg(not(feature = "tls"))]
        let has_tls = false;
        bump(&counters.accepted, 1);
        let registry = self.poll.registry();
        let now_ms = self.now_ms;
        // Registered once for both directions, edge-triggered: a writable edge arrives when a
        // full socket drains, so interest never needs to change (no epoll_ctl per flush).
        let mut registered = Ok(());
        let slot = self.conns.insert(id.serial(), |slot| {
            let token = Token(CONN_BASE + slot as usize);
            registered =
                registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE);
            let socket = Rc::new(stream);
            let protocol = shared.config.protocol;
            let deadline = Instant::now() + shared.config.handshake_timeout;
            let phase = match protocol {
                Protocol::WebSocket => Phase::Handshake(
                    Some(Box::new(Handshake::new(
                        shared.handshake_hook.clone(),
                        shared.subprotocols.clone(),
                        shared.config.permessage_deflate,
                    ))),
                    deadline,
                ),
                Protocol::TcpLines | Protocol::TcpLength if has_tls => {
                    Phase::Handshake(None, deadline)
                }
                Protocol::TcpLines | Protocol::TcpLength => Phase::Open,
            };
            let io = ConnIo::new(socket, id, shared.index, protocol);
            #[cfg(feature = "tls")]
            let io = io.with_tls(tls);
            Conn {
                io,
                decoder: Decoder::new(protocol),
                phase,
                peer_closed: false,
                write_shut: false,
                last_seen: now_ms,
                pinged: false,
                slow_logged: false,
                peer: per_ip,
                opened: Stamp::default(),
            }
        });
        if let Err(e) = registered {
            error!(
                "core loop {}: registering a connection failed: {e}",
                self.id
            );
            self.release(slot);
            return;
        }
        if self.conns.get(slot).is_some_and(Conn::is_open) {
            self.opened(slot, &[], None);
        }
    }

    /// Gives back what `admit` took.
    pub(super) fn unadmit(&self, shared: &ServerShared, peer: Option<std::net::IpAddr>) {
        shared.sockets.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = peer {
            let mut per_ip = shared.per_ip.lock();
            if let Some(n) = per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}
