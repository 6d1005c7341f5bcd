//! The gateway protocol's target: any bytes as a stream of frames from a gateway, and as a
//! business process's handshake.

use super::input::Input;
use crate::gateway::proto::{self, FromGateway, decode_from_gateway, decode_hello};
use crate::inbox::Inbox;

/// Runs the fuzz target: the front of `data` picks a frame limit and where the rest is cut
/// into reads; the rest is split into frames the way a link reads them, whatever the cuts,
/// and each frame that decodes must encode to the same bytes. Panics if an invariant breaks.
pub fn gateway_proto(data: &[u8]) {
    let mut input = Input::new(data);
    let max = input.limit();
    let cut = usize::from(input.byte()).max(1);
    let stream = input.rest();

    // Whole, then in pieces of `cut` bytes: the same frames, the same error.
    let whole = split(stream, max, stream.len());
    let pieces = split(stream, max, cut);
    assert_eq!(
        whole, pieces,
        "cutting the stream into reads changed the frames"
    );

    for body in whole.0 {
        if let Some(frame) = decode_from_gateway(&body) {
            let mut again = Vec::new();
            encode(&frame, &mut again);
            assert_eq!(&again[4..], &body[..], "{frame:?} has two encodings");
        }
        if let Some(hello) = decode_hello(&body) {
            let mut again = Vec::new();
            proto::hello(&hello, &mut again);
            assert_eq!(&again[4..], &body[..], "{hello:?} has two encodings");
        }
    }
}

/// The frames of `stream` read `cut` bytes at a time, as a link does, and the error that
/// ended it, if any.
fn split(stream: &[u8], max: usize, cut: usize) -> (Vec<Vec<u8>>, Option<String>) {
    let mut got = Vec::new();
    let mut inbox = Inbox::default();
    for mut piece in stream.chunks(cut.max(1)) {
        while !piece.is_empty() {
            inbox.fill(&mut piece);
        }
        let each = |body: &[u8]| {
            got.push(body.to_vec());
            Ok(())
        };
        if let Err(e) = inbox.frames(max, each) {
            return (got, Some(e));
        }
    }
    (got, None)
}

fn encode(frame: &FromGateway<'_>, out: &mut Vec<u8>) {
    match frame {
        FromGateway::Welcome { instance } => proto::welcome(*instance, out),
        FromGateway::Refused(why) => proto::refused(why, out),
        FromGateway::Cluster(message) => proto::cluster(message, out),
        FromGateway::Drained => proto::bare(proto::DRAINED, out),
        FromGateway::Open { id, uri, headers } => {
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            proto::open(*id, uri, &headers, out);
        }
        FromGateway::Data {
            id,
            is_text,
            payload,
        } => proto::data(*id, *is_text, payload, out),
        FromGateway::Closed { id, flag, groups } => {
            let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
            proto::closed(*id, *flag, &groups, out);
        }
    }
}
