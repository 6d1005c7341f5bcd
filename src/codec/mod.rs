//! Sans-IO codecs: WebSocket frames (server side, with permessage-deflate) and the two TCP
//! framers.
pub(crate) mod tcp;
pub(crate) mod ws;

pub(crate) mod deflate;
mod ws_out;

mod frame;
mod message;

pub(crate) use frame::{Frame, SharedFrame, frame};
pub use message::Message;
pub(crate) use message::ProtocolError;
