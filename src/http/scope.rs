//! The request scope: which HTTP server, if any, the current thread serves requests for.

use std::cell::RefCell;

use crate::facade::Server;

thread_local! {
    /// On a pool thread of an HTTP server: that server's Fpm handle.
    static REQUEST_SCOPE: RefCell<Option<Server>> = const { RefCell::new(None) };
}

/// Marks this thread as a pool thread of the HTTP server whose Fpm handle is `server`.
pub(crate) fn enter_request_scope(server: Server) {
    REQUEST_SCOPE.with(|s| *s.borrow_mut() = Some(server));
}

/// What [`get_server`](crate::get_server) answers on a pool thread of an HTTP server: an Fpm
/// handle for any name (that server's own for `None`), as imi under FPM has no push server at
/// all. `None` off such threads.
pub(crate) fn request_scope_server(name: Option<&str>) -> Option<Server> {
    REQUEST_SCOPE.with(|s| {
        let scope = s.borrow();
        let own = scope.as_ref()?;
        match name {
            Some(n) if n != own.name() => Some(Server::fpm(n)),
            _ => Some(own.clone()),
        }
    })
}
