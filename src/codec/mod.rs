//! Sans-IO codecs: WebSocket frames (server side) and the two TCP framers.
pub(crate) mod tcp;
pub(crate) mod ws;

mod frame;
mod message;

pub(crate) use frame::{SharedFrame, frame};
pub use message::Message;
pub(crate) use message::ProtocolError;
