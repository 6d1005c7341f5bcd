use super::*;

fn id(raw: u64) -> ClientId {
    ClientId::from_u64(raw).expect("a valid test id")
}

fn encoded(env: &Envelope<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(env, &mut out);
    out
}

fn env(body: Body<'_>) -> Envelope<'_> {
    Envelope { origin: 7, body }
}

/// One envelope of every kind, target, query and answer, with and without each option.
fn samples() -> Vec<Envelope<'static>> {
    let a = id(1);
    let b = id((4095 << 52) | (255 << 44) | ((1 << 44) - 1));
    let mut bodies = vec![
        Body::Push {
            target: WireTarget::Clients(vec![a, b]),
            except: vec![],
            worker: None,
            is_text: true,
            reply: None,
            payload: b"hello",
        },
        Body::Push {
            target: WireTarget::Flags(vec!["user:1", "", "ünï"]),
            except: vec![b],
            worker: Some(u16::MAX),
            is_text: false,
            reply: Some(u64::MAX),
            payload: b"",
        },
        Body::Close {
            target: WireTarget::Groups(vec!["room"]),
            except: vec![a],
            worker: Some(0),
            reply: Some(0),
        },
        Body::Close {
            target: WireTarget::All,
            except: vec![],
            worker: None,
            reply: None,
        },
        Body::Message {
            action: None,
            workers: None,
            reply: None,
            payload: b"\x00\x01raw",
        },
        Body::Message {
            action: Some("reload"),
            workers: Some(vec![0, 127, 128, u16::MAX]),
            reply: Some(1 << 40),
            payload: br#"{"a":1}"#,
        },
        Body::Message {
            action: Some(""),
            workers: Some(vec![]),
            reply: None,
            payload: b"",
        },
        Body::Hello { up: true },
        Body::Hello { up: false },
    ];
    let queries = [
        Query::Exists(a),
        Query::FlagMembers("user:1"),
        Query::FlagOf(b),
        Query::Connections,
        Query::Count,
        Query::GroupMembers("room"),
        Query::Groups,
        Query::GroupsOf(a),
        Query::Data { id: a, key: "k" },
        Query::SetData {
            id: b,
            key: "k",
            json: br#"{"x":[1,2]}"#,
        },
        Query::RemoveData { id: a, key: "" },
        Query::Bind {
            id: a,
            flag: "user:1",
            exclusive: true,
        },
        Query::Bind {
            id: b,
            flag: "f",
            exclusive: false,
        },
        Query::Unbind(b),
        Query::Join { id: a, group: "g" },
        Query::Leave { id: b, group: "g" },
    ];
    for (i, query) in queries.into_iter().enumerate() {
        bodies.push(Body::Query {
            id: i as u64 * 1000,
            except: if i % 2 == 0 { vec![] } else { vec![a, b] },
            worker: (i % 3 == 0).then_some(i as u16),
            query,
        });
    }
    let answers = [
        Answer::Bool(true),
        Answer::Bool(false),
        Answer::Count(0),
        Answer::Count(300),
        Answer::Ids(vec![]),
        Answer::Ids(vec![a, b]),
        Answer::Names(vec!["a", "bc"]),
        Answer::Name(None),
        Answer::Name(Some("user:1")),
        Answer::Json(None),
        Answer::Json(Some(b"null")),
    ];
    for (i, answer) in answers.into_iter().enumerate() {
        bodies.push(Body::Reply {
            id: 1 << (i * 6),
            answer,
        });
    }
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| Envelope {
            origin: [0, 1, 4095, u16::MAX][i % 4],
            body,
        })
        .collect()
}

/// Where the payload starts in `bytes`, the encoding of `env` (its length for kinds without
/// one).
fn payload_start(env: &Envelope<'_>, bytes: &[u8]) -> usize {
    match env.body {
        Body::Push { payload, .. } | Body::Message { payload, .. } => bytes.len() - payload.len(),
        _ => bytes.len(),
    }
}

#[test]
fn every_variant_round_trips() {
    for env in samples() {
        let bytes = encoded(&env);
        assert_eq!(decode(&bytes), Ok(env.clone()), "{bytes:?}");
    }
}

#[test]
fn encode_appends() {
    let env = env(Body::Hello { up: true });
    let mut out = b"kept".to_vec();
    encode(&env, &mut out);
    assert_eq!(out, b"kept\x01\x00\x07\x06\x01");
}

