//! The channel broker over real sockets, with a raw client speaking its frame format:
//! forwarding to every other member, direct delivery, the token, instance numbers claimed
//! once and assigned on request, and bad clients (garbage, oversized frames, no handshake,
//! a subscriber that never reads) cut off alone while the others go on.
mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use corepush::{ChannelConfig, ChannelServer};
use log::Level;
use util::{WAIT, assert_logged, capture_logs};

const OK: u8 = 0x01;
const REFUSED: u8 = 0x02;
const TO_ALL: u8 = 0x10;
const TO_ONE: u8 = 0x11;
const LEAVE: u8 = 0x12;
const FORWARD: u8 = 0x20;

fn broker(config: ChannelConfig) -> ChannelServer {
    capture_logs();
    ChannelServer::start(config.addr("127.0.0.1:0".parse().unwrap())).expect("a broker")
}

/// A handshake frame, written out by hand as the protocol documents it.
fn handshake(number: u16, token: &str, prefix: &str, server: &str, session: &str) -> Vec<u8> {
    let mut body = b"CPCH\x01".to_vec();
    body.extend_from_slice(&number.to_be_bytes());
    for s in [token, prefix, server, session] {
        body.extend_from_slice(&(s.len() as u16).to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    framed(&body)
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

struct Raw {
    stream: TcpStream,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Raw { stream }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// The next frame's body; `None` once the broker closed the connection.
    fn frame(&mut self) -> Option<Vec<u8>> {
        let mut head = [0; 4];
        match self.stream.read_exact(&mut head) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ) =>
            {
                return None;
            }
            Err(e) => panic!("no frame within {WAIT:?}: {e}"),
        }
        let mut body = vec![0; u32::from_be_bytes(head) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(body)
    }

    /// Joins; the number the broker answered.
    fn join(addr: SocketAddr, number: u16, prefix: &str, session: &str) -> (Raw, u16) {
        let mut raw = Raw::connect(addr);
        raw.send(&handshake(number, "", prefix, "ws", session));
        let answer = raw.frame().expect("an answer");
        assert_eq!(
            answer[0],
            OK,
            "refused: {:?}",
            String::from_utf8_lossy(&answer)
        );
        (raw, u16::from_be_bytes([answer[1], answer[2]]))
    }

    /// The refusal code after a handshake, then the close.
    fn refused(&mut self) -> u8 {
        let answer = self.frame().expect("an answer");
        assert_eq!(answer[0], REFUSED);
        assert!(self.frame().is_none(), "closed after a refusal");
        answer[1]
    }

    fn publish(&mut self, message: &[u8]) {
        self.send(&framed(&[&[TO_ALL], message].concat()));
    }

    fn publish_to(&mut self, n: u16, message: &[u8]) {
        self.send(&framed(
            &[&[TO_ONE], &n.to_be_bytes()[..], message].concat(),
        ));
    }

    /// The next forwarded message, with its sender's number.
    fn forwarded(&mut self) -> (u16, Vec<u8>) {
        let body = self.frame().expect("a forwarded message");
        assert_eq!(body[0], FORWARD);
        (u16::from_be_bytes([body[1], body[2]]), body[3..].to_vec())
    }

    fn closed(&mut self) -> bool {
        loop {
            match self.frame() {
                None => return true,
                Some(_) => continue,
            }
        }
    }
}

#[test]
fn a_publication_reaches_every_other_member_of_its_prefix_and_server() {
    let b = broker(ChannelConfig::default());
    let (mut one, _) = Raw::join(b.local_addr(), 1, "p", "s1");
    let (mut two, _) = Raw::join(b.local_addr(), 2, "p", "s2");
    let (mut three, _) = Raw::join(b.local_addr(), 3, "p", "s3");
    let (mut elsewhere, _) = Raw::join(b.local_addr(), 1, "other", "s4");
    let (mut five, _) = Raw::join(b.local_addr(), 5, "other", "s5");
    one.publish(b"hello");
    assert_eq!(two.forwarded(), (1, b"hello".to_vec()));
    assert_eq!(three.forwarded(), (1, b"hello".to_vec()));
    elsewhere.publish(b"mine");
    assert_eq!(five.forwarded(), (1, b"mine".to_vec()));
    // Never back to the sender, never to another prefix: their next message is a later one.
    two.publish(b"after");
    assert_eq!(one.forwarded(), (2, b"after".to_vec()));
    assert_eq!(three.forwarded(), (2, b"after".to_vec()));
}

#[test]
fn a_direct_message_reaches_one_member() {
    let b = broker(ChannelConfig::default());
    let (mut one, _) = Raw::join(b.local_addr(), 1, "p", "s1");
    let (mut two, _) = Raw::join(b.local_addr(), 2, "p", "s2");
    let (mut three, _) = Raw::join(b.local_addr(), 3, "p", "s3");
    one.publish_to(3, b"for three");
    one.publish_to(9, b"for nobody");
    assert_eq!(three.forwarded(), (1, b"for three".to_vec()));
    one.publish(b"marker");
    assert_eq!(two.forwarded(), (1, b"marker".to_vec()));
    assert_eq!(three.forwarded(), (1, b"marker".to_vec()));
}

#[test]
fn a_wrong_token_is_refused_and_logged() {
    let b = broker(ChannelConfig::default().token("secret"));
    let mut wrong = Raw::connect(b.local_addr());
    let peer = wrong.stream.local_addr().unwrap().to_string();
    wrong.send(&handshake(1, "guess", "p", "ws", "a"));
    assert_eq!(wrong.refused(), 3);
    assert_logged(Level::Warn, &[&peer, "wrong token"]);
    let mut right = Raw::connect(b.local_addr());
    right.send(&handshake(1, "secret", "p", "ws", "a"));
    assert_eq!(right.frame().unwrap()[0], OK);
}

#[test]
fn a_number_is_held_once_and_zero_is_assigned_the_lowest_free() {
    let b = broker(ChannelConfig::default());
    let addr = b.local_addr();
    let (one, n) = Raw::join(addr, 1, "p", "a");
    assert_eq!(n, 1);
    let mut clash = Raw::connect(addr);
    clash.send(&handshake(1, "", "p", "ws", "b"));
    assert_eq!(clash.refused(), 4);
    // Another prefix has numbers of its own; the same session may share its number.
    assert_eq!(Raw::join(addr, 1, "q", "b").1, 1);
    let (_same, _) = Raw::join(addr, 1, "p", "a");
    assert_eq!(Raw::join(addr, 0, "p", "c").1, 2);
    // A number left without a goodbye stays its session's for a while…
    drop(one);
    drop(_same);
    let (mut three, n) = Raw::join(addr, 0, "p", "d");
    assert_eq!(n, 3);
    let (_back, _) = Raw::join(addr, 1, "p", "a");
    // …and one left with a goodbye is free at once.
    three.send(&framed(&[LEAVE]));
    assert!(three.closed());
    let mut again = Raw::connect(addr);
    again.send(&handshake(3, "", "p", "ws", "e"));
    assert_eq!(
        again.frame().unwrap()[0],
        OK,
        "number 3 is free after its goodbye"
    );
}

#[test]
fn garbage_closes_only_its_sender() {
    let b = broker(ChannelConfig::default());
    let (mut one, _) = Raw::join(b.local_addr(), 1, "p", "a");
    let (mut two, _) = Raw::join(b.local_addr(), 2, "p", "b");
    let mut http = Raw::connect(b.local_addr());
    http.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(http.closed());
    // A member that sends a frame of an unknown kind.
    let (mut bad, _) = Raw::join(b.local_addr(), 3, "p", "c");
    bad.send(&framed(b"\x7fnonsense"));
    assert!(bad.closed());
    one.publish(b"still here");
    assert_eq!(two.forwarded(), (1, b"still here".to_vec()));
}

#[test]
fn an_oversized_frame_closes_only_its_sender() {
    let b = broker(ChannelConfig::default().max_frame(1024));
    let (mut one, _) = Raw::join(b.local_addr(), 1, "p", "a");
    let (mut two, _) = Raw::join(b.local_addr(), 2, "p", "b");
    let (mut big, _) = Raw::join(b.local_addr(), 3, "p", "c");
    let peer = big.stream.local_addr().unwrap().to_string();
    big.send(&4096u32.to_be_bytes());
    assert!(big.closed());
    assert_logged(Level::Warn, &[&peer, "past the limit of 1024"]);
    one.publish(&[7; 1000]);
    assert_eq!(two.forwarded(), (1, vec![7; 1000]));
}

#[test]
fn a_connection_without_a_handshake_is_cut_off_in_time() {
    let b = broker(ChannelConfig::default().handshake_timeout(Duration::from_millis(200)));
    let (mut one, _) = Raw::join(b.local_addr(), 1, "p", "a");
    let mut silent = Raw::connect(b.local_addr());
    let mut half = Raw::connect(b.local_addr());
    half.send(&handshake(2, "", "p", "ws", "b")[..6]);
    assert!(silent.closed());
    assert!(half.closed());
    let (mut two, _) = Raw::join(b.local_addr(), 2, "p", "b");
    two.publish(b"fine");
    assert_eq!(one.forwarded(), (2, b"fine".to_vec()));
}

#[test]
fn a_subscriber_that_never_reads_is_cut_off_and_the_others_keep_receiving() {
    let b = broker(ChannelConfig::default().max_outbound(256 * 1024));
    let addr = b.local_addr();
    // A tiny receive buffer, set before connecting, so that the broker's queue fills soon.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut slow = Raw {
        stream: socket.into(),
    };
    slow.stream.set_read_timeout(Some(WAIT)).unwrap();
    let peer = slow.stream.local_addr().unwrap().to_string();
    slow.send(&handshake(3, "", "p", "ws", "slow"));
    assert_eq!(slow.frame().unwrap()[0], OK);

    let (mut publisher, _) = Raw::join(addr, 1, "p", "a");
    let (fast, _) = Raw::join(addr, 2, "p", "b");
    let mut fast_reader = Raw {
        stream: fast.stream.try_clone().unwrap(),
    };
    let messages = 512;
    // The fast subscriber tells which message it has read; the publisher stays at most two
    // messages (128 KiB) ahead of it, so that it keeps up however the threads are scheduled,
    // while the slow one, which never reads, falls 32 MiB behind.
    let (read, progress) = crossbeam_channel::unbounded();
    let reader = std::thread::spawn(move || {
        for i in 0..messages {
            let (from, body) = fast_reader.forwarded();
            assert_eq!((from, body.len(), body[0]), (1, 64 * 1024, i as u8));
            let _ = read.send(i);
        }
    });
    for i in 0..messages {
        if i >= 2 {
            let got = progress.recv_timeout(WAIT);
            assert_eq!(
                got,
                Ok(i - 2),
                "the fast subscriber reads message {}",
                i - 2
            );
        }
        publisher.publish(&vec![i as u8; 64 * 1024]);
    }
    reader
        .join()
        .expect("the fast subscriber got every message");
    assert!(slow.closed(), "the slow subscriber is cut off");
    assert_logged(Level::Warn, &[&peer, "not keeping up"]);
    drop(fast);
}
