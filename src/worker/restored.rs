//! A core loop's side of a restore: telling the handler of the connection that took over a
//! closed connection's context.

use super::Worker;
use super::io::guarded;
use crate::handler::Context;
use crate::id::ClientId;

impl Worker {
    /// Calls `on_restore` for client `id` of `server`, if it is still open.
    pub(super) fn restored(&mut self, server: u16, id: ClientId, from: ClientId) {
        let Some(slot) = self.slot_of(id) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if conn.io.server != server || !conn.is_open() {
            return;
        }
        let Some(s) = self.servers.get_mut(server as usize) else {
            return;
        };
        let mut ctx = Context::local(&mut conn.io, &s.shared, &s.facade, self.id);
        guarded(&mut ctx, |ctx| s.handler.handler().on_restore(ctx, from));
        self.after_handler(slot);
    }
}