/// The format pinned byte by byte: these bytes are the contract with other instances.
#[test]
fn known_encodings() {
    let hello = Envelope {
        origin: 0x0102,
        body: Body::Hello { up: false },
    };
    assert_eq!(encoded(&hello), [1, 0x01, 0x02, 6, 0]);

    let push = env(Body::Push {
        target: WireTarget::Flags(vec!["ab"]),
        except: vec![id(0x0100_0000_0000_0203)],
        worker: Some(300),
        is_text: true,
        reply: Some(1),
        payload: b"hi",
    });
    #[rustfmt::skip]
    let expected = [
        1, 0, 7, 1,                   // version, origin 7, push
        1, 1, 2, b'a', b'b',          // flags: one, "ab"
        1, 1, 0, 0, 0, 0, 0, 2, 3,    // except: one id, big-endian
        1, 0xac, 0x02,                // worker 300 as a varint
        1,                            // text
        1, 1,                         // reply under request 1
        b'h', b'i',                   // payload
    ];
    assert_eq!(encoded(&push), expected);

    let reply = env(Body::Reply {
        id: 128,
        answer: Answer::Json(Some(b"{}")),
    });
    assert_eq!(
        encoded(&reply),
        [1, 0, 7, 5, 0x80, 0x01, 5, 1, 2, b'{', b'}']
    );
}

#[test]
fn payload_is_raw_and_borrowed() {
    // A payload that looks like headers, a whole message, and every byte value.
    let mut payload = encoded(&samples()[2]);
    payload.extend([VERSION, 0, 0, 1, 0xff, 0x80, 0x00]);
    payload.extend(0..=255u8);
    for is_push in [true, false] {
        let body = if is_push {
            Body::Push {
                target: WireTarget::All,
                except: vec![],
                worker: None,
                is_text: false,
                reply: None,
                payload: &payload,
            }
        } else {
            Body::Message {
                action: Some("a"),
                workers: None,
                reply: Some(5),
                payload: &payload,
            }
        };
        let bytes = encoded(&env(body));
        let (Body::Push { payload: got, .. } | Body::Message { payload: got, .. }) =
            decode(&bytes).unwrap().body
        else {
            panic!("not a push or a message");
        };
        assert_eq!(got, &payload[..]);
        // Not copied: the decoded payload is the tail of the input.
        assert_eq!(got.as_ptr_range().end, bytes.as_ptr_range().end);
    }
}

#[test]
fn every_truncation_is_an_error() {
    for env in samples() {
        let bytes = encoded(&env);
        let start = payload_start(&env, &bytes);
        for len in 0..start {
            assert!(
                decode(&bytes[..len]).is_err(),
                "{env:?} cut to {len} bytes decoded"
            );
        }
        // A cut inside the payload is a shorter payload, the rest unchanged.
        for len in start..bytes.len() {
            let cut = decode(&bytes[..len]).unwrap();
            assert_eq!(cut.origin, env.origin);
            assert_eq!(encoded(&cut), &bytes[..len]);
        }
    }
}

#[test]
fn unknown_version_is_its_own_error() {
    for version in [0, 2, 0xff] {
        let mut bytes = encoded(&env(Body::Hello { up: true }));
        bytes[0] = version;
        assert_eq!(decode(&bytes), Err(WireError::UnknownVersion(version)));
        // Whatever follows: a newer version may change everything after byte 0.
        assert_eq!(decode(&[version]), Err(WireError::UnknownVersion(version)));
    }
    let e = WireError::UnknownVersion(2).to_string();
    assert!(e.contains("version 2"), "{e}");
    assert_eq!(decode(&[]), Err(WireError::Malformed("truncated")));
}

#[test]
fn unknown_tags_are_errors() {
    let malformed = |bytes: &[u8], reason| {
        assert_eq!(
            decode(bytes),
            Err(WireError::Malformed(reason)),
            "{bytes:?}"
        );
    };
    malformed(&[1, 0, 0, 0], "unknown kind");
    malformed(&[1, 0, 0, 7, 1], "unknown kind");
    malformed(&[1, 0, 0, 2, 4, 0, 0, 0], "unknown target");
    malformed(&[1, 0, 0, 4, 0, 0, 0, 15], "unknown query");
    malformed(&[1, 0, 0, 5, 0, 6], "unknown answer");
    assert!(
        WireError::Malformed("unknown kind")
            .to_string()
            .contains("unknown kind")
    );
}

