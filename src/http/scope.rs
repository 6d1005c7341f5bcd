//! The request scope: which HTTP server, if any, the current thread serves requests for, and
//! what the push facade's names mean there.

use std::cell::RefCell;

use crate::facade::Server;
use crate::running;

thread_local! {
    /// On a pool thread of an HTTP server: that server's own Fpm handle.
    static REQUEST_SCOPE: RefCell<Option<Server>> = const { RefCell::new(None) };
}

/// Marks this thread as a pool thread of the HTTP server whose own Fpm handle is `server`.
pub(crate) fn enter_request_scope(server: Server) {
    REQUEST_SCOPE.with(|s| *s.borrow_mut() = Some(server));
}

/// What [`get_server`](crate::get_server) answers on a pool thread of an HTTP server (see
/// [`request_server`]); `None` off such threads, where it looks the name up as usual.
pub(crate) fn request_scope_server(name: Option<&str>) -> Option<Option<Server>> {
    REQUEST_SCOPE.with(|s| s.borrow().as_ref().map(|own| request_server(own, name)))
}

/// The server that a request of the HTTP server whose own Fpm handle is `own` reaches by
/// `name`: a push server of that name running in this process; else, for the HTTP server's
/// own name (or `None`), `own`; else none, as an unknown name is anywhere else.
pub(crate) fn request_server(own: &Server, name: Option<&str>) -> Option<Server> {
    match name {
        Some(n) if n != own.name() => running::find(Some(n)),
        _ => Some(own_server(own)),
    }
}

/// What a request reaches by its HTTP server's own name: a push server of that name running
/// in this process, else `own`, so that push code shared with a push deployment runs and
/// reaches nobody.
pub(crate) fn own_server(own: &Server) -> Server {
    running::find(Some(own.name())).unwrap_or_else(|| own.clone())
}