#[test]
fn huge_counts_error_without_allocating() {
    // u64::MAX as a varint: were it trusted, `Vec::with_capacity` would abort the process.
    let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    let cases: [&[u8]; 5] = [
        &[1, 0, 0, 1, 3],    // push to all: except
        &[1, 0, 0, 2, 1],    // close to flags
        &[1, 0, 0, 5, 0, 2], // reply: ids
        &[1, 0, 0, 3, 0, 1], // message: workers
        &[1, 0, 0, 4, 0],    // query: except
    ];
    for prefix in cases {
        let bytes = [prefix, &max[..]].concat();
        assert_eq!(
            decode(&bytes),
            Err(WireError::Malformed("a count past the end")),
            "{prefix:?}"
        );
    }
    // One more id than the bytes left hold.
    let mut bytes = vec![1, 0, 0, 2, 0, 2];
    bytes.extend(1u64.to_be_bytes());
    bytes.extend([0; 7]);
    assert_eq!(
        decode(&bytes),
        Err(WireError::Malformed("a count past the end"))
    );
    // A string longer than the message.
    assert_eq!(
        decode(&[1, 0, 0, 4, 0, 0, 0, 1, 0x80, 0x80, 0x04, b'a']),
        Err(WireError::Malformed("a length past the end"))
    );
}

#[test]
fn invalid_utf8_name_is_an_error() {
    let bytes = encoded(&env(Body::Close {
        target: WireTarget::Groups(vec!["ab"]),
        except: vec![],
        worker: None,
        reply: None,
    }));
    let mut bad = bytes.clone();
    let at = bad.iter().position(|&b| b == b'a').unwrap();
    bad[at] = 0xc3; // a lead byte followed by an ASCII byte
    assert_eq!(decode(&bad), Err(WireError::Malformed("a name not UTF-8")));
    bad[at] = 0xff;
    assert_eq!(decode(&bad), Err(WireError::Malformed("a name not UTF-8")));
}

#[test]
fn invalid_client_ids_are_errors() {
    for raw in [0u64, 1 << 44, 0xffff_f000_0000_0000] {
        let mut bytes = vec![1, 0, 0, 4, 0, 0, 0, 0];
        bytes.extend(raw.to_be_bytes());
        assert_eq!(
            decode(&bytes),
            Err(WireError::Malformed("an invalid client id")),
            "{raw:#x}"
        );
    }
}

#[test]
fn non_canonical_forms_are_errors() {
    let malformed = |bytes: &[u8], reason| {
        assert_eq!(
            decode(bytes),
            Err(WireError::Malformed(reason)),
            "{bytes:?}"
        );
    };
    // Reply 0 with an overlong id, then answer Count 1.
    malformed(
        &[1, 0, 0, 5, 0x80, 0x00, 1, 1],
        "a varint is not in its shortest form",
    );
    malformed(
        &[1, 0, 0, 5, 0, 1, 0x81, 0x80, 0x00],
        "a varint is not in its shortest form",
    );
    // Eleven bytes, and ten whose last sets bits past 63.
    let mut long = vec![1, 0, 0, 5, 0, 1];
    long.extend([0xff; 10]);
    long.push(0x01);
    malformed(&long, "a varint overflows 64 bits");
    let mut over = vec![1, 0, 0, 5, 0, 1];
    over.extend([0xff; 9]);
    over.push(0x02);
    malformed(&over, "a varint overflows 64 bits");
    malformed(&[1, 0, 0, 6, 2], "a bool is neither 0 nor 1");
    malformed(&[1, 0, 0, 5, 0, 4, 2], "a presence byte is neither 0 nor 1");
    malformed(&[1, 0, 0, 6, 1, 0], "bytes after the last field");
    malformed(&[1, 0, 0, 5, 0, 1, 0, 0], "bytes after the last field");
    // Worker 65,536.
    malformed(
        &[1, 0, 0, 2, 3, 0, 1, 0x80, 0x80, 0x04, 0],
        "a worker over 65535",
    );
    // The largest varint is fine.
    let mut top = vec![1, 0, 0, 5, 0, 1];
    top.extend([0xff; 9]);
    top.push(0x01);
    assert_eq!(
        decode(&top).map(|e| e.body),
        Ok(Body::Reply {
            id: 0,
            answer: Answer::Count(u64::MAX)
        })
    );
}
